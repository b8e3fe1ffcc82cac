"""`remoteenv keys setup`: from a password (or codes) to a key-only login, without editing files by hand.

The key: --key PATH, else the host's IdentityFile, else ~/.ssh/id_ed25519; made (ed25519) when the
file does not exist. When that key already logs in, nothing is asked and nothing changes. Else one
sign-in with the password or keyboard-interactive answers appends the public key to the host's
~/.ssh/authorized_keys (remote/keys_authorize.sh: once, other lines untouched), and a new
connection with that key alone proves that it works.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from remoteenv.errors import AuthFailed, ConfigError, RemoteenvError
from remoteenv.inventory.model import Host
from remoteenv.keys import localkey, signin
from remoteenv.keys.localkey import PublicKey
from remoteenv.scripts import script
from remoteenv.transport import ConnectOptions

# A connection of its own, never a keeper's: a login is proven only by a new one.
from remoteenv.transport.connection import connect

log = logging.getLogger("remoteenv.keys")


@dataclass
class SetupResult:
    host: str
    target: str  # user@hostname[:port]
    key: str  # the private key's path
    public_key: str
    fingerprint: str
    generated: bool  # a new pair was written
    added: bool  # the key was appended to authorized_keys now
    already_worked: bool  # the key logged in before anything was done
    proven_by: str  # "key file" or "agent": how the key-only login was proven
    agent_added: bool
    encrypted: bool  # the private key has a passphrase
    ssh_config: str  # lines for ~/.ssh/config

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class KeyLoginFailed(RemoteenvError):
    """The key is on the host, yet a key-only login does not work."""


def setup(host: Host, options: ConnectOptions, key: Path | None = None, *, add_to_agent: bool = False,
          ask_passphrase=localkey.ask_new_passphrase) -> SetupResult:
    path = Path(os.path.expanduser(str(key))) if key is not None else localkey.default_key_path(host)
    generated = False
    passphrase: str | None = None
    if path.exists():
        if not path.is_file():
            raise ConfigError(f"{path} is not a key file", "give the private key's path with --key")
        public = localkey.public_key_of(path)
    else:
        passphrase = ask_passphrase(path)
        public = localkey.generate_ed25519(path, passphrase)
        generated = True
        log.debug("%s: made %s (%s)", host.name, path, public.info.fingerprint)
    encrypted = localkey.load_private(path) is None
    agent_added = False
    if add_to_agent:
        localkey.add_to_agent(path)
        agent_added = True

    already = _key_logs_in(host, options, path, public, passphrase)
    added = False
    if not already:
        with signin.sign_in(host, options) as conn:
            result = conn.run_script(script("keys_authorize.sh"), [public.line], timeout=60)
            status = dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line).get("status")
            if not result.ok or status not in ("added", "present"):
                why = (result.stdout + result.stderr).strip().splitlines()
                raise RemoteenvError(f"{host.name}: could not add the key to ~/.ssh/authorized_keys: "
                                     f"{why[-1] if why else f'exit {result.exited}'}",
                                     "check that your home on the host is writable (df -h, quota)")
            added = status == "added"
        try:
            proven_by = _prove(host, options, path, public, passphrase)
        except AuthFailed as exc:
            raise KeyLoginFailed(
                f"{host.name}: the key is in ~/.ssh/authorized_keys, yet a login with it alone fails ({exc.message})",
                "sshd may read keys from elsewhere (AuthorizedKeysFile) or refuse loose modes (StrictModes): "
                "remoteenv keys check " + host.name) from None
    else:
        proven_by = already
    return SetupResult(
        host=host.name, target=_target(host), key=str(path), public_key=public.line,
        fingerprint=public.info.fingerprint, generated=generated, added=added, already_worked=bool(already),
        proven_by=proven_by, agent_added=agent_added, encrypted=encrypted,
        ssh_config=ssh_config_lines(host, path))


def _target(host: Host) -> str:
    import getpass

    user = host.user or getpass.getuser()
    return f"{user}@{host.hostname}" + (f":{host.port}" if host.port != 22 else "")


def _key_logs_in(host: Host, options: ConnectOptions, path: Path, public: PublicKey,
                 passphrase: str | None) -> str:
    """How the key logs in already ("" when it does not). Host-key errors are not swallowed."""
    try:
        return _prove(host, options, path, public, passphrase, ask=False)
    except AuthFailed:
        return ""


def _prove(host: Host, options: ConnectOptions, path: Path, public: PublicKey, passphrase: str | None,
           ask: bool = True) -> str:
    """Log in with this key alone, on a new connection; returns "key file" or "agent".

    A key without a passphrase goes through transport.connect, as every command connects. A key
    with one is proven through the agent's copy, else with the passphrase (typed now if needed).
    """
    if localkey.load_private(path) is not None:
        only = dataclasses.replace(host, identity_files=[str(path)], identities_only=True)
        connect(only, options).close()
        return "key file"
    agent_key = next((k for k in localkey.agent_keys() if k.asbytes() == public.blob), None)
    if agent_key is not None:
        _publickey_login(host, options, agent_key)
        return "agent"
    if passphrase is None:
        if not ask:
            raise AuthFailed(host.name, "the key needs its passphrase", "load it into your agent")
        from remoteenv.keys import askpass

        passphrase = askpass.ask(f"Passphrase for {path}: ")
    key = localkey.load_private(path, passphrase)
    if key is None:
        raise ConfigError(f"{path}: the passphrase is needed to prove the login", "type it when asked")
    _publickey_login(host, options, key)
    return "key file"


def _publickey_login(host: Host, options: ConnectOptions, key) -> None:
    paramiko = signin.paramiko

    session = signin.open_unauthenticated(host, options)
    try:
        try:
            remaining = session.transport.auth_publickey(session.user, key)
        except paramiko.AuthenticationException:
            raise AuthFailed(host.name, f"the key was refused for {session.user}@{host.hostname}",
                             "remoteenv keys setup " + host.name) from None
        if remaining or not session.transport.is_authenticated():
            raise AuthFailed(host.name, f"the server wants {', '.join(remaining)} after the key",
                             "a second factor is required there: the key alone cannot log in")
    finally:
        session.close()


def ssh_config_lines(host: Host, key: Path) -> str:
    """An ~/.ssh/config block that logs in to `host` with `key` (paths under ~ written with ~)."""
    import getpass

    shown = str(key)
    home = _passwd_home()
    if home and shown.startswith(home.rstrip(os.sep) + os.sep):
        shown = "~" + shown[len(home.rstrip(os.sep)):]
    lines = [f"Host {host.name}", f"    HostName {host.hostname}", f"    User {host.user or getpass.getuser()}"]
    if host.port != 22:
        lines.append(f"    Port {host.port}")
    if host.proxy_jump:
        lines.append(f"    ProxyJump {host.proxy_jump}")
    lines += [f"    IdentityFile {shown}", "    IdentitiesOnly yes"]
    return "\n".join(lines) + "\n"


def _passwd_home() -> str | None:
    """The home ssh gives `~` in its config: the passwd entry's, which $HOME does not change."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):
        return os.path.expanduser("~")
