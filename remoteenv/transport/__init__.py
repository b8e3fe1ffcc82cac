"""How commands and files reach a host: SSH connections, host-key policy, typed errors."""

from remoteenv.sshlib import load_paramiko

load_paramiko()  # before any module below imports paramiko: see remoteenv.sshlib

from remoteenv.transport.connection import Connection, ConnectOptions, RunResult, connect  # noqa: E402

__all__ = ["ConnectOptions", "Connection", "RunResult", "connect"]
