"""known_hosts against real hosts: remoteenv accepts and refuses exactly where OpenSSH's ssh does.

Each case writes a known_hosts file, then asks both `ssh -o StrictHostKeyChecking=yes` and remoteenv's
host-key check (paramiko with hostkeys.load_into and VerifyPolicy) to connect to the same testbed host.
The CLI tests then run `remoteenv probe` as a person would: revoked keys, odd lines, accept-new.
"""

from __future__ import annotations

import base64
import os
import shlex
import stat
import struct
import subprocess
from pathlib import Path

import paramiko
import pytest
from cli_runner import remoteenv

from remoteenv.errors import HostKeyMismatch, HostKeyUnknown
from remoteenv.transport import hostkeys

pytestmark = pytest.mark.integration


def other_key(tmp_path: Path) -> str:
    """A fresh ed25519 public key ("type base64") that no host has."""
    path = tmp_path / "other_key"
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return " ".join(path.with_name("other_key.pub").read_text().split()[:2])


def short_ed25519(key: str) -> str:
    """The key with a 31-byte ed25519 public part."""
    blob = base64.b64decode(key.split()[1])
    return f"ssh-ed25519 {base64.b64encode(blob[:-36] + struct.pack('>I', 31) + blob[-32:-1]).decode()}"


def fuzz_lines(name: str, key: str) -> list[bytes]:
    """The issue's fuzz list, each naming the host: none of them is a usable line for OpenSSH."""
    return [
        f"{name} ssh-ed25519 AAAA!!!!".encode(),  # bad base64
        f"|1|| {key}".encode(),  # hashed name with nothing in it
        f"{name} {short_ed25519(key)}".encode(),  # a 31-byte ed25519 key
        f"@bogus {name} {key}".encode(),  # a marker OpenSSH does not know
    ]


def cases(name: str, key: str, other: str) -> dict[str, list[bytes]]:
    """known_hosts contents for a host stored as `name` whose key is `key`."""
    lines = {
        "plain": [f"{name} {key}"],
        "changed": [f"{name} {other}"],
        "revoked": [f"{name} {key}", f"@revoked {name} {key}"],
        "revoked for every host": [f"@revoked * {key}", f"{name} {key}"],
        "another key revoked": [f"@revoked * {other}", f"{name} {key}"],
        "cert-authority only": [f"@cert-authority * {key}"],
        "cert-authority and plain": [f"@cert-authority * {other}", f"{name} {key}"],
        "wildcard": [f"{name[:-1]}? {key}"],
        "negated": [f"!{name},* {key}"],
        "in a list": [f"other.lab,{name} {key}"],
    }
    found = {case: [line.encode() for line in body] for case, body in lines.items()}
    found["latin-1 comment"] = [f"{name} {key} ".encode() + "café".encode("latin-1")]
    found["fuzz, then plain"] = [*fuzz_lines(name, key), f"{name} {key}".encode()]
    found["fuzz only"] = fuzz_lines(name, key)
    return found


EXPECTED = {  # what OpenSSH decides; the test asks it each time, this only guards against both drifting
    "plain": "ok", "changed": "changed", "revoked": "revoked", "revoked for every host": "revoked",
    "another key revoked": "ok", "cert-authority only": "new", "cert-authority and plain": "ok",
    "wildcard": "ok", "negated": "new", "in a list": "ok", "latin-1 comment": "ok",
    "fuzz, then plain": "ok", "fuzz only": "new", "hashed": "ok", "hashed, changed": "changed",
}


def openssh_says(bed, host, known: Path) -> str:
    result = subprocess.run(
        ["ssh", "-F", str(bed.client.ssh_config), "-o", f"UserKnownHostsFile={known}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
         "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "CheckHostIP=no", host.name, "true"],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode == 0:
        return "ok"
    if "REVOKED HOST KEY" in result.stderr:
        return "revoked"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr:
        return "changed"
    if "host key is known" in result.stderr or "Host key verification failed" in result.stderr:
        return "new"
    return f"other: {result.stderr.strip()}"


def remoteenv_says(bed, host, known: Path) -> str:
    client = paramiko.SSHClient()
    hostkeys.load_into(client, user_files=[known], global_files=[])
    client.set_missing_host_key_policy(hostkeys.VerifyPolicy(host.name, accept_new=False))
    try:
        client.connect(host.address, host.port, username=host.user, key_filename=str(bed.client.key),
                       look_for_keys=False, allow_agent=False, timeout=30)
    except hostkeys.HostKeyRevoked:
        return "revoked"
    except HostKeyMismatch:
        return "changed"
    except HostKeyUnknown:
        return "new"
    finally:
        client.close()
    return "ok"


@pytest.fixture
def own_files(tmp_path, monkeypatch):
    """The in-process check reads only the files a test names (no real home, state dir or /etc)."""
    monkeypatch.delenv("REMOTEENV_KNOWN_HOSTS", raising=False)
    monkeypatch.delenv("REMOTEENV_GLOBAL_KNOWN_HOSTS", raising=False)
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.parametrize("case", list(EXPECTED))
def test_accepts_and_refuses_as_openssh_does(case, testbed, tmp_path, own_files):
    host = testbed.host("h02")
    name, key = host.host_key_line.split(" ", 1)
    body = cases(name, key, other_key(tmp_path))[{"hashed": "plain", "hashed, changed": "changed"}.get(case, case)]
    known = tmp_path / "known_hosts"
    known.write_bytes(b"\n".join(body) + b"\n")
    if case.startswith("hashed"):
        subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
        assert name not in known.read_text()
    openssh = openssh_says(testbed, host, known)
    assert openssh == EXPECTED[case], f"OpenSSH itself changed its mind about {case!r}"
    assert remoteenv_says(testbed, host, known) == openssh


# ---------------------------------------------------------------- the CLI


def cli_env(bed, user_file: Path, global_file: Path | None = None) -> dict[str, str]:
    env = bed.client.env()
    env["REMOTEENV_KNOWN_HOSTS"] = str(user_file)
    env["REMOTEENV_GLOBAL_KNOWN_HOSTS"] = str(global_file) if global_file else ""
    return env


def test_a_revoked_key_is_refused_naming_its_line(testbed, tmp_path):
    host = testbed.host("h01")
    name, key = host.host_key_line.split(" ", 1)
    user = tmp_path / "known_hosts"
    user.write_text(f"# mine\n{host.host_key_line}\n@revoked {name} {key}\n")
    refused = remoteenv("probe", host.name, env=cli_env(testbed, user))
    assert refused.code == 3, refused.err
    assert refused.err.startswith(f"error: {host.name}: HOST KEY REVOKED")
    assert f"{user}:3" in refused.err and host.host_key_fingerprint in refused.err
    assert "Traceback" not in refused.err and "internal error" not in refused.err
    # the system-wide file's @revoked counts as well; --accept-new-host-key changes nothing
    system = tmp_path / "ssh_known_hosts"
    system.write_text(f"@revoked * {key}\n")
    user.write_text(f"{host.host_key_line}\n")
    refused = remoteenv("probe", host.name, "--accept-new-host-key", env=cli_env(testbed, user, system))
    assert refused.code == 3 and f"{system}:1" in refused.err
    assert user.read_text() == f"{host.host_key_line}\n"
    assert remoteenv("probe", host.name, "--json", env=cli_env(testbed, user)).code == 0


def test_the_system_known_hosts_file_is_read(testbed, tmp_path):
    host = testbed.host("h01")
    user, system = tmp_path / "known_hosts", tmp_path / "ssh_known_hosts"
    user.write_text("")
    system.write_text(f"{host.host_key_line}\n")
    assert remoteenv("probe", host.name, "--json", env=cli_env(testbed, user, system)).code == 0
    assert remoteenv("probe", host.name, env=cli_env(testbed, user)).code == 3


def test_odd_lines_do_not_break_a_probe_and_are_named(testbed, tmp_path):
    host = testbed.host("h03")
    name, key = host.host_key_line.split(" ", 1)
    known = tmp_path / "known_hosts"
    other = other_key(tmp_path)
    lines = [b"# comment", f"@cert-authority *.lab {other}".encode(), *fuzz_lines(name, key),
             f"other.lab {other} ".encode() + "café".encode("latin-1"), host.host_key_line.encode()]
    known.write_bytes(b"\n".join(lines) + b"\n")
    result = remoteenv("probe", host.name, "--json", env=cli_env(testbed, known))
    assert result.code == 0, result.err
    assert result.json()["user"] == host.user
    for number in (3, 4, 5, 6):  # the four fuzz lines, each named once
        assert result.err.count(f"{known}:{number}:") == 1, result.err
    assert f"{known}:7" not in result.err and "Traceback" not in result.err


def test_accept_new_keeps_every_existing_byte(make_testbed, tmp_path):
    bed = make_testbed(1, known=False)
    host = bed.hosts[0]
    known = bed.client.known_hosts
    before = (b"# my hosts, as OpenSSH and I left them\n"
              + f"@cert-authority *.example {other_key(tmp_path)}\n".encode()
              + f"@revoked * {other_key(tmp_path)}\n".encode()
              + f"other.example {other_key(tmp_path)} caf".encode() + "é".encode("latin-1") + b"\n"
              + f"|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= {other_key(tmp_path)}".encode())
    known.write_bytes(before)  # no newline at the end
    os.chmod(known, 0o644)
    os.chmod(known.parent, 0o755)
    accepted = remoteenv("probe", host.name, "--accept-new-host-key", "--json", env=bed.client.env())
    assert accepted.code == 0, accepted.err
    after = known.read_bytes()
    assert after.startswith(before + b"\n")
    added = after[len(before) + 1:].decode()
    assert added.endswith("\n") and added.count("\n") == 1
    name, key = added.split(" ", 1)
    # Hashed when ssh's config says HashKnownHosts yes (Debian's /etc/ssh/ssh_config does), as ssh would.
    assert key.strip() == host.host_key_line.split(" ", 1)[1]
    assert name == host.host_key_line.split(" ", 1)[0] or name.startswith("|1|")
    assert stat.S_IMODE(known.stat().st_mode) == 0o644 and stat.S_IMODE(known.parent.stat().st_mode) == 0o755
    # OpenSSH trusts the host with the file as it now is
    assert subprocess.run([*bed.ssh_argv(host, "true"), "-o", "StrictHostKeyChecking=yes"],
                          capture_output=True).returncode == 0
    again = remoteenv("probe", host.name, "--json", env=bed.client.env())
    assert again.code == 0 and known.read_bytes() == after


def test_a_hashed_entry_is_named_and_the_hint_removes_it(make_testbed):
    bed = make_testbed(1)
    host = bed.hosts[0]
    known = bed.client.known_hosts
    name = host.host_key_line.split()[0]
    known.write_text(f"# keep me\n{host.host_key_line}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    host.regenerate_host_key()
    changed = remoteenv("probe", host.name, env=bed.client.env())
    assert changed.code == 3 and "HOST KEY CHANGED" in changed.err
    assert f"hashed entry at {known}:2" in changed.err
    command = changed.err.split("(ssh-keygen -R ", 1)[1].split(")", 1)[0]
    assert shlex.split(command)[0] == name
    subprocess.run(f"ssh-keygen -R {command}", shell=True, check=True, capture_output=True)
    assert subprocess.run(["ssh-keygen", "-F", name, "-f", str(known)], capture_output=True).returncode != 0
    assert known.read_text().startswith("# keep me\n")


def test_hostname_star_is_never_recorded(make_testbed):
    """`HostName *` reached through a ProxyCommand: a `*` line would make OpenSSH trust that key for
    every host, so accept-new refuses the name."""
    bed = make_testbed(1, known=False)
    host = bed.hosts[0]
    config = bed.client.ssh_config.read_text()
    bed.client.ssh_config.write_text(
        f"Host star\n  HostName *\n  User {host.user}\n  IdentityFile {bed.client.key}\n"
        f"  ProxyCommand ssh -F {bed.client.ssh_config} -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -W {host.address}:{host.port} {host.name}\n\n" + config)
    refused = remoteenv("probe", "star", "--accept-new-host-key", env=bed.client.env())
    assert refused.code == 2, refused.err
    assert "will not record a host key for the name '*'" in refused.err
    assert bed.client.known_hosts.read_text() == ""


# ---------------------------------------------------------------- ssh config's known_hosts settings

def test_user_and_global_known_hosts_files_from_ssh_config(testbed, tmp_path):
    host = testbed.host("h02")
    user, system = tmp_path / "user_kh", tmp_path / "system_kh"
    user.write_text(f"{host.host_key_line}\n")
    system.write_text(f"@revoked * {host.host_key_line.split(' ', 1)[1]}\n")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("")
    (home / ".ssh" / "config").write_text(
        f"Host a b\n  HostName {host.address}\n  Port {host.port}\n  User {host.user}\n"
        f"  IdentityFile {testbed.client.key}\n  UserKnownHostsFile {user}\n"
        f"Host a\n  GlobalKnownHostsFile /dev/null\nHost b\n  GlobalKnownHostsFile {system}\n")
    env = {**testbed.client.env(), "HOME": str(home)}
    assert remoteenv("probe", "a", "--json", env=env).code == 0
    refused = remoteenv("probe", "b", env=env)
    assert refused.code == 3 and f"{system}:1" in refused.err


def test_hash_known_hosts_from_ssh_config(make_testbed):
    bed = make_testbed(1, known=False)
    host = bed.hosts[0]
    bed.client.ssh_config.write_text("HashKnownHosts yes\n" + bed.client.ssh_config.read_text())
    assert remoteenv("probe", host.name, "--accept-new-host-key", "--json", env=bed.client.env()).code == 0
    written = bed.client.known_hosts.read_text()
    assert written.startswith("|1|") and host.address not in written
    found = subprocess.run(["ssh-keygen", "-F", host.host_key_line.split()[0], "-f", str(bed.client.known_hosts)],
                           capture_output=True)
    assert found.returncode == 0
