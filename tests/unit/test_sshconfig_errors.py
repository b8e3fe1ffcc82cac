"""A broken ~/.ssh/config is a one-line error naming the file and line (exit 2), not a traceback."""

from __future__ import annotations

import pytest
from cli_runner import remoteenv


@pytest.mark.parametrize("text, line, words", [
    ("Host a\n  HostName 198.18.9.9\nthis-is-bad\n", 3, "Unparsable line"),
    ("Host a\n  HostName 198.18.9.9\n  Port notanumber\n", 3, "is not a number"),
])
def test_broken_ssh_config(tmp_path, text, line, words):
    (tmp_path / ".ssh").mkdir()
    config = tmp_path / ".ssh" / "config"
    config.write_text(text)
    result = remoteenv("hosts", "a", env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.code == 2
    assert f"{config}:{line}" in result.err and words in result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
