"""The sandbox's sshd: finding the binary, its config, and choosing a server flavour."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from remoteenv import sandbox
from remoteenv.errors import EXIT_USAGE
from remoteenv.sandbox import keys, openssh
from remoteenv.sandbox.errors import SandboxUsageError
from remoteenv.sandbox.state import SandboxPaths, ensure_dirs


@pytest.fixture(autouse=True)
def no_sshd_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMOTEENV_SSHD", raising=False)


def _config(tmp_path: Path, folder: str = "sandbox") -> tuple[SandboxPaths, str]:
    p = SandboxPaths(tmp_path / folder)
    ensure_dirs(p)
    openssh.write_config(p, 40123, "alice")
    return p, p.sshd_config.read_text()


def test_config_is_loopback_pubkey_only_with_forwarding(tmp_path: Path):
    p, text = _config(tmp_path)
    lines = text.splitlines()
    for expected in ("ListenAddress 127.0.0.1:40123", "AllowUsers alice", "UsePAM no",
                     "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
                     "AllowTcpForwarding yes", "AllowStreamLocalForwarding yes",
                     f'AuthorizedKeysFile "{p.authorized_keys}"', f'HostKey "{p.host_key}"',
                     f'PidFile "{p.pid_file}"', f'Subsystem sftp internal-sftp -d "{p.home}"'):
        assert expected in lines
    assert p.sshd_config.stat().st_mode & 0o777 == 0o600


def test_config_quotes_spaces_and_escapes_tokens(tmp_path: Path):
    _, text = _config(tmp_path, "Application Support/50%")
    assert f'AuthorizedKeysFile "{tmp_path}/Application Support/50%%/authorized_keys"' in text
    assert f'HostKey "{tmp_path}/Application Support/50%/ssh_host_ed25519_key"' in text


def test_sshd_accepts_the_config(tmp_path: Path):
    sshd = openssh.find_sshd()
    if not sshd:
        pytest.skip("no sshd on this machine")
    p, _ = _config(tmp_path, "with space")
    keys.ensure_keypair(p.host_key, "h")
    openssh.prepare_runtime()
    checked = subprocess.run([sshd, "-t", "-f", str(p.sshd_config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_a_path_sshd_cannot_quote_is_refused(tmp_path: Path):
    with pytest.raises(SandboxUsageError):
        _config(tmp_path, 'odd"name')


def test_remoteenv_sshd_must_be_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REMOTEENV_SSHD", str(tmp_path / "missing"))
    with pytest.raises(SandboxUsageError) as caught:
        openssh.find_sshd()
    assert caught.value.exit_code == EXIT_USAGE and "REMOTEENV_SSHD" in caught.value.message
    fake = tmp_path / "my-sshd"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("REMOTEENV_SSHD", str(fake))
    assert openssh.find_sshd() == str(fake)


def test_auto_prefers_sshd_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = tmp_path / "sshd"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("REMOTEENV_SSHD", str(fake))
    assert sandbox.choose_flavour("auto") == ("openssh", f"found {fake}", str(fake))
    assert sandbox.choose_flavour("asyncssh")[0] == "asyncssh"


def test_without_sshd_auto_falls_back_and_openssh_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(openssh, "find_sshd", lambda: None)
    flavour, why, sshd = sandbox.choose_flavour("auto")
    assert (flavour, sshd) == ("asyncssh", None) and "no sshd" in why
    with pytest.raises(SandboxUsageError) as caught:
        sandbox.choose_flavour("openssh")
    assert "--server asyncssh" in (caught.value.hint or "")


def test_unknown_server_is_a_usage_error():
    with pytest.raises(SandboxUsageError):
        sandbox.choose_flavour("dropbear")


def test_root_gets_its_privilege_separation_dir():
    if os.geteuid() != 0:
        pytest.skip("only root's sshd needs it")
    openssh.prepare_runtime()
    assert os.path.isdir(openssh.PRIVSEP_DIR)
