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


# SHA-256 sums of pinned installers, for hosts and machines that cannot fetch a published sum: the
# key is the file name installer() builds, the value (sum, where it was read). A sum is recorded
# only as read beside that file's name (or its version and arch) in the sources named; when a sum
# is recorded it is used instead of fetching the published one. Miniconda names are py311 only
# (MINICONDA_PYTHON); micromamba is absent because its file name does not carry the version. A pin
# without a recorded or published sum needs --sha256.
_SPACK_MINIFORGE = "spack/spack-packages:repos/spack_repo/builtin/packages/miniforge3/package.py"
_AUR_MINIFORGE = "aur.archlinux.org/cgit/aur.git/tree/PKGBUILD?h=miniforge"
KNOWN_SHA256: dict[str, tuple[str, str]] = {
    # Miniforge (conda-forge/miniforge releases)
    "Miniforge3-26.3.2-3-Linux-x86_64.sh": (
        "848194851a98903134187fbb4ab50efe87b003e0c0f808f97644b7524a62bf2c",
        f"{_SPACK_MINIFORGE}; Brewforge/homebrew-chinese:Casks/m/miniforge-cn.rb (26.3.2-3)"),
    "Miniforge3-26.3.2-3-Linux-aarch64.sh": (
        "2c113a69297e612b01ca0f320c22a3107a11f2ab9b573d79ac868a175945ce29",
        f"{_SPACK_MINIFORGE}; Brewforge/homebrew-chinese:Casks/m/miniforge-cn.rb (26.3.2-3)"),
    "Miniforge3-26.1.1-3-Linux-x86_64.sh": (
        "b25b828b702df4dd2a6d24d4eb56cfa912471dd8e3342cde2c3d86fe3dc2d870",
        f"{_SPACK_MINIFORGE}; a public install guide's `sha256sum -c` line for this file"),
    "Miniforge3-26.1.1-3-Linux-aarch64.sh": (
        "83280e4ee71a5bd547d6b318f96e9ababe1054911ff6cc2b8801ce5493fe67e5",
        _SPACK_MINIFORGE),
    "Miniforge3-25.3.0-3-Linux-x86_64.sh": (
        "1b57f8cb991982063f79b56176881093abb1dc76d73fda32102afde60585b5a1",
        f"{_SPACK_MINIFORGE}; {_AUR_MINIFORGE} (pkgver 25.3.0.3)"),
    "Miniforge3-25.3.0-3-Linux-aarch64.sh": (
        "ac89f17b0eec4e98d38a53d1ae688e0f22c77d8ea5b5f008c2455e90ef095339",
        f"{_SPACK_MINIFORGE}; {_AUR_MINIFORGE} (pkgver 25.3.0.3)"),
    "Miniforge3-24.11.3-0-Linux-x86_64.sh": (
        "2e1ad2188fe69fcdd522c2b20c08c800a5c7411b775eca768318b1540ed32e53",
        f"{_AUR_MINIFORGE} (pkgver 24.11.3.0); public notes checking the download against it"),
    "Miniforge3-24.11.3-0-Linux-aarch64.sh": (
        "d3f2b771857009ec804faeeef191352186194cb5737a831e55c6347a5f47cb8f",
        f"{_AUR_MINIFORGE} (pkgver 24.11.3.0)"),
    "Miniforge3-24.3.0-0-Linux-x86_64.sh": (
        "23367676b610de826f50f7ddc91139a816d4b59bd4c69cc9b6082d9b2e7fe8a3",
        _SPACK_MINIFORGE),
    # Miniconda (repo.anaconda.com/miniconda), Python 3.11 builds
    "Miniconda3-py311_24.11.1-0-Linux-x86_64.sh": (
        "807774bae6cd87132094458217ebf713df436f64779faf9bb4c3d4b6615c1e3a",
        "public install guides and Dockerfiles pinning this file (`sha256sum -c` lines, ARG SHA256SUM)"),
    "Miniconda3-py311_24.11.1-0-Linux-aarch64.sh": (
        "a8846ade7a5ddd9b6a6546590054d70d1c2cbe4fbe8c79fb70227e8fd93ef9f8",
        "a public Dockerfile (ARG CONDA_VERSION=py311_24.11.1-0, SHA256SUM for aarch64)"),
    "Miniconda3-py311_24.9.2-0-Linux-x86_64.sh": (
        "62ef806265659c47e37e22e8f9adce29e75c4ea0497e619c280f54c823887c4f",
        "openreview-expertise Dockerfile (`sha256sum -c`); another public Dockerfile (ARG MINICONDA_SHA256)"),
    "Miniconda3-py311_23.11.0-2-Linux-x86_64.sh": (
        "c9ae82568e9665b1105117b4b1e499607d2a920f0aea6f94410e417a0eff1b9c",
        "spack/spack-packages:repos/spack_repo/builtin/packages/miniconda3/package.py; "
        "a public Dockerfile (ARG CONDA_SHA256)"),
    "Miniconda3-py311_23.11.0-1-Linux-x86_64.sh": (
        "5b3cefe534e23541f5f703f40d4818e361c3615dbf14651a0f29554c3fc3d0fd",
        "ContinuumIO/docker-images:miniconda3/debian/Dockerfile"),
    "Miniconda3-py311_23.11.0-1-Linux-aarch64.sh": (
        "63c06a1974695e50bbe767a030903d169e637e42d5b7b6d30876b19a01fbbad8",
        "ContinuumIO/docker-images:miniconda3/debian/Dockerfile"),
}


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
