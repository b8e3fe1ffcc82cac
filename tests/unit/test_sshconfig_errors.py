"""A ~/.ssh/config that ssh refuses is a one-line error naming the file and line (exit 2), not a
traceback; one ssh accepts is accepted. ssh itself (under the same home) is asked too."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cli_runner import remoteenv


def _ssh_refuses(home, config) -> bool | None:
    """Whether `ssh -G -F config a` refuses the file (None without an ssh to ask)."""
    if shutil.which("ssh") is None:
        return None
    from ssh_g import SshG

    ssh = SshG(home, home.parent / "ssh-g")
    found, _ = ssh.run("a", config)
    return found is None


@pytest.mark.parametrize("text, line, words", [
    ("Host a\n  HostName 198.18.9.9\nthis-is-bad\n", 3, 'no argument after keyword "this-is-bad"'),
    ("Host a\n  HostName 198.18.9.9\nthis-is-bad too\n", 3, "Bad configuration option: this-is-bad"),
    ("Host a\n  HostName 198.18.9.9\n  Port notanumber\n", 3, "Bad port 'notanumber'"),
    ("Host b\n  Port 0\nHost a\n", 2, "Bad port '0'"),  # refused even in a block that does not apply
    ("Host a\n  User alice bob\n", 2, "extra arguments at end of line"),
    ("Host a\n  IdentityFile \"~/.ssh/k\n", 2, "invalid quotes"),
    ("Match hots a\n  User x\n", 1, "Unsupported Match attribute hots"),
    ("Host a\n  ConnectTimeout \u00b2\n", 2, "invalid time value"),
    ("Host a\n  IdentitiesOnly maybe\n", 2, 'unsupported option "maybe"'),
    ("Host a\n  ProxyJump ssh://u@h/path\n", 2, "Invalid ProxyJump"),
    ("Host a\n  ControlPath ~/.ssh/cm-%j\n", 2, "unknown key %j"),
])
def test_broken_ssh_config(tmp_path, text, line, words):
    (tmp_path / ".ssh").mkdir()
    config = tmp_path / ".ssh" / "config"
    config.write_text(text)
    result = remoteenv("hosts", "a", env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.code == 2
    assert f"{config}:{line}" in result.err and words in result.err, result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert _ssh_refuses(tmp_path, config) in (True, None)


@pytest.mark.parametrize("text", [
    "IgnoreUnknown UseKeychain\nHost a\n  UseKeychain yes\n",
    "Host a\n  CanonicalizeHostname yes\n",  # no CanonicalDomains: the name is kept as it is
    "Host a\n  Protocol 2\n  Cipher blowfish\n",  # deprecated: ignored
])
def test_configs_ssh_accepts_are_accepted(tmp_path, text):
    (tmp_path / ".ssh").mkdir()
    config = tmp_path / ".ssh" / "config"
    config.write_text(text)
    result = remoteenv("hosts", "a", "--json", env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.json()["hosts"][0]["name"] == "a"
    assert _ssh_refuses(tmp_path, config) in (False, None)


def test_world_writable_config_is_refused_as_ssh_refuses_it(tmp_path):
    (tmp_path / ".ssh").mkdir()
    config = tmp_path / ".ssh" / "config"
    config.write_text("Host a\n  User alice\n")
    config.chmod(0o666)
    result = remoteenv("hosts", "a", env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.code == 2 and f"Bad owner or permissions on {config}" in result.err
    if shutil.which("ssh"):
        from ssh_g import SshG

        ssh = SshG(tmp_path, tmp_path / "ssh-g")
        done = subprocess.run([ssh.ssh, "-G", "a"], env=ssh.env, capture_output=True, text=True)
        assert done.returncode != 0 and "Bad owner or permissions" in done.stderr
