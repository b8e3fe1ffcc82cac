"""Typed errors. Each reaches the person as one line plus a hint, never a traceback.

Exit codes are part of the interface scripts rely on (README, "Exit codes"):
0 ok, 1 failed on a host, 2 bad usage or configuration, 3 unreachable / auth / host key.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3


class RemoteenvError(Exception):
    """Base of every error remoteenv reports to a person."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(RemoteenvError):
    """A file or option remoteenv was given is malformed."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        # Every error reaches the person with a hint: the message names what and where, so the
        # fallback says what to do with it.
        super().__init__(message, hint or "correct the file or option named above, then run the command again")


class HostRefused(ConfigError):
    """One host of an inventory is written in a way remoteenv will not follow (an Ansible local
    connection, an ssh option it cannot honour): that host only, the rest stays usable."""


class ConnectError(RemoteenvError):
    """Could not get a working SSH session to a host."""

    exit_code = EXIT_CONNECT

    def __init__(self, host: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{host}: {message}", hint)
        self.host = host


class HostUnreachable(ConnectError):
    pass


class ConnectTimeout(HostUnreachable):
    pass


class AuthFailed(ConnectError):
    pass


class HostKeyUnknown(ConnectError):
    def __init__(self, host: str, key_type: str, fingerprint: str, note: str | None = None) -> None:
        # note: why a known_hosts entry that names the host did not count (a @cert-authority line).
        super().__init__(
            host,
            f"host key not known ({key_type} {fingerprint})" + (f"; {note}" if note else ""),
            "check the fingerprint with the host's admin, then re-run with --accept-new-host-key",
        )
        self.key_type = key_type
        self.fingerprint = fingerprint


class HostKeyMismatch(ConnectError):
    def __init__(self, host: str, fingerprint: str, known_hosts: str, line: int | None,
                 remove: str | None = None) -> None:
        # remove: how to remove the entry, naming it as stored (`ssh-keygen -R '[host]:port'`); the
        # alias `host` is no name ssh-keygen can find in known_hosts.
        where = f"{known_hosts}:{line}" if line else known_hosts
        super().__init__(
            host,
            f"HOST KEY CHANGED: the host now offers {fingerprint}, which does not match {where}",
            f"this may be an attack; if the host was really reinstalled, {remove or 'remove ' + where} "
            "and connect again",
        )
        self.fingerprint = fingerprint
        self.known_hosts = known_hosts
        self.line = line


class CommandFailed(RemoteenvError):
    def __init__(self, host: str, command: str, exited: int, stderr: str) -> None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        super().__init__(f"{host}: `{command}` exited {exited}" + (f": {last}" if last else ""),
                         "its last output line is shown; re-run with -v for the whole exchange")
        self.host = host
        self.command = command
        self.exited = exited
        self.stderr = stderr


class CommandTimeout(RemoteenvError):
    def __init__(self, host: str, what: str, seconds: float) -> None:
        super().__init__(
            f"{host}: {what} did not finish within {seconds:g}s",
            "raise the step's timeout: if it is expected to take longer",
        )
        self.host = host


class StepFailed(RemoteenvError):
    def __init__(self, host: str, step: str, message: str) -> None:
        super().__init__(f"{host}: step '{step}' failed: {message}",
                         "the run's log for the host has the step's whole output (remoteenv apply prints where)")
        self.host = host
        self.step = step


class UploadFailed(RemoteenvError):
    """A file could not be written whole on a host; the target was left as it was."""

    def __init__(self, host: str, path: str, why: str) -> None:
        super().__init__(f"{host}: upload to {path} failed: {why}",
                         "free space on the host (df -h) or fix the folder's permissions, then re-run")
        self.host = host
        self.path = path


class Cancelled(RemoteenvError):
    """A host's work was stopped by a cancel (Ctrl-C, SIGTERM, SIGHUP) before it finished."""

    def __init__(self, host: str, exit_code: int = 130) -> None:
        super().__init__(f"{host}: cancelled before it finished", "run the command again: what finished is kept")
        self.host = host
        self.exit_code = exit_code
