"""What a tunnel backend does: open the forwards (returning once they listen), end, be waited on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from remoteenv.inventory import Host
    from remoteenv.transport import ConnectOptions
    from remoteenv.tunnel import Forward


class Backend(ABC):
    name = ""

    def __init__(self, host: Host, forwards: Sequence[Forward], options: ConnectOptions | None) -> None:
        self.host = host
        self.forwards = list(forwards)
        self.options = options

    @abstractmethod
    def open(self, timeout: float) -> None:
        """Connect and listen on every forward's local port; TunnelError (or a connect error) if not."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the connection ends (True) or `timeout` passes (False)."""

    @abstractmethod
    def close(self) -> None:
        """End the connection and free the local ports; safe to call twice."""

    @property
    def pid(self) -> int | None:
        """The process that holds the connection, where it is a process of its own."""
        return None

    @property
    def last_error(self) -> str:
        """Why the connection ended, in one line ("" when it was closed on purpose)."""
        return ""
