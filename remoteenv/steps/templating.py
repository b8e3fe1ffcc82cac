"""`{{ name }}` placeholders in playbook strings, the same syntax Ansible uses (so export is direct).

Supported: `{{ name }}` and `{{ name | quote }}` (the value quoted for a POSIX shell, as Ansible's
`quote` filter does). Anything else between `{{` and `}}` is a ConfigError, so a playbook never
silently keeps a placeholder it did not understand.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from remoteenv.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?$")
FILTERS = {"quote": lambda value: shlex.quote(value)}


def has_placeholder(text: str) -> bool:
    return "{{" in text


def unquoted_names(text: str) -> list[str]:
    """Variables `text` places without `| quote` (each once, in order): in a shell command such
    a value is shell code, so `a; rm -rf ~` in a variable would run."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        expr = _EXPR.match(match.group(1))
        if expr and expr.group(2) != "quote" and expr.group(1) not in names:
            names.append(expr.group(1))
    return names


def render(text: str, variables: Mapping[str, Any], where: str, what: str = "",
           first_line: int | None = None) -> str:
    """Replace every placeholder in `text`; `where` ("file:line") and `what` name it in errors.

    With `first_line`, `where` is a file name and errors point at the placeholder's own line
    (templates read from their own files).
    """

    def location(match: re.Match[str]) -> str:
        if first_line is None:
            return where
        return f"{where}:{first_line + text.count(chr(10), 0, match.start())}"

    def replace(match: re.Match[str]) -> str:
        expr = _EXPR.match(match.group(1))
        about = f" in {what}" if what else ""
        if not expr:
            raise ConfigError(
                f"{location(match)}: unsupported placeholder {match.group(0)!r}{about}",
                "write {{ name }} or {{ name | quote }}")
        name, filt = expr.group(1), expr.group(2)
        if name not in variables:
            raise ConfigError(
                f"{location(match)}: undefined variable '{name}'{about}",
                f"define it under vars:, in the inventory, or pass --var {name}=VALUE")
        value = variables[name]
        value = "" if value is None else (value if isinstance(value, str) else _scalar(value))
        if filt:
            if filt not in FILTERS:
                raise ConfigError(f"{location(match)}: unknown filter '{filt}'{about}",
                                  f"known filters: {', '.join(sorted(FILTERS))}")
            value = FILTERS[filt](value)
        return value

    return _PLACEHOLDER.sub(replace, text)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
