"""A live SSH connection to one host (Fabric over paramiko), with typed results and errors."""

from __future__ import annotations

import codecs
import errno
import hashlib
import logging
import math
import os
import posixpath
import select
import shlex
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from remoteenv.errors import (
    AuthFailed,
    CommandFailed,
    CommandTimeout,
    ConnectError,
    ConnectTimeout,
    HostUnreachable,
    UploadFailed,
)
from remoteenv.inventory.model import Host
from remoteenv.scripts import script
from remoteenv.sshlib import load_paramiko
from remoteenv.transport import hops, hostkeys, keepalive
from remoteenv.transport import sftp as sftp_io
from remoteenv.transport.options import ConnectOptions, Prompter, RunResult
from remoteenv.transport.prompts import terminal_prompt
from remoteenv.transport.scripted import Scripted, short_command

# Held-back Invoke: see remoteenv.sshlib. Not at the package's import: a kept connection needs no paramiko.
paramiko = load_paramiko()

log = logging.getLogger("remoteenv.transport")

DEFAULT_CONNECT_TIMEOUT = 10.0

# Exit code of coreutils `timeout` when it had to stop the command.
_TIMEOUT_EXIT = 124


@dataclass
class Connection(Scripted):
    """An open session to `host`. Use `connect()` to make one; close it (or use `with`)."""

    host: Host
    client: paramiko.SSHClient
    jumps: list[Connection] = field(default_factory=list)
    _fabric: object = field(default=None, repr=False, compare=False)
    # Channels of commands running now, so that interrupt() can reach them from another thread.
    _running: set = field(default_factory=set, repr=False, compare=False)
    _home: str | None = field(default=None, repr=False, compare=False)
    _marker: str = field(default_factory=lambda: uuid.uuid4().hex[:16], repr=False, compare=False)

    @property
    def transport(self) -> paramiko.Transport:
        return self.client.get_transport()  # type: ignore[return-value]

    @property
    def fabric(self):  # -> fabric.Connection
        """A Fabric Connection over this same SSH session (SFTP, transfers, sudo).

        Made on first use: commands and the probe need only the session, and importing Fabric
        (and Invoke) costs more than a whole `probe` may take.
        """
        if self._fabric is None:
            import fabric

            conn = fabric.Connection(self.host.hostname, user=self.host.user or _local_user(),
                                     port=self.host.port, config=fabric.Config(ssh_config=paramiko.SSHConfig()))
            conn.client = self.client
            conn.transport = self.transport  # already open: Fabric's open() sees it connected
            self._fabric = conn
        return self._fabric

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self._fabric is not None:
                self._fabric.close()  # type: ignore[attr-defined]
            self.client.close()
        finally:
            for jump in reversed(self.jumps):
                jump.close()

    def interrupt(self, signal: str = "TERM") -> None:
        """Signal every command running on this connection (OpenSSH's sshd signals its process group).

        Closing a session is not enough: a command without a terminal keeps running on the host. sshd
        refuses the signal request for root logins (no privilege separation after a root login), so
        the scripts' processes are also found by the marker their environment carries and signalled.
        """
        running = list(self._running)
        for chan in running:
            if not isinstance(chan, paramiko.Channel) or chan.closed or chan.eof_received:
                # Not a session (a kept shell's script: the marker reaches it), or one the host is
                # closing: a request on a channel the host has let go ends the whole connection.
                continue
            try:
                msg = paramiko.Message()
                msg.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
                msg.add_int(chan.remote_chanid)
                msg.add_string("signal")
                msg.add_boolean(False)
                msg.add_string(signal)
                chan.transport._send_user_message(msg)  # paramiko has no public call for this request
            except (paramiko.SSHException, OSError, EOFError, AttributeError):
                pass
        if running:
            # After the signal requests (instant where sshd honours them): scanning /proc takes longer.
            self._signal_marked(signal)

    def _signal_marked(self, signal: str, timeout: float = 3.0) -> None:
        """`kill -SIGNAL` every process on the host whose environment holds this connection's marker."""
        marker = f"REMOTEENV_RUN={self._marker}"
        # One grep over every process's environment, not a fork or two per process: the host may run
        # thousands, and a scan that outlives its deadline leaves the command running. -lF, not GNU
        # grep -z: busybox has them too. A substring is exact enough: the marker is 16+ random chars.
        command = ("for f in $(grep -lF -e " + shlex.quote(marker) + " /proc/[0-9]*/environ 2>/dev/null); do "
                   + f"p=${{f#/proc/}}; kill -{signal} \"${{p%/environ}}\" 2>/dev/null; done; true")
        try:
            chan = self.transport.open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(command)
            chan.status_event.wait(timeout)
            chan.close()
        except (paramiko.SSHException, OSError, EOFError, AttributeError, TimeoutError):
            pass  # a dead link: nothing can be signalled, and its commands lose their session anyway

    @property
    def alive(self) -> bool:
        transport = self.client.get_transport()
        return bool(transport and transport.is_active())

    def run(
        self,
        command: str,
        *,
        stdin: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
        on_output: Callable[[str], None] | None = None,
        _plain: bool = False,
    ) -> RunResult:
        """Run `command` through the login shell; stdin (if any) is sent then closed.

        Secrets go through `stdin`, never into `command` (which other users can see in `ps`).
        With `timeout`, the host's `timeout` stops the command (and its children) when it runs
        over, and a local deadline a little later guards against a host that stops answering.
        """
        remote = command
        if timeout is not None:
            secs = max(1, math.ceil(timeout))
            # A plain argv (run_script's) needs no shell of its own under `timeout`: one process fewer.
            remote = f"timeout -k 5 {secs} " + (command if _plain else f"/bin/sh -c {shlex.quote(command)}")
        if _plain:
            # In the environment from exec on: interrupt() finds the script and every child by it where
            # sshd refuses to signal them (root logins). A marker, not a secret: argv may show it.
            remote = f"REMOTEENV_RUN={self._marker} {remote}"
        started = time.monotonic()
        deadline = started + timeout + 10 if timeout is not None else None
        try:
            chan = self.transport.open_session(timeout=30)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise self.lost("before a command could start", exc) from None
        out: list[bytes] = []
        err: list[bytes] = []
        # A UTF-8 character may be split across two reads: decode each stream incrementally.
        out_text = codecs.getincrementaldecoder("utf-8")("replace")
        err_text = codecs.getincrementaldecoder("utf-8")("replace")
        self._running.add(chan)
        try:
            chan.exec_command(remote)
            if stdin is not None:
                chan.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
            chan.shutdown_write()
            while True:
                wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
                if chan.eof_received and not (chan.recv_ready() or chan.recv_stderr_ready()):
                    # After EOF the channel polls readable for good: wait for the exit status instead.
                    chan.status_event.wait(wait)
                else:
                    select.select([chan], [], [], wait)
                while chan.recv_ready():
                    data = chan.recv(65536)
                    out.append(data)
                    if on_output:
                        on_output(out_text.decode(data))
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(65536)
                    err.append(data)
                    if on_output:
                        on_output(err_text.decode(data))
                # Some servers close the channel after the exit status without sending EOF first.
                if chan.exit_status_ready() and (chan.eof_received or chan.closed) and not (
                    chan.recv_ready() or chan.recv_stderr_ready()
                ):
                    break
                if chan.closed and not chan.exit_status_ready():
                    raise self.lost("while a command ran")
                if deadline is not None and time.monotonic() >= deadline:
                    raise CommandTimeout(self.host.name, f"`{short_command(command)}`", timeout or 0)
            exited = chan.recv_exit_status()
            if exited == -1 and not self.alive:
                # paramiko's "no status": the transport closed under the command (a dead link).
                raise self.lost("while a command ran")
        except (TimeoutError, paramiko.SSHException, OSError, EOFError) as exc:
            raise self.lost("while a command ran", exc) from None
        finally:
            self._running.discard(chan)
            chan.close()
        if timeout is not None and exited == _TIMEOUT_EXIT:
            raise CommandTimeout(self.host.name, f"`{short_command(command)}`", timeout)
        result = RunResult(command, exited, b"".join(out).decode(errors="replace"),
                           b"".join(err).decode(errors="replace"), time.monotonic() - started)
        if check and not result.ok:
            raise CommandFailed(self.host.name, short_command(command), result.exited, result.stderr)
        return result

    def put(self, data: bytes | Path, remote_path: str, mode: int | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> None:
        """Write a file atomically and never short: a private temp file beside it, checked, renamed.

        The temp file is created 0600 before any byte is written (a secret is never readable by
        others on its way). Its size and SHA-256 are checked on the host before it replaces the
        target, because SFTP servers report a failed write (a full disk) only in replies that a
        pipelined upload does not wait for: a short copy must never replace a good file.
        """
        sftp = self.fabric.sftp()  # type: ignore[attr-defined]
        remote_path = self.expand(remote_path)
        folder = posixpath.dirname(remote_path) or "."
        tmp = posixpath.join(folder, f".{posixpath.basename(remote_path)}.remoteenv-{uuid.uuid4().hex[:8]}")
        digest = hashlib.sha256()
        size = 0
        total = data.stat().st_size if isinstance(data, Path) else len(data)
        try:
            handle = sftp_io.open_private(sftp, tmp)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            if not self.alive:
                raise self.lost("during an upload", exc) from None
            raise UploadFailed(self.host.name, remote_path, f"cannot create {tmp}: {exc}") from None
        try:
            with handle as fh:
                fh.set_pipelined(True)
                for chunk in _chunks(data):
                    digest.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
                    if on_progress:
                        on_progress(size, total)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            # Written or not, the finish script below removes the temp file and says why.
            log.debug("%s: upload to %s: %s", self.host.name, tmp, exc)
            if not self.alive:
                raise self.lost("during an upload", exc) from None
        finish = self.run_script(script("put_finish.sh"),
                                 [tmp, remote_path, str(size), digest.hexdigest(),
                                  f"{mode if mode is not None else 0o644:o}"])
        if not finish.ok:
            why = (finish.stdout + finish.stderr).strip().splitlines()
            raise UploadFailed(self.host.name, remote_path, why[-1] if why else f"exit {finish.exited}")

    def lost(self, when: str, exc: BaseException | None = None) -> HostUnreachable:
        """The error for a connection that went away `when` (why, if the keepalive watcher knows)."""
        why = keepalive.dead_reason(self.client.get_transport())
        if why is None and exc is not None:
            why = str(exc) or type(exc).__name__
        return HostUnreachable(self.host.name, f"connection lost {when}" + (f": {why}" if why else ""),
                               "check the host and its network, then re-run: finished steps are kept")

    def get(self, remote_path: str) -> bytes:
        sftp = self.fabric.sftp()  # type: ignore[attr-defined]
        with sftp.open(self.expand(remote_path), "rb") as fh:
            fh.prefetch()
            return fh.read()

    @property
    def home(self) -> str:
        """The login user's home folder: from the probe when it ran (no round trip), else SFTP's."""
        if self._home is None:
            self._home = self.fabric.sftp().normalize(".")  # type: ignore[attr-defined]
        return self._home

    @home.setter
    def home(self, value: str) -> None:
        self._home = value or None


def _chunks(data: bytes | Path, size: int = 1 << 20):
    if isinstance(data, Path):
        with open(data, "rb") as src:
            while chunk := src.read(size):
                yield chunk
    else:
        for start in range(0, len(data), size):
            yield data[start:start + size]


def connect(host: Host, options: ConnectOptions | None = None) -> Connection:
    """Open an authenticated, host-key-verified connection to `host` (through its ProxyJump hops)."""
    options = options or ConnectOptions()
    jumps: list[Connection] = []
    try:
        sock = None
        if host.proxy_jump:
            from remoteenv.inventory import Inventory, resolve

            resolve_jump = options.resolve_jump or (lambda name: resolve(Inventory(), name))
            hops = [_parse_hop(h.strip(), resolve_jump) for h in host.proxy_jump.split(",")]
            for hop, after in zip(hops, [*hops[1:], host], strict=True):
                hop.proxy_jump = None  # the outer ProxyJump gives the whole chain
                jumps.append(_connect_direct(hop, options, sock))
                sock = _channel_to(jumps[-1], after, options)
        conn = _connect_direct(host, options, sock)
        conn.jumps = jumps
        return conn
    except BaseException:
        for jump in reversed(jumps):
            jump.close()
        raise


def _channel_to(via: Connection, target: Host, options: ConnectOptions) -> paramiko.Channel:
    try:
        return via.transport.open_channel(
            "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0),
            timeout=_connect_timeout(target, options),
        )
    except (paramiko.SSHException, OSError) as exc:
        raise HostUnreachable(target.name, f"jump host {via.host.name} cannot reach "
                              f"{target.hostname}:{target.port}: {exc}",
                              "check the address as the jump host sees it") from None


def _connect_direct(host: Host, options: ConnectOptions, sock: paramiko.Channel | None) -> Connection:
    client = paramiko.SSHClient()
    tokens = hostkeys.ssh_tokens(host.name, host.hostname, host.port, host.user or _local_user(), host.proxy_jump)
    user_files = hostkeys.option_files(host.user_known_hosts_file, tokens=tokens)
    global_files = hostkeys.option_files(host.global_known_hosts_file)
    hostkeys.load_into(client, user_files, global_files)
    client.set_missing_host_key_policy(hostkeys.VerifyPolicy(
        host.name, options.accept_new_host_key, hashed=host.hash_known_hosts, user_files=user_files))
    only_listed = host.identities_only and bool(host.identity_files)
    # As OpenSSH does, a listed key that does not exist is passed over (and named if login fails).
    keys = [k for k in host.identity_files if os.path.exists(k)]
    missing = [k for k in host.identity_files if k not in keys]
    if missing:
        log.debug("%s: no such identity file: %s", host.name, ", ".join(missing))
    kwargs: dict = {
        "hostname": host.hostname,
        "port": host.port,
        "username": host.user or _local_user(),
        "key_filename": keys or None,
        "look_for_keys": not only_listed,
        "allow_agent": not (only_listed or os.environ.get("REMOTEENV_NO_AGENT")),
        "timeout": _connect_timeout(host, options),
        "banner_timeout": _connect_timeout(host, options),
        "auth_timeout": _connect_timeout(host, options),
    }
    if sock is None and host.proxy_command:
        try:
            # As ssh runs it: through the user's shell with `exec`, so pipes and redirections work.
            shell = os.environ.get("SHELL") or "/bin/sh"
            sock = paramiko.ProxyCommand(shlex.join([shell, "-c", f"exec {host.proxy_command}"]))
        except (OSError, ValueError, paramiko.SSHException) as exc:
            raise HostUnreachable(host.name, f"ProxyCommand failed to start: {exc}",
                                  "check the ProxyCommand line in your ssh config") from None
    if sock is not None:
        kwargs["sock"] = sock
    kwargs["transport_factory"] = _asking_transport(host.name, options.prompt)
    started = time.monotonic()
    log.debug("%s: connecting to %s:%s as %s%s", host.name, host.hostname, host.port, kwargs["username"],
              " through a jump host" if sock is not None else "")
    open_client(client, kwargs, host, missing)
    log.debug("%s: connected and authenticated in %.3fs", host.name, time.monotonic() - started)
    keepalive.watch(client.get_transport(), host.name, *keepalive.settings(host, options))
    return Connection(host, client)




def _asking_transport(name: str, prompt: Prompter | None) -> Callable[..., paramiko.Transport]:
    """A Transport whose second factor (keyboard-interactive, after the key) asks `prompt`.

    paramiko's own fallback reads codes with input() on stdin, echoing them: never that.
    """
    ask = prompt or terminal_prompt

    class AskingTransport(paramiko.Transport):
        # AES-GCM first: its tag is checked inside the cipher, where paramiko's CTR+HMAC modes compute an
        # HMAC and compare it byte by byte in Python for every packet (a kept connection's cost).
        _preferred_ciphers = tuple(sorted(paramiko.Transport._preferred_ciphers, key=lambda c: "-gcm@" not in c))

        def auth_interactive_dumb(self, username: str, handler: object = None, submethods: str = "") -> list[str]:
            def answer(title: str, instructions: str, prompt_list: list[tuple[str, bool]]) -> list[str]:
                return ask(name, title, instructions, [(p, bool(e)) for p, e in prompt_list])

            return self.auth_interactive(username, answer, submethods)

    def make(sock: object, **kwargs: object) -> paramiko.Transport:
        return AskingTransport(sock, **kwargs)

    return make


def _connect_timeout(host: Host, options: ConnectOptions) -> float:
    return options.connect_timeout or host.connect_timeout or DEFAULT_CONNECT_TIMEOUT


def _local_user() -> str:
    import getpass

    return getpass.getuser()


def _parse_hop(hop: str, resolve_jump: Callable[[str], Host]) -> Host:
    """`[user@]host[:port]` as OpenSSH's ProxyJump writes a hop; the name is looked up too."""
    parsed = hops.parse_hop(hop)
    resolved = resolve_jump(parsed.name)
    if parsed.user:
        resolved.user = parsed.user
    if parsed.port:
        resolved.port = parsed.port
    return resolved


def _looks_like_host_port(hostname: str) -> bool:
    head, sep, port = hostname.rpartition(":")
    return bool(sep and head and port.isdigit() and ":" not in head)


def _socket_error(name: str, where: str, errors: list[OSError]) -> HostUnreachable:
    """The OS's reason a TCP connect failed, named as it is: refused is not unreachable."""
    codes = {e.errno for e in errors}
    if codes and codes <= {errno.ECONNREFUSED}:
        return HostUnreachable(name, f"connection refused at {where}", "is sshd running there, and is the port right?")
    if codes & {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}:
        return HostUnreachable(name, f"no route to {where}",
                               "the host is down or not reachable from here (VPN, network, address)")
    if codes & {errno.ETIMEDOUT}:
        return ConnectTimeout(name, f"no answer from {where}",
                              "check that the host is up and reachable (VPN, firewall, address)")
    why = next((e.strerror or str(e) for e in errors), "unknown error")
    return HostUnreachable(name, f"cannot connect to {where}: {why}", "check the address and your network")


def open_client(client: paramiko.SSHClient, kwargs: dict, host: Host, missing_keys: list[str]) -> None:
    """client.connect(), with paramiko's and the OS's exceptions turned into remoteenv's typed ones
    (the key sign-in here, and keys/signin's password one, which connects without keys)."""
    name = host.name
    where = f"{host.hostname}:{host.port}"
    try:
        client.connect(**kwargs)
    except ConnectError:
        raise
    except paramiko.BadHostKeyException as exc:
        raise hostkeys.mismatch_error(name, hostkeys.host_key_name(host.hostname, host.port), exc.key) from None
    except paramiko.PasswordRequiredException:
        raise AuthFailed(name, "the private key is passphrase-protected",
                         "load it into your agent (ssh-add) and retry") from None
    except paramiko.AuthenticationException:
        user = host.user or _local_user()
        tried = [k for k in host.identity_files if k not in missing_keys]
        keys = ", ".join(tried) or ("agent" if host.identities_only else "agent and default keys")
        hint = "install your public key on the host (ssh-copy-id) or set identity_file"
        if missing_keys:
            hint = f"no such identity file: {', '.join(missing_keys)}; check identity_file / IdentityFile"
        raise AuthFailed(name, f"authentication failed for {user}@{where} (tried {keys})", hint) from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        raise _socket_error(name, where, [e for e in exc.errors.values() if isinstance(e, OSError)]) from None
    except TimeoutError:
        raise ConnectTimeout(name, f"no answer from {where}",
                             "check that the host is up and reachable (VPN, firewall, address)") from None
    except socket.gaierror:
        hint = "check the name, or set hostname in the inventory or ~/.ssh/config"
        if _looks_like_host_port(host.hostname):
            hint = ("a port is not part of a host name: set it in the inventory (`port:`, or a `host:port` "
                    "line in a plain list) or in ~/.ssh/config (Port)")
        raise HostUnreachable(name, f"cannot resolve hostname '{host.hostname}'", hint) from None
    except paramiko.ProxyCommandFailure as exc:
        raise HostUnreachable(name, f"ProxyCommand failed: {exc}",
                              "run the ProxyCommand from your ssh config by hand to see why") from None
    except paramiko.SSHException as exc:
        if host.proxy_command and ("protocol banner" in str(exc) or "No existing session" in str(exc)):
            raise HostUnreachable(name, f"no SSH server answered through ProxyCommand `{host.proxy_command}`",
                                  "run the ProxyCommand from your ssh config by hand to see why") from None
        if "protocol banner" in str(exc) or "No existing session" in str(exc):
            # TCP connected, but no SSH greeting came: a hung host, or something else on that port.
            raise ConnectTimeout(name, f"no answer from {where} (the SSH server did not greet us)",
                                 "check that the host is up and not overloaded, and that the port is sshd's") from None
        if "No authentication methods available" in str(exc):
            hint = (f"no such identity file: {', '.join(missing_keys)}" if missing_keys
                    else "load a key into your agent (ssh-add) or set identity_file")
            raise AuthFailed(name, f"no key to log in to {where} with", hint) from None
        raise HostUnreachable(name, f"SSH handshake with {where} failed: {exc}",
                              "check that an SSH server listens there") from None
    except OSError as exc:
        raise _socket_error(name, where, [exc]) from None
    except EOFError:
        raise HostUnreachable(name, f"{where} closed the connection during the handshake",
                              "check the host's sshd logs") from None
