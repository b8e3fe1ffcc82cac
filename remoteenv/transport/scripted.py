"""What every connection kind does the same way on top of `run`: scripts on stdin, `~` paths."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from remoteenv import remotepath
from remoteenv.errors import CommandFailed

if TYPE_CHECKING:
    from remoteenv.inventory.model import Host
    from remoteenv.transport.options import RunResult


class Scripted:
    host: Host

    def run(self, command: str, *, stdin: str | bytes | None = None, timeout: float | None = None,
            check: bool = False, on_output: Callable[[str], None] | None = None,
            _plain: bool = False) -> RunResult:
        raise NotImplementedError

    @property
    def home(self) -> str:
        raise NotImplementedError

    def run_script(
        self,
        script: str,
        args: list[str] | tuple[str, ...] = (),
        *,
        timeout: float | None = None,
        check: bool = False,
        on_output: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run a POSIX sh script sent on stdin, with `args` as its positional parameters.

        The arguments travel on stdin too (a `set --` line before the script): other users of the
        host see `/bin/sh -s` in `ps`, never a command or a secret the script was given.
        """
        prelude = ("set --" + "".join(" " + shlex.quote(a) for a in args) + "\n") if args else ""
        result = self.run("/bin/sh -s", stdin=prelude + script, timeout=timeout, check=False,
                          on_output=on_output, _plain=True)
        if check and not result.ok:
            raise CommandFailed(self.host.name, "remote script", result.exited, result.stderr)
        return result

    def expand(self, path: str) -> str:
        """`path` as an absolute path on the host (SFTP does not expand `~`): remotepath's rule."""
        return remotepath.absolute(path, self.home) if remotepath.is_home_relative(path) else path


def short_command(command: str, limit: int = 60) -> str:
    """A command as one line for messages: its first line, `…` where more was cut."""
    lines = [ln.strip() for ln in command.strip().splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    if len(lines) > 1:
        first += " …"
    return first if len(first) <= limit else first[: limit - 1] + "…"
