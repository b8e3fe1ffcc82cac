"""Fake conda packages and channels, laid out as real ones, for the stand-in conda (fake_conda.py).

A channel is a folder ``<channel>/{linux-64,noarch}/repodata.json`` beside ``.tar.bz2`` packages, each holding
``info/index.json``, ``info/files``, ``info/has_prefix`` (text files whose ``/opt/anaconda1anaconda2anaconda3``
placeholder conda replaces with the prefix at link time) and the files to link. The stand-in reads a channel
URL ``https://HOST/PATH`` from ``<channels root>/HOST/PATH`` (see fake_conda.py), so ``build_standard_channels``
lays out the defaults (``repo.anaconda.com/pkgs/main`` and ``/r``) and ``conda.anaconda.org/conda-forge``
under one root; ``build_channel(root, url, packages)`` adds any other (a mirror, say).

Packages:
* ``python``: no files but a post-link script that makes the prefix a venv of the host's /usr/bin/python3
  (so ``ENV/bin/python`` runs real code); its version is that python's.
* ``pip``, ``setuptools``, ``wheel``: real wheels unpacked into site-packages (what conda's own packages are).
* ``numpy`` (1.26.4 and 2.1.0), ``pandas`` (needs numpy), ``scipy``: tiny pure-python stand-ins with
  ``__version__`` and a dist-info (INSTALLER ``conda``), so pip sees them as installed.
* ``pytorch-cuda`` 12.1: needs the virtual package ``__cuda >=12.1`` (``CONDA_OVERRIDE_CUDA``).
* ``conda`` (this stand-in), ``conda-anaconda-tos`` (its presence turns the terms-of-service check on).
* ``r-base`` on ``pkgs/r``.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAKE_CONDA_SOURCE = HERE / "fake_conda.py"
PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEM_WHEELS = "/usr/share/python-wheels"
MAIN = "https://repo.anaconda.com/pkgs/main"
R = "https://repo.anaconda.com/pkgs/r"
CONDA_FORGE = "https://conda.anaconda.org/conda-forge"
FIXED_MTIME = 1_700_000_000


@dataclass
class Package:
    name: str
    version: str
    build: str
    build_number: int = 0
    depends: list[str] = field(default_factory=list)
    # path inside the prefix -> bytes or text; a (content, mode) tuple sets the mode
    files: dict[str, bytes | str | tuple] = field(default_factory=dict)
    has_prefix: list[str] = field(default_factory=list)
    subdir: str = "linux-64"
    license: str = "BSD-3-Clause"

    @property
    def fn(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"

    def with_build(self, build: str) -> Package:
        return Package(self.name, self.version, build, self.build_number, list(self.depends), dict(self.files),
                       list(self.has_prefix), self.subdir, self.license)


# ----------------------------------------------------------------------------- host facts


_PY_CACHE: dict[str, tuple[str, str]] = {}


def host_python(python: str = SYSTEM_PYTHON) -> tuple[str, str]:
    """(full version, "pythonX.Y") of the python environments are made from."""
    if python not in _PY_CACHE:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, check=True).stdout.strip()
        _PY_CACHE[python] = (out, "python" + ".".join(out.split(".")[:2]))
    return _PY_CACHE[python]


def _wheel_version(path: str) -> tuple:
    parts = os.path.basename(path).split("-")
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.]", parts[1])) if len(parts) > 1 else ()


def find_wheel(name: str, dirs: list[str | os.PathLike] | None = None) -> Path | None:
    """The newest ``name`` wheel in dirs, then the wheelhouse (when already built), then Debian's."""
    search = [str(d) for d in dirs or []]
    try:
        import wheelhouse  # tests/wheelhouse.py

        built = wheelhouse.existing_wheelhouse()
        if built:
            search.append(str(built))
    except ImportError:
        pass
    search.append(SYSTEM_WHEELS)
    for d in search:
        found = glob.glob(os.path.join(d, f"{name}-*-py3-none-any.whl"))
        if found:
            return Path(max(found, key=_wheel_version))
    return None


# ----------------------------------------------------------------------------- packages


def _dist_info(name: str, version: str, requires: list[str] = ()) -> dict[str, str]:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    base = f"{name.replace('-', '_')}-{version}.dist-info"
    return {f"{base}/METADATA": meta, f"{base}/INSTALLER": "conda\n", f"{base}/RECORD": ""}


def python_package(python: str = SYSTEM_PYTHON, build: str = "h955ad1f_0") -> Package:
    version, _ = host_python(python)
    script = (
        "#!/bin/sh\n"
        "# The environment is a venv of the host's python: ENV/bin/python runs real code.\n"
        f'"{python}" -m venv --without-pip "$PREFIX" || exit 1\n'
        # A venv's pip reads $PREFIX/pip.conf as its site config; nothing to write here.
    )
    return Package("python", version, build, depends=[], files={"bin/.python-post-link.sh": (script, 0o755)},
                   license="PSF-2.0")


def pure_package(name: str, version: str, build: str, sitelib: str, depends: list[str] = (),
                 requires: list[str] = ()) -> Package:
    module = name.replace("-", "_")
    files = {f"{sitelib}/{module}/__init__.py":
             f'"""Stand-in {name} {version} from a fake conda channel."""\n__version__ = "{version}"\n'
             "FAKE_CONDA_PACKAGE = True\n"}
    files.update({f"{sitelib}/{k}": v for k, v in _dist_info(name, version, requires).items()})
    return Package(name, version, build, depends=list(depends), files=files)


def wheel_package(wheel: str | os.PathLike, sitelib: str, build: str, depends: list[str] = ()) -> Package:
    """A conda package made of a wheel, unpacked as conda's own python packages are (``.data`` folders to their
    places: ``data`` to the prefix, ``scripts`` to bin/, ``purelib``/``platlib`` to site-packages)."""
    wheel = Path(wheel)
    name, version = wheel.name.split("-")[:2]
    cname = normalize(name)
    files: dict[str, bytes | str | tuple] = {}
    has_prefix = []
    entry_points = ""
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            data = z.read(info)
            mode = ((info.external_attr >> 16) & 0o777) or 0o644
            parts = info.filename.split("/")
            if parts[0].endswith(".data") and len(parts) > 2:
                kind, rest = parts[1], "/".join(parts[2:])
                if kind == "data":
                    files[rest] = (data, mode)
                elif kind == "scripts":
                    if data.startswith(b"#!python"):
                        data = f"#!{PLACEHOLDER}/bin/python".encode() + data[len(b"#!python"):]
                        has_prefix.append(f"bin/{rest}")
                    files[f"bin/{rest}"] = (data, 0o755)
                elif kind in ("purelib", "platlib"):
                    files[f"{sitelib}/{rest}"] = (data, mode)
                elif kind == "headers":
                    files[f"include/{rest}"] = (data, mode)
                continue
            files[f"{sitelib}/{info.filename}"] = (data, mode)
            if info.filename.endswith(".dist-info/entry_points.txt"):
                entry_points = data.decode()
            if info.filename.endswith(".dist-info/RECORD"):
                files[f"{sitelib}/{info.filename.replace('RECORD', 'INSTALLER')}"] = "conda\n"
    section = None
    for line in entry_points.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section in ("console_scripts", "gui_scripts") and "=" in line:
            script, target = (x.strip() for x in line.split("=", 1))
            module, _, func = target.partition(":")
            func = func.split("[")[0].strip() or "main"
            files[f"bin/{script}"] = (
                f"#!{PLACEHOLDER}/bin/python\nimport sys\nfrom {module} import {func.split('.')[0]}\n"
                f"if __name__ == '__main__':\n    sys.exit({func}())\n", 0o755)
            has_prefix.append(f"bin/{script}")
    return Package(cname, version, build, depends=list(depends), files=files, has_prefix=has_prefix,
                   license="MIT")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_depends(wheel: str | os.PathLike, python_version: str) -> list[str]:
    """Conda-style depends from a wheel's Requires-Dist: extras dropped, markers evaluated for the hosts' python
    (linux), plus ``python``."""
    try:
        from packaging.markers import Marker
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.markers import Marker
        from pip._vendor.packaging.requirements import Requirement
    env = {"python_version": ".".join(python_version.split(".")[:2]), "python_full_version": python_version,
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython",
           "platform_machine": os.uname().machine, "extra": ""}
    depends = [f"python >={'.'.join(python_version.split('.')[:2])}"]
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        text = z.read(meta).decode("utf-8", "replace").split("\n\n", 1)[0]
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is not None and not Marker(str(req.marker)).evaluate(env):
            continue
        spec = ",".join(str(s) for s in req.specifier)
        depends.append(f"{normalize(req.name)} {spec}".strip())
    return depends


def wheelhouse_packages(house: str | os.PathLike, python: str = SYSTEM_PYTHON,
                        skip: tuple[str, ...] = ("pip", "setuptools", "wheel", "packaging")) -> list[Package]:
    """Every wheel of a wheelhouse as a conda package (build ``pypi_conda_0``), with its dependencies: so an
    environment file can name jupyterlab or ipykernel as conda packages."""
    version, pyname = host_python(python)
    sitelib = f"lib/{pyname}/site-packages"
    out = []
    for whl in sorted(Path(house).glob("*.whl")):
        if normalize(whl.name.split("-")[0]) in skip:
            continue
        out.append(wheel_package(whl, sitelib, "pypi_conda_0", wheel_depends(whl, version)))
    return out


def conda_package(version: str, sitelib: str, *, channels_root: str | None, build: str = "py311h06a4308_0",
                  subdir: str = "linux-64") -> Package:
    config = {"conda_version": version, "subdir": subdir,
              "channels_root": str(channels_root) if channels_root else None}
    entry = (f"#!{PLACEHOLDER}/bin/python\n# -*- coding: utf-8 -*-\nimport sys\n"
             "from conda.fake_conda import main\n\nif __name__ == '__main__':\n    sys.exit(main())\n")
    files = {
        f"{sitelib}/conda/__init__.py": f'__version__ = "{version}"\n',
        f"{sitelib}/conda/fake_conda.py": FAKE_CONDA_SOURCE.read_text(),
        f"{sitelib}/conda/_fake.json": json.dumps(config, indent=2) + "\n",
        "bin/conda": (entry, 0o755),
        "condabin/conda": (entry, 0o755),
    }
    files.update({f"{sitelib}/{k}": v for k, v in _dist_info("conda", version).items()})
    return Package("conda", version, build, depends=["python >=3.9"], files=files,
                   has_prefix=["bin/conda", "condabin/conda"], subdir=subdir)


def tos_package(sitelib: str) -> Package:
    files = {f"{sitelib}/conda_anaconda_tos/__init__.py": '__version__ = "0.2.1"\n'}
    files.update({f"{sitelib}/{k}": v for k, v in _dist_info("conda-anaconda-tos", "0.2.1").items()})
    return Package("conda-anaconda-tos", "0.2.1", "py311h06a4308_0", depends=["python >=3.9"], files=files)


# ----------------------------------------------------------------------------- tarballs and channels


_TARBALLS: dict[str, bytes] = {}


def _content(value) -> tuple[bytes, int]:
    mode = 0o644
    if isinstance(value, tuple):
        value, mode = value
    if isinstance(value, str):
        value = value.encode()
    return value, mode


def _disk_cache() -> Path | None:
    try:
        import wheelhouse  # tests/wheelhouse.py: the tests' cache root

        path = wheelhouse.cache_root() / "fake-conda-packages"
        path.mkdir(parents=True, exist_ok=True)
        return path
    except (ImportError, OSError):
        return None


def package_bytes(pkg: Package) -> bytes:
    """The package as a .tar.bz2 (deterministic: same package, same bytes; cached in memory and on disk)."""
    h = hashlib.sha256(repr((pkg.name, pkg.version, pkg.build, pkg.build_number, pkg.subdir, pkg.depends,
                             pkg.license, pkg.has_prefix)).encode())
    for path in sorted(pkg.files):
        data, mode = _content(pkg.files[path])
        h.update(f"\0{path}\0{mode}\0{len(data)}\0".encode())
        h.update(data)
    key = h.hexdigest()
    if key in _TARBALLS:
        return _TARBALLS[key]
    cache = _disk_cache()
    cached = cache / f"{key}.tar.bz2" if cache else None
    if cached and cached.is_file():
        _TARBALLS[key] = cached.read_bytes()
        return _TARBALLS[key]
    index = {"name": pkg.name, "version": pkg.version, "build": pkg.build, "build_number": pkg.build_number,
             "depends": pkg.depends, "license": pkg.license, "subdir": pkg.subdir, "timestamp": FIXED_MTIME * 1000,
             "platform": "linux" if pkg.subdir != "noarch" else None,
             "arch": pkg.subdir.split("-")[-1] if pkg.subdir != "noarch" else None}
    paths = sorted(pkg.files)
    info = {
        "info/index.json": json.dumps(index, indent=2, sort_keys=True),
        "info/files": "".join(p + "\n" for p in paths),
        "info/has_prefix": "".join(f"{PLACEHOLDER} text {p}\n" for p in pkg.has_prefix),
        "info/paths.json": json.dumps({"paths": [{"_path": p, "path_type": "hardlink"} for p in paths],
                                       "paths_version": 1}, indent=2),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2", compresslevel=1) as tar:
        for path, value in [*info.items(), *((p, pkg.files[p]) for p in paths)]:
            data, mode = _content(value)
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode, ti.mtime, ti.uname, ti.gname = len(data), mode, FIXED_MTIME, "root", "root"
            tar.addfile(ti, io.BytesIO(data))
    _TARBALLS[key] = buf.getvalue()
    if cached:
        try:
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
            tmp.write_bytes(_TARBALLS[key])
            os.chmod(tmp, 0o644)
            os.replace(tmp, cached)
        except OSError:
            pass
    return _TARBALLS[key]


def repodata_entry(pkg: Package, data: bytes) -> dict:
    return {"name": pkg.name, "version": pkg.version, "build": pkg.build, "build_number": pkg.build_number,
            "depends": pkg.depends, "license": pkg.license, "subdir": pkg.subdir,
            "timestamp": FIXED_MTIME * 1000, "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def channel_dir(root: str | os.PathLike, url: str) -> Path:
    """Where the stand-in looks for the channel at url under root: root/HOST/PATH."""
    m = re.match(r"^[a-z]+://([^/]+)(/.*)?$", url.rstrip("/"))
    if not m:
        raise ValueError(f"not a URL: {url}")
    return Path(root, m.group(1), (m.group(2) or "/").lstrip("/"))


def build_channel(root: str | os.PathLike, url: str, packages: list[Package]) -> Path:
    """Write packages into the channel at url (under root; kept if already there); return the channel's folder."""
    folder = channel_dir(root, url)
    subdirs = {"linux-64", "noarch"} | {p.subdir for p in packages}
    for subdir in subdirs:
        d = folder / subdir
        d.mkdir(parents=True, exist_ok=True)
        repodata_path = d / "repodata.json"
        repodata = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": {}, "removed": [],
                    "repodata_version": 1}
        if repodata_path.exists():
            repodata = json.loads(repodata_path.read_text())
        for pkg in packages:
            if pkg.subdir != subdir:
                continue
            data = package_bytes(pkg)
            (d / pkg.fn).write_bytes(data)
            repodata["packages"][pkg.fn] = repodata_entry(pkg, data)
        repodata_path.write_text(json.dumps(repodata, indent=2, sort_keys=True))
    names = sorted({p.name for p in packages})
    channeldata = folder / "channeldata.json"
    data = json.loads(channeldata.read_text()) if channeldata.exists() else {"channeldata_version": 1,
                                                                               "packages": {}, "subdirs": []}
    for n in names:
        data["packages"].setdefault(n, {"subdirs": sorted(subdirs)})
    data["subdirs"] = sorted(set(data["subdirs"]) | subdirs)
    channeldata.write_text(json.dumps(data, indent=2, sort_keys=True))
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return folder


def base_packages(*, dist: str, conda_version: str, channels_root, python: str = SYSTEM_PYTHON,
                  wheels: list | None = None, subdir: str = "linux-64") -> list[Package]:
    """What an installer puts in its base environment."""
    _, pyname = host_python(python)
    sitelib = f"lib/{pyname}/site-packages"
    forge = dist == "miniforge"
    pkgs = [python_package(python, "hab00c5b_0_cpython" if forge else "h955ad1f_0")]
    version, _ = host_python(python)
    # wheel needs packaging (as on the real channels): its own dependencies come from its metadata, so
    # `pip check` in a new env finds nothing missing.
    for name in ("pip", "setuptools", "wheel", "packaging"):
        whl = find_wheel(name, wheels)
        if whl:
            depends = ["python >=3.8"] + (["setuptools", "wheel"] if name == "pip" and find_wheel(
                "wheel", wheels) else [])
            if name in ("wheel", "packaging"):
                depends = wheel_depends(whl, version)
            pkgs.append(wheel_package(whl, sitelib, "pyhd8ed1ab_0" if forge else "py311h06a4308_0", depends))
    pkgs.append(conda_package(conda_version, sitelib, channels_root=channels_root,
                              build="py311h38be061_0" if forge else "py311h06a4308_0", subdir=subdir))
    if not forge:
        pkgs.append(tos_package(sitelib))
    for p in pkgs:
        if p.subdir != subdir and p.subdir != "noarch":
            p.subdir = subdir
    return pkgs


def library_packages(*, forge: bool, python: str = SYSTEM_PYTHON) -> list[Package]:
    """Small stand-ins for the libraries environment files name."""
    _, pyname = host_python(python)
    sitelib = f"lib/{pyname}/site-packages"
    b = "py311_cf_0" if forge else "py311h5eee18b_0"
    return [
        pure_package("numpy", "1.26.4", b, sitelib, ["python >=3.9,<3.13"]),
        pure_package("numpy", "2.1.0", b, sitelib, ["python >=3.10"]),
        pure_package("pandas", "2.2.2", b, sitelib, ["python >=3.9", "numpy >=1.22.4"], ["numpy>=1.22.4"]),
        pure_package("scipy", "1.13.1", b, sitelib, ["python >=3.9", "numpy >=1.22.4,<2.3"],
                     ["numpy>=1.22.4"]),
        pure_package("pytorch-cuda", "12.1", "ha16c6d3_6", sitelib, ["__cuda >=12.1"]),
    ]


def build_standard_channels(root: str | os.PathLike, *, conda_version: str = "25.5.1",
                            python: str = SYSTEM_PYTHON, wheels: list | None = None,
                            channels_root: str | os.PathLike | None = None,
                            wheelhouse: str | os.PathLike | None = None) -> Path:
    """Lay out pkgs/main, pkgs/r and conda-forge under root (``channels_root`` baked into their conda
    package defaults to root). With a wheelhouse, pkgs/main and conda-forge also hold each of its wheels as a
    conda package (jupyterlab, ipykernel, ... and their dependencies; the first build takes a few seconds,
    then the tarballs are cached). Returns root."""
    root = Path(root)
    extra = wheelhouse_packages(wheelhouse, python) if wheelhouse else []
    baked = str(channels_root or root)
    main = base_packages(dist="miniconda", conda_version=conda_version, channels_root=baked, python=python,
                         wheels=wheels)
    build_channel(root, MAIN, main + library_packages(forge=False, python=python) + extra)
    build_channel(root, R, [Package("r-base", "4.3.1", "h0_0", depends=[], files={"lib/R/VERSION": "4.3.1\n"})])
    forge = base_packages(dist="miniforge", conda_version=conda_version, channels_root=baked, python=python,
                          wheels=wheels)
    build_channel(root, CONDA_FORGE, forge + library_packages(forge=True, python=python) + extra)
    return root


def explicit_lines(base_url: str, packages: list[Package]) -> list[str]:
    return [f"{base_url}/{p.subdir}/{p.fn}#{hashlib.md5(package_bytes(p)).hexdigest()}" for p in packages]
