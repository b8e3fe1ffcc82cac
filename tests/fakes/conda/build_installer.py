"""Build stand-in Miniconda / Miniforge installers (constructor format) for tests.

    from fakes.conda.build_installer import build, sha256_file
    path = build(tmp_path, dist="miniconda", channels_dir=channels)   # Miniconda3-py311_25.5.1-1-Linux-x86_64.sh
    subprocess.run(["bash", str(path), "-b", "-p", prefix])

The file is a POSIX sh header (header.sh beside this file), a line ``@@END_HEADER@@``, then a tar.gz payload:
the stand-in conda (``_conda/fake_conda.py``, run by the host's /usr/bin/python3 as the real installer runs
its standalone conda) and the base environment's packages (``pkgs/*.tar.bz2`` and ``pkgs/env.txt``). See
CONDA_FACTS.md, "Installers", for what it does; fake_conda.py for the conda it installs.

Run as a script to build one by hand:  python tests/fakes/conda/build_installer.py DEST [--dist miniforge]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import channel  # type: ignore[no-redef]
else:
    from . import channel

HERE = Path(__file__).resolve().parent
ARCHES = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}
LICENSE = """\
A STAND-IN FOR THE END USER LICENSE AGREEMENT

This is a test stand-in installer. It installs no software but a fake conda for tests.
"""
MINIFORGE_CONDARC = "channels:\n  - conda-forge\n"


def installer_name(dist: str = "miniconda", conda_version: str = "25.5.1", python: str = "py311",
                   arch: str = "x86_64", build_number: int = 1) -> str:
    """Named as the real ones: Miniconda3-py311_25.5.1-1-Linux-x86_64.sh, Miniforge3-25.5.1-1-Linux-x86_64.sh."""
    if dist == "miniconda":
        return f"Miniconda3-{python}_{conda_version}-{build_number}-Linux-{arch}.sh"
    if dist == "miniforge":
        return f"Miniforge3-{conda_version}-{build_number}-Linux-{arch}.sh"
    raise ValueError(f"dist must be 'miniconda' or 'miniforge', not {dist!r}")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _add(tar: tarfile.TarFile, path: str, data: bytes | str, mode: int = 0o644) -> None:
    if isinstance(data, str):
        data = data.encode()
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), mode, channel.FIXED_MTIME
    tar.addfile(info, io.BytesIO(data))


def build(dest_dir: str | os.PathLike, *, dist: str = "miniconda", conda_version: str = "25.5.1",
          python: str = "py311", arch: str = "x86_64", channels_dir: str | os.PathLike | None = None,
          build_number: int = 1, declared_size_mb: int | None = None, delay: float = 0.2,
          name: str | None = None, wheels: list | None = None, python_exe: str = channel.SYSTEM_PYTHON) -> Path:
    """Write the installer into dest_dir and return its path.

    channels_dir: the channels root the installed conda reads non-IP channel URLs from (``<root>/<host>/<path>``,
      see channel.py); None: such channels are unreachable, as on a host without internet.
    declared_size_mb: the installed size the header's disk check needs (plus 50 MB); default: the real size
      of what it unpacks (a few MB).
    delay: seconds the header sleeps after unpacking and after linking (a realistic, killable install).
    name: another file name (e.g. "Miniconda3-latest-Linux-x86_64.sh", or one not ending in .sh).
    wheels: folders to take pip/setuptools/wheel from (default: the wheelhouse if built, then Debian's).
    """
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {sorted(ARCHES)}")
    subdir = ARCHES[arch]
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    filename = name or installer_name(dist, conda_version, python, arch, build_number)
    base_url = channel.MAIN if dist == "miniconda" else channel.CONDA_FORGE
    pkgs = channel.base_packages(dist=dist, conda_version=conda_version, channels_root=channels_dir,
                                 python=python_exe, wheels=wheels, subdir=subdir)

    payload = io.BytesIO()
    unpacked = 0
    with tarfile.open(fileobj=payload, mode="w:gz", compresslevel=1) as tar:
        _add(tar, "_conda/fake_conda.py", (HERE / "fake_conda.py").read_text(), 0o755)
        config = {"conda_version": conda_version, "subdir": subdir,
                  "channels_root": str(channels_dir) if channels_dir else None}
        _add(tar, "_conda/_fake.json", json.dumps(config, indent=2) + "\n")
        env_txt = ["# platform: " + subdir, "@EXPLICIT"]
        for pkg in pkgs:
            data = channel.package_bytes(pkg)
            _add(tar, f"pkgs/{pkg.fn}", data)
            unpacked += len(data) * 4
            env_txt.append(f"{base_url}/{pkg.subdir}/{pkg.fn}#{hashlib.md5(data).hexdigest()}")
        _add(tar, "pkgs/env.txt", "\n".join(env_txt) + "\n")
        _add(tar, "LICENSE.txt", LICENSE)
    payload_bytes = payload.getvalue()

    label = "Miniconda3" if dist == "miniconda" else "Miniforge3"
    version = f"{python}_{conda_version}-{build_number}" if dist == "miniconda" else f"{conda_version}-{build_number}"
    condarc = ""
    if dist == "miniforge":
        condarc = f"cat > \"$PREFIX/.condarc\" <<'CONDARC_EOF'\n{MINIFORGE_CONDARC}CONDARC_EOF\n"
    size_kb = declared_size_mb * 1024 if declared_size_mb is not None else max(1, unpacked // 1024)
    header = (HERE / "header.sh").read_text()
    replacements = {
        "@NAME@": label, "@VER@": version, "@PLAT@": subdir, "@MD5@": hashlib.md5(payload_bytes).hexdigest(),
        "@DELAY@": str(delay), "@DEFAULT_DIR@": "miniconda3" if dist == "miniconda" else "miniforge3",
        "@SIZE_KB@": str(size_kb), "@UNAME_ARCH@": arch, "@LICENSE@": LICENSE.rstrip("\n"),
        "@CONDARC@": condarc,
    }
    for key, value in replacements.items():
        header = header.replace(key, value)
    if not header.endswith("@@END_HEADER@@\n"):
        raise AssertionError("header.sh must end with the @@END_HEADER@@ line")
    header = header.replace("@PAYLOAD_LINE@", str(header.count("\n") + 1))
    path = dest_dir / filename
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(header.encode() + payload_bytes)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    if dist == "miniforge":
        (dest_dir / (filename + ".sha256")).write_text(f"{sha256_file(path)}  {filename}\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest")
    parser.add_argument("--dist", default="miniconda", choices=["miniconda", "miniforge"])
    parser.add_argument("--conda-version", default="25.5.1")
    parser.add_argument("--channels-dir")
    parser.add_argument("--arch", default="x86_64", choices=sorted(ARCHES))
    args = parser.parse_args(argv)
    path = build(args.dest, dist=args.dist, conda_version=args.conda_version, channels_dir=args.channels_dir,
                 arch=args.arch)
    print(f"{path}  sha256 {sha256_file(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
