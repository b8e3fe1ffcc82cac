"""The `remoteenv` command line: thin Typer commands over the library (remoteenv.api and friends)."""

from __future__ import annotations

import sys

# typing is not imported at run time: every command starts here, the fast probe included.
TYPE_CHECKING = False

if TYPE_CHECKING:
    import typer


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        from remoteenv.cli.fast import try_fast

        code = try_fast(args)
        if code is not None:
            sys.exit(code)
        from remoteenv.cli.app import make_app
        from remoteenv.cli.errors import run_app

        app = make_app(args)
    except KeyboardInterrupt:  # Ctrl-C while it starts: nothing has begun, so no traceback
        sys.exit(130)
    sys.exit(run_app(app, argv))


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        from remoteenv.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
