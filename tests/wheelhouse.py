"""A wheelhouse for test hosts: wheels that pip on a host installs with no index (no-index + find-links).

    import wheelhouse
    house = wheelhouse.ensure_wheelhouse()          # Path; built once, cached between runs
    pip_conf = wheelhouse.pip_conf_text(house)       # write it to ENV/pip.conf, or PIP_CONFIG_FILE
    env = wheelhouse.offline_pip_env(house)          # or these variables: PIP_NO_INDEX, PIP_FIND_LINKS

The wheels are downloaded by this machine's pip (``python -m pip download``, through its own configuration),
for the python that test hosts make environments from (Debian's /usr/bin/python3: cp311, manylinux x86_64),
into a world-readable folder that unprivileged test-host users can read: by default
``/var/cache/remoteenv-tests/wheelhouse-<hash of the requirement list>`` (``REMOTEENV_TEST_CACHE`` moves the
root). A changed list is a new folder; a lock keeps parallel runs from racing; a folder is used only once a
download finished into it. Under CI=true a failed download raises WheelhouseUnavailable (fail the test);
elsewhere ``wheelhouse_or_skip()`` skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REQUIREMENTS = (
    "pip", "setuptools", "wheel",
    "jupyter-server", "jupyterlab", "ipykernel",
    "six", "idna",
)
HOST_PYTHON = "/usr/bin/python3"
DOWNLOAD_TIMEOUT = 1200
COMPLETE = ".complete"


class WheelhouseUnavailable(RuntimeError):
    """The wheels could not be downloaded."""


def cache_root() -> Path:
    return Path(os.environ.get("REMOTEENV_TEST_CACHE", "/var/cache/remoteenv-tests"))


def _host_python_tag() -> str:
    """e.g. "cp311-x86_64-3.11.2": wheels are chosen for this exact python (some need a later 3.11.x)."""
    try:
        return subprocess.run(
            [HOST_PYTHON, "-c", "import sys, platform; v = sys.version_info; "
             "print(f'cp{v[0]}{v[1]}-{platform.machine()}-{v[0]}.{v[1]}.{v[2]}')"],
            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        v = sys.version_info
        return f"cp{v[0]}{v[1]}-unknown-{v[0]}.{v[1]}.{v[2]}"


def _key(requirements) -> str:
    text = "\n".join(sorted(requirements)) + "\n" + _host_python_tag()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def wheelhouse_dir(requirements=REQUIREMENTS) -> Path:
    return cache_root() / f"wheelhouse-{_key(requirements)}"


def existing_wheelhouse(requirements=REQUIREMENTS) -> Path | None:
    """The wheelhouse if it was built already (never downloads)."""
    path = wheelhouse_dir(requirements)
    return path if (path / COMPLETE).exists() else None


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _downloader() -> list[str]:
    """A python whose pip downloads wheels for the hosts' python: this one when it is the same cpXY."""
    tag = _host_python_tag().split("-")[0]
    if tag == f"cp{sys.version_info[0]}{sys.version_info[1]}":
        return [sys.executable]
    return [HOST_PYTHON]


@contextlib.contextmanager
def _locked(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _make_readable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def ensure_wheelhouse(requirements=REQUIREMENTS) -> Path:
    """The wheelhouse for requirements (and their dependencies), downloading it the first time."""
    requirements = tuple(requirements)
    found = existing_wheelhouse(requirements)
    if found:
        return found
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
    except OSError as error:
        raise WheelhouseUnavailable(f"cannot make {root}: {error}") from None
    target = wheelhouse_dir(requirements)
    with _locked(root / f".{target.name}.lock"):
        if (target / COMPLETE).exists():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        try:
            argv = [*_downloader(), "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
                    "--only-binary=:all:", "--python-version", _host_python_tag().rsplit("-", 1)[1],
                    "-d", str(tmp), *requirements]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise WheelhouseUnavailable(f"pip download took over {DOWNLOAD_TIMEOUT}s") from None
            if proc.returncode != 0:
                raise WheelhouseUnavailable(
                    f"pip download failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
            (tmp / COMPLETE).write_text("\n".join(requirements) + "\n")
            _make_readable(tmp)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def wheelhouse_or_skip(requirements=REQUIREMENTS) -> Path:
    """ensure_wheelhouse() for tests: skip when it cannot be had, fail instead under CI=true."""
    import pytest

    try:
        return ensure_wheelhouse(requirements)
    except WheelhouseUnavailable as error:
        if _in_ci():
            pytest.fail(f"no wheelhouse: {error}")
        pytest.skip(f"no wheelhouse: {error}")


def pip_conf_text(house: str | os.PathLike) -> str:
    """A pip.conf that installs from the wheelhouse only (for ENV/pip.conf, a venv's site config)."""
    return f"[global]\nno-index = true\nfind-links = {house}\ndisable-pip-version-check = true\n"


def offline_pip_env(house: str | os.PathLike) -> dict[str, str]:
    """Environment variables with the same effect as pip_conf_text."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(house), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


if __name__ == "__main__":
    print(ensure_wheelhouse())
