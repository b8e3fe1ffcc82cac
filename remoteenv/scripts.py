"""The POSIX sh scripts remoteenv sends to hosts (package data under remoteenv/remote/).

Each is sent with remote/lib.sh in front of it, so that shared rules (the home folder's `~`) are
written once for every script.
"""

from __future__ import annotations

import threading
from importlib import resources

_texts: dict[str, str] = {}
_lock = threading.Lock()


def script(name: str) -> str:
    """remote/lib.sh, then remote/NAME: the text to send to /bin/sh -s."""
    text = _texts.get(name)
    if text is None:
        with _lock:  # a fleet's hosts ask at once: read the package files once, not once per host
            text = _texts.get(name)
            if text is None:
                folder = resources.files("remoteenv.remote")
                text = _texts[name] = (folder.joinpath("lib.sh").read_text(encoding="utf-8")
                                       + folder.joinpath(name).read_text(encoding="utf-8"))
    return text
