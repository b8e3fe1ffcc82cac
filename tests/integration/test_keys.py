"""`remoteenv keys setup|check|harden` against real sshd hosts: password and keyboard-interactive hosts
(tests/testbed.py's auth options), sudo, and an sshd whose config Includes a drop-in folder.

Answers reach remoteenv as a person's would, but from REMOTEENV_ASKPASS: a small program that prints
the answer for the prompt it is given, and notes every prompt it saw.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
from cli_runner import remoteenv
from testbed import needs_netns

from remoteenv.scripts import script

pytestmark = pytest.mark.integration


class Answers:
    """An askpass program: the password for password prompts, the passphrase for passphrase ones."""

    def __init__(self, folder: Path, password: str | None, passphrase: str = "") -> None:
        self.folder = folder
        self.log = folder / "prompts.log"
        self.program = folder / "askpass"
        (folder / "password").write_text(password or "")
        (folder / "passphrase").write_text(passphrase)
        self.program.write_text(
            "#!/bin/sh\n"
            f"printf '%s\\n' \"$1\" >>{shlex.quote(str(self.log))}\n"
            "case $1 in\n"
            f"    *assphrase*) cat {shlex.quote(str(folder / 'passphrase'))} ;;\n"
            f"    *) cat {shlex.quote(str(folder / 'password'))} ;;\n"
            "esac\n"
            "echo\n")
        os.chmod(self.program, 0o700)

    def set_password(self, password: str) -> None:
        (self.folder / "password").write_text(password)

    def prompts(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def env_with(bed, answers: Answers, **more: str) -> dict[str, str]:
    env = bed.client.env()
    env["REMOTEENV_ASKPASS"] = str(answers.program)
    env.update(more)
    return env


def authorized_lines(host) -> list[str]:
    return host.run("cat ~/.ssh/authorized_keys").stdout.splitlines()


def mode_of(host, path: str) -> int:
    return int(host.run(f"stat -c %a {path}").stdout.strip(), 8)


def password_login(host, password: str) -> str:
    """What the host says to a password login: "ok", "refused" (wrong) or "not offered"."""
    transport = paramiko.Transport((host.address, host.port))
    try:
        transport.start_client(timeout=10)
        try:
            transport.auth_password(host.user, password, fallback=False)
        except paramiko.BadAuthenticationType:
            return "not offered"
        except paramiko.AuthenticationException:
            return "refused"
        return "ok" if transport.is_authenticated() else "refused"
    finally:
        transport.close()


def offered(host) -> list[str]:
    """The methods the host offers before any credential."""
    transport = paramiko.Transport((host.address, host.port))
    try:
        transport.start_client(timeout=10)
        try:
            transport.auth_none(host.user)
        except paramiko.BadAuthenticationType as exc:
            return sorted(exc.allowed_types)
        return ["none"]
    finally:
        transport.close()


# ---------------------------------------------------------------- setup


def test_setup_from_password_only_to_key_only(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "password"}, keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    answers = Answers(tmp_path, host.password)
    env = env_with(bed, answers)
    before = remoteenv("probe", "h01", env=env)
    assert before.code == 3 and "authentication failed" in before.err  # no key works yet

    result = remoteenv("keys", "setup", "h01", "--json", env=env)
    assert result.code == 0, result.err
    out = result.json()
    assert out["added"] is True and out["already_worked"] is False and out["proven_by"] == "key file"
    assert out["key"] == str(bed.client.key) and out["generated"] is False
    assert answers.prompts() == [f"{host.user}@{host.address}'s password: "]
    assert authorized_lines(host) == [bed.client.public_key()]
    assert mode_of(host, "~/.ssh") == 0o700 and mode_of(host, "~/.ssh/authorized_keys") == 0o600
    assert f"IdentityFile {bed.client.key}" in out["ssh_config"] and f"HostName {host.address}" in out["ssh_config"]
    # Key only from now on: every other command connects with the key alone.
    assert remoteenv("probe", "h01", "--json", env=env).code == 0


def test_setup_rerun_asks_nothing_and_adds_no_line(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "password"}, keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    answers = Answers(tmp_path, host.password)
    env = env_with(bed, answers)
    assert remoteenv("keys", "setup", "h01", env=env).code == 0
    asked = len(answers.prompts())
    again = remoteenv("keys", "setup", "h01", env=env)
    assert again.code == 0, again.err
    assert "logs in already; nothing changed" in again.out
    assert len(answers.prompts()) == asked  # no sign-in the second time
    assert authorized_lines(host) == [bed.client.public_key()]


def test_authorize_script_adds_once_and_touches_no_other_line(testbed, tmp_path):
    host = testbed.host("h02")
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOb1e0m3m6TzjZ0mxXxkqJh2vQ2ZsQ2uR5fYtXx0n0nA other@box"
    new = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "new@here", "-f",
                          str(tmp_path / "k")], check=True)
    assert new.returncode == 0
    line = (tmp_path / "k.pub").read_text().strip()
    runner = host.home / "authorize.sh"  # where the host's user can read it
    runner.write_text(script("keys_authorize.sh"))
    os.chmod(runner, 0o644)
    saved = host.run("cat ~/.ssh/authorized_keys").stdout
    try:
        # A last line without its newline, and a comment, must stay exactly as they are.
        host.run(f"printf '# keep me\\n%s' {shlex.quote(other)} >>~/.ssh/authorized_keys")
        before = host.run("cat ~/.ssh/authorized_keys").stdout
        first = host.run(f"sh {runner} {shlex.quote(line)}")
        second = host.run(f"sh {runner} {shlex.quote(line)}")
        assert first.stdout == "status\tadded\n" and second.stdout == "status\tpresent\n"
        after = host.run("cat ~/.ssh/authorized_keys").stdout
        assert after == before + "\n" + line + "\n"
    finally:
        host.run(f"printf '%s' {shlex.quote(saved)} >~/.ssh/authorized_keys")
        runner.unlink()


def test_setup_shows_an_unknown_host_key_and_records_it_hashed_only_when_asked(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "password"}, keyless=["h01"], known=False)
    needs_netns(bed)
    host = bed.host("h01")
    answers = Answers(tmp_path, host.password)
    env = env_with(bed, answers)
    with open(bed.client.ssh_config, "a") as config:
        config.write("\nHost *\n    HashKnownHosts yes\n")
    refused = remoteenv("keys", "setup", "h01", env=env)
    assert refused.code == 3 and host.host_key_fingerprint in refused.err and "--accept-new-host-key" in refused.err
    assert answers.prompts() == [] and bed.client.known_hosts.read_text() == ""
    accepted = remoteenv("keys", "setup", "h01", "--accept-new-host-key", env=env)
    assert accepted.code == 0, accepted.err
    (line,) = bed.client.known_hosts.read_text().splitlines()
    assert line.startswith("|1|") and host.address not in line
    assert line.split()[1:] == host.host_key_line.split()[1:]


def test_wrong_password_is_one_clear_error_and_changes_nothing(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "password"}, keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    answers = Answers(tmp_path, "not-" + host.password)
    env = env_with(bed, answers)
    result = remoteenv("keys", "setup", "h01", env=env)
    assert result.code == 3, result.err
    problems = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert problems == [f"error: h01: sign-in as {host.user}@{host.address} refused: wrong password"], result.err
    assert "nothing was changed" in result.err and "Traceback" not in result.err
    assert len(answers.prompts()) == 1  # an askpass program would give the same answer again
    assert host.run("test -e ~/.ssh", check=False).returncode == 1  # no ~/.ssh made
    assert password_login(host, host.password) == "ok"  # the account is as it was


def test_setup_on_a_port_that_is_not_ssh_is_one_clear_error_and_asks_nothing(make_testbed, tmp_path):
    # Nothing is asked before the host has answered as an SSH server: a password typed for a web
    # server would be wasted, or worse, sent to it.
    bed = make_testbed(1, auth={"h01": "password"}, keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    host.run("setsid python3 -m http.server 18091 >/dev/null 2>&1 </dev/null &")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((host.address, 18091), timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the web server did not start"
                time.sleep(0.1)
        with open(bed.client.ssh_config, "a") as config:
            config.write(f"\nHost web\n    HostName {host.address}\n    Port 18091\n    User {host.user}\n")
        answers = Answers(tmp_path, host.password)
        env = env_with(bed, answers, REMOTEENV_CONNECT_TIMEOUT="2")
        result = remoteenv("keys", "setup", "web", env=env)
        assert result.code == 3, result.err
        problems = [line for line in result.err.splitlines() if line.startswith("error:")]
        assert problems == [f"error: web: no answer from {host.address}:18091 (the SSH server did not greet us)"], \
            result.err
        assert "Traceback" not in result.err and answers.prompts() == []
    finally:
        host.run("pkill -f 'http.server 18091' || true", check=False)


def test_setup_through_keyboard_interactive(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "kbdint"}, keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    answers = Answers(tmp_path, host.password)
    result = remoteenv("keys", "setup", "h01", "--json", env=env_with(bed, answers))
    assert result.code == 0, result.err
    assert result.json()["added"] is True
    assert host.prompts_answered() == 1
    assert answers.prompts() == [f"({host.user}@{host.address}) Password: "]
    assert authorized_lines(host) == [bed.client.public_key()]


def test_setup_with_no_answer_to_a_prompt_says_so(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "kbdint"}, keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    env = bed.client.env()
    env["REMOTEENV_ASKPASS"] = "/bin/false"  # a program that gives no answer (a cancelled dialog)
    result = remoteenv("keys", "setup", "h01", env=env)
    assert result.code == 2, result.err
    assert f"gave no answer to '({host.user}@{host.address}) Password:'" in result.err, result.err
    assert host.run("test -e ~/.ssh", check=False).returncode == 1


def test_setup_makes_a_key_with_a_passphrase_and_adds_it_to_the_agent(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "password"}, keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    answers = Answers(tmp_path, host.password, passphrase="correct horse")
    agent = subprocess.run(["ssh-agent", "-s", "-a", str(tmp_path / "agent.sock")], capture_output=True,
                           text=True, check=True)
    pid = next(p.split("=")[1].split(";")[0] for p in agent.stdout.split() if p.startswith("SSH_AGENT_PID="))
    try:
        env = env_with(bed, answers, SSH_AUTH_SOCK=str(tmp_path / "agent.sock"))
        # A name in no ssh config block: remoteenv offers the agent's keys and the default ones.
        inventory = tmp_path / "hosts.yaml"
        inventory.write_text(f"hosts:\n  box: {{hostname: {host.address}, user: {host.user}}}\n")
        key = bed.client.home / ".ssh" / "lab_ed25519"
        result = remoteenv("-i", str(inventory), "keys", "setup", "box", "--key", str(key), "--add-to-agent",
                           "--json", env=env)
        assert result.code == 0, result.err
        out = result.json()
        assert out["generated"] and out["encrypted"] and out["agent_added"] and out["proven_by"] == "agent"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # The key is what ssh-keygen reads, with that passphrase.
        derived = subprocess.run(["ssh-keygen", "-y", "-P", "correct horse", "-f", str(key)],
                                 capture_output=True, text=True)
        assert derived.returncode == 0, derived.stderr
        assert derived.stdout.split()[:2] == out["public_key"].split()[:2]
        assert authorized_lines(host) == [out["public_key"]]
        checked = remoteenv("-i", str(inventory), "keys", "check", "box", "--json", env=env)
        assert checked.json()[0]["identity"]["source"] == "agent", checked.out + checked.err
        assert checked.json()[0]["identity"]["fingerprint"] == out["fingerprint"]
    finally:
        subprocess.run(["kill", pid], check=False)


# ---------------------------------------------------------------- check


def test_check_reports_weak_key_and_loose_modes(make_testbed, tmp_path):
    bed = make_testbed(1)
    needs_netns(bed)
    host = bed.host("h01")
    rsa = tmp_path / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)], check=True)
    host.run(f"echo {shlex.quote(rsa.with_name('id_rsa.pub').read_text().strip())} >>~/.ssh/authorized_keys")
    host.run("chmod 755 ~/.ssh && chmod 644 ~/.ssh/authorized_keys")
    os.chmod(rsa, 0o644)
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(f"hosts:\n  h01: {{identity_file: {rsa}}}\n")
    result = remoteenv("-i", str(inventory), "keys", "check", "h01", "--json", env=bed.client.env())
    assert result.code == 1, result.out + result.err
    (report,) = result.json()
    assert report["key_login"] is True
    assert report["identity"]["type"] == "ssh-rsa" and report["identity"]["bits"] == 2048
    assert report["identity"]["file"] == str(rsa) and report["identity"]["file_mode"] == "0644"
    assert report["remote_modes"] == {"home": "0755", "ssh_dir": "0755", "authorized_keys": "0644"}
    texts = {(f["level"], f["text"].split(":")[0].split(" (")[0]) for f in report["findings"]}
    assert ("warning", "the key used is an RSA key of 2048 bits") in texts
    assert ("problem", f"{rsa} is readable by others") in texts
    assert ("warning", "~/.ssh has mode 0755; 0700 is advised") in texts
    assert ("warning", "~/.ssh/authorized_keys has mode 0644; 0600 is advised") in texts
    assert report["password_login"] is False and report["password_checked_by"] == "probe"

    # Fixed: the same key file at 0600 and the advised modes leave only the key's size to warn about.
    os.chmod(rsa, 0o600)
    host.run("chmod 700 ~/.ssh && chmod 600 ~/.ssh/authorized_keys")
    fixed = remoteenv("-i", str(inventory), "keys", "check", "h01", "--json", env=bed.client.env())
    assert fixed.code == 0, fixed.out + fixed.err
    assert [f["level"] for f in fixed.json()[0]["findings"]] == ["warning"]
    assert remoteenv("-i", str(inventory), "keys", "check", "h01", "--strict", env=bed.client.env()).code == 1


def test_check_a_group_where_one_ssh_dir_breaks_key_login(make_testbed, tmp_path):
    bed = make_testbed(2)
    needs_netns(bed)
    bed.host("h02").run("chmod 777 ~/.ssh")  # StrictModes refuses every key in it
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("groups:\n  lab: {}\nhosts:\n  h01: {groups: [lab]}\n  h02: {groups: [lab]}\n")
    result = remoteenv("-i", str(inventory), "keys", "check", "--group", "lab", "--json", env=bed.client.env())
    assert result.code == 1, result.out + result.err
    good, bad = result.json()
    assert good["key_login"] is True and good["findings"] == [] and good["identity"]["source"] == "file"
    assert bad["key_login"] is False
    assert any(f["level"] == "problem" and f["text"].startswith("key login fails") for f in bad["findings"])


def test_check_sees_passwords_with_sshd_T_where_sudo_works(make_testbed, tmp_path):
    bed = make_testbed(2, auth={"h01": "password", "h02": "kbdint"}, sudo=["h01"])
    needs_netns(bed)
    result = remoteenv("keys", "check", "h01", "h02", "--json", env=bed.client.env())
    assert result.code == 0, result.out + result.err  # passwords on are a warning, not a failure
    by_sudo, by_probe = result.json()
    assert (by_sudo["password_login"], by_sudo["password_checked_by"], by_sudo["password_methods"]) == (
        True, "sshd -T", ["password"])
    assert (by_probe["password_login"], by_probe["password_checked_by"], by_probe["password_methods"]) == (
        True, "probe", ["keyboard-interactive"])
    assert bed.host("h02").prompts_answered() == 0  # the probe answers no prompt


def test_check_looks_at_the_keys_file_sshd_reads(make_testbed):
    # A host whose sshd reads keys from elsewhere (AuthorizedKeysFile), with no ~/.ssh at all: the
    # modes that matter are that file's, and a missing ~/.ssh is nothing to warn about.
    bed = make_testbed(1, sudo=["h01"], sshd_options={"h01": ["Match all", "    AuthorizedKeysFile %h/.keys/%u"]})
    needs_netns(bed)
    host = bed.host("h01")
    host.run("mkdir -m 700 ~/.keys && cp ~/.ssh/authorized_keys ~/.keys/$(id -un) && chmod 640 ~/.keys/$(id -un)"
             " && rm -r ~/.ssh")
    result = remoteenv("keys", "check", "h01", "--json", env=bed.client.env())
    assert result.code == 0, result.out + result.err
    (report,) = result.json()
    assert report["key_login"] is True and report["authorized_keys_file"] == f"~/.keys/{host.user}"
    assert set(report["remote_modes"]) == {"home", "authorized_keys"}
    assert report["remote_modes"]["authorized_keys"] == "0640"
    assert [f["text"] for f in report["findings"]] == [
        f"~/.keys/{host.user} has mode 0640; 0600 is advised (chmod 600 ~/.keys/{host.user})"]


# ---------------------------------------------------------------- harden


def test_harden_turns_passwords_off_and_the_key_still_works(make_testbed, tmp_path):
    bed = make_testbed(1, auth={"h01": "password"}, sudo=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    assert password_login(host, host.password) == "ok"
    pid = host._proc.pid
    result = remoteenv("keys", "harden", "h01", "--json", env=bed.client.env())
    assert result.code == 0, result.out + result.err
    out = result.json()
    assert out["dropin"] == f"{host.dropin_dir}/00-remoteenv-harden.conf"
    assert out["methods_after"] == ["publickey"]
    assert sorted(os.listdir(host.dropin_dir)) == ["00-remoteenv-harden.conf"]  # nothing kept behind
    assert password_login(host, host.password) == "not offered"
    assert remoteenv("probe", "h01", "--json", env=bed.client.env()).code == 0
    checked = remoteenv("keys", "check", "h01", "--json", env=bed.client.env()).json()[0]
    assert checked["password_login"] is False and checked["password_checked_by"] == "sshd -T"
    # The main config is as the testbed wrote it; the same sshd, reloaded, serves.
    assert "PasswordAuthentication yes" in host.sshd_config_path.read_text()
    assert host._proc.poll() is None and host._proc.pid == pid
    assert "Received SIGHUP; restarting." in host.sshd_log()


def test_harden_turns_keyboard_interactive_off(make_testbed):
    bed = make_testbed(1, auth={"h01": "kbdint"}, sudo=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    assert offered(host) == ["keyboard-interactive", "publickey"]
    result = remoteenv("keys", "harden", "h01", env=bed.client.env())
    assert result.code == 0, result.out + result.err
    assert "a new key login works" in result.out
    assert offered(host) == ["publickey"]
    assert host.prompts_answered() == 0


def bed_where_harden_breaks_login(make_testbed):
    """Everyone else signs in with keyboard-interactive only; keys are for this network. Turning
    keyboard-interactive off leaves the global AuthenticationMethods unsatisfiable: sshd -t fails."""
    bed = make_testbed(1, auth={"h01": "kbdint"}, sudo=["h01"], sshd_options={"h01": [
        "AuthenticationMethods keyboard-interactive",
        "Match Address 198.18.0.0/15",
        "    AuthenticationMethods publickey",
    ]})
    needs_netns(bed)
    return bed


def test_harden_that_would_break_login_is_rolled_back(make_testbed):
    bed = bed_where_harden_breaks_login(make_testbed)
    host = bed.host("h01")
    config_before = host.sshd_config_path.read_text()
    pid = host._proc.pid
    result = remoteenv("keys", "harden", "h01", env=bed.client.env())
    assert result.code == 1, result.out + result.err
    assert "sshd -t refused the new config" in result.err and "nothing was changed" in result.err
    assert 'Disabled method "keyboard-interactive"' in result.err  # sshd's own reason
    assert os.listdir(host.dropin_dir) == []  # no drop-in, nothing kept behind
    assert host.sshd_config_path.read_text() == config_before
    assert host._proc.poll() is None and host._proc.pid == pid
    assert remoteenv("probe", "h01", "--json", env=bed.client.env()).code == 0


def test_harden_restores_a_drop_in_it_replaced_when_sshd_t_fails(make_testbed):
    bed = bed_where_harden_breaks_login(make_testbed)
    host = bed.host("h01")
    mine = host.dropin_dir / "00-remoteenv-harden.conf"
    mine.write_text("# an admin's own\nLoginGraceTime 30\n")
    result = remoteenv("keys", "harden", "h01", env=bed.client.env())
    assert result.code == 1, result.err
    assert mine.read_text() == "# an admin's own\nLoginGraceTime 30\n"
    assert sorted(os.listdir(host.dropin_dir)) == ["00-remoteenv-harden.conf"]


def test_harden_without_sudo_says_what_to_ask_for(make_testbed):
    bed = make_testbed(1, auth={"h01": "password"})
    needs_netns(bed)
    host = bed.host("h01")
    result = remoteenv("keys", "harden", "h01", env=bed.client.env())
    assert result.code == 1, result.out + result.err
    assert "cannot run sudo without a password" in result.err
    assert "ask the host's admin for" in result.err and "PasswordAuthentication no" in result.err
    assert password_login(host, host.password) == "ok"


def test_harden_needs_an_include_and_never_edits_the_main_file(make_testbed):
    bed = make_testbed(1, auth={"h01": "password"}, sudo=["h01"], dropin=[])
    needs_netns(bed)
    host = bed.host("h01")
    before = host.sshd_config_path.read_text()
    result = remoteenv("keys", "harden", "h01", env=bed.client.env())
    assert result.code == 1, result.out + result.err
    assert "has no Include of a drop-in folder" in result.err and str(host.sshd_config_path) in result.err
    assert host.sshd_config_path.read_text() == before
    assert password_login(host, host.password) == "ok"


def test_harden_refuses_while_no_key_logs_in(make_testbed):
    bed = make_testbed(1, auth={"h01": "password"}, sudo=["h01"], keyless=["h01"])
    needs_netns(bed)
    host = bed.host("h01")
    result = remoteenv("keys", "harden", "h01", env=bed.client.env())
    assert result.code == 1, result.out + result.err
    assert "would lock you out" in result.err and "remoteenv keys setup h01" in result.err
    assert os.listdir(host.dropin_dir) == []


# ---------------------------------------------------------------- testbed


def test_testbed_2fa_host_wants_key_then_code_and_counts_prompts(make_testbed):
    bed = make_testbed(1, auth={"h01": "2fa"})
    needs_netns(bed)
    host = bed.host("h01")
    key = paramiko.Ed25519Key.from_private_key_file(str(bed.client.key))

    def login(code: str) -> bool:
        transport = paramiko.Transport((host.address, host.port))
        try:
            transport.start_client(timeout=10)
            assert transport.auth_publickey(host.user, key) == ["keyboard-interactive"]
            try:
                transport.auth_interactive(host.user, lambda title, text, prompts: [code] * len(prompts))
            except paramiko.AuthenticationException:
                return False
            chan = transport.open_session()
            chan.exec_command("echo in")
            return chan.makefile().read() == b"in\n"
        finally:
            transport.close()

    assert host.prompts_answered() == 0
    assert login(host.code)
    assert host.prompts_answered() == 1
    assert not login("000000" if host.code != "000000" else "111111")
    assert host.prompts_answered() == 2
    host.set_code("424242")
    assert login("424242")
    assert host.prompts_answered() == 3


def test_testbed_reaps_pam_and_sudoers_files_a_crashed_run_left(make_testbed):
    import testbed as testbed_lib

    if os.geteuid() != 0:
        pytest.skip("leftovers outside the testbed's folder are made by root only")
    pam = testbed_lib.PAM_DIR / "sshd-rtb253-h01"
    sudoers = testbed_lib.SUDOERS_DIR / "rtb253-h01"
    pam.write_text("# left by a crashed testbed\n")
    sudoers.write_text("# left by a crashed testbed\n")
    try:
        make_testbed(1)  # claiming a slot removes what dead testbeds left
        assert not pam.exists() and not sudoers.exists()
    finally:
        pam.unlink(missing_ok=True)
        sudoers.unlink(missing_ok=True)
