"""Typed errors of the sandbox. Each reaches the person as one line with a hint."""

from __future__ import annotations

from remoteenv.errors import ConfigError, HostUnreachable, RemoteenvError


class SandboxError(RemoteenvError):
    """The sandbox could not be started, stopped or prepared."""


class SandboxUsageError(ConfigError):
    """The sandbox was asked for something this machine or its current state cannot give."""


class SandboxNotRunning(HostUnreachable):
    """`sandbox` was named, but no sandbox is running (and no other source defines that name)."""

    def __init__(self) -> None:
        super().__init__(
            "sandbox",
            "the sandbox is not running",
            "start it with: remoteenv sandbox up   (or try everything at once: remoteenv demo)",
        )
