"""Whether a local process remoteenv started (the sandbox's server, a tunnel keeper) still runs."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an unreaped zombie holds no port and does nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS, Windows): the signal test is all there is
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]
