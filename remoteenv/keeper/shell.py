"""One long-lived shell per kept connection (remote/shell.sh), for scripts that need no new SSH session.

A command on a kept connection still costs the host a session: sshd forks, the login shell starts,
the channel opens and closes in a few round trips of packets. On a fleet that is most of what a
no-op run costs each host. Scripts sent without arguments and without streamed output (the probe,
the steps' checks) go instead to a shell the keeper started once on that connection, which runs
each in a fresh `/bin/sh` under the host's `timeout`, as the session would have, and keeps each
script's text so the same probe is sent once per connection, not once per run.

The shell runs one script at a time: a second command while it is busy, a script with arguments
(secrets travel in those) or one whose output is streamed takes the ordinary path, as does every
command when the shell cannot start (no `head` on the host). An interrupt reaches the script
through the session's marker, as it does an ordinary command.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import select
import shlex
import threading
import time
from functools import cache
from importlib import resources
from typing import Any

from remoteenv.errors import CommandTimeout
from remoteenv.transport.options import RunResult
from remoteenv.transport.scripted import short_command

log = logging.getLogger("remoteenv.keeper")

READY = b"remoteenv-shell ready\n"
START_WAIT = 10.0
TIMEOUT_EXIT = 124  # the host's `timeout`, when the time ran out
COMMAND = "/bin/sh -s"  # what the script stands for, in results and messages


class RemoteShell:
    def __init__(self, conn: Any) -> None:
        self.conn = conn  # the kept transport.connection.Connection
        self.chan: Any = None
        self.kept: set[str] = set()  # digests of the scripts the running shell keeps
        self.lock = threading.Lock()
        self.unusable = False  # it could not start on this host: never try again on this connection

    def run(self, view: Any, text: str, timeout: float | None) -> RunResult | None:
        """Run script `text` for `view` (a session's Connection); None: take the ordinary path."""
        if self.unusable or not self.lock.acquire(blocking=False):
            return None
        try:
            if not self._ready():
                return None
            return self._run(view, text, timeout)
        finally:
            self.lock.release()

    def close(self) -> None:
        with self.lock:
            self._drop()

    # -- inside the lock -----------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.chan is not None and not self.chan.closed and not self.chan.exit_status_ready():
            return True
        self._drop()
        try:
            chan = self.conn.transport.open_session(timeout=30)
            chan.exec_command("exec /bin/sh -c " + shlex.quote(_driver()))
            got = b""
            deadline = time.monotonic() + START_WAIT
            while not got.endswith(READY):
                if chan.closed or chan.exit_status_ready() or time.monotonic() > deadline:
                    raise OSError(f"no shell: {got[-200:]!r}")
                select.select([chan], [], [], 0.2)
                while chan.recv_ready():
                    got += chan.recv(4096)
                while chan.recv_stderr_ready():
                    chan.recv_stderr(4096)
        except Exception as exc:  # any failure here only means the ordinary path
            log.info("%s: no kept shell (%s); commands open sessions", self.conn.host.name, exc)
            self.unusable = isinstance(exc, OSError) and str(exc).startswith("no shell")
            return False
        self.chan = chan
        return True

    def _drop(self) -> None:
        if self.chan is not None:
            try:
                self.chan.close()
            except Exception:  # a dead link: nothing to close politely
                pass
        self.chan, self.kept = None, set()

    def _run(self, view: Any, text: str, timeout: float | None) -> RunResult | None:
        data = text.encode()
        digest = hashlib.sha256(data).hexdigest()
        seconds = max(1, int(-(-timeout // 1))) if timeout is not None else 0
        started = time.monotonic()
        for attempt in range(2):
            cid = secrets.token_hex(8)
            send = attempt == 1 or digest not in self.kept
            header = f"{cid} {view._marker} {seconds} {digest} {len(data) if send else 0}\n".encode()
            try:
                self.chan.sendall(header + (data if send else b""))
            except Exception:  # nothing ran: the shell went away between commands
                self._drop()
                return None
            if send:
                self.kept.add(digest)
            # The view's interrupt then signals this script by its marker. Not through the shell's
            # channel: the shell outlives its scripts, and a request racing its close would end the
            # connection.
            running = _Script()
            view._running.add(running)
            try:
                out, err, ended = self._collect(view, cid, timeout, started)
            finally:
                view._running.discard(running)
            if ended == "missing":  # the host lost the kept copy (a cleaned /tmp): send it again
                self.kept.discard(digest)
                continue
            exited = int(ended)
            if timeout is not None and exited == TIMEOUT_EXIT:
                raise CommandTimeout(self.conn.host.name, f"`{COMMAND}`", timeout)
            return RunResult(COMMAND, exited, _strip(out, cid, ended).decode(errors="replace"),
                             _strip(err, cid, None).decode(errors="replace"), time.monotonic() - started)
        raise view.lost("while a command ran", OSError("the kept shell lost the script twice"))

    def _collect(self, view: Any, cid: str, timeout: float | None, started: float) -> tuple[bytes, bytes, str]:
        """The script's stdout and stderr up to and with both end lines, and what stdout's end line says
        (the exit code, or "missing")."""
        chan = self.chan
        out, err = bytearray(), bytearray()
        out_end = re.compile(rb"\n" + cid.encode() + rb" (\d+|missing)\n\Z")
        err_end = b"\n" + cid.encode() + b"\n"
        deadline = started + timeout + 10 if timeout is not None else None
        out_done: re.Match[bytes] | None = None
        err_done = False
        while not (out_done and err_done):
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            select.select([chan], [], [], wait)
            while chan.recv_ready():
                out += chan.recv(65536)
                out_done = out_end.search(out[-80:])
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                err_done = err.endswith(err_end)
            if out_done and err_done:
                break
            if chan.closed or chan.exit_status_ready() or chan.eof_received:
                self._drop()
                raise view.lost("while a command ran")
            if deadline is not None and time.monotonic() >= deadline:
                view._signal_marked("KILL")  # the host's own timeout did not end it: it does not answer
                self._drop()
                raise CommandTimeout(self.conn.host.name, f"`{short_command(COMMAND)}`", timeout or 0)
        assert out_done is not None
        return bytes(out), bytes(err), out_done.group(1).decode()


class _Script:
    """A script running in a kept shell, in a session view's running set."""


@cache
def _driver() -> str:
    """shell.sh as the `sh -c` argument: its first line names it in `ps`; the other comments go."""
    lines = resources.files("remoteenv.remote").joinpath("shell.sh").read_text(encoding="utf-8").splitlines()
    return "\n".join([lines[0], *(ln for ln in lines[1:] if not ln.lstrip().startswith("#"))]) + "\n"


def _strip(data: bytes, cid: str, ended: str | None) -> bytes:
    tail = b"\n" + cid.encode() + (b" " + ended.encode() if ended is not None else b"") + b"\n"
    return data[: len(data) - len(tail)]
