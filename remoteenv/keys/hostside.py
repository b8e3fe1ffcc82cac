"""What a host says about its own SSH setup (remote/keys_inspect.sh), read in one round trip.

The modes of ~/.ssh and authorized_keys, the sshd serving this very session (its listener's pid,
program and config file), whether `sudo -n` works, sshd -T's effective settings where allowed, and
the config file's Include lines.
"""

from __future__ import annotations

import fnmatch
import posixpath
import shlex
from dataclasses import dataclass, field

from remoteenv.scripts import script
from remoteenv.transport import Connection

# The drop-in `keys harden` writes; 00- so that it is read before any other drop-in (the first value
# sshd reads wins: a cloud image's 50-cloud-init.conf turning passwords on must not beat it).
DROPIN_NAME = "00-remoteenv-harden.conf"
ETC_SSH = "/etc/ssh"


@dataclass
class HostSide:
    user: str = ""
    uid: int | None = None
    connection: str = ""  # $SSH_CONNECTION: client address, client port, server address, server port
    modes: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # what -> (mode, uid)
    home: str = ""
    keys_file: str = ""  # the authorized keys file sshd reads (AuthorizedKeysFile), absolute
    listener: int | None = None
    program: str = "/usr/sbin/sshd"
    config: str = "/etc/ssh/sshd_config"
    sudo: bool = False
    effective: dict[str, str] = field(default_factory=dict)  # sshd -T, lowercase keys
    effective_error: str | None = None
    includes: list[str] = field(default_factory=list)
    config_read: bool = False

    @property
    def conn_spec(self) -> str:
        """sshd -T's -C argument for this connection, so that Match blocks apply as they do to us."""
        words = self.connection.split()
        spec = f"user={self.user}"
        if len(words) >= 4:
            spec += f",host={words[0]},addr={words[0]},laddr={words[2]},lport={words[3]}"
        return spec

    def include_patterns(self) -> list[str]:
        """Every path pattern the config Includes, absolute (relative ones are under /etc/ssh)."""
        found = []
        for line in self.includes:
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            for word in words[1:]:
                found.append(word if word.startswith("/") else posixpath.join(ETC_SSH, word))
        return found

    def dropin_dir(self, name: str = DROPIN_NAME) -> str | None:
        """The folder of the first Include whose pattern takes a file called `name` (`dir/*.conf`)."""
        for pattern in self.include_patterns():
            folder, base = posixpath.split(pattern)
            if any(c in folder for c in "*?[") or not any(c in base for c in "*?["):
                continue
            if fnmatch.fnmatchcase(name, base):
                return folder
        return None

    def accepts_passwords(self) -> bool | None:
        """Does sshd -T say a password alone (password or keyboard-interactive) still logs in?"""
        if not self.effective:
            return None
        methods = self.effective.get("authenticationmethods", "any")
        typed = {"password": self.effective.get("passwordauthentication") == "yes",
                 "keyboard-interactive": self.effective.get("kbdinteractiveauthentication") == "yes"}
        if methods == "any":
            return any(typed.values())
        # A list whose every method is a typed one, and enabled: a password alone logs in.
        for alternative in methods.split():
            steps = [m.split(":", 1)[0] for m in alternative.split(",")]
            if steps and all(typed.get(m, False) for m in steps):
                return True
        return False


def inspect(conn: Connection) -> HostSide:
    result = conn.run_script(script("keys_inspect.sh"), timeout=60)
    side = parse(result.stdout)
    if not result.ok and not side.user:
        from remoteenv.errors import CommandFailed

        raise CommandFailed(conn.host.name, "keys inspect script", result.exited, result.stderr)
    return side


def parse(text: str) -> HostSide:
    side = HostSide()
    for line in text.splitlines():
        key, _, rest = line.partition("\t")
        values = rest.split("\t")
        if key == "user":
            side.user = rest
        elif key == "uid" and rest.isdigit():
            side.uid = int(rest)
        elif key == "connection":
            side.connection = rest
        elif key == "mode" and len(values) == 3:
            what, mode, uid = values
            side.modes[what] = (int(mode, 8) if mode != "-" else None, int(uid) if uid.isdigit() else None)
        elif key == "home":
            side.home = rest
        elif key == "keys_file":
            side.keys_file = rest
        elif key == "listener" and rest.isdigit():
            side.listener = int(rest)
        elif key == "program" and rest:
            side.program = rest
        elif key == "config" and rest:
            side.config = rest
        elif key == "sudo":
            side.sudo = rest == "yes"
        elif key == "T" and len(values) == 2:
            side.effective[values[0].lower()] = values[1]
        elif key == "Terr":
            side.effective_error = rest
        elif key == "include":
            side.includes.append(rest)
        elif key == "config_read":
            side.config_read = rest == "yes"
    return side
