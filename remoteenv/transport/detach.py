"""Processes that outlive the SSH session that started them (a Jupyter server, a TensorBoard).

`start` returns as soon as the process runs: it gets its own session, stdin from /dev/null and its
output in a 0600 log inside a 0700 folder, so the SSH channel never waits on it. Values meant to be
secret reach it through its environment, which other users cannot read, never through argv.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remoteenv.errors import CommandFailed, ConfigError
from remoteenv.scripts import script

if TYPE_CHECKING:
    from remoteenv.transport.connection import Connection

# Where detached processes keep their pid and log files, unless a caller says otherwise.
DEFAULT_DIR = "~/.remoteenv/run"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Detached:
    """A process started by `start`: its pid, the kernel's start time of it, its files."""

    name: str
    pid: int
    start_time: str  # /proc/PID/stat field 22; "" where /proc is missing
    log: str
    pid_file: str


def start(conn: Connection, argv: Sequence[str], *, name: str, env: Mapping[str, str] | None = None,
          cwd: str | None = None, folder: str = DEFAULT_DIR, timeout: float = 30) -> Detached:
    """Start `argv` on the host, detached; `env` is added to its environment (secrets go here)."""
    if not argv:
        raise ValueError("nothing to start")
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{name!r} is not a usable process name", "letters, digits, '.', '_' and '-'")
    pairs: list[str] = []
    for key, value in (env or {}).items():
        if not _ENV_KEY.fullmatch(key):
            raise ConfigError(f"{key!r} is not an environment variable name", "letters, digits and '_'")
        pairs += [key, str(value)]
    args = [name, folder, cwd or "", str(len(pairs) // 2), *pairs, *argv]
    result = conn.run_script(script("detach.sh"), args, timeout=timeout)
    fields = result.stdout.strip().splitlines()[-1].split("\t") if result.stdout.strip() else []
    if not result.ok or len(fields) < 2 or fields[0] != "pid" or not fields[1].isdigit():
        raise CommandFailed(conn.host.name, f"start {shlex.join(argv)[:60]}", result.exited,
                            result.stderr or result.stdout)
    where = fields[3] if len(fields) > 3 else folder
    return Detached(name, int(fields[1]), fields[2] if len(fields) > 2 else "", f"{where}/{name}.log",
                    f"{where}/{name}.pid")
