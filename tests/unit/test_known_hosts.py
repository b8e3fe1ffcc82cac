"""known_hosts as OpenSSH reads and writes it: markers, patterns, hashed names, bad lines, accept-new.

Where OpenSSH has a say it is asked: `ssh-keygen -F` decides which lines name a host, `ssh-keygen -H`
hashes lines we must read, and `ssh-keygen -F` / `-R` must find and remove the lines we write and name.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import paramiko
import pytest

from remoteenv.errors import ConfigError, HostKeyMismatch, HostKeyUnknown
from remoteenv.transport import hostkeys

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real known_hosts: HOME, the state dir and the global files all point into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("REMOTEENV_GLOBAL_KNOWN_HOSTS", "")
    monkeypatch.delenv("REMOTEENV_KNOWN_HOSTS", raising=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, str]:
    """Public key lines ("type base64") made by ssh-keygen: ed1, ed2, ed3, ecdsa, rsa."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("needs OpenSSH's ssh-keygen")
    where = tmp_path_factory.mktemp("keys")
    made = {}
    for name, args in {"ed1": ["-t", "ed25519"], "ed2": ["-t", "ed25519"], "ed3": ["-t", "ed25519"],
                       "ecdsa": ["-t", "ecdsa"], "rsa": ["-t", "rsa", "-b", "2048"]}.items():
        subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", "", "-f", str(where / name)], check=True)
        made[name] = " ".join((where / f"{name}.pub").read_text().split()[:2])
    return made


def pkey(line: str) -> paramiko.PKey:
    kind, blob = line.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(blob))


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def lines_of(found) -> list[int]:
    return [e.line for e in found]


def short_ed25519(line: str) -> str:
    """The same ed25519 key with a 31-byte public part (a fuzzed or truncated line)."""
    blob = base64.b64decode(line.split()[1])
    bad = blob[:-36] + struct.pack(">I", 31) + blob[-32:-1]
    return f"ssh-ed25519 {base64.b64encode(bad).decode()}"


# ---------------------------------------------------------------- reading


def bad_lines(keys) -> dict[str, str]:
    """Lines OpenSSH does not use, each naming a.lab; every one must be skipped with a warning."""
    ed1 = keys["ed1"]
    return {
        "bad base64": "a.lab ssh-ed25519 AAAA!!notbase64",
        "empty hash salt": f"|1|| {ed1}",
        "short hash salt": f"|1|c2FsdA==|ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGk= {ed1}",
        "hash not base64": f"|1|!!!!|???? {ed1}",
        "unknown hash kind": f"|2|{'A' * 27}=|{'A' * 27}= {ed1}",
        "31-byte ed25519": f"a.lab {short_ed25519(ed1)}",
        "unknown marker": f"@trusted a.lab {ed1}",
        "two markers": f"@revoked @cert-authority a.lab {ed1}",
        "no key": "a.lab ssh-ed25519",
        "only a name": "a.lab",
        "type and key disagree": f"a.lab ssh-rsa {ed1.split()[1]}",
        "unknown type": "a.lab ssh-foo AAAAB3NzaC1mb28AAAAA",
        "key cut short": f"a.lab ssh-ed25519 {base64.b64encode(base64.b64decode(ed1.split()[1])[:20]).decode()}",
    }


@pytest.mark.parametrize("why", list(bad_lines({"ed1": "ssh-ed25519 " + "A" * 68}).keys()))
def test_a_bad_line_is_skipped_with_a_warning_naming_file_and_line(why, keys, tmp_path, caplog):
    bad = bad_lines(keys)[why]
    known = write(tmp_path / "known_hosts", f"b.lab {keys['ed2']}\n{bad}\nc.lab {keys['ed3']}\n")
    with caplog.at_level(logging.WARNING, logger="remoteenv.transport.hostkeys"):
        entries = hostkeys.parse_file(known)
    assert [e.line for e in entries] == [1, 3]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{known}:2: ")
    # and the file as a whole still verifies the other hosts
    assert hostkeys.KnownHosts(entries).check("b.lab", pkey(keys["ed2"])).status == "ok"


def test_odd_but_valid_lines_are_read(keys, tmp_path, caplog):
    """Latin-1 comments, CRLF line ends, tabs, a stray form feed: OpenSSH reads these lines."""
    data = (b"# comment\n\n   \n"
            + f"a.lab {keys['ed1']} caf\xe9".encode("latin-1") + b"\n"
            + f"b.lab {keys['ed2']}\r\n".encode()
            + f"\tc.lab\t{keys['ed3']}\tcomment\x0cwith form feed\n".encode()
            + f"d.lab {keys['ecdsa']}\n".encode()
            + f"e.lab rsa-sha2-512 {keys['rsa'].split()[1]}".encode())  # no final newline
    known = write(tmp_path / "known_hosts", data)
    with caplog.at_level(logging.WARNING):
        parsed = hostkeys.KnownHosts(hostkeys.parse_file(known))
    assert not caplog.records
    for name, key, line in [("a.lab", "ed1", 4), ("b.lab", "ed2", 5), ("c.lab", "ed3", 6), ("d.lab", "ecdsa", 7)]:
        verdict = parsed.check(name, pkey(keys[key]))
        assert (verdict.status, verdict.entry.line) == ("ok", line)
    assert parsed.check("e.lab", pkey(keys["rsa"])).status == "ok"


@needs_ssh_keygen
def test_names_match_as_ssh_keygen_finds_them(keys, tmp_path):
    """Patterns, negation, case, ports and hashed names: the lines OpenSSH finds for a name are ours."""
    ed1, ed2 = keys["ed1"], keys["ed2"]
    plain = [
        f"a.lab {ed1}", f"*.lab {ed2}", f"!b.lab,*.lab {ed1}", f"h?.lab {ed1}", f"[a.lab]:2222 {ed2}",
        f"[*.lab]:* {ed1}", f"Upper.Example {ed2}", f"x.lab,a.lab,10.0.0.1 {ed1}", f"* {ed2}",
        f"[10.0.0.1]:2222,[10.0.0.2]:2222 {ed1}", f"a.lab* {ed2}", f"!* {ed1}",
    ]
    known = write(tmp_path / "known_hosts", "\n".join(plain) + "\n")
    hashed = write(tmp_path / "hashed", "\n".join(p for p in plain if "*" not in p and "?" not in p) + "\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(hashed)], check=True, capture_output=True)
    # ssh lowercases the name it looks up (ssh-keygen -F does not for hashed lines): lowercase names here
    names = ["a.lab", "b.lab", "h1.lab", "h12.lab", "[a.lab]:2222", "[b.lab]:22", "upper.example",
             "10.0.0.1", "[10.0.0.1]:2222", "[10.0.0.2]:2222", "a.lab.evil", "other"]
    for path in (known, hashed):
        parsed = hostkeys.KnownHosts(hostkeys.parse_file(path))
        for name in names:
            assert lines_of(parsed.lookup(name)) == ssh_keygen_finds(name, path), (path.name, name)
        assert parsed.lookup("UPPER.Example") == parsed.lookup("upper.example") != ()


def ssh_keygen_finds(name: str, path: Path) -> list[int]:
    out = subprocess.run(["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True, text=True).stdout
    return [int(line.split("found: line ")[1].split()[0]) for line in out.splitlines() if "found: line" in line]


# ---------------------------------------------------------------- checking a key


def test_verdicts(keys, tmp_path):
    user = write(tmp_path / "user", f"a.lab {keys['ed1']}\nb.lab {keys['ed2']}\nb.lab {keys['ecdsa']}\n"
                                    f"@cert-authority *.lab {keys['ed3']}\nd.lab {keys['ecdsa']}\n")
    system = write(tmp_path / "system", f"@revoked * {keys['ed2']}\n")
    known = hostkeys.KnownHosts.from_files([user, system])
    assert known.check("a.lab", pkey(keys["ed1"])).status == "ok"
    changed = known.check("a.lab", pkey(keys["ed3"]))
    assert (changed.status, changed.entry.where) == ("changed", f"{user}:1")
    # revoked in another file still wins over a plain line that matches
    revoked = known.check("b.lab", pkey(keys["ed2"]))
    assert (revoked.status, revoked.entry.where) == ("revoked", f"{system}:1")
    # a changed key is named by the line of its own type when there is one
    assert known.check("b.lab", pkey(keys["ed3"])).entry.line == 3 - 1
    assert known.check("b.lab", pkey(keys["ecdsa"])).status == "ok"
    # another type known: OpenSSH calls it changed too (HOST_CHANGED), not new
    assert known.check("d.lab", pkey(keys["ed1"])).status == "changed"
    # a @cert-authority line is no known key, even when it holds the very key the host shows
    new = known.check("c.lab", pkey(keys["ed3"]))
    assert new.status == "new" and [e.line for e in new.authorities] == [4]
    assert known.check("c.lab", pkey(keys["ed2"])).status == "revoked"


def test_paramiko_is_offered_the_known_key_type_first(keys, tmp_path):
    known = hostkeys.KnownHosts.from_files([write(tmp_path / "k", (
        f"a.lab {keys['rsa']}\na.lab {keys['ed1']}\n@revoked a.lab {keys['ecdsa']}\n"
        f"b.lab {keys['rsa']}\n@cert-authority c.lab {keys['ed1']}\n"
        "d.lab sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n"))])
    client = paramiko.SSHClient()
    system = hostkeys._SystemHostKeys(client, known)
    assert system.get("a.lab").keys() == ["ssh-ed25519", "ssh-rsa"]
    assert system.get("b.lab").keys() == ["ssh-rsa"]
    assert system.get("c.lab") is None  # CA lines only: the policy decides (new)
    assert system.get("d.lab") is None  # a type paramiko cannot negotiate: the policy decides (changed)


class _Client:
    """Just what VerifyPolicy uses of an SSHClient."""

    def __init__(self, known: hostkeys.KnownHosts) -> None:
        self._system_host_keys = hostkeys._SystemHostKeys(self, known)  # type: ignore[arg-type]
        self.added = paramiko.HostKeys()

    def get_host_keys(self) -> paramiko.HostKeys:
        return self.added


def test_policy_errors_name_the_line_and_the_entry_as_stored(keys, tmp_path):
    path = write(tmp_path / "known_hosts", f"[a.lab]:2222 {keys['ed1']}\n@revoked [a.lab]:2222 {keys['ed2']}\n"
                                           f"a.lab,b.lab {keys['ed1']}\n")
    client = _Client(hostkeys.KnownHosts.from_files([path]))
    policy = hostkeys.VerifyPolicy("gpu-box", accept_new=True)
    with pytest.raises(HostKeyMismatch) as changed:
        policy.verify(client, "[a.lab]:2222", pkey(keys["ed3"]))
    assert changed.value.exit_code == 3 and f"{path}:1" in changed.value.message
    assert f"ssh-keygen -R '[a.lab]:2222' -f {path}" in changed.value.hint
    with pytest.raises(hostkeys.HostKeyRevoked) as revoked:
        policy.verify(client, "[a.lab]:2222", pkey(keys["ed2"]))
    assert revoked.value.exit_code == 3
    assert "REVOKED" in revoked.value.message and f"{path}:2" in revoked.value.message
    assert revoked.value.message.startswith("gpu-box: ")
    with pytest.raises(HostKeyMismatch) as shared:
        policy.verify(client, "b.lab", pkey(keys["ed3"]))
    assert f"edit {path}:3 by hand" in shared.value.hint and "ssh-keygen -R" not in shared.value.hint


@needs_ssh_keygen
@pytest.mark.parametrize("name", ["10.0.0.1", "[10.0.0.1]:2222"])
def test_the_removal_hint_for_a_hashed_entry_works_as_printed(name, keys, tmp_path):
    path = write(tmp_path / "known_hosts", f"other {keys['ed2']}\n{name} {keys['ed1']}\n# kept\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    client = _Client(hostkeys.KnownHosts.from_files([path]))
    with pytest.raises(HostKeyMismatch) as changed:
        hostkeys.VerifyPolicy("box", accept_new=False).verify(client, name, pkey(keys["ed3"]))
    hint = changed.value.hint
    assert f"hashed entry at {path}:2" in hint
    command = hint.split("(", 1)[1].rsplit(")", 1)[0]
    assert command.startswith("ssh-keygen -R ")
    subprocess.run(command, shell=True, check=True, capture_output=True)
    assert ssh_keygen_finds(name, path) == []
    assert ssh_keygen_finds("other", path) == [1] and "# kept" in path.read_text()


def test_unknown_key_notes_a_certificate_authority(keys, tmp_path):
    path = write(tmp_path / "known_hosts", f"@cert-authority *.lab {keys['ed2']}\n")
    client = _Client(hostkeys.KnownHosts.from_files([path]))
    with pytest.raises(HostKeyUnknown) as unknown:
        hostkeys.VerifyPolicy("box", accept_new=False).verify(client, "a.lab", pkey(keys["ed1"]))
    assert f"{path}:1 trusts a certificate authority" in unknown.value.message


# ---------------------------------------------------------------- files and cache


def test_files_read_and_their_overrides(tmp_path, monkeypatch):
    home = tmp_path / "home"
    assert hostkeys.user_files() == [home / ".ssh/known_hosts", home / ".ssh/known_hosts2"]
    assert hostkeys.user_files(["~/kh1", "/etc/kh2"]) == [home / "kh1", Path("/etc/kh2")]
    assert hostkeys.user_files(["none"]) == []
    monkeypatch.delenv("REMOTEENV_GLOBAL_KNOWN_HOSTS")
    assert hostkeys.global_files() == [Path("/etc/ssh/ssh_known_hosts"), Path("/etc/ssh/ssh_known_hosts2")]
    assert hostkeys.global_files(["/dev/null"]) == [Path("/dev/null")]
    monkeypatch.setenv("REMOTEENV_GLOBAL_KNOWN_HOSTS", os.pathsep.join(["/a", "/b"]))
    assert hostkeys.global_files(["/c"]) == [Path("/a"), Path("/b")]
    monkeypatch.setenv("REMOTEENV_KNOWN_HOSTS", str(tmp_path / "only"))
    assert hostkeys.user_files(["~/kh1"]) == [tmp_path / "only"]
    assert hostkeys.store_path(["~/kh1"]) == tmp_path / "only"
    monkeypatch.delenv("REMOTEENV_KNOWN_HOSTS")
    assert hostkeys.store_path(["~/kh1", "~/kh2"]) == home / "kh1"
    with pytest.raises(ConfigError):
        hostkeys.store_path(["none"])


def test_ssh_config_values_become_files_as_openssh_reads_them(tmp_path):
    tokens = hostkeys.ssh_tokens("gpu", "10.0.0.1", 2222, "alice")
    home = str(tmp_path / "home")
    assert hostkeys.option_files(None, tokens=tokens) is None
    assert hostkeys.option_files('~/kh "/with space/kh" %d/kh_%h_%p_%r_%n %%x', tokens=tokens) == [
        "~/kh", "/with space/kh", f"{home}/kh_10.0.0.1_2222_alice_gpu", "%x"]
    assert hostkeys.option_files("/etc/%h", tokens=None) == ["/etc/%h"]  # GlobalKnownHostsFile has no tokens
    assert hostkeys.option_files("none", tokens=tokens) == ["none"]
    assert hostkeys.user_files(hostkeys.option_files("none", tokens=tokens)) == []
    for bad in ("%q/kh", "'unclosed"):
        with pytest.raises(ConfigError):
            hostkeys.option_files(bad, tokens=tokens)


def test_every_file_is_read_in_order(keys, tmp_path, monkeypatch):
    home = tmp_path / "home"
    user = write(home / ".ssh/known_hosts", f"a.lab {keys['ed1']}\n")
    write(home / ".ssh/known_hosts2", f"b.lab {keys['ed1']}\n")
    system = write(tmp_path / "ssh_known_hosts", f"c.lab {keys['ed1']}\n")
    write(hostkeys.own_known_hosts(), f"d.lab {keys['ed1']}\n")
    monkeypatch.setenv("REMOTEENV_GLOBAL_KNOWN_HOSTS", str(system))
    client = paramiko.SSHClient()
    known = hostkeys.load_into(client)
    assert [e.path for e in known.entries] == [str(user), str(home / ".ssh/known_hosts2"), str(system),
                                              str(hostkeys.own_known_hosts())]
    monkeypatch.delenv("REMOTEENV_GLOBAL_KNOWN_HOSTS")
    configured = hostkeys.load_into(client, user_files=[str(system)], global_files=[])
    assert [e.names for e in configured.entries] == ["c.lab", "d.lab"]


def test_the_parse_is_cached_until_a_file_changes(keys, tmp_path, monkeypatch):
    parse_file = hostkeys.parse_file
    path = write(tmp_path / "home/.ssh/known_hosts", f"a.lab {keys['ed1']}\n")
    first = hostkeys.load()
    assert hostkeys.load() is first
    calls = []
    monkeypatch.setattr(hostkeys, "parse_file", lambda *a, **k: calls.append(a) or [])
    hostkeys.load()
    assert calls == []  # no second parse while nothing changed
    monkeypatch.setattr(hostkeys, "parse_file", parse_file)
    hostkeys.record(path, "b.lab", pkey(keys["ed2"]))
    again = hostkeys.load()
    assert again is not first and again.check("b.lab", pkey(keys["ed2"])).status == "ok"


# ---------------------------------------------------------------- writing (accept-new)


@pytest.mark.parametrize("name", ["*", "[*]:2222", "a b", "a\tb", "a,b", "h?.lab", "!a", "a|b", "#a", "a\x01",
                                  "a\x7f", "@revoked", "", "a\u2028b"])
def test_accept_new_refuses_names_known_hosts_would_misread(name, keys, tmp_path):
    store = tmp_path / "known_hosts"
    with pytest.raises(ConfigError) as refused:
        hostkeys.record(store, name, pkey(keys["ed1"]), label="box")
    assert refused.value.exit_code == 2 and refused.value.hint
    assert not store.exists()


@needs_ssh_keygen
@pytest.mark.parametrize("hashed", [False, True])
@pytest.mark.parametrize("name", ["a.lab", "Mixed.Case.Lab", "[10.0.0.1]:2222", "[::1]:2200", "fe80::1"])
def test_accept_new_appends_one_line_openssh_finds(name, hashed, keys, tmp_path):
    before = (b"# my hosts\n@cert-authority *.lab " + keys["ed2"].encode() + b"\n"
              + b"|1|AAAAAAAAAAAAAAAAAAAAAAAAAAA=|AAAAAAAAAAAAAAAAAAAAAAAAAAA= " + keys["ed3"].encode()
              + b"\nold.lab " + keys["ed3"].encode() + b" caf\xe9")  # Latin-1, no final newline
    store = write(tmp_path / "known_hosts", before)
    line = hostkeys.record(store, name, pkey(keys["ed1"]), hashed=hashed)
    after = store.read_bytes()
    assert after == before + b"\n" + line.encode()  # nothing before it changed, byte for byte
    assert line.endswith("\n") and line.count("\n") == 1
    assert (line.startswith("|1|") == hashed) and (name.lower() in line) != hashed
    assert ssh_keygen_finds(name.lower(), store)[-1] == 5  # (line 2, the CA line, names *.lab)
    assert hostkeys.KnownHosts.from_files([store]).check(name, pkey(keys["ed1"])).status == "ok"


def test_accept_new_leaves_modes_alone_and_creates_private(keys, tmp_path):
    ssh_dir = tmp_path / "home/.ssh"
    hostkeys.record(ssh_dir / "known_hosts", "a.lab", pkey(keys["ed1"]))
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((ssh_dir / "known_hosts").stat().st_mode) == 0o600
    os.chmod(ssh_dir, 0o755)
    os.chmod(ssh_dir / "known_hosts", 0o644)
    hostkeys.record(ssh_dir / "known_hosts", "b.lab", pkey(keys["ed2"]))
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o755
    assert stat.S_IMODE((ssh_dir / "known_hosts").stat().st_mode) == 0o644
    assert (ssh_dir / "known_hosts").read_text().count("\n") == 2


def test_policy_accepts_new_into_its_store_hashed(keys, tmp_path):
    store = tmp_path / "kh"
    client = _Client(hostkeys.KnownHosts([]))
    with pytest.raises(HostKeyUnknown) as unknown:
        hostkeys.VerifyPolicy("box", accept_new=False, store=store).verify(client, "a.lab", pkey(keys["ed1"]))
    assert hostkeys.fingerprint(pkey(keys["ed1"])) in unknown.value.message and not store.exists()
    hostkeys.VerifyPolicy("box", accept_new=True, store=store, hashed=True).verify(client, "a.lab",
                                                                                   pkey(keys["ed1"]))
    assert store.read_text().startswith("|1|") and client.added.lookup("a.lab")
    # without a store: the first UserKnownHostsFile, and `none` is an error only when recording
    first = tmp_path / "first"
    hostkeys.VerifyPolicy("box", accept_new=True, user_files=[str(first), "/x"]).verify(client, "b.lab",
                                                                                      pkey(keys["ed2"]))
    assert first.read_text().startswith("b.lab ")
    nowhere = hostkeys.VerifyPolicy("box", accept_new=True, user_files=["none"])
    with pytest.raises(ConfigError):
        nowhere.verify(client, "c.lab", pkey(keys["ed3"]))
