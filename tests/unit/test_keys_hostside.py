"""The host side of `remoteenv keys`: remote/keys_authorize.sh run by a local POSIX sh, what
remote/keys_inspect.sh prints read back, and harden's order of steps with stand-in hosts."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from remoteenv.errors import AuthFailed, HostUnreachable
from remoteenv.inventory.model import Host
from remoteenv.keys import harden as harden_mod
from remoteenv.keys import hostside
from remoteenv.scripts import script
from remoteenv.transport import ConnectOptions, RunResult

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHHm0n8Lr9lH0y3tH3o8vQ0bq9mZkq1v2c3d4e5f6g7h me@laptop"
BLOB = KEY.split()[1]


def authorize(home, key: str = KEY) -> str:
    sh = shutil.which("sh")
    assert sh, "a POSIX sh is needed"
    proc = subprocess.run([sh, "-s", key], input=script("keys_authorize.sh"), capture_output=True, text=True,
                          env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(os.name != "posix", reason="the host side is POSIX")
def test_authorize_creates_private_folder_and_file(tmp_path):
    assert authorize(tmp_path) == "status\tadded\n"
    assert stat.S_IMODE((tmp_path / ".ssh").stat().st_mode) == 0o700
    keys = tmp_path / ".ssh" / "authorized_keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert keys.read_text() == KEY + "\n"
    assert authorize(tmp_path) == "status\tpresent\n"
    assert keys.read_text() == KEY + "\n"


@pytest.mark.skipif(os.name != "posix", reason="the host side is POSIX")
def test_authorize_leaves_other_lines_and_modes_alone(tmp_path):
    folder = tmp_path / ".ssh"
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)
    keys = folder / "authorized_keys"
    before = "# mine\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 other@box\n\nssh-ed25519 AAAAlast nolf"
    keys.write_text(before)
    os.chmod(keys, 0o644)
    assert authorize(tmp_path) == "status\tadded\n"
    assert keys.read_text() == before + "\n" + KEY + "\n"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750 and stat.S_IMODE(keys.stat().st_mode) == 0o644


@pytest.mark.skipif(os.name != "posix", reason="the host side is POSIX")
def test_authorize_finds_the_key_behind_options_and_another_comment(tmp_path):
    folder = tmp_path / ".ssh"
    folder.mkdir()
    keys = folder / "authorized_keys"
    keys.write_text(f'from="10.0.0.0/8",no-pty ssh-ed25519 {BLOB} old comment\n')
    assert authorize(tmp_path) == "status\tpresent\n"
    assert keys.read_text().count(BLOB) == 1
    # A key that merely starts like ours is another key.
    keys.write_text(f"ssh-ed25519 {BLOB}XYZ other\n")
    assert authorize(tmp_path) == "status\tadded\n"


INSPECT = (
    "user\talice\nuid\t1000\nconnection\t10.0.0.5 51000 10.0.0.9 22\n"
    "mode\thome\t755\t1000\nmode\tssh_dir\t700\t1000\nmode\tauthorized_keys\t-\t-\n"
    "listener\t812\nprogram\t/usr/sbin/sshd\nconfig\t/etc/ssh/sshd_config\nsudo\tyes\n"
    "T\tpasswordauthentication\tyes\nT\tkbdinteractiveauthentication\tno\nT\tauthenticationmethods\tany\n"
    "include\tInclude /etc/ssh/sshd_config.d/*.conf\nconfig_read\tyes\n"
)


def test_inspect_output_is_read_back():
    side = hostside.parse(INSPECT)
    assert (side.user, side.uid, side.listener, side.sudo, side.config_read) == ("alice", 1000, 812, True, True)
    assert side.modes == {"home": (0o755, 1000), "ssh_dir": (0o700, 1000), "authorized_keys": (None, None)}
    assert side.conn_spec == "user=alice,host=10.0.0.5,addr=10.0.0.5,laddr=10.0.0.9,lport=22"
    assert side.dropin_dir() == "/etc/ssh/sshd_config.d"
    assert side.accepts_passwords() is True


@pytest.mark.parametrize(("includes", "folder"), [
    (["Include sshd_config.d/*.conf"], "/etc/ssh/sshd_config.d"),  # relative: under /etc/ssh, as sshd reads it
    (["Include /etc/ssh/extra.conf", "  include /srv/ssh/*.conf  # site"], "/srv/ssh"),
    (['Include "/opt/my ssh/d/*"'], "/opt/my ssh/d"),
    (["Include /etc/ssh/sshd_config.d/*.local"], None),  # our file would not match
    (["Include /etc/ssh/*/x.conf"], None),
    ([], None),
])
def test_dropin_folder_from_include_lines(includes, folder):
    assert hostside.HostSide(includes=includes).dropin_dir() == folder


@pytest.mark.parametrize(("effective", "accepts"), [
    ({"passwordauthentication": "no", "kbdinteractiveauthentication": "no"}, False),
    ({"passwordauthentication": "no", "kbdinteractiveauthentication": "yes"}, True),
    ({"passwordauthentication": "yes", "kbdinteractiveauthentication": "yes",
      "authenticationmethods": "publickey,keyboard-interactive"}, False),  # a second factor, not a way in
    ({"passwordauthentication": "yes", "authenticationmethods": "publickey password"}, True),
    ({}, None),
])
def test_does_sshd_take_a_password_alone(effective, accepts):
    assert hostside.HostSide(effective=effective).accepts_passwords() is accepts


# ---------------------------------------------------------------- harden's order of steps


class FakeHost:
    """A host as harden sees it: the inspect script's answer, and the root actions run on it."""

    def __init__(self, inspect: str = INSPECT, apply_out: str = "written\tx\nreloaded\tkill -HUP 812\n") -> None:
        self.inspect = inspect
        self.apply_out = apply_out
        self.actions: list[str] = []
        self.logins = 0

    def connection(self, host: Host):
        fake = self

        class Conn:
            def __init__(self) -> None:
                self.host = host

            def run_script(self, text, args=(), timeout=None, check=False, on_output=None):
                return RunResult("/bin/sh -s", 0, fake.inspect, "")

            def run(self, command, stdin=None, timeout=None, check=False, on_output=None, _plain=False):
                assert command == "sudo -n /bin/sh -s"
                action = stdin.split("\n", 1)[0].split()[2]
                fake.actions.append(action)
                out = {"apply": fake.apply_out, "commit": "committed\tx\n",
                       "rollback": "restored\tx\nreloaded\tkill -HUP 812\n"}[action]
                return RunResult(command, 1 if out.startswith("failed") else 0, out, "")

            def close(self) -> None:
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.close()

        return Conn()


HOST = Host("box", "10.0.0.9", user="alice")


def run_harden(fake: FakeHost, new_login, methods=("publickey",)):
    def connect_fn(host, options):
        fake.logins += 1
        if fake.logins == 1:
            return fake.connection(host)
        new_login()
        return fake.connection(host)

    return harden_mod.harden(HOST, ConnectOptions(), connect_fn=connect_fn,
                             methods_fn=lambda host, options: list(methods))


def test_harden_commits_after_a_new_login(monkeypatch):
    fake = FakeHost()
    result = run_harden(fake, lambda: None)
    assert fake.actions == ["apply", "commit"] and fake.logins == 2
    assert result.dropin == "/etc/ssh/sshd_config.d/00-remoteenv-harden.conf"
    assert result.methods_after == ["publickey"]


def test_harden_rolls_back_when_the_new_key_login_fails():
    fake = FakeHost()

    def refused():
        raise AuthFailed("box", "authentication failed for alice@10.0.0.9:22")

    with pytest.raises(harden_mod.HardenError, match="previous config is back") as caught:
        run_harden(fake, refused)
    assert fake.actions == ["apply", "rollback"]
    assert "a new key login fails" in caught.value.message


def test_harden_rolls_back_when_passwords_are_still_offered():
    fake = FakeHost()
    with pytest.raises(harden_mod.HardenError, match="still offers password"):
        run_harden(fake, lambda: None, methods=("publickey", "password"))
    assert fake.actions == ["apply", "rollback"]


def test_harden_waits_for_a_reloading_sshd(monkeypatch):
    fake = FakeHost()
    refusals = iter([HostUnreachable("box", "connection refused at 10.0.0.9:22")] * 3)

    def restarting():
        error = next(refusals, None)
        if error is not None:
            raise error

    monkeypatch.setattr(harden_mod.time, "sleep", lambda s: None)
    run_harden(fake, restarting)
    assert fake.actions == ["apply", "commit"]


def test_harden_stops_before_changing_anything():
    no_sudo = FakeHost(INSPECT.replace("sudo\tyes", "sudo\tno"))
    with pytest.raises(harden_mod.HardenError, match="cannot run sudo") as caught:
        run_harden(no_sudo, lambda: None)
    assert "PasswordAuthentication no" in (caught.value.hint or "")
    no_include = FakeHost(INSPECT.replace("include\tInclude /etc/ssh/sshd_config.d/*.conf\n", ""))
    with pytest.raises(harden_mod.HardenError, match="no Include of a drop-in folder"):
        run_harden(no_include, lambda: None)
    refused = FakeHost(apply_out="failed\tsshd -t refused the new config: bad\n")
    with pytest.raises(harden_mod.HardenError, match="nothing was changed"):
        run_harden(refused, lambda: None)
    assert no_sudo.actions == no_include.actions == [] and refused.actions == ["apply"]
