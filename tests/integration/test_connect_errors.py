"""Host keys, unreachable hosts and bad keys: typed one-line errors and exit code 3."""

from __future__ import annotations

import contextlib
import subprocess
import time

import pytest
from cli_runner import remoteenv
from testbed import needs_netns

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def ssh_config_with(testbed, before: str = "", after: str = ""):
    """The shared testbed's ssh config with extra blocks (first match wins in ssh config), restored after."""
    config = testbed.client.ssh_config.read_text()
    testbed.client.ssh_config.write_text(before + config + after)
    try:
        yield
    finally:
        testbed.client.ssh_config.write_text(config)


def connection_seen_by(alias: str, env: dict[str, str], monkeypatch) -> list[str]:
    """SSH_CONNECTION on the host `alias` reaches: client address, client port, server address, port."""
    from remoteenv import api

    monkeypatch.setenv("HOME", env["HOME"])
    with api.open_host(alias) as conn:
        return conn.run("echo $SSH_CONNECTION", check=True).stdout.split()


def test_unknown_host_key_refused_then_accepted(make_testbed):
    bed = make_testbed(1, known=False)
    host = bed.hosts[0]
    env = bed.client.env()
    refused = remoteenv("probe", host.name, env=env)
    assert refused.code == 3
    assert host.host_key_fingerprint in refused.err
    assert "--accept-new-host-key" in refused.err
    assert "Traceback" not in refused.err
    assert host.host_key_line.split()[2] not in bed.client.known_hosts.read_text()

    accepted = remoteenv("probe", host.name, "--accept-new-host-key", "--json", env=env)
    assert accepted.code == 0, accepted.err
    assert host.host_key_line.split()[2] in bed.client.known_hosts.read_text()
    again = remoteenv("probe", host.name, "--json", env=env)
    assert again.code == 0, again.err


def test_changed_host_key_always_refused(make_testbed):
    bed = make_testbed(1)
    host = bed.hosts[0]
    env = bed.client.env()
    assert remoteenv("probe", host.name, "--json", env=env).code == 0
    old_line = host.host_key_line
    host.regenerate_host_key()
    for extra in ([], ["--accept-new-host-key"]):
        result = remoteenv("probe", host.name, *extra, env=env)
        assert result.code == 3
        assert "HOST KEY CHANGED" in result.err
        assert host.host_key_fingerprint in result.err
        assert f"{bed.client.known_hosts}:1" in result.err
    assert old_line.split()[2] in bed.client.known_hosts.read_text()
    assert host.host_key_line.split()[2] not in bed.client.known_hosts.read_text()


def test_host_without_sshd_is_unreachable(make_testbed):
    bed = make_testbed(2, down={"h02": "nosshd"})
    result = remoteenv("probe", "h02", env=bed.client.env())
    assert result.code == 3
    assert result.err.startswith("error: h02: connection refused")
    assert "hint:" in result.err and "Traceback" not in result.err


def test_cut_link_times_out(make_testbed):
    bed = make_testbed(2, down={"h02": "cut"})
    env = {**bed.client.env(), "REMOTEENV_CONNECT_TIMEOUT": "2"}
    result = remoteenv("probe", "h02", env=env)
    assert result.code == 3
    assert "h02: no answer" in result.err
    assert "Traceback" not in result.err
    # Without the variable, ssh config's ConnectTimeout decides how long to wait.
    config = bed.client.ssh_config.read_text()
    bed.client.ssh_config.write_text("Host h02\n  ConnectTimeout 1\n" + config)
    started = time.monotonic()
    quick = remoteenv("probe", "h02", env=bed.client.env())
    assert quick.code == 3 and "h02: no answer" in quick.err
    assert time.monotonic() - started < 8  # the default would wait 10 s
    # the other host is not affected
    assert remoteenv("probe", "h01", "--json", env=env).code == 0


def test_wrong_key_is_auth_failure(testbed, tmp_path):
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    host = testbed.host("h02")
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(f"hosts:\n  wrongkey:\n    hostname: {host.address}\n    user: {host.user}\n"
                         f"    port: {host.port}\n    identity_file: {other_key}\n")
    env = {**testbed.client.env(), "REMOTEENV_NO_AGENT": "1"}
    # the default key in ~/.ssh would work: hide it so only the wrong one is offered
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "known_hosts").write_text(testbed.client.known_hosts.read_text())
    result = remoteenv("-i", str(inventory), "probe", "wrongkey", env=env)
    assert result.code == 3
    assert "authentication failed" in result.err and host.user in result.err


def test_proxy_jump_through_another_host(testbed, monkeypatch):
    jump, target = testbed.host("h01"), testbed.host("h02")
    with ssh_config_with(testbed, after=f"\nHost behind-h01\n  HostName {target.address}\n  User {target.user}\n"
                         f"  Port {target.port}\n  IdentityFile {testbed.client.key}\n  ProxyJump h01\n"):
        env = testbed.client.env()
        result = remoteenv("probe", "behind-h01", "--json", env=env)
        assert result.code == 0, result.err
        assert result.json()["user"] == target.user
        # the target saw the connection come from the jump host's address
        seen = connection_seen_by("behind-h01", env, monkeypatch)
        assert seen[0] == jump.address and seen[2] == target.address


def test_malformed_inventory_names_file_and_line(testbed, tmp_path):
    bad = tmp_path / "hosts.yaml"
    bad.write_text("hosts:\n  a:\n    hostname: x\n    prot: 22\n")
    result = remoteenv("-i", str(bad), "probe", "a", env=testbed.client.env())
    assert result.code == 2
    assert f"{bad}:4" in result.err and "prot" in result.err and "Traceback" not in result.err
    bad.write_text("hosts:\n  a: [unclosed\n")
    result = remoteenv("-i", str(bad), "hosts", env=testbed.client.env())
    assert result.code == 2 and f"{bad}:" in result.err


def test_identities_only_offers_just_the_listed_key(testbed, tmp_path):
    """With IdentitiesOnly yes, a wrong IdentityFile fails even though the default key would work."""
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    host = testbed.host("h02")
    default_key = testbed.client.home / ".ssh" / "id_ed25519"
    assert default_key.exists()
    block = f"  HostName {host.address}\n  User {host.user}\n  Port {host.port}\n  IdentityFile {other_key}\n"
    with ssh_config_with(testbed, before=f"Host only-listed\n{block}  IdentitiesOnly yes\nHost any-key\n{block}\n"):
        env = {**testbed.client.env(), "REMOTEENV_NO_AGENT": "1"}
        refused = remoteenv("probe", "only-listed", env=env)
        assert refused.code == 3 and "authentication failed" in refused.err
        fallback = remoteenv("probe", "any-key", "--json", env=env)
        assert fallback.code == 0, fallback.err
        assert fallback.json()["user"] == host.user


def test_missing_identity_file_is_named(testbed, tmp_path):
    host = testbed.host("h02")
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(f"hosts:\n  nokey:\n    hostname: {host.address}\n    user: {host.user}\n"
                         f"    port: {host.port}\n    identity_file: {tmp_path}/missing_key\n")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(testbed.client.known_hosts.read_text())
    env = {**testbed.client.env(), "HOME": str(home), "REMOTEENV_NO_AGENT": "1"}
    result = remoteenv("-i", str(inventory), "probe", "nokey", env=env)
    assert result.code == 3
    assert f"no such identity file: {tmp_path}/missing_key" in result.err
    assert "Traceback" not in result.err


def test_hashed_known_hosts(make_testbed):
    """known_hosts written with HashKnownHosts (Ubuntu's default) verifies, and a change names its line."""
    bed = make_testbed(1)
    host = bed.hosts[0]
    subprocess.run(["ssh-keygen", "-H", "-f", str(bed.client.known_hosts)], check=True, capture_output=True)
    assert host.address not in bed.client.known_hosts.read_text()
    env = bed.client.env()
    assert remoteenv("probe", host.name, "--json", env=env).code == 0
    host.regenerate_host_key()
    changed = remoteenv("probe", host.name, env=env)
    assert changed.code == 3 and "HOST KEY CHANGED" in changed.err
    assert f"{bed.client.known_hosts}:1" in changed.err


def test_port_that_never_greets_is_a_timeout(tmp_path):
    """Something accepts the TCP connection but never speaks SSH (a hung sshd, a wrong port)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        inventory = tmp_path / "hosts.yaml"
        inventory.write_text(f"hosts:\n  silent:\n    hostname: 127.0.0.1\n    port: {port}\n")
        env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "REMOTEENV_CONNECT_TIMEOUT": "1"}
        result = remoteenv("-i", str(inventory), "probe", "silent", env=env)
    finally:
        listener.close()
    assert result.code == 3
    assert result.err.startswith(f"error: silent: no answer from 127.0.0.1:{port}")
    assert "Traceback" not in result.err and "Exception" not in result.err


def test_proxy_command_from_ssh_config(testbed, monkeypatch):
    jump, target = testbed.host("h01"), testbed.host("h02")
    hop = f"ssh -F {testbed.client.ssh_config} -W %h:%p h01"
    with ssh_config_with(testbed, after=f"\nHost via-command\n  HostName {target.address}\n  User {target.user}\n"
                         f"  Port {target.port}\n  IdentityFile {testbed.client.key}\n  ProxyCommand {hop}\n"
                         f"\nHost broken-command\n  HostName {target.address}\n  ProxyCommand /bin/false\n"
                         # ssh runs it through the shell: a redirection is the shell's, not an argument
                         f"\nHost via-shell\n  HostName {target.address}\n  User {target.user}\n"
                         f"  IdentityFile {testbed.client.key}\n  ProxyCommand {hop} 2>/dev/null\n"):
        env = testbed.client.env()
        result = remoteenv("probe", "via-command", "--json", env=env)
        assert result.code == 0, result.err
        assert result.json()["user"] == target.user
        assert connection_seen_by("via-command", env, monkeypatch)[0] == jump.address
        broken = remoteenv("probe", "broken-command", env=env)
        assert broken.code == 3 and "ProxyCommand" in broken.err and "Traceback" not in broken.err
        shelled = remoteenv("probe", "via-shell", "--json", env=env)
        assert shelled.code == 0, shelled.err
        assert shelled.json()["user"] == target.user


def test_address_nobody_answers_is_no_route_not_refused(make_testbed, tmp_path):
    bed = make_testbed(1)
    needs_netns(bed)  # an address on the test bridge that no host holds: ARP gets no answer
    inventory = tmp_path / "hosts.txt"
    inventory.write_text(f"{bed._subnet(250)}\n")
    result = remoteenv("-i", str(inventory), "probe", bed._subnet(250), env=bed.client.env())
    assert result.code == 3, result.err
    assert "no route to" in result.err and "refused" not in result.err, result.err
    assert "hint:" in result.err


def test_host_colon_port_on_the_command_line_says_where_a_port_goes(testbed):
    result = remoteenv("probe", "127.0.0.1:42222", env=testbed.client.env())
    assert result.code == 3, result.err
    assert "cannot resolve hostname '127.0.0.1:42222'" in result.err
    assert "hint:" in result.err and "Port" in result.err
