"""The `asyncssh` backend: the tunnel's SSH connection held in this process, for machines without `ssh`.

It connects with what remoteenv resolved for the host (HostName, User, Port, keys, ProxyJump or
ProxyCommand, ConnectTimeout, keepalives) and is as strict as `openssh`: only keys and agents log in,
and host keys are checked against the files remoteenv reads. Those files are parsed by remoteenv's
own reader (hostkeys), and asyncssh is handed just the keys they hold for this host: given the files
itself, asyncssh reads ~/.ssh/known_hosts when the list is empty, fails on a line OpenSSH skips, and
trusts a key recorded for port 22 or for the address when none is recorded for `[host]:port`.

Each open() runs an event loop in a daemon thread of its own; close() ends the connection, the loop
and the thread. The public methods are synchronous and may be called from any thread.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import errno
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

from remoteenv.errors import RemoteenvError
from remoteenv.transport import hostkeys, keepalive
from remoteenv.tunnel import LOCAL_HOST, Forward, TunnelError
from remoteenv.tunnel.base import Backend

if TYPE_CHECKING:
    from remoteenv.inventory import Host

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0  # seconds for the connections to say goodbye and the loop thread to end
# OpenSSH's default identity files under ~/.ssh, in its order (ssh_config(5), IdentityFile).
DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa")
LOCAL_USER_DEFAULT = "user"


@dataclass(frozen=True)
class _Trust:
    """The keys known_hosts holds for one host, as asyncssh's `known_hosts` callable answers them."""

    name: str  # `host` or `[host]:port`, as known_hosts names it
    keys: tuple[asyncssh.SSHKey, ...]
    authorities: tuple[asyncssh.SSHKey, ...]
    revoked: tuple[asyncssh.SSHKey, ...]

    def lookup(self, host: str, addr: str, port: int | None) -> tuple[list, list, list]:
        # asyncssh asks with the name and the peer's address; only `name` counts, as for OpenSSH.
        return list(self.keys), list(self.authorities), list(self.revoked)


@dataclass(frozen=True)
class _Target:
    """One SSH connection to make: a ProxyJump hop or the host itself."""

    host: Host
    trust: _Trust
    kwargs: dict[str, Any]
    hop: bool


class _Watch(asyncssh.SSHClient):
    """Tells the session when, and why, the host's connection ended."""

    def __init__(self, session: _Session, describe: Callable[[Exception | None], str]) -> None:
        super().__init__()
        self._session = session
        self._describe = describe

    def connection_lost(self, exc: Exception | None) -> None:
        self._session.lost(self._describe(exc))


class _Session:
    """One opening of the tunnel: its event loop and thread, and the connections made on it."""

    def __init__(self, label: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.ended = threading.Event()
        self.error = ""
        self.closing = False
        # Touched on the loop thread only.
        self.conns: list[asyncssh.SSHClientConnection] = []
        self.listeners: list[asyncssh.SSHListener] = []
        self.opening: asyncio.Task | None = None
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"remoteenv-tunnel-{label}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            # asyncssh builds its options in the loop's default executor: its threads end here too.
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def lost(self, why: str) -> None:
        if not self.closing and not self.error:
            self.error = why
        self.ended.set()

    def stop(self) -> None:
        """Close the listeners and connections, then end the loop and its thread; safe to call twice."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            self.closing = True
            try:
                self.run(self._shutdown(), 2 * CLOSE_TIMEOUT)
            except Exception as exc:  # a broken connection fails to close in many ways; the loop ends all the same
                log.debug("tunnel shutdown: %r", exc)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(CLOSE_TIMEOUT)
            self.ended.set()

    async def _shutdown(self) -> None:
        if self.opening is not None and not self.opening.done():
            self.opening.cancel()
            await asyncio.wait([self.opening], timeout=CLOSE_TIMEOUT)
        # Closing a listener closes its socket at once: the local port is free when stop() returns.
        for listener in self.listeners:
            listener.close()
        for conn in reversed(self.conns):
            conn.close()
        closing = [asyncio.ensure_future(conn.wait_closed()) for conn in self.conns]
        if closing:
            await asyncio.wait(closing, timeout=CLOSE_TIMEOUT)


class AsyncSSHBackend(Backend):
    name = "asyncssh"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._error = ""

    # ---------------------------------------------------------------- the interface

    def open(self, timeout: float) -> None:
        self.close()
        targets = self._targets()  # reads the key and known_hosts files: errors here are the person's
        session = _Session(self.host.name)
        with self._lock:
            self._session = session
            self._error = ""
        try:
            session.run(self._open(session, targets, timeout), timeout + CLOSE_TIMEOUT)
        except BaseException as exc:
            error = self._open_error(exc, timeout)
            session.stop()
            with self._lock:
                if self._session is session:
                    self._session = None
                self._error = error.message if error is not None else ""
            if error is None or error is exc:
                raise
            raise error from None

    def wait(self, timeout: float | None = None) -> bool:
        session = self._session
        return True if session is None else session.ended.wait(timeout)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            if session.ended.is_set():
                self._error = session.error  # the connection had ended on its own: keep why
            session.stop()

    @property
    def last_error(self) -> str:
        session = self._session
        return session.error if session is not None else self._error

    # ---------------------------------------------------------------- on the loop

    async def _open(self, session: _Session, targets: list[_Target], timeout: float) -> None:
        session.opening = asyncio.current_task()
        try:
            await asyncio.wait_for(self._connect(session, targets), timeout)
        except asyncio.TimeoutError:
            raise TunnelError(f"{self.host.name}: the tunnel did not open within {timeout:g}s",
                              f"check that `remoteenv probe {self.host.name}` connects") from None

    async def _connect(self, session: _Session, targets: list[_Target]) -> None:
        tunnel: asyncssh.SSHClientConnection | None = None
        for target in targets:
            tunnel = await self._connect_one(session, target, tunnel)
            session.conns.append(tunnel)
        assert tunnel is not None
        for forward in self.forwards:
            session.listeners.append(await self._listen(tunnel, forward))

    async def _connect_one(self, session: _Session, target: _Target,
                           tunnel: asyncssh.SSHClientConnection | None) -> asyncssh.SSHClientConnection:
        kwargs = dict(target.kwargs)
        if tunnel is not None:
            kwargs["tunnel"] = tunnel
        elif target.host.proxy_command:
            # As OpenSSH runs ProxyCommand: through the shell, so pipes and quotes work.
            kwargs["proxy_command"] = [os.environ.get("SHELL") or "/bin/sh", "-c",
                                       f"exec {target.host.proxy_command}"]
        if not target.hop:
            kwargs["client_factory"] = lambda: _Watch(session, self._describe_end)
        try:
            return await asyncssh.connect(target.host.hostname, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._connect_error(target, exc) from None

    async def _listen(self, conn: asyncssh.SSHClientConnection, forward: Forward) -> asyncssh.SSHListener:
        try:
            if forward.remote_is_socket:
                return await conn.forward_local_port_to_path(LOCAL_HOST, forward.local_port, forward.remote)
            host, port = _host_port(forward.remote)
            return await conn.forward_local_port(LOCAL_HOST, forward.local_port, host, port)
        except OSError as exc:
            where = f"{LOCAL_HOST}:{forward.local_port}"
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise TunnelError(f"{self.host.name}: cannot listen on {where}: the port is in use",
                                  "the local port is busy: give another with --local-port") from None
            raise TunnelError(f"{self.host.name}: cannot listen on {where}: {_one_line(exc.strerror or exc)}",
                              "give another with --local-port") from None

    # ---------------------------------------------------------------- what to connect to

    def _targets(self) -> list[_Target]:
        hops = [self._target(hop, hop=True) for hop in self._hops()]
        return [*hops, self._target(self.host, hop=False)]

    def _hops(self) -> list[Host]:
        value = self.host.proxy_jump
        if self.host.proxy_command or not value or value.lower() == "none":
            return []
        resolve_jump = self.options.resolve_jump or _resolve_plain
        hops = []
        for word in value.split(","):
            user, _, rest = word.strip().rpartition("@")
            name, port = _split_hop(rest)
            hop = resolve_jump(name)
            # The host's ProxyJump names the whole chain: a hop's own is not followed.
            hops.append(dataclasses.replace(hop, user=user or hop.user, port=port or hop.port, proxy_jump=None))
        return hops

    def _target(self, host: Host, hop: bool) -> _Target:
        trust = _trust(host)
        interval, count = keepalive.settings(host, self.options)
        kwargs: dict[str, Any] = {
            "port": host.port,
            "username": host.user or _local_user(),
            # remoteenv has read the ssh config already; asyncssh must not read one of its own.
            "config": None,
            "known_hosts": trust.lookup,
            "host_key_alias": None,
            "server_host_key_algs": _host_key_algs(trust),
            "x509_trusted_certs": None,  # OpenSSH knows no X.509 host certificates
            "x509_trusted_cert_paths": [],
            # Keys and agents only: a background tunnel has no one to type a password.
            "password": None,
            "password_auth": False,
            "kbdint_auth": False,
            "host_based_auth": False,
            "gss_kex": False,
            "gss_auth": False,
            "preferred_auth": "publickey",
            "agent_forwarding": False,
            "keepalive_interval": interval,
            "keepalive_count_max": count,
            "connect_timeout": self.options.connect_timeout or host.connect_timeout or None,
            **_credentials(host),
        }
        return _Target(host, trust, kwargs, hop)

    # ---------------------------------------------------------------- errors

    def _open_error(self, exc: BaseException, timeout: float) -> RemoteenvError | None:
        """What open() raises for `exc`; None to raise `exc` itself (Ctrl-C and the like)."""
        if isinstance(exc, RemoteenvError):
            return exc
        name = self.host.name
        if isinstance(exc, concurrent.futures.CancelledError):
            return TunnelError(f"{name}: the tunnel was closed while it opened", "open it again")
        if isinstance(exc, concurrent.futures.TimeoutError):
            return TunnelError(f"{name}: the tunnel did not open within {timeout:g}s",
                               f"check that `remoteenv probe {name}` connects")
        if isinstance(exc, Exception):
            return TunnelError(f"{name}: {_one_line(exc) or type(exc).__name__}",
                               f"check that `remoteenv probe {name}` connects")
        return None

    def _connect_error(self, target: _Target, exc: Exception) -> TunnelError:
        host = target.host
        label = f"{self.host.name}: jump host {host.name}" if target.hop else host.name
        where = f"{host.hostname}:{host.port}"
        probe = f"check that `remoteenv probe {host.name}` connects"
        if isinstance(exc, asyncssh.HostKeyNotVerifiable) or (
                isinstance(exc, asyncssh.KeyExchangeFailed) and target.trust.keys and "host key" in exc.reason):
            return _host_key_error(label, host, target.trust, exc)
        if isinstance(exc, asyncssh.PermissionDenied):
            user = target.kwargs["username"]
            return TunnelError(f"{label}: permission denied for {user}@{where} (keys and agent only)",
                               f"key login failed: check IdentityFile with `remoteenv hosts {host.name}`")
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            limit = target.kwargs["connect_timeout"]
            return TunnelError(f"{label}: no answer from {where}" + (f" within {limit:g}s" if limit else ""), probe)
        if isinstance(exc, ConnectionRefusedError):
            return TunnelError(f"{label}: connection refused at {where}",
                               "is sshd running there, and is the port right?")
        if isinstance(exc, OSError):
            return TunnelError(f"{label}: cannot connect to {where}: {_one_line(exc.strerror or exc)}", probe)
        if isinstance(exc, asyncssh.ChannelOpenError):
            return TunnelError(f"{label}: the jump host cannot reach {where}: {_one_line(exc.reason)}",
                               "check the address as the jump host sees it")
        if isinstance(exc, asyncssh.Error):
            return TunnelError(f"{label}: {_one_line(exc.reason)}", probe)
        return TunnelError(f"{label}: {type(exc).__name__}: {_one_line(exc)}", probe)

    def _describe_end(self, exc: Exception | None) -> str:
        """Why the host's connection ended, in one line (remoteenv's words for a keepalive timeout)."""
        if exc is None:
            return f"the connection to {self.host.name} was closed"
        if isinstance(exc, asyncssh.ConnectionLost) and "keepalive" in exc.reason:
            interval, count = keepalive.settings(self.host, self.options)
            return (f"no answer to keepalives (ServerAliveInterval {interval:g}, "
                    f"ServerAliveCountMax {count})")
        if isinstance(exc, asyncssh.Error):
            return _one_line(exc.reason) or type(exc).__name__
        return _one_line(exc) or type(exc).__name__


# ---------------------------------------------------------------- helpers


def _trust(host: Host) -> _Trust:
    """The keys the known_hosts files remoteenv reads (the ones `openssh` names) hold for `host`."""
    tokens = hostkeys.ssh_tokens(host.name, host.hostname, host.port, host.user or _local_user(), host.proxy_jump)
    files = hostkeys.known_hosts_files(hostkeys.option_files(host.user_known_hosts_file, tokens=tokens),
                                       hostkeys.option_files(host.global_known_hosts_file))
    name = hostkeys.host_key_name(host.hostname, host.port)
    found: dict[str | None, list[asyncssh.SSHKey]] = {None: [], hostkeys.CERT_AUTHORITY: [], hostkeys.REVOKED: []}
    for entry in hostkeys.load(files).lookup(name):
        key = _public_key(entry.blob)
        if key is not None:
            found[entry.marker].append(key)
    return _Trust(name, tuple(found[None]), tuple(found[hostkeys.CERT_AUTHORITY]), tuple(found[hostkeys.REVOKED]))


def _host_key_algs(trust: _Trust) -> list[str]:
    """Host key types to offer: the known ones first, then every other, as OpenSSH offers them.

    asyncssh's own choice is the known types only: a host that no longer has a key of those types then
    resets the connection, where it should show its new key and be refused as changed.
    """
    known = [alg for key in trust.keys for alg in key.sig_algorithms]
    if trust.authorities:
        known = [*get_default_certificate_algs(), *known]
    every = [*known, *get_default_certificate_algs(), *get_default_public_key_algs()]
    return list(dict.fromkeys(alg.decode("ascii") for alg in every))


def _public_key(blob: bytes) -> asyncssh.SSHKey | None:
    """The key of a known_hosts blob; None for a type asyncssh cannot use (nor then negotiate)."""
    # The line's own type may be rsa-sha2-*, which asyncssh does not read: name the blob's.
    size = int.from_bytes(blob[:4], "big")
    kind = blob[4:4 + size].decode("ascii", "replace")
    try:
        return asyncssh.import_public_key(f"{kind} {base64.b64encode(blob).decode()}")
    except (asyncssh.KeyImportError, ValueError):
        return None


def _host_key_error(label: str, host: Host, trust: _Trust, exc: Exception) -> TunnelError:
    reason = exc.reason if isinstance(exc, asyncssh.Error) else str(exc)
    if "revoked" in reason.lower():
        return TunnelError(f"{label}: HOST KEY REVOKED: the host offers a key known_hosts marks @revoked",
                           "do not connect; ask the host's admin for its new host key")
    if trust.keys:
        return TunnelError(f"{label}: HOST KEY CHANGED: the host's key is none of those known_hosts has for "
                           f"{trust.name}",
                           f"this may be an attack; `remoteenv probe {host.name}` names the known_hosts line")
    return TunnelError(f"{label}: host key not known: no known_hosts file remoteenv reads has {trust.name}",
                       f"the host's key is not in known_hosts: run `remoteenv probe {host.name} "
                       "--accept-new-host-key` once")


def _credentials(host: Host) -> dict[str, Any]:
    """asyncssh's client_keys and agent_path for `host`, as `openssh` and the in-process transport choose."""
    listed = [os.path.expanduser(k) for k in host.identity_files]
    keys = _load_keys(host.name, listed)
    if host.identities_only and listed:
        # IdentitiesOnly: the listed keys and nothing else. None, not [], when none loads: asyncssh
        # reads the default keys for an empty list.
        return {"client_keys": keys or None, "agent_path": None}
    ssh_dir = os.path.join(os.path.expanduser("~"), ".ssh")
    defaults = [os.path.join(ssh_dir, name) for name in DEFAULT_KEYS]
    keys += _load_keys(host.name, [p for p in defaults if p not in listed and os.path.exists(p)])
    # () is asyncssh's "SSH_AUTH_SOCK"; None turns the agent off.
    agent = None if os.environ.get("REMOTEENV_NO_AGENT") else ()
    return {"client_keys": keys, "agent_path": agent}


def _load_keys(label: str, paths: list[str]) -> list[asyncssh.SSHKeyPair]:
    """The keys of `paths`; as OpenSSH does, a missing or unreadable file is passed over, and so is a
    passphrase-protected one (the agent may hold it: nothing here can ask for the passphrase)."""
    keys: list[asyncssh.SSHKeyPair] = []
    for path in paths:
        try:
            keys += asyncssh.load_keypairs(path, ignore_encrypted=True)
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            log.debug("%s: skipped identity file %s: %s", label, path, exc)
    return keys


def _host_port(remote: str) -> tuple[str, int]:
    """"HOST:PORT" or "[v6]:PORT" of a Forward's remote end."""
    host, _, port = remote.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _split_hop(hop: str) -> tuple[str, int | None]:
    """`host`, `host:port` or `[host]:port` as OpenSSH's ProxyJump writes a hop."""
    if hop.startswith("["):
        name, _, rest = hop[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if hop.count(":") == 1:
        name, _, port = hop.partition(":")
        return name, int(port) if port.isdigit() else None
    return hop, None


def _resolve_plain(name: str) -> Host:
    from remoteenv.inventory import Inventory, resolve

    return resolve(Inventory(), name)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return LOCAL_USER_DEFAULT
