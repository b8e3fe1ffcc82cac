"""The one sign-in without a key: a password or keyboard-interactive answers, over paramiko.

Host keys are checked exactly as every other remoteenv connection checks them (transport.hostkeys:
known_hosts as OpenSSH reads it, a new key refused with its fingerprint unless accepted, an accepted
one written hashed under HashKnownHosts). Only the authentication differs: SSHClient.connect runs
up to and including the host-key check, and the sign-in is done here on its transport.

Answers are asked through keys.askpass (the terminal, or REMOTEENV_ASKPASS): never an argument,
never logged, dropped as soon as the server has them.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from remoteenv.errors import AuthFailed, HostUnreachable
from remoteenv.inventory.model import Host
from remoteenv.keys import askpass
from remoteenv.sshlib import load_paramiko
from remoteenv.transport import ConnectOptions, hostkeys

# Direct connections, never a keeper's: what keys proves must be proven on a connection of its own.
from remoteenv.transport.connection import DEFAULT_CONNECT_TIMEOUT, Connection, connect, open_client

paramiko = load_paramiko()

log = logging.getLogger("remoteenv.keys")

# Methods a person answers by typing; OpenSSH tries keyboard-interactive before password.
TYPED_METHODS = ("keyboard-interactive", "password")

Ask = Callable[[str], str]


class _HostKeyOnlyClient(paramiko.SSHClient):
    """SSHClient.connect() up to and including the host-key check: the sign-in is done by the caller."""

    def _auth(self, *args, **kwargs) -> None:  # paramiko's hook between host key and authentication
        return None


@dataclass
class Unauthenticated:
    """A host-key-verified SSH transport to `host` on which no one has signed in yet."""

    host: Host
    client: paramiko.SSHClient
    jumps: list[Connection] = field(default_factory=list)

    @property
    def transport(self) -> paramiko.Transport:
        return self.client.get_transport()  # type: ignore[return-value]

    @property
    def user(self) -> str:
        return self.host.user or getpass.getuser()

    def methods(self) -> list[str] | None:
        """The methods the server lets this user try first (SSH "none" auth); None: it let us in."""
        try:
            self.transport.auth_none(self.user)
        except paramiko.BadAuthenticationType as exc:
            return list(exc.allowed_types)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise _lost(self.host, exc) from None
        return None

    def into_connection(self) -> Connection:
        """This transport, once authenticated, as the Connection every other command uses."""
        return Connection(self.host, self.client, jumps=self.jumps)

    def close(self) -> None:
        self.client.close()
        for jump in reversed(self.jumps):
            jump.close()


def open_unauthenticated(host: Host, options: ConnectOptions) -> Unauthenticated:
    """Connect to `host` and verify its host key; authenticate nothing."""
    jumps: list[Connection] = []
    sock = None
    try:
        if host.proxy_jump:
            sock, via = _through_jump(host, options)
            jumps.append(via)
        elif host.proxy_command:
            try:
                sock = paramiko.ProxyCommand(host.proxy_command)
            except (OSError, ValueError, paramiko.SSHException) as exc:
                raise HostUnreachable(host.name, f"ProxyCommand failed to start: {exc}",
                                      "check the ProxyCommand line in your ssh config") from None
        client = _HostKeyOnlyClient()
        user = host.user or getpass.getuser()
        tokens = hostkeys.ssh_tokens(host.name, host.hostname, host.port, user, host.proxy_jump)
        user_files = hostkeys.option_files(host.user_known_hosts_file, tokens=tokens)
        global_files = hostkeys.option_files(host.global_known_hosts_file)
        hostkeys.load_into(client, user_files, global_files)
        client.set_missing_host_key_policy(hostkeys.VerifyPolicy(
            host.name, options.accept_new_host_key, hashed=host.hash_known_hosts, user_files=user_files))
        timeout = options.connect_timeout or host.connect_timeout or DEFAULT_CONNECT_TIMEOUT
        open_client(client, dict(hostname=host.hostname, port=host.port, username=user, sock=sock,
                                 look_for_keys=False, allow_agent=False, timeout=timeout,
                                 banner_timeout=timeout, auth_timeout=timeout), host, [])
        return Unauthenticated(host, client, jumps)
    except BaseException:
        for jump in reversed(jumps):
            jump.close()
        raise


def _through_jump(host: Host, options: ConnectOptions) -> tuple[paramiko.Channel, Connection]:
    """A channel to `host` through its ProxyJump chain: the last hop is reached as remoteenv reaches
    any host (its own ProxyJump being the hops before it), then asked for a direct-tcpip channel."""
    from remoteenv.inventory import Inventory, resolve

    hops = [h.strip() for h in (host.proxy_jump or "").split(",") if h.strip()]
    resolve_jump = options.resolve_jump or (lambda name: resolve(Inventory(), name))
    spec = hops[-1]
    user = None
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    name, port = spec, None
    if spec.count(":") == 1:
        name, port_text = spec.split(":")
        port = int(port_text)
    last = resolve_jump(name)
    last.user = user or last.user
    last.port = port or last.port
    last.proxy_jump = ",".join(hops[:-1]) or None
    via = connect(last, options)
    try:
        chan = via.transport.open_channel("direct-tcpip", (host.hostname, host.port), ("127.0.0.1", 0),
                                          timeout=options.connect_timeout or DEFAULT_CONNECT_TIMEOUT)
    except (paramiko.SSHException, OSError) as exc:
        via.close()
        raise HostUnreachable(host.name, f"jump host {last.name} cannot reach {host.hostname}:{host.port}: {exc}",
                              "check the address as the jump host sees it") from None
    return chan, via


def _lost(host: Host, exc: BaseException) -> HostUnreachable:
    return HostUnreachable(host.name, f"the connection was closed during the sign-in: {exc or type(exc).__name__}",
                           "check the host's sshd logs (MaxAuthTries, a firewall)")


def sign_in(host: Host, options: ConnectOptions, ask: Ask | None = None, attempts: int | None = None) -> Connection:
    """An authenticated Connection to `host`, signed in with a typed password or keyboard-interactive
    answers (whichever the server offers, keyboard-interactive first, as OpenSSH does).

    `attempts`: tries before giving up (default: 3 at a terminal, as OpenSSH's NumberOfPasswordPrompts,
    1 with REMOTEENV_ASKPASS, whose program would give the same answer again).
    """
    ask = ask or askpass.ask
    if attempts is None:
        attempts = 1 if askpass.uses_program() else 3
    session = open_unauthenticated(host, options)
    try:
        methods = session.methods()
        if methods is None:
            log.debug("%s: the server let %s in without authentication", host.name, session.user)
            return session.into_connection()
        usable = [m for m in TYPED_METHODS if m in methods]
        if not usable:
            raise AuthFailed(host.name, f"{session.user}@{host.hostname} accepts only {', '.join(methods) or 'nothing'}"
                             ": no password or code sign-in to add a key with",
                             "add the public key another way (the provider's console, the host's admin), "
                             "then run remoteenv keys check")
        for attempt in range(attempts):
            remaining = _try(session, usable[0], ask)
            if remaining is None:
                return session.into_connection()
            if remaining:
                raise AuthFailed(host.name, f"the server also wants {', '.join(remaining)} after the "
                                 f"{usable[0]} sign-in", "remoteenv keys setup signs in with a password or codes "
                                 "alone; add the key another way (the host's admin)")
            log.debug("%s: %s sign-in refused (try %d of %d)", host.name, usable[0], attempt + 1, attempts)
        word = "password" if usable[0] == "password" else "password or code"
        raise AuthFailed(host.name, f"sign-in as {session.user}@{host.hostname} refused: wrong {word}",
                         "nothing was changed on the host; run the command again to retry")
    except BaseException:
        session.close()
        raise


def _try(session: Unauthenticated, method: str, ask: Ask) -> list[str] | None:
    """One sign-in try: None when in, [] when refused, else the methods the server still wants."""
    transport, user, host = session.transport, session.user, session.host
    try:
        if method == "password":
            answer = ask(f"{user}@{host.hostname}'s password: ")
            remaining = transport.auth_password(user, answer, fallback=False)
            del answer
        else:
            failures: list[BaseException] = []
            try:
                remaining = transport.auth_interactive(user, _answerer(user, host.hostname, ask, failures))
            finally:
                if failures:  # no answer (no terminal, askpass failed): say that, not "refused"
                    raise failures[0]
    except paramiko.BadAuthenticationType as exc:
        raise AuthFailed(host.name, f"the server refused {method} sign-in (it allows {', '.join(exc.allowed_types)})",
                         "add the public key another way (the host's admin)") from None
    except paramiko.AuthenticationException:
        if not transport.is_active():
            raise _lost(host, EOFError("the server closed it")) from None
        return []
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise _lost(host, exc) from None
    if transport.is_authenticated():
        return None
    return list(remaining or [])


def _answerer(user: str, hostname: str, ask: Ask, failures: list[BaseException]):
    """paramiko's keyboard-interactive handler. It runs in paramiko's own thread, where an exception
    would only end the connection: a failure to ask is kept in `failures` for the caller instead."""

    def handler(title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
        # sshd sends a last round with no prompt at all once PAM is satisfied.
        lead = "\n".join(t for t in (title.strip(), instructions.strip()) if t)
        answers = []
        try:
            for i, (text, _echo) in enumerate(prompts):
                prompt = f"({user}@{hostname}) {text}"
                answers.append(ask(f"{lead}\n{prompt}" if lead and i == 0 else prompt))
        except Exception as exc:
            failures.append(exc)
            return ["" for _ in prompts]
        return answers

    return handler
