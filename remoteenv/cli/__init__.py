"""The `remoteenv` command line: thin Typer commands over the library (remoteenv.api and friends)."""

from __future__ import annotations

import sys

from remoteenv.cli.app import app


def main(argv: list[str] | None = None) -> None:
    from remoteenv.cli.errors import run_app

    sys.exit(run_app(app, argv))


__all__ = ["app", "main"]
