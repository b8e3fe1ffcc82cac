"""The package list in pyproject.toml is written out (playbooks install inside the package): keep it whole."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def _config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    listed = set(_config()["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "remoteenv").rglob("*.py")
               if "__pycache__" not in p.parts}
    on_disk |= {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "remoteenv").rglob("*.sh")}
    missing = on_disk - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_shipped_playbooks_are_package_data():
    config = _config()
    assert config["package-dir"]["remoteenv.playbooks"] == "playbooks"
    patterns = config["package-data"]["remoteenv.playbooks"]
    shipped = {p.relative_to(REPO / "playbooks") for p in (REPO / "playbooks").rglob("*.yaml")}
    assert shipped, "no shipped playbooks found"
    for path in shipped:
        assert any(path.match(pattern) and len(path.parts) == len(Path(pattern).parts) for pattern in patterns), path


def test_example_inventories_are_package_data():
    config = _config()
    assert config["package-dir"]["remoteenv.configs"] == "configs"
    from remoteenv.api import EXAMPLE_INVENTORIES

    for name in EXAMPLE_INVENTORIES:
        assert (REPO / "configs" / name).is_file(), name
        assert any(Path(name).match(p) for p in config["package-data"]["remoteenv.configs"]), name


# -- a real wheel ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built the way pip installs remoteenv, from a copy of the tree.

    A copy, because setuptools leaves build/ and *.egg-info in the tree it builds, and a stale
    build/lib in a shared checkout would put deleted files in later wheels.
    """
    import os
    import shutil
    import subprocess

    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("remoteenv", "playbooks", "configs"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    out = work / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        message = f"could not build a wheel: {proc.stderr.strip()[-2000:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    (built,) = out.glob("remoteenv-*.whl")
    return built


@pytest.mark.slow
def test_wheel_ships_the_package_and_its_data_and_no_tests(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {"remoteenv/" + p.relative_to(REPO / "remoteenv").as_posix()
               for p in (REPO / "remoteenv").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names, sorted(modules - names)
    scripts = {"remoteenv/remote/" + p.name for p in (REPO / "remoteenv" / "remote").glob("*.sh")}
    assert scripts and scripts <= names, sorted(scripts - names)
    playbooks = {"remoteenv/playbooks/" + p.relative_to(REPO / "playbooks").as_posix()
                 for p in (REPO / "playbooks").rglob("*.yaml")}
    assert "remoteenv/playbooks/workstation.yaml" in playbooks and playbooks <= names, sorted(playbooks - names)
    examples = {f"remoteenv/configs/{p.name}" for p in (REPO / "configs").glob("hosts.example.*")}
    assert len(examples) == 3 and examples <= names, sorted(examples - names)
    assert not [n for n in names if n.startswith(("tests/", "bench/", "configs/", "playbooks/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "remoteenv = remoteenv.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_installed_hints_name_files_that_exist(wheel, tmp_path):
    """From the wheel's files alone (no source tree), the no-hosts hint names an example that exists."""
    import os
    import subprocess
    import zipfile

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HOME": str(home), "COLUMNS": "80"}
    for name in ("REMOTEENV_INVENTORY", "REMOTEENV_CONFIG_DIR", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "remoteenv", "hosts"], cwd=home, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "hosts:\n    gpu-box: {hostname: 10.1.2.3, user: alice}" in proc.stdout
    named = [line.strip() for line in proc.stdout.splitlines() if line.strip().endswith("hosts.example.yaml")]
    assert len(named) == 1 and Path(named[0]).is_file(), proc.stdout
    assert Path(named[0]).is_relative_to(site), named[0]  # the installed copy, not this checkout's
    # Shipped playbooks resolve inside the installed package too.
    listed = subprocess.run([sys.executable, "-c", "import remoteenv.playbook as p; print(p.shipped_dir())"],
                            cwd=home, env=env, capture_output=True, text=True, timeout=60)
    assert Path(listed.stdout.strip()).is_relative_to(site), listed.stdout + listed.stderr
