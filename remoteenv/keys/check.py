"""`remoteenv keys check`: is key-only access to a host sound?

Per host: does a key login work, with which key or agent identity, how strong that key is, the mode
of the local key file and of the remote ~, ~/.ssh and authorized_keys, and whether sshd still lets a
password alone in (sshd -T where it may run, else the methods the server offers before any
credential: a probe that sends no password at all).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from remoteenv import paths
from remoteenv.errors import AuthFailed, ConnectError, RemoteenvError
from remoteenv.inventory.model import Host
from remoteenv.keys import hostside, localkey, signin
from remoteenv.transport import ConnectOptions

# A connection of its own, never a keeper's: "key login works" means a login made now.
from remoteenv.transport.connection import Connection, connect

PROBLEM = "problem"
WARNING = "warning"


@dataclass
class Finding:
    level: str  # PROBLEM: breaks or endangers key login; WARNING: should be better
    text: str

    def to_json(self) -> dict:
        return {"level": self.level, "text": self.text}


@dataclass
class Identity:
    """The key a login used."""

    source: str  # "agent" or "file"
    key: localkey.KeyInfo
    file: str | None = None
    file_mode: str | None = None

    def to_json(self) -> dict:
        return {"source": self.source, "file": self.file, "file_mode": self.file_mode, **self.key.to_json()}


@dataclass
class CheckResult:
    host: str
    target: str = ""
    key_login: bool = False
    identity: Identity | None = None
    remote_modes: dict[str, str | None] = field(default_factory=dict)
    authorized_keys_file: str | None = None  # the one sshd reads (AuthorizedKeysFile), as a path on the host
    password_login: bool | None = None  # does sshd let a password (or typed codes) alone in?
    password_methods: list[str] = field(default_factory=list)  # what the server offers first
    password_checked_by: str | None = None  # "sshd -T" or "probe"
    findings: list[Finding] = field(default_factory=list)
    error: RemoteenvError | None = None  # the host could not be checked at all

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level == PROBLEM]

    def to_json(self) -> dict:
        return {
            "host": self.host, "target": self.target, "key_login": self.key_login,
            "identity": self.identity.to_json() if self.identity else None,
            "remote_modes": self.remote_modes, "authorized_keys_file": self.authorized_keys_file,
            "password_login": self.password_login, "password_methods": self.password_methods,
            "password_checked_by": self.password_checked_by,
            "findings": [f.to_json() for f in self.findings],
            "error": self.error.one_line() if self.error else None,
        }


def check(host: Host, options: ConnectOptions) -> CheckResult:
    result = CheckResult(host.name, target=host.target)
    try:
        conn = connect(host, options)
    except AuthFailed as exc:
        result.findings.append(Finding(PROBLEM, f"key login fails: {exc.message}"))
        _local_files(host, result, None)
        _password_probe(host, options, result)
        return result
    except ConnectError as exc:
        result.error = exc
        return result
    with conn:
        result.key_login = True
        result.target = f"{conn.transport.get_username() or ''}@{host.hostname}".lstrip("@")
        result.identity = identity_used(conn, host)
        _local_files(host, result, result.identity)
        side = hostside.inspect(conn)
    _remote_modes(side, result)
    accepts = side.accepts_passwords()
    if accepts is not None:
        result.password_login = accepts
        result.password_checked_by = "sshd -T"
        result.password_methods = [m for m, k in (("password", "passwordauthentication"),
                                                  ("keyboard-interactive", "kbdinteractiveauthentication"))
                                   if side.effective.get(k) == "yes"]
        if accepts:
            result.findings.append(_accepts_passwords(host, result.password_methods))
    else:
        _password_probe(host, options, result)
    return result


def identity_used(conn: Connection, host: Host) -> Identity | None:
    """The key paramiko authenticated with (its auth handler keeps the last key it signed with)."""
    handler = getattr(conn.transport, "auth_handler", None)
    key = getattr(handler, "private_key", None)
    if key is None:
        return None
    blob = key.asbytes()
    paramiko = signin.paramiko
    comment = getattr(key, "comment", "") or ""
    info = localkey.describe_blob(blob, comment if isinstance(comment, str) else "")
    if isinstance(key, paramiko.AgentKey):
        return Identity("agent", info)
    for candidate in _key_files(host):
        try:
            if localkey.public_key_of(candidate).blob == blob:
                return Identity("file", info, str(candidate), localkey.file_mode(candidate))
        except RemoteenvError:
            continue
    return Identity("file", info)


def _key_files(host: Host) -> list[Path]:
    listed = [Path(os.path.expanduser(p)) for p in host.identity_files]
    defaults = [] if host.identities_only and listed else [paths.ssh_dir() / n for n in localkey.DEFAULT_KEY_NAMES]
    return [p for p in dict.fromkeys(listed + defaults) if p.is_file()]


def _local_files(host: Host, result: CheckResult, used: Identity | None) -> None:
    if used is not None:
        weak = used.key.weakness
        if weak:
            result.findings.append(Finding(WARNING, f"the key used is {weak}"))
    files = [Path(used.file)] if used is not None and used.file else []
    files += [Path(os.path.expanduser(p)) for p in host.identity_files if os.path.isfile(os.path.expanduser(p))]
    for path in dict.fromkeys(files):
        problem = localkey.mode_problem(path)
        if problem:
            result.findings.append(Finding(PROBLEM, problem))


def _remote_modes(side: hostside.HostSide, result: CheckResult) -> None:
    keys_file = side.keys_file or "~/.ssh/authorized_keys"
    home = side.home.rstrip("/")
    if home and keys_file.startswith(home + "/"):
        keys_file = "~" + keys_file[len(home):]
    result.authorized_keys_file = keys_file
    names = {"home": "~", "ssh_dir": "~/.ssh", "authorized_keys": keys_file}
    # What is advised (ssh(1), FILES). Written by others, sshd's StrictModes refuses a file; written by
    # the group, too, unless the group is the user's alone (Debian's sshd allows that).
    advised = {"home": 0o755, "ssh_dir": 0o700, "authorized_keys": 0o600}
    for what, shown in names.items():
        if what not in side.modes:
            continue  # not asked: sshd reads no keys from ~/.ssh here
        mode, uid = side.modes.get(what, (None, None))
        result.remote_modes[what] = f"{mode:04o}" if mode is not None else None
        if mode is None:
            if what != "home":
                result.findings.append(Finding(WARNING, f"{shown} does not exist on the host"))
            continue
        if uid is not None and side.uid is not None and uid not in (side.uid, 0):
            result.findings.append(Finding(PROBLEM, f"{shown} belongs to uid {uid}, not to you: sshd refuses it"))
        if mode & 0o002:
            result.findings.append(Finding(
                PROBLEM, f"{shown} is writable by others (mode {mode:04o}): sshd (StrictModes) refuses keys; "
                         f"chmod go-w {shown}"))
        elif mode & 0o020:
            result.findings.append(Finding(
                WARNING, f"{shown} is writable by its group (mode {mode:04o}): sshd refuses keys unless the group "
                         f"is yours alone; chmod g-w {shown}"))
        elif mode & ~advised[what] & 0o777:
            want = advised[what]
            result.findings.append(Finding(
                WARNING, f"{shown} has mode {mode:04o}; {want:04o} is advised (chmod {want:o} {shown})"))


def _password_probe(host: Host, options: ConnectOptions, result: CheckResult) -> None:
    """Ask the server which methods it offers before any credential (SSH "none" auth): no password is sent."""
    try:
        session = signin.open_unauthenticated(host, dataclasses.replace(options, accept_new_host_key=False))
    except ConnectError as exc:
        if result.error is None and not result.key_login:
            result.error = exc
        return
    try:
        methods = session.methods()
    except ConnectError as exc:
        result.findings.append(Finding(WARNING, f"could not ask which sign-in methods are allowed: {exc.message}"))
        return
    finally:
        session.close()
    result.password_checked_by = "probe"
    if methods is None:
        result.password_login = True
        result.findings.append(Finding(PROBLEM, "sshd lets this user in with no authentication at all"))
        return
    result.password_methods = [m for m in signin.TYPED_METHODS if m in methods]
    result.password_login = bool(result.password_methods)
    if result.password_login:
        result.findings.append(_accepts_passwords(host, result.password_methods))


def _accepts_passwords(host: Host, methods: list[str]) -> Finding:
    return Finding(WARNING, f"sshd still accepts a password alone ({', '.join(methods)}): "
                            f"remoteenv keys harden {host.name}")
