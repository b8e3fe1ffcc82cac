"""The one rule for paths on a host: `~` and `~/x` are in the login user's home; a relative path is
under a given folder, else under the home; an absolute path is itself.

Every Python side of remoteenv goes through here, and every remote script through `home_path` in
remote/lib.sh, which remote_script() puts in front of each script: no second spelling of the rule.
"""

from __future__ import annotations

import posixpath
import shlex


def is_home_relative(path: str) -> bool:
    return path == "~" or path.startswith("~/")


def under_home(path: str, chdir: str | None = None) -> str:
    """`path` as scripts and questions take it: relative ones are under `chdir`, else under `~`."""
    if is_home_relative(path) or path.startswith("/"):
        return path
    return posixpath.join(under_home(chdir) if chdir else "~", path)


def absolute(path: str, home: str, chdir: str | None = None) -> str:
    """`path` with the home folder (as the probe or SFTP reported it) written out."""
    path = under_home(path, chdir)
    return home + path[1:] if is_home_relative(path) else path


def sh_word(path: str) -> str:
    """`path` as one shell word, with a leading `~` still meaning the home folder."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)
