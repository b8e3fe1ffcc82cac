"""remoteenv's own folders (config, state, cache) as plain strings: its REMOTEENV_*_DIR variables,
else platformdirs' rule.

Only `os` and `sys` here: the fast probe (remoteenv.cli.fast) finds the keeper's socket through this
before anything else is loaded, and pathlib (with the re, fnmatch and urllib it imports) would be a
tenth of a kept probe's whole time. remoteenv.paths gives the same folders as Paths.
"""

from __future__ import annotations

import os
import sys

_VARIABLES = {"config": "REMOTEENV_CONFIG_DIR", "state": "REMOTEENV_STATE_DIR", "cache": "REMOTEENV_CACHE_DIR"}


def user_dir(kind: str) -> str:
    """platformdirs' user_{kind}_dir for remoteenv. On Linux its XDG rule is read here directly:
    importing platformdirs (and the tempfile and shutil it pulls in) costs more than a kept
    connection's whole `probe`."""
    if sys.platform.startswith("linux"):
        variable, default = {"config": ("XDG_CONFIG_HOME", "~/.config"), "state": ("XDG_STATE_HOME", "~/.local/state"),
                             "cache": ("XDG_CACHE_HOME", "~/.cache")}[kind]
        base = os.environ.get(variable, "").strip()
        # The XDG spec: a relative path in these variables is invalid and ignored.
        return os.path.join(base if os.path.isabs(base) else os.path.expanduser(default), "remoteenv")
    from platformdirs import PlatformDirs

    return getattr(PlatformDirs("remoteenv", appauthor=False), f"user_{kind}_dir")


def own_dir(kind: str) -> str:
    """remoteenv's folder of this kind ("config", "state" or "cache"), not created."""
    return os.environ.get(_VARIABLES[kind]) or user_dir(kind)
