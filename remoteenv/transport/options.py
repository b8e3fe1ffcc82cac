"""What a connection is opened with, and what a command gives back: plain data, light to import.

Kept apart from connection.py (which loads paramiko) so that a command served by the connection
keeper (remoteenv.keeper) never pays for importing paramiko itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from remoteenv.inventory.model import Host

# Answers keyboard-interactive prompts (a one-time code): (host name, title, instructions,
# [(prompt, echo)]) -> one answer per prompt. Raise AuthFailed to give up.
Prompter = Callable[[str, str, str, list[tuple[str, bool]]], list[str]]


@dataclass
class ConnectOptions:
    accept_new_host_key: bool = False
    # None: the host's ConnectTimeout from ssh config, else DEFAULT_CONNECT_TIMEOUT.
    connect_timeout: float | None = None
    # Resolves a ProxyJump hop name (e.g. through the inventory and ssh config) into a Host.
    resolve_jump: Callable[[str], Host] | None = None
    # None: the host's ServerAliveInterval / ServerAliveCountMax from ssh config, else keepalive's
    # defaults. An interval of 0 turns dead-peer detection off.
    keepalive_interval: float | None = None
    keepalive_count_max: int | None = None
    # None: ask on the terminal when there is one (else refuse); the keeper relays prompts to the
    # command that asked for the connection.
    prompt: Prompter | None = None
    # None: reuse a kept connection unless REMOTEENV_NO_REUSE is set (remoteenv.keeper); False: a
    # connection of this process's own.
    reuse: bool | None = None


@dataclass
class RunResult:
    """What a remote command did. `ok` is exit code 0."""

    command: str
    exited: int
    stdout: str
    stderr: str
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exited == 0
