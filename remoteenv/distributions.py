"""The Python distributions remoteenv installs on hosts, and where their installers come from.

miniconda (Anaconda's defaults channels, whose terms of service must be accepted), miniforge
(conda-forge only), micromamba (one static binary) and venv (the host's own `python3 -m venv`, for
hosts without conda and pip-only projects). URLs and names follow ../shared/CONDA_FACTS.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from remoteenv.errors import ConfigError

ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
# micromamba names its builds by conda platform, not by machine name.
_MAMBA_PLATFORM = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}

ANACONDA_DEFAULTS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")


@dataclass(frozen=True)
class Distribution:
    name: str
    default_prefix: str
    channels: tuple[str, ...]  # what the managed .condarc lists; () for venv
    conda: bool  # has `conda` (and envs under PREFIX/envs)
    needs_tos: bool  # Anaconda's terms of service gate its default channels
    binary: str  # what a working install has: PREFIX/<binary>

    @property
    def is_installer(self) -> bool:
        """Installed by running a constructor `.sh` installer (miniconda, miniforge)."""
        return self.name in ("miniconda", "miniforge")


DISTRIBUTIONS = {
    "miniconda": Distribution("miniconda", "~/miniconda3", ("defaults",), True, True, "bin/conda"),
    "miniforge": Distribution("miniforge", "~/miniforge3", ("conda-forge",), True, False, "bin/conda"),
    "micromamba": Distribution("micromamba", "~/micromamba", ("conda-forge",), True, False, "bin/micromamba"),
    "venv": Distribution("venv", "~/.remoteenv/venv", (), False, False, "bin/python"),
}

# Miniconda's base Python, as its installer names spell it (py311 in Miniconda3-py311_25.5.1-1-...).
MINICONDA_PYTHON = "py311"

_VERSION = re.compile(r"latest|[0-9][0-9A-Za-z._-]*")


@dataclass(frozen=True)
class Installer:
    """One installer file: its name (ending `.sh` where the installer checks that), its URL, and
    where its published SHA-256 can be read (None: only a recorded or given sum will do)."""

    filename: str
    url: str
    sha256_url: str | None
    # A page listing the sums of many files (Anaconda's index): read with sha256_from_index().
    sums_page: str | None = None


def get(name: str) -> Distribution:
    try:
        return DISTRIBUTIONS[name]
    except KeyError:
        raise ConfigError(f"unknown distribution {name!r}",
                          f"choose one of: {', '.join(DISTRIBUTIONS)}") from None


def arch_of(machine: str) -> str:
    """The installer architecture for a host's `uname -m`."""
    try:
        return ARCHES[machine]
    except KeyError:
        raise ConfigError(f"no installer for the host's architecture {machine!r}",
                          "remoteenv installs on Linux x86_64 and aarch64; use --dist venv there") from None


def installer(dist: Distribution, version: str, machine: str) -> Installer:
    """The installer of `dist` at `version` ("latest" or a pinned release) for the host's arch."""
    if not _VERSION.fullmatch(version):
        raise ConfigError(f"{version!r} is not a version", "write latest, or a release such as 25.5.1-1")
    arch = arch_of(machine)
    if dist.name == "miniconda":
        base = "https://repo.anaconda.com/miniconda/"
        if version == "latest":
            name = f"Miniconda3-latest-Linux-{arch}.sh"
        else:
            # Releases are written condaver-build (25.5.1-1); a bare conda version means build 1.
            name = f"Miniconda3-{MINICONDA_PYTHON}_{version if '-' in version else version + '-1'}-Linux-{arch}.sh"
        # Anaconda publishes the sums on the index page only, not beside each file.
        return Installer(name, base + name, None, base)
    if dist.name == "miniforge":
        releases = "https://github.com/conda-forge/miniforge/releases/"
        if version == "latest":
            name = f"Miniforge3-Linux-{arch}.sh"
            url = f"{releases}latest/download/{name}"
        else:
            name = f"Miniforge3-{version}-Linux-{arch}.sh"
            url = f"{releases}download/{version}/{name}"
        return Installer(name, url, url + ".sha256")
    if dist.name == "micromamba":
        releases = "https://github.com/mamba-org/micromamba-releases/releases/"
        name = f"micromamba-{_MAMBA_PLATFORM[arch]}"
        url = f"{releases}latest/download/{name}" if version == "latest" else f"{releases}download/{version}/{name}"
        return Installer(name, url, url + ".sha256")
    raise ConfigError(f"{dist.name} has no installer", "a venv is made by the host's own python3")


# SHA-256 sums of pinned installers, recorded with where they were read, for hosts and machines
# that cannot fetch a published sum. Filled as releases are pinned; a pin without a recorded or
# published sum needs --sha256.
KNOWN_SHA256: dict[str, tuple[str, str]] = {}


def parse_sha256(text: str, filename: str | None = None) -> str | None:
    """A SHA-256 from a `.sha256` file: bare hex, or `sha256sum` lines (the one naming `filename`)."""
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        digest = words[0].lower()
        if re.fullmatch(r"[0-9a-f]{64}", digest) and (len(words) == 1 or filename is None
                                                        or words[-1].lstrip("*") == filename):
            return digest
    return None


def sha256_from_index(html: str, filename: str) -> str | None:
    """The SHA-256 an index page (Anaconda's miniconda/ listing: one table row per file, its sum in a
    cell of that row) gives for `filename`."""
    for row in re.split(r"<tr[\s>]", html, flags=re.IGNORECASE):
        if f'href="{filename}"' in row or f">{filename}<" in row:
            found = re.search(r"\b[0-9a-f]{64}\b", row)
            if found:
                return found.group(0)
    return None


def check_sha256(value: str) -> str:
    digest = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"{value!r} is not a SHA-256 (64 hexadecimal digits)", "sha256sum FILE prints it")
    return digest
