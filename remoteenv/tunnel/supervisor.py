"""Keep a tunnel up: open it, notice when its connection ends, reconnect with backoff, say so."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remoteenv.errors import RemoteenvError
from remoteenv.tunnel import BACKENDS, TunnelError
from remoteenv.tunnel.base import Backend

if TYPE_CHECKING:
    from remoteenv.inventory import Host
    from remoteenv.transport import ConnectOptions
    from remoteenv.tunnel import Forward

FIRST_DELAY = 1.0  # seconds before the first reconnect; doubled after each failure
MAX_DELAY = 30.0
OPEN_TIMEOUT = 30.0


@dataclass(frozen=True)
class TunnelEvent:
    """What happened to a tunnel: opened, dropped, reconnecting, reopened, closed."""

    kind: str
    host: str
    message: str = ""
    delay: float | None = None  # seconds until the next try (reconnecting)


def default_backend() -> str:
    """openssh where an `ssh` binary exists, else asyncssh."""
    from remoteenv.tunnel.openssh import ssh_binary

    return "openssh" if ssh_binary() else "asyncssh"


def backend_for(host: Host, forwards: Sequence[Forward] = ()) -> str:
    """`kept` where commands reuse the keeper's connection (no second sign-in, no second code, no
    handshake: a tunnel opens in milliseconds), for TCP services; else default_backend()."""
    from remoteenv import keeper

    if keeper.reuse_off() or str(host.vars.get("connection_reuse", "")).lower() in ("false", "no", "0"):
        return default_backend()
    if any(f.remote_is_socket for f in forwards):
        return default_backend()
    return "kept"


def make_backend(name: str, host: Host, forwards: Sequence[Forward], options: ConnectOptions | None) -> Backend:
    if name == "openssh":
        from remoteenv.tunnel.openssh import OpenSSHBackend

        return OpenSSHBackend(host, forwards, options)
    if name == "asyncssh":
        from remoteenv.transport import ConnectOptions
        from remoteenv.tunnel.asyncssh_backend import AsyncSSHBackend

        return AsyncSSHBackend(host, forwards, options or ConnectOptions())
    if name == "kept":
        from remoteenv.tunnel.kept import KeptBackend

        return KeptBackend(host, forwards, options)
    raise TunnelError(f"unknown tunnel backend {name!r}", f"one of: {', '.join(BACKENDS)}")


class Tunnel:
    """`forwards` to `host`, kept open by `backend` until close(); events go to `on_event`."""

    def __init__(self, host: Host, forwards: Sequence[Forward], options: ConnectOptions | None, *,
                 backend: str | Backend | None = None, on_event: Callable[[TunnelEvent], None] | None = None,
                 open_timeout: float = OPEN_TIMEOUT, max_delay: float = MAX_DELAY) -> None:
        self.host = host
        self.forwards = list(forwards)
        if isinstance(backend, Backend):
            self.backend_name, self.backend = backend.name, backend
        else:
            self.backend_name = backend or backend_for(host, self.forwards)
            self.backend = make_backend(self.backend_name, host, self.forwards, options)
        self.on_event = on_event or (lambda event: None)
        self.open_timeout = open_timeout
        self.max_delay = max_delay
        self.stopping = threading.Event()
        self.reconnects = 0

    def open(self) -> None:
        """Open it once; a failure raises (the first connection's errors are the person's to see)."""
        self.backend.open(self.open_timeout)
        self.on_event(TunnelEvent("opened", self.host.name, self.describe()))

    def describe(self) -> str:
        return ", ".join(f"127.0.0.1:{f.local_port} -> {f.remote}" for f in self.forwards)

    def keep(self) -> None:
        """Block until close(): whenever the connection ends, open it again with backoff."""
        while not self.stopping.is_set():
            if not self.backend.wait(0.5):
                continue
            if self.stopping.is_set():
                break
            self.on_event(TunnelEvent("dropped", self.host.name, self.backend.last_error or "the connection ended"))
            self._reconnect()
        self.backend.close()

    def _reconnect(self) -> None:
        delay = FIRST_DELAY
        while not self.stopping.is_set():
            self.on_event(TunnelEvent("reconnecting", self.host.name, f"reconnecting in {delay:g}s", delay))
            if self.stopping.wait(delay):
                return
            try:
                self.backend.close()
                self.backend.open(self.open_timeout)
            except RemoteenvError as exc:
                self.on_event(TunnelEvent("failed", self.host.name, exc.message))
                delay = min(delay * 2, self.max_delay)
                continue
            self.reconnects += 1
            self.on_event(TunnelEvent("reopened", self.host.name, self.describe()))
            return

    def close(self) -> None:
        self.stopping.set()
        self.backend.close()
        self.on_event(TunnelEvent("closed", self.host.name))

    @property
    def pid(self) -> int | None:
        return self.backend.pid
