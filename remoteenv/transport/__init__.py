"""How commands and files reach a host: SSH connections, host-key policy, typed errors.

Light to import: paramiko loads with the first connection of this process's own. A command whose
connection the keeper holds (remoteenv.keeper) never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remoteenv.transport.options import ConnectOptions, RunResult

if TYPE_CHECKING:
    from remoteenv.inventory.model import Host
    from remoteenv.keeper.client import KeptConnection
    from remoteenv.transport.connection import Connection

__all__ = ["ConnectOptions", "Connection", "RunResult", "connect"]


def connect(host: Host, options: ConnectOptions | None = None) -> Connection | KeptConnection:
    """An authenticated, host-key-verified connection to `host`: the keeper's when reuse is on
    (a sign-in made once, shared by every command within its idle time), else one of our own."""
    options = options or ConnectOptions()
    from remoteenv import keeper

    if options.reuse is not False and not (options.reuse is None and keeper.reuse_off()):
        from remoteenv.keeper import client as kept

        if kept.wanted(host, options):
            conn = kept.connect(host, options)
            if conn is not None:
                return conn
    from remoteenv.transport.connection import connect as direct

    return direct(host, options)


def __getattr__(name: str) -> object:
    if name == "Connection":
        from remoteenv.transport.connection import Connection

        return Connection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
