"""The sandbox's files and its run record, all under <state dir>/sandbox (mode 0700).

The run record (sandbox.json) outlives `sandbox down` with no pid, so the next `up` reuses the
flavour's port when it is free: a port a person wrote down keeps working.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from remoteenv import paths


@dataclass(frozen=True)
class SandboxPaths:
    dir: Path

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.dir / "authorized_keys"

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def pid_file(self) -> Path:
        return self.dir / "server.pid"

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    @property
    def record(self) -> Path:
        return self.dir / "sandbox.json"

    @property
    def home(self) -> Path:
        """HOME of the sandbox's sessions, so what runs there stays out of the person's home."""
        return self.dir / "home"

    @property
    def lock(self) -> Path:
        return self.dir / ".lock"


def sandbox_paths() -> SandboxPaths:
    return SandboxPaths(paths.state_dir() / "sandbox")


def ensure_dirs(p: SandboxPaths) -> None:
    paths.ensure_private_dir(p.dir)
    paths.ensure_private_dir(p.home)


@dataclass
class Record:
    """What `sandbox up` started; pid is None once it was stopped."""

    flavour: str
    port: int
    user: str
    pid: int | None = None
    started_at: float | None = None
    reason: str = ""
    host_key_fingerprint: str = ""


def load_record(p: SandboxPaths) -> Record | None:
    try:
        data = json.loads(p.record.read_text(encoding="utf-8"))
        known = {f.name for f in fields(Record)}
        return Record(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        return None


def save_record(p: SandboxPaths, record: Record) -> None:
    paths.write_private(p.record, json.dumps(asdict(record), indent=2) + "\n")


@contextmanager
def locked(p: SandboxPaths) -> Iterator[None]:
    """One `up`/`down` at a time per state dir (two terminals racing must not start two servers)."""
    ensure_dirs(p)
    fd = os.open(p.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: the sandbox refuses to start there anyway
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
