"""Tunnels: a local port on 127.0.0.1 joined to a port or Unix socket on a host, kept up.

Three backends: `kept` (over the keeper's signed-in connection, remoteenv.keeper: the default
where commands reuse connections, so a tunnel needs no second sign-in, code or handshake),
`openssh` (the system `ssh -N -L`: the default with --no-reuse and for Unix-socket services; it
honours ProxyJump, agents and hardware keys as the person's ssh does) and `asyncssh` (in process,
for machines without an `ssh` binary). `supervisor.Tunnel` keeps
each up: when the connection drops it reconnects with backoff and says so. `records` keeps detached
tunnels in the local state dir.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass

from remoteenv.errors import RemoteenvError

BACKENDS = ("openssh", "asyncssh", "kept")
LOCAL_HOST = "127.0.0.1"
PORT_TRIES = 100  # a busy local port moves to the next free one, this many at most


class TunnelError(RemoteenvError):
    """A tunnel could not be opened (the backend said why)."""


@dataclass(frozen=True)
class Forward:
    """127.0.0.1:local_port here -> `remote` on the host: "127.0.0.1:PORT", "HOST:PORT" or "/path.sock"."""

    local_port: int
    remote: str
    label: str = ""

    @property
    def remote_is_socket(self) -> bool:
        return self.remote.startswith("/")

    def spec(self) -> str:
        """ssh -L's argument: LOCAL_HOST:LOCAL_PORT:REMOTE."""
        return f"{LOCAL_HOST}:{self.local_port}:{self.remote}"

    def to_json(self) -> dict[str, object]:
        return {"local_port": self.local_port, "remote": self.remote, "label": self.label}


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name == "posix":
            # As ssh and asyncssh bind: a port whose old connections linger in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCAL_HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_local_port(preferred: int, taken: set[int] | frozenset[int] = frozenset()) -> int:
    """`preferred` when it is free here, else the next free port above it."""
    for port in range(preferred, min(preferred + PORT_TRIES, 65536)):
        if port not in taken and port_is_free(port):
            return port
    raise TunnelError(f"no free local port in {preferred}-{preferred + PORT_TRIES - 1}",
                      "give another with --local-port")


def listening(port: int, timeout: float = 0.2) -> bool:
    """Does something accept connections on 127.0.0.1:port?"""
    try:
        with socket.create_connection((LOCAL_HOST, port), timeout=timeout):
            return True
    except OSError:
        return False
