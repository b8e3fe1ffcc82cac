"""How commands and files reach a host: SSH connections, host-key policy, typed errors."""

from remoteenv.transport.connection import Connection, ConnectOptions, RunResult, connect

__all__ = ["ConnectOptions", "Connection", "RunResult", "connect"]
