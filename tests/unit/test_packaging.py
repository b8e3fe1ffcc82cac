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
