"""A detached tunnel's process: `python -m remoteenv.tunnel.keeper RECORD.json`.

It resolves the host again through the same inventory, keeps the tunnel up with the supervisor,
writes its state into the record as it changes, and closes the tunnel on SIGTERM, SIGINT or SIGHUP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from remoteenv.errors import RemoteenvError
from remoteenv.tunnel import Forward, records
from remoteenv.tunnel.supervisor import Tunnel, TunnelEvent


def main(argv: list[str]) -> int:
    record = records.load(Path(argv[1]))
    if record is None:
        print(f"no tunnel record at {argv[1]}", file=sys.stderr)
        return 2
    record.pid = os.getpid()

    def log(line: str) -> None:
        print(time.strftime("%H:%M:%S ") + line, flush=True)

    def on_event(event: TunnelEvent) -> None:
        log(f"{event.kind}: {event.message}")
        state = {"opened": "open", "reopened": "open", "dropped": "reconnecting", "closed": "closed"}.get(event.kind)
        if state and state != record.state:
            record.state, record.message = state, event.message
            record.save()

    tunnel: Tunnel | None = None
    try:
        forwards = [Forward(int(f["local_port"]), str(f["remote"]), str(f.get("label", ""))) for f in record.forwards]
        if record.backend == "openssh" and record.argv:
            from remoteenv.tunnel.openssh import OpenSSHBackend

            named = _Named(record.host)
            backend = OpenSSHBackend(named, forwards, None, argv=record.argv)  # type: ignore[arg-type]
            tunnel = Tunnel(named, forwards, None, backend=backend, on_event=on_event)  # type: ignore[arg-type]
        else:
            from remoteenv import api
            from remoteenv.inventory import load_inventory, resolve

            inventory = load_inventory(record.inventory)
            host = resolve(inventory, record.host)
            tunnel = Tunnel(host, forwards, api.connect_options(inventory), backend=record.backend,
                            on_event=on_event)

        def stop(signum: int, frame: object) -> None:
            # At once, not at the next turn of keep()'s loop: `remoteenv down` waits for this process.
            tunnel.stopping.set()
            tunnel.backend.close()

        # Before the tunnel opens, not after: ssh runs in a session of its own, so a stop that came
        # while it was opening (`up` giving up a tunnel aimed at where the server was last time) and
        # found Python's default action would leave it holding the local port.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, stop)
        tunnel.open()
    except RemoteenvError as exc:
        if tunnel is None or not tunnel.stopping.is_set():
            record.state, record.message = "failed", exc.one_line()
            record.save()
            log(f"failed: {exc.one_line()}")
            return 1
        # Stopped while it opened: the open gave up because of the stop, which is not a failure.
    tunnel.keep()  # at once when stopped; it closes the backend either way
    records.remove(record)
    return 0


class _Named:
    """What a backend needs of a host when its command is given: the name, for messages."""

    def __init__(self, name: str) -> None:
        self.name = name


def start(record: records.Record) -> subprocess.Popen:
    """Start a keeper for `record` in the background; wait_open() then waits for its tunnel."""
    record.save()
    with open(record.log, "ab") as log:
        os.chmod(record.log, 0o600)
        kwargs: dict[str, object] = {"start_new_session": True} if os.name == "posix" else {
            "creationflags": getattr(subprocess, "DETACHED_PROCESS", 0)}
        return subprocess.Popen([sys.executable, "-m", "remoteenv.tunnel.keeper", str(record.path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, **kwargs)  # type: ignore[call-overload]


def wait_open(record: records.Record, proc: subprocess.Popen, timeout: float = 60.0) -> records.Record:
    """The record once the keeper's tunnel is open; TunnelError when it failed (its log's last line
    says why) or did not open within `timeout`."""
    from remoteenv.tunnel import TunnelError

    deadline = time.monotonic() + timeout
    while True:
        now = records.load(record.path)
        if now is not None and now.state == "open":
            return now
        if now is not None and now.state == "failed":
            proc.wait()
            records.remove(now)
            raise TunnelError(now.message or "the tunnel failed to open")
        if proc.poll() is not None:
            text = record.log.read_text(errors="replace").strip().splitlines() if record.log.exists() else []
            records.remove(record)
            raise TunnelError(f"the tunnel process exited {proc.returncode}" + (f": {text[-1]}" if text else ""))
        if time.monotonic() > deadline:
            proc.terminate()
            records.remove(record)
            raise TunnelError(f"the tunnel did not open within {timeout:g}s")
        time.sleep(0.02)


def spawn(record: records.Record, timeout: float = 60.0) -> records.Record:
    """Start a keeper for `record` in the background and return once its tunnel is open."""
    return wait_open(record, start(record), timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
