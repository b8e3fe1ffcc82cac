"""Consoles and the shared global options (set once by the app callback)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Globals:
    inventory: str | None = None
    verbose: int = 0


GLOBALS = Globals()


@lru_cache(maxsize=1)
def console() -> Console:
    from rich.console import Console  # deferred: --json and --version never draw

    return Console(highlight=False)


@lru_cache(maxsize=1)
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(data: Any, compact: bool = False) -> None:
    """`data` as JSON on stdout: indented, or with `compact` one line (a stream of objects)."""
    indent = None if compact else 2
    try:
        text = json.dumps(data, indent=indent, sort_keys=False, default=str)
    except (TypeError, ValueError, RecursionError):
        # A value from a person's file that JSON cannot hold as it is (a date as a key, a number
        # too long to print): print it as text rather than fail at the last step.
        text = json.dumps(jsonable(data), indent=indent, sort_keys=False, default=str)
    sys.stdout.write(text + "\n")
    if compact:
        sys.stdout.flush()


def jsonable(value: Any, depth: int = 0) -> Any:
    """`value` with keys JSON takes (text, numbers, booleans, null) and everything odd as text."""
    if isinstance(value, (str, bool, float, type(None))):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 1000 else hex(value)
    if depth > 100:
        return "..."
    if isinstance(value, dict):
        return {k if isinstance(k, (str, bool, float, type(None))) or (isinstance(k, int) and k.bit_length() <= 64)
                else str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)


def warn(message: str, hint: str | None = None) -> None:
    """A `warning: ...` line (and its `hint: ...`) on stderr, printed as text, never markup."""
    from remoteenv.cli.errors import print_problem

    print_problem("warning", message, hint)


def human_bytes(value: int | None) -> str:
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"
