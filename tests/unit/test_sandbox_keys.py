"""Sandbox keys and the trust in its host key (remoteenv's own known_hosts only)."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from remoteenv.sandbox import keys
from remoteenv.transport import hostkeys


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "state"


def test_keypair_is_made_once_and_private(tmp_path: Path):
    path = tmp_path / "id_ed25519"
    line, made = keys.ensure_keypair(path, "a-comment")
    assert made and line.startswith("ssh-ed25519 AAAA") and line.endswith(" a-comment")
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(f"{path}.pub").read_text() == line + "\n"
    again, made_again = keys.ensure_keypair(path, "a-comment")
    assert (again, made_again) == (line, False)
    assert keys.read_public(path) == " ".join(line.split()[:2])


def test_keys_load_in_paramiko_with_the_same_fingerprint(tmp_path: Path):
    line, _ = keys.ensure_keypair(tmp_path / "k", "c")
    loaded = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "k"))
    assert loaded.get_base64() == line.split()[1]
    assert keys.fingerprint(line) == hostkeys.fingerprint(loaded)


def test_read_public_of_a_missing_key_is_none(tmp_path: Path):
    assert keys.read_public(tmp_path / "nothing") is None


def test_trust_replaces_only_the_sandbox_line(tmp_path: Path, state: Path):
    state.mkdir(parents=True)
    known = state / "known_hosts"
    others = ["# kept comment", "[10.0.0.2]:2200 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther made-elsewhere"]
    known.write_text("\n".join(others) + "\n")
    first, _ = keys.ensure_keypair(tmp_path / "host1", "h")
    second, _ = keys.ensure_keypair(tmp_path / "host2", "h")
    assert keys.trust("127.0.0.1", 40001, first) == known
    keys.trust("127.0.0.1", 40002, second)
    lines = known.read_text().splitlines()
    assert lines[:2] == others
    assert lines[2:] == [f"[127.0.0.1]:40002 ssh-ed25519 {second.split()[1]} {keys.KNOWN_HOSTS_MARK}"]
    assert known.stat().st_mode & 0o777 == 0o600
    keys.forget()
    assert known.read_text().splitlines() == others


def test_trusted_line_is_what_the_transport_reads(tmp_path: Path):
    line, _ = keys.ensure_keypair(tmp_path / "host", "h")
    keys.trust("127.0.0.1", 40003, line)
    assert hostkeys.own_known_hosts() in hostkeys.known_hosts_files()
    found = paramiko.HostKeys(str(hostkeys.own_known_hosts())).lookup("[127.0.0.1]:40003")
    assert found is not None and found["ssh-ed25519"].get_base64() == line.split()[1]


def test_authorized_keys_holds_the_client_key_only(tmp_path: Path):
    line, _ = keys.ensure_keypair(tmp_path / "client", "c")
    keys.write_authorized_keys(tmp_path / "authorized_keys", line)
    text = (tmp_path / "authorized_keys").read_text()
    assert text.splitlines() == [" ".join(line.split()[:2]) + " remoteenv-sandbox-client"]
