"""ssh arguments from Ansible inventories, read as OpenSSH reads them: checked against `ssh -G` and `ssh` itself."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ssh_g import ssh_g_options

from remoteenv.errors import ConfigError
from remoteenv.inventory import sshargs


@pytest.fixture(scope="module")
def ssh() -> str:
    found = shutil.which("ssh")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("OpenSSH's ssh is missing (the tests compare with `ssh -G`)")
        pytest.skip("OpenSSH's ssh is not installed")
    return found


# ssh arguments as inventories write them; `keys/...` files exist (ssh drops an -i whose file does not)
ARGS = [
    "-p 2222",
    "-p2222 -l bob",
    "-o Port=2201 -p 2202",
    "-p 2202 -o Port=2201",
    "-l first -o User=second",
    "-o User=second -l first",
    "-o 'User=\"al ice\"'",
    "-o 'User alice' -o Port=2022",
    "-oUser=glued -oPort=2033",
    "-J bastion",
    "-Jalice@bastion:2222,second",
    "-o ProxyJump=jump1 -o ProxyCommand=ignored",
    "-o 'ProxyCommand=ssh -W %h:%p -q jump' -o ProxyJump=ignored",
    "-J first -o ProxyCommand=ignored",
    "-o ProxyJump=none -o ProxyCommand=ignored-too",
    "-o ProxyCommand=none -o ProxyJump=ignored",
    "-o ProxyJump=none -o ProxyJump=ignored",
    "-o ProxyCommand=none -o ProxyCommand=ignored",
    "-J first -o ProxyJump=ignored",
    "-i keys/a -o IdentityFile=keys/b -ikeys/c",
    "-o IdentityFile=/nowhere/key",
    "-o HostName=198.18.0.9 -p 2200",
    "-4Cq -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto "
    "-o ControlPersist=60s -o ControlPath=/tmp/cp-%C",
    "-o ServerAliveInterval=30 -o ServerAliveCountMax=4 -o ConnectTimeout=7 -o IdentitiesOnly=yes",
    "-C -vvv -T -o Compression=yes -o LogLevel=ERROR -o PreferredAuthentications=publickey",
    "-o PubkeyAcceptedAlgorithms=+ssh-rsa -o HostKeyAlgorithms=+ssh-rsa -c aes128-ctr",
    "-o PORT=2044 -o user=lower",
    "-o GlobalKnownHostsFile=/etc/ssh/other_known -o HashKnownHosts=yes",
    "-o StrictHostKeyChecking=accept-new -o StrictHostKeyChecking=no -o CertificateFile=/c1 -o CertificateFile=/c2",
    "-o StrictHostKeyChecking=off", "-o StrictHostKeyChecking=ask", "-o StrictHostKeyChecking=yes",
]


@pytest.mark.parametrize("text", ARGS)
def test_arguments_read_as_ssh_reads_them(ssh: str, tmp_path: Path, text: str) -> None:
    (tmp_path / "keys").mkdir()
    for name in "abc":
        (tmp_path / "keys" / name).write_text("key\n")
    words = sshargs.split(text, "test")
    theirs = ssh_g_options([*words, "target.example"], tmp_path, ssh)
    ours = sshargs.parse(words, "test")
    s = ours.settings
    local = pwd.getpwuid(os.getuid()).pw_name
    assert s.get("hostname", "target.example") == theirs["hostname"][0]
    assert s.get("user", local) == theirs["user"][0]
    assert s.get("port", 22) == int(theirs["port"][0])
    jump = theirs.get("proxyjump", [None])[0]
    assert s.get("proxy_jump") == (re.sub(r"\[([^\]:]*)\]", r"\1", jump) if jump else None)
    assert s.get("proxy_command") == theirs.get("proxycommand", [None])[0]
    if ours.identity_files:
        assert ours.identity_files == theirs["identityfile"]
    assert ours.certificate_files == theirs.get("certificatefile", [])
    if "strict_host_key_checking" in s:
        printed = theirs["stricthostkeychecking"][0]
        spelled = {"true": "yes", "false": "no"}.get(printed, printed)
        assert s["strict_host_key_checking"] == spelled
    for field_name, key in (("connect_timeout", "connecttimeout"), ("server_alive_interval", "serveraliveinterval"),
                            ("server_alive_count_max", "serveralivecountmax")):
        if field_name in s:
            assert s[field_name] == float(theirs[key][0])
    for field_name, key in (("identities_only", "identitiesonly"), ("hash_known_hosts", "hashknownhosts")):
        if field_name in s:
            assert s[field_name] == (theirs[key][0] == "yes")
    for field_name, key in (("user_known_hosts_file", "userknownhostsfile"),
                            ("global_known_hosts_file", "globalknownhostsfile")):
        if field_name in s:
            assert s[field_name] == theirs[key][0]


@pytest.mark.parametrize(("text", "words"), [
    ("-o ProxyCommand=x -J j", "-J after a ProxyJump or ProxyCommand"),
    ("-J a -J b", "-J after a ProxyJump or ProxyCommand"),
    ("-o ProxyJump=none -J b", "-J after a ProxyJump or ProxyCommand"),
    ("-o ProxyCommand=none -J b", "-J after a ProxyJump or ProxyCommand"),
    ("-o 'User=al ice'", "takes one value"),
])
def test_what_ssh_refuses_is_refused(ssh: str, text: str, words: str) -> None:
    argv = sshargs.split(text, "where")
    refused = subprocess.run([ssh, "-G", "-F", "/dev/null", *argv, "t"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0  # ssh refuses it too
    with pytest.raises(ConfigError, match=re.escape(words)):
        sshargs.parse(argv, "where")


@pytest.mark.parametrize(("text", "option"), [
    ("-F /etc/ssh/other_config", "-F"),
    ("-o HostKeyAlias=other", "-o HostKeyAlias"),
    ("-L 8080:localhost:80", "-L"),
    ("-A", "-A"),
    ("-b 198.18.0.1", "-b"),
    ("-o SendEnv=LANG", "-o SendEnv"),
    ("-o LocalCommand=touch", "-o LocalCommand"),
    ("target.example", "'target.example' is not an option"),
    ("-p", "-p needs a value"),
    ("-p 0", "not a number from 1 to 65535"),
    ("-o IdentitiesOnly=maybe", "must be yes or no"),
    ("-o StrictHostKeyChecking=maybe", "must be yes, no, ask or accept-new"),
    ("-o 'User=al ice'", "takes one value"),
    ("-o 'ProxyCommand=ssh -W %h:%p", "cannot split"),
])
def test_options_remoteenv_cannot_honour_are_refused_by_name(text: str, option: str) -> None:
    with pytest.raises(ConfigError) as err:
        sshargs.parse(sshargs.split(text, "inv.ini:3"), "inv.ini:3")
    assert err.value.message.startswith("inv.ini:3:")
    assert option in err.value.message


def test_proxy_command_tokens_expand_as_ssh_expands_them(ssh: str) -> None:
    """ssh itself expands them (its -v log shows the command it runs; the command only echoes)."""
    command = "echo TOKENS %h,%p,%r,%n,%%"
    run = subprocess.run([ssh, "-v", "-F", "/dev/null", "-o", f"ProxyCommand={command}", "-o", "HostName=198.18.0.9",
                          "-p", "2201", "-l", "bob", "-o", "BatchMode=yes", "alias.example", "true"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    ran = re.search(r"Executing proxy command: exec (.*)", run.stderr)
    assert ran, run.stderr
    ours = sshargs.expand_proxy_command(command, hostname="198.18.0.9", port=2201, user="bob",
                                        name="alias.example", where="x")
    assert ours == ran[1] == "echo TOKENS 198.18.0.9,2201,bob,alias.example,%"


@pytest.mark.parametrize("token", ["%C", "%u", "%d"])
def test_tokens_ssh_does_not_expand_in_a_proxy_command_are_refused(ssh: str, token: str) -> None:
    run = subprocess.run([ssh, "-F", "/dev/null", "-o", f"ProxyCommand=echo {token}", "alias.example", "true"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert "unknown key" in run.stderr  # ssh refuses it too
    with pytest.raises(ConfigError, match=f"token {token}"):
        sshargs.expand_proxy_command(f"nc {token}", hostname="h", port=22, user=None, name="h", where="inv:1")


def test_a_missing_identity_file_is_kept_where_ssh_skips_it(ssh: str, tmp_path: Path) -> None:
    """A documented difference (README, "Differences from Ansible"): ssh drops `-i FILE` when FILE is missing."""
    words = ["-i", str(tmp_path / "missing"), "-o", f"IdentityFile={tmp_path / 'also-missing'}"]
    theirs = ssh_g_options([*words, "target.example"], tmp_path, ssh)["identityfile"]
    assert theirs == [str(tmp_path / "also-missing")]
    assert sshargs.parse(words, "x").identity_files == [str(tmp_path / "missing"), str(tmp_path / "also-missing")]
