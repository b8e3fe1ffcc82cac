"""How errors leave the CLI: one line on stderr with a hint, and an exit code scripts can trust."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from remoteenv.errors import EXIT_FAILED, RemoteenvError

if TYPE_CHECKING:
    import typer


def report(exc: RemoteenvError) -> None:
    print_problem("error", exc.message, exc.hint)


def print_problem(label: str, message: str, hint: str | None = None) -> None:
    """`label: message` and `hint: ...`, each exactly one line of the person's own text.

    The text is printed as rich Text, never as markup: a message may hold `[...]` (an INI
    section) or `:100:` (a line number), which markup would style or turn into an emoji.
    """
    from rich.text import Text

    from remoteenv.cli.output import err_console

    style = "bold red" if label == "error" else "bold yellow"
    console = err_console()
    console.print(Text.assemble((f"{label}:", style), " ", one_line(message)), soft_wrap=True)
    if hint:
        console.print(Text.assemble(("hint:", "dim"), " ", one_line(hint)), soft_wrap=True)


# Control characters (a vertical tab, a carriage return, an escape sequence) and Unicode line
# separators in a file's text would break a message over lines or drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` safe to print as one line: control characters shown as escapes (\\x0b)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def run_app(app: typer.Typer, argv: list[str] | None) -> int:
    """Run the app; usage errors exit 2 (Typer's own handling), remoteenv errors their own code."""

    def run() -> int:
        try:
            app(args=argv, prog_name="remoteenv")
            return 0
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else EXIT_FAILED)

    return exit_code_of(run)  # type: ignore[return-value]


def exit_code_of(run: Callable[[], int | None]) -> int | None:
    """`run()`'s exit code; a remoteenv error, Ctrl-C or a bug leaves as one line on stderr and its code."""
    try:
        return run()
    except RemoteenvError as exc:
        report(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line; the traceback only when asked for
        if os.environ.get("REMOTEENV_DEBUG"):
            raise
        print(one_line(f"error: internal error: {type(exc).__name__}: {exc} "
                       "(hint: re-run with REMOTEENV_DEBUG=1 for the traceback)"), file=sys.stderr)
        return EXIT_FAILED
