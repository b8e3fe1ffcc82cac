"""The POSIX sh scripts remoteenv sends to hosts (package data under remoteenv/remote/).

Each is sent with remote/lib.sh in front of it, so that shared rules (the home folder's `~`) are
written once for every script.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def script(name: str) -> str:
    """remote/lib.sh, then remote/NAME: the text to send to /bin/sh -s."""
    folder = resources.files("remoteenv.remote")
    return folder.joinpath("lib.sh").read_text(encoding="utf-8") + folder.joinpath(name).read_text(encoding="utf-8")
