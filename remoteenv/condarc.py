"""The settings remoteenv manages inside an install: PREFIX/.condarc and PREFIX/pip.conf.

They live in the prefix, not in the person's home: conda merges `$CONDA_ROOT/.condarc` with
`~/.condarc` (lists merge, later scalars win), so a person's own settings stay theirs. pip reads
`sys.prefix/pip.conf` as its site config; environments get the same file through PIP_CONFIG_FILE.
Mirrors are mapped as ../shared/CONDA_FACTS.md says.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from remoteenv.distributions import Distribution
from remoteenv.errors import ConfigError


@dataclass(frozen=True)
class Mirror:
    name: str
    conda_base: str  # the `anaconda` folder: pkgs/main, pkgs/r and cloud/<channel> are under it
    pip_index: str | None


MIRRORS = {
    "tuna": Mirror("tuna", "https://mirrors.tuna.tsinghua.edu.cn/anaconda",
                   "https://pypi.tuna.tsinghua.edu.cn/simple"),
    "ustc": Mirror("ustc", "https://mirrors.ustc.edu.cn/anaconda", "https://mirrors.ustc.edu.cn/pypi/simple"),
    "bfsu": Mirror("bfsu", "https://mirrors.bfsu.edu.cn/anaconda", "https://mirrors.bfsu.edu.cn/pypi/web/simple"),
}


def mirror(value: str | None, pip_index: str | None = None) -> Mirror | None:
    """A mirror by name (tuna, ustc, bfsu) or by the URL of its `anaconda` folder."""
    if not value:
        return Mirror("pip", "", pip_index) if pip_index else None
    if value in MIRRORS:
        named = MIRRORS[value]
        return Mirror(named.name, named.conda_base, pip_index or named.pip_index)
    if value.startswith(("https://", "http://", "file://")):
        return Mirror(value, value.rstrip("/"), pip_index)
    raise ConfigError(f"unknown mirror {value!r}",
                      f"name one of {', '.join(MIRRORS)}, or give the URL of a mirror's anaconda folder")


def condarc(dist: Distribution, mirror: Mirror | None = None) -> str:
    """The managed PREFIX/.condarc of a conda distribution."""
    settings: dict = {
        "channels": list(dist.channels),
        "channel_priority": "strict",
        "show_channel_urls": True,
        "auto_activate_base": False,
        "always_yes": True,
    }
    if mirror is not None and mirror.conda_base:
        base = mirror.conda_base
        settings["default_channels"] = [f"{base}/pkgs/main", f"{base}/pkgs/r"]
        settings["channel_alias"] = f"{base}/cloud"
        settings["custom_channels"] = {"conda-forge": f"{base}/cloud"}
    header = "# Managed by remoteenv (remoteenv conda install): changes here are put back on its next run.\n"
    return header + yaml.safe_dump(settings, sort_keys=False, default_flow_style=False)


def pip_conf(mirror: Mirror | None = None, wheelhouse: str | None = None) -> str | None:
    """The managed pip.conf: a wheelhouse (no index at all) or a mirror's index; None for pip's own."""
    lines = ["# Managed by remoteenv (remoteenv conda install).", "[global]"]
    if wheelhouse:
        lines += ["no-index = true", f"find-links = {wheelhouse}"]
    elif mirror is not None and mirror.pip_index:
        lines += [f"index-url = {mirror.pip_index}"]
    else:
        return None
    return "\n".join(lines) + "\n"
