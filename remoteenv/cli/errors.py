"""How errors leave the CLI: one line on stderr with a hint, and an exit code scripts can trust."""

from __future__ import annotations

import os
import sys

import typer

from remoteenv.errors import EXIT_FAILED, RemoteenvError


def report(exc: RemoteenvError) -> None:
    from remoteenv.cli.output import err_console

    err_console().print(f"[bold red]error:[/] {_escape(exc.message)}", highlight=False, soft_wrap=True)
    if exc.hint:
        err_console().print(f"[dim]hint:[/] {_escape(exc.hint)}", highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def run_app(app: typer.Typer, argv: list[str] | None) -> int:
    """Run the app; usage errors exit 2 (Typer's own handling), remoteenv errors their own code."""
    try:
        app(args=argv, prog_name="remoteenv")
        return 0
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_FAILED)
    except RemoteenvError as exc:
        report(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line; the traceback only when asked for
        if os.environ.get("REMOTEENV_DEBUG"):
            raise
        print(f"error: internal error: {type(exc).__name__}: {exc} "
              "(hint: re-run with REMOTEENV_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILED
