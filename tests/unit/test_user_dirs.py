"""remoteenv's own folders are platformdirs' answer (read directly on Linux, to start fast)."""

from __future__ import annotations

import pytest
from platformdirs import PlatformDirs

from remoteenv import xdg

XDG = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


@pytest.mark.parametrize("env", [
    {}, {"XDG_CONFIG_HOME": "/x/c", "XDG_STATE_HOME": "/x/s", "XDG_CACHE_HOME": "/x/k"},
    {"XDG_STATE_HOME": "   "}, {"XDG_CONFIG_HOME": ""}, {"XDG_CACHE_HOME": "relative/dir"},
    {"XDG_CONFIG_HOME": "rel", "XDG_STATE_HOME": "rel"},
])
@pytest.mark.parametrize("kind", ["config", "state", "cache"])
def test_the_same_folders_as_platformdirs(monkeypatch, tmp_path, env, kind):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in XDG:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert xdg.user_dir(kind) == getattr(PlatformDirs("remoteenv", appauthor=False), f"user_{kind}_dir")
