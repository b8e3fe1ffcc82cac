"""OpenSSH's small string rules, ported as they are: how a config line splits into words, how a
`Host`/`Match` pattern matches, and how `%` tokens and `${VAR}` expand.

Each function follows the OpenSSH C function named in its docstring (misc.c, match.c); the
differential corpus (tests/data/ssh_configs) checks the whole against `ssh -G`.
"""

from __future__ import annotations

import functools
import os
import re

try:
    import pwd
except ImportError:  # Windows: no password database; `~user` paths are refused there
    pwd = None  # type: ignore[assignment]
from collections.abc import Mapping

WHITESPACE = " \t\r\n"


class WordError(ValueError):
    """A line or value OpenSSH refuses; the message is OpenSSH's reason, without file and line."""


def strdelim(s: str | None) -> tuple[str | None, str | None]:
    """misc.c strdelim(): the next word of `s` (one `=` may separate words) and the rest.

    Returns (None, None) on an unmatched quote, as OpenSSH does.
    """
    if s is None:
        return None, None
    stops = WHITESPACE + '"='
    at = next((i for i, c in enumerate(s) if c in stops), -1)
    if at < 0:
        return s, None
    if s[at] == '"':
        inner = s[at + 1:]
        close = inner.find('"')
        if close < 0:
            return None, None
        word = s[:at] + inner[:close]
        rest = inner[close + 1:]
        return word, rest.lstrip(WHITESPACE)
    word = s[:at]
    equals = s[at] == "="
    rest = s[at + 1:].lstrip(WHITESPACE)
    if rest.startswith("=") and not equals:
        rest = rest[1:].lstrip(WHITESPACE)
    return word, rest


def argv_split(s: str) -> list[str]:
    """misc.c argv_split(..., terminate_on_comment=1): words with quotes and escapes removed.

    A `#` where a word would start ends the line; inside a word it is an ordinary character.
    """
    argv: list[str] = []
    i, n = 0, len(s)
    while i < n:
        if s[i] in " \t":
            i += 1
            continue
        if s[i] == "#":
            break
        quote = ""
        arg: list[str] = []
        while i < n:
            c = s[i]
            if c == "\\":
                nxt = s[i + 1] if i + 1 < n else ""
                if (nxt in ("'", '"', "\\") and nxt) or (not quote and nxt == " "):
                    i += 1
                    arg.append(nxt)
                else:
                    arg.append(c)
            elif not quote and c in " \t":
                break
            elif not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                arg.append(c)
            i += 1
        if i >= n and quote:
            raise WordError("invalid quotes")
        argv.append("".join(arg))
    return argv


def match_pattern(s: str, pattern: str) -> bool:
    """match.c match_pattern(): `*` and `?` only, case-sensitive (`[` is an ordinary character)."""
    if "*" not in pattern and "?" not in pattern:
        return s == pattern
    return _compiled(pattern).fullmatch(s) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                      re.DOTALL)


def match_pattern_list(s: str, patterns: str, dolower: bool) -> int:
    """match.c match_pattern_list(): 1 on a match, -1 on a negated match, 0 otherwise."""
    positive = 0
    for sub in patterns.split(","):
        negated = sub.startswith("!")
        if negated:
            sub = sub[1:]
        if len(sub) >= 1023:
            return 0
        if dolower:
            sub = ascii_lower(sub)
        if match_pattern(s, sub):
            if negated:
                return -1
            positive = 1
    return positive


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(s: str) -> str:
    """C's tolower() on each byte: only A-Z change."""
    return s.lower() if s.isascii() else s.translate(_ASCII_LOWER)


def match_hostname(host: str, patterns: str) -> bool:
    """match.c match_hostname(): a case-insensitive pattern list."""
    return match_pattern_list(ascii_lower(host), patterns, True) == 1


def percent_expand(s: str, tokens: Mapping[str, str], *, dollar: bool = False) -> str:
    """misc.c percent_expand() / percent_dollar_expand(): `%x` from `tokens` (`%%` is `%`) and, with
    `dollar`, `${VAR}` from the environment. An unknown token or unset variable is an error.
    """
    if "%" not in s and not (dollar and "${" in s):
        return s
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if dollar and c == "$" and s[i + 1:i + 2] == "{":
            end = s.find("}", i + 2)
            if end < 0:
                raise WordError(f"environment variable '{s[i + 2:]}' missing closing '}}'")
            name = s[i + 2:end]
            if not name:
                raise WordError("zero-length environment variable")
            value = os.environ.get(name)
            if value is None:
                raise WordError(f"env var ${{{name}}} has no value")
            out.append(value)
            i = end + 1
            continue
        if c != "%":
            out.append(c)
            i += 1
            continue
        key = s[i + 1:i + 2]
        if key == "%":
            out.append("%")
        elif not key:
            raise WordError("invalid format")
        elif key in tokens:
            out.append(tokens[key])
        else:
            raise WordError(f"unknown key %{key}")
        i += 2
    return "".join(out)


def home_dir() -> str:
    """The home `~` means. OpenSSH asks the password database; remoteenv asks HOME first (as every
    other part of remoteenv does), which is the same directory unless HOME was changed."""
    return os.path.expanduser("~")


def tilde_expand(path: str, home: str | None = None) -> str:
    """misc.c tilde_expand() (OpenSSH 9.2): `~` and `~/x` from the home, `~user` and `~user/x`
    from that user's; the home always ends in `/` (`~` is `/home/me/`)."""
    if not path.startswith("~"):
        return path
    rest = path[1:]
    user = None
    if rest.startswith("/") or not rest:
        tail = rest.lstrip("/")
    else:
        user, slash, tail = rest.partition("/")
        tail = tail.lstrip("/") if slash else ""
    if user is not None:
        try:
            base = pwd.getpwnam(user).pw_dir if pwd is not None else ""
        except KeyError:
            base = ""
        if not base:
            raise WordError(f"No such user {user}")
    else:
        base = home if home is not None else home_dir()
    sep = "" if base.endswith("/") else "/"
    return f"{base}{sep}{tail}"
