"""The local side of `remoteenv keys`: key descriptions (checked against ssh-keygen), new ed25519 pairs,
key file modes, and asking for secrets through REMOTEENV_ASKPASS."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest

from remoteenv.errors import ConfigError
from remoteenv.keys import askpass, localkey

SSH_KEYGEN = shutil.which("ssh-keygen")
needs_keygen = pytest.mark.skipif(SSH_KEYGEN is None and os.environ.get("CI") != "true",
                                  reason="ssh-keygen is not installed")


def keygen(tmp_path, kind: str, bits: int | None = None) -> tuple[localkey.PublicKey, str]:
    """A new key made by ssh-keygen; its public key and `ssh-keygen -l`'s line for it."""
    path = tmp_path / f"id_{kind}_{bits or 0}"
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "me@here", "-f", str(path)]
    if bits:
        argv[4:4] = ["-b", str(bits)]
    subprocess.run(argv, check=True)
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True, check=True)
    return localkey.public_key_of(path), listed.stdout


@needs_keygen
@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("rsa", 2048), ("rsa", 3072), ("ecdsa", 384)])
def test_describe_matches_ssh_keygen(tmp_path, kind, bits):
    public, listed = keygen(tmp_path, kind, bits)
    size, fingerprint = listed.split()[:2]
    info = public.info
    assert (info.bits, info.fingerprint, info.comment) == (int(size), fingerprint, "me@here")
    assert info.type == public.type


@needs_keygen
def test_weak_keys_are_named(tmp_path):
    rsa2048, _ = keygen(tmp_path, "rsa", 2048)
    rsa3072, _ = keygen(tmp_path, "rsa", 3072)
    ed, _ = keygen(tmp_path, "ed25519")
    assert "RSA key of 2048 bits" in (rsa2048.info.weakness or "")
    assert rsa3072.info.weakness is None and ed.info.weakness is None
    # ssh-keygen no longer makes DSA keys: a DSA blob is built from its parts (p of 1024 bits).
    import struct

    def string(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    p = (1 << 1023) | 1
    blob = string(b"ssh-dss") + string(p.to_bytes(129, "big")) + string(b"\x01" * 20) + string(b"\x02") + string(
        b"\x03")
    dsa = localkey.describe_blob(blob)
    assert (dsa.type, dsa.bits) == ("ssh-dss", 1024)
    assert "DSA" in (dsa.weakness or "")


@needs_keygen
def test_new_ed25519_pair_is_what_ssh_keygen_reads(tmp_path):
    path = tmp_path / "sub" / "id_new"
    public = localkey.generate_ed25519(path, "", comment="me@laptop")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == public.line.split()[:2]
    assert public.comment == "me@laptop"
    assert localkey.load_private(path) is not None
    with pytest.raises(ConfigError, match="exists already"):
        localkey.generate_ed25519(path, "")


@needs_keygen
def test_passphrase_protected_pair(tmp_path):
    path = tmp_path / "id_locked"
    public = localkey.generate_ed25519(path, "s3cret words")
    assert localkey.load_private(path) is None  # needs the passphrase
    assert localkey.load_private(path, "s3cret words").asbytes() == public.blob
    with pytest.raises(ConfigError, match="wrong passphrase"):
        localkey.load_private(path, "wrong")
    # The public half comes from the .pub file, so no passphrase is needed for it.
    path.with_name("id_locked.pub").unlink()
    with pytest.raises(ConfigError, match="passphrase-protected"):
        localkey.public_key_of(path)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_key_file_mode(tmp_path):
    key = tmp_path / "k"
    key.write_text("x")
    os.chmod(key, 0o600)
    assert localkey.mode_problem(key) is None
    os.chmod(key, 0o640)
    assert "readable by others (mode 0640)" in (localkey.mode_problem(key) or "")


def test_public_key_line_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="not an OpenSSH public key line"):
        localkey.PublicKey.parse("ssh-ed25519 not-base64!", "k.pub")


def write_askpass(tmp_path, body: str):
    program = tmp_path / "askpass"
    program.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    os.chmod(program, 0o700)
    return program


def test_askpass_program_gets_the_prompt_and_gives_one_line(tmp_path, monkeypatch):
    program = write_askpass(tmp_path, "print('answer to ' + sys.argv[1])")
    monkeypatch.setenv(askpass.ASKPASS_VARIABLE, str(program))
    assert askpass.uses_program()
    assert askpass.ask("Password: ") == "answer to Password: "


def test_askpass_program_that_fails_is_no_answer(tmp_path, monkeypatch):
    program = write_askpass(tmp_path, "sys.exit(1)")
    monkeypatch.setenv(askpass.ASKPASS_VARIABLE, str(program))
    with pytest.raises(askpass.NoAnswer, match="gave no answer"):
        askpass.ask("Password: ")


def test_no_terminal_and_no_askpass_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(askpass.ASKPASS_VARIABLE, raising=False)
    monkeypatch.setattr(askpass, "_has_terminal", lambda: False)
    with pytest.raises(askpass.NoAnswer, match="no terminal") as caught:
        askpass.ask("Password: ")
    assert askpass.ASKPASS_VARIABLE in (caught.value.hint or "")
