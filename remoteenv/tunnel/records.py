"""Detached tunnels, recorded in the local state dir (0700; records 0600: they hold Jupyter URLs).

A detached tunnel is a keeper process (`python -m remoteenv.tunnel.keeper RECORD`) that runs the
same supervisor as a foreground tunnel. Its record says which host, which forwards, its pid, and
whether it is open; `remoteenv tunnels` lists them and `remoteenv down` ends them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from remoteenv import paths, pids


def folder() -> Path:
    return paths.ensure_private_dir(paths.state_dir() / "tunnels")


@dataclass
class Record:
    id: str
    host: str
    backend: str
    forwards: list[dict[str, Any]]
    inventory: str | None = None  # the inventory the host resolves through (None: the default)
    pid: int | None = None  # the keeper
    started: float = field(default_factory=time.time)
    state: str = "starting"  # starting | open | reconnecting | failed
    message: str = ""
    url: str = ""  # with its token: the record is 0600
    service: str = ""
    # openssh: the ssh command line, built by the parent; the keeper then runs it without paramiko or
    # the inventory (it starts in a tenth of the time).
    argv: list[str] | None = None
    # kept: the connection keeper itself listens for this tunnel (pid is the keeper's); no process of
    # its own to start or end.
    hosted: bool = False

    @property
    def path(self) -> Path:
        return folder() / f"{self.id}.json"

    @property
    def log(self) -> Path:
        return folder() / f"{self.id}.log"

    def save(self) -> None:
        paths.write_private(self.path, json.dumps(asdict(self), indent=2) + "\n")

    def alive(self) -> bool:
        return self.pid is not None and pids.alive(self.pid)

    def local_ports(self) -> list[int]:
        return [int(f["local_port"]) for f in self.forwards]


def load(path: Path) -> Record | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Record(**{k: v for k, v in data.items() if k in Record.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def load_all(*, prune: bool = True) -> list[Record]:
    """Every recorded tunnel whose keeper runs; records of dead keepers are removed when `prune`.

    A tunnel the connection keeper hosts is alive while the keeper still hosts it: one that
    `disconnect HOST` closed has a running keeper all the same."""
    found = []
    hosted: list[set[str] | None] = []  # asked once, when a record needs it
    for path in sorted(folder().glob("*.json")):
        record = load(path)
        if record is None:
            continue
        alive = record.alive()
        if alive and record.hosted:
            if not hosted:
                hosted.append(_hosted_ids())
            alive = hosted[0] is None or record.id in hosted[0]
        if alive:
            found.append(record)
        elif prune:
            remove(record)
    return found


def _hosted_ids() -> set[str] | None:
    """The ids of the tunnels the connection keeper hosts; None when it cannot tell."""
    from remoteenv.errors import RemoteenvError
    from remoteenv.keeper import client

    try:
        reply = client.request("list")
    except RemoteenvError:  # a keeper that does not answer: its records stay as they are
        return None
    return {str(t.get("id")) for t in reply.get("tunnels", [])} if reply is not None else None


def remove(record: Record) -> None:
    for path in (record.path, record.log):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def new_id(host: str, local_port: int) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in host)
    return f"{safe}-{local_port}"


def stop(record: Record, timeout: float = 5.0) -> bool:
    """End a detached tunnel's keeper (it closes its connection); True when it had been running."""
    was = record.alive()
    if record.hosted:
        from remoteenv.keeper import client

        reply = client.request("unlisten", id=record.id) if was else None
        remove(record)
        return bool(reply and reply.get("closed"))
    if was and record.pid is not None:
        try:
            os.kill(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            was = False
        deadline = time.monotonic() + timeout
        while record.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if record.alive():
            os.kill(record.pid, signal.SIGKILL)
    remove(record)
    return was


# -- where a service was last time --------------------------------------------------------------
# `up` on a ready host opens its tunnel while the probe runs, to where the server listened last time
# (its port on the host does not change while it runs); the probe's answer then confirms or corrects it.

def _endpoints_path() -> Path:
    return folder() / "endpoints.json"


def recall(host: str, service: str) -> dict[str, Any] | None:
    """{"where", "local_port"} of `service` on `host` the last time it was up, or None."""
    try:
        found = json.loads(_endpoints_path().read_text(encoding="utf-8")).get(f"{host}\t{service}")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, dict) and found.get("where") and found.get("local_port") else None


def remember(host: str, service: str, where: str, local_port: int) -> None:
    try:
        known = json.loads(_endpoints_path().read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    known[f"{host}\t{service}"] = {"where": where, "local_port": local_port, "at": time.time()}
    paths.write_private(_endpoints_path(), json.dumps(known, indent=1) + "\n")
