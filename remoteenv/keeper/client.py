"""The command's side of the keeper: a Connection that runs everything through the kept session.

Light on purpose (no paramiko): a command served by the keeper costs a Unix-socket round trip plus
the host's, not a handshake and not paramiko's import. Where no keeper can be had (no Unix sockets,
a state dir path too long for one, a keeper that does not start), `connect` returns None and the
caller opens a connection of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remoteenv import keeper
from remoteenv.errors import CommandFailed, HostUnreachable, RemoteenvError
from remoteenv.inventory.model import CONNECTION_FIELDS, Host
from remoteenv.keeper import wire
from remoteenv.transport.hops import hops_of
from remoteenv.transport.options import ConnectOptions, Prompter, RunResult
from remoteenv.transport.scripted import Scripted, short_command

log = logging.getLogger("remoteenv.keeper")

START_WAIT = 10.0  # seconds for a new keeper to listen (it imports paramiko first)
# Seconds a running keeper has to answer a ping before a command goes on without it. Every client
# has a thread of its own there, so a working keeper answers in microseconds, however busy; one
# that does not is stopped (SIGSTOP, a debugger) or stuck.
ANSWER_WAIT = 5.0
REOPEN_TRIES = 5  # dials after the keeper went away: the first may reach the dying one


_spawning = threading.Lock()


class KeeperGone(ConnectionError):
    """The keeper process ended (killed, crashed) while this command used it."""


def wanted(host: Host, options: ConnectOptions) -> bool:
    if options.reuse is False or (options.reuse is None and keeper.reuse_off()):
        return False
    if str(host.vars.get("connection_reuse", "")).lower() in ("false", "no", "0"):
        return False
    return hasattr(socket, "AF_UNIX")


def _dial(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        return sock
    except OSError:
        sock.close()
        return None


class KeeperStuck(RemoteenvError):
    """A keeper runs but does not answer."""

    def __init__(self, pid: int | None) -> None:
        which = f"pid {pid}" if pid else "its pid unknown"
        super().__init__(f"the connection keeper ({which}) does not answer",
                         f"end it (kill {pid}); the next command starts another" if pid else
                         "end the stuck `python -m remoteenv.keeper` process")
        self.pid = pid


_stuck: list[KeeperStuck] = []  # said once per process


def _peer_pid(sock: socket.socket) -> int | None:
    try:
        pid, _, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return pid or None
    except (AttributeError, OSError, struct.error):
        return None


def _answering(sock: socket.socket) -> socket.socket | None:
    """`sock` when the keeper behind it answers a ping in time. None when it closes (a keeper that
    is ending: the caller may start another); KeeperStuck when it says nothing."""
    try:
        sock.settimeout(ANSWER_WAIT)
        wire.send_json(sock, {"op": "ping"})
        wire.receive_json(sock)
        sock.settimeout(None)
        return sock
    except TimeoutError:
        stuck = KeeperStuck(_peer_pid(sock))
        sock.close()
        raise stuck from None
    except (OSError, ValueError, wire.WireClosed):
        sock.close()
        return None


def dial(spawn: bool = True) -> socket.socket | None:
    """A socket to this user's keeper, starting one when there is none (and `spawn`).

    A keeper that runs but does not answer is gone round: None, and the command goes on without it
    (saying so once, naming it)."""
    try:
        return _dial_keeper(spawn)
    except KeeperStuck as exc:
        if not _stuck:
            _stuck.append(exc)
            print(f"warning: {exc.message}; going on without it ({exc.hint})", file=sys.stderr)
        return None


def _dial_keeper(spawn: bool) -> socket.socket | None:
    path = keeper.socket_path()
    if len(os.fsencode(path)) > 100:  # AF_UNIX paths are limited to about 104 bytes
        log.debug("keeper socket path too long: %s", path)
        return None
    sock = _dial(path)
    if sock is not None:
        sock = _answering(sock)
    if sock is not None or not spawn:
        return sock
    # A fleet's hosts all dial at once: one of this process's threads starts the keeper, the others
    # wait for it (50 Python start-ups where one is needed would cost seconds of CPU).
    with _spawning:
        sock = _dial(path)
        if sock is not None:
            sock = _answering(sock)
        if sock is not None:
            return sock
        try:
            subprocess.Popen([sys.executable, "-m", "remoteenv.keeper", str(path)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             close_fds=True)
        except OSError as exc:
            log.debug("cannot start the keeper: %s", exc)
            return None
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            sock = _dial(path)
            if sock is not None:
                return sock
            time.sleep(0.02)
    log.debug("the keeper did not start within %ss", START_WAIT)
    return None


def _key(host_data: dict[str, Any], jumps: dict[str, Any]) -> str:
    text = json.dumps({"host": host_data, "jumps": jumps, "uid": os.getuid()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _connection_data(host: Host) -> dict[str, Any]:
    data = host.to_dict()
    return {k: data[k] for k in ("name", *CONNECTION_FIELDS) if k in data}


def _persist(host: Host) -> float:
    """Seconds a kept connection may idle: ssh config's ControlPersist where it gives a time (0,
    or yes: until `remoteenv disconnect`), else DEFAULT_PERSIST (ssh's own default, no, would
    keep nothing)."""
    seconds = keeper.parse_persist(getattr(host, "control_persist", None))
    return keeper.DEFAULT_PERSIST if seconds is None else seconds


def open_request(host: Host, options: ConnectOptions) -> dict[str, Any]:
    from remoteenv.inventory import Inventory, resolve

    resolve_jump = options.resolve_jump or (lambda name: resolve(Inventory(), name))
    jumps = {hop.name: _connection_data(resolve_jump(hop.name)) for hop in hops_of(host.proxy_jump)}
    data = _connection_data(host)
    return {
        "op": "open", "key": _key(data, jumps), "host": data, "jumps": jumps, "marker": uuid.uuid4().hex,
        "options": {"accept_new_host_key": options.accept_new_host_key, "connect_timeout": options.connect_timeout,
                    "keepalive_interval": options.keepalive_interval,
                    "keepalive_count_max": options.keepalive_count_max},
        "persist": _persist(host),
    }


def _exchange(sock: socket.socket, request: dict[str, Any], *, prompt: Prompter | None = None,
              on_output: Callable[[str], None] | None = None,
              on_progress: Callable[[int, int], None] | None = None,
              data: bytes | None = None, into: list[bytes] | None = None) -> dict[str, Any]:
    """Send one request and read frames until its reply; errors come back as remoteenv's own."""
    try:
        wire.send_json(sock, request)
        if data is not None:
            for start in range(0, len(data), 4 << 20):
                wire.send(sock, wire.DATA, data[start:start + (4 << 20)])
            wire.send(sock, wire.DATA, b"")
        while True:
            kind, payload = wire.receive(sock)
            if kind == wire.OUTPUT:
                if on_output is not None:
                    on_output(payload.decode("utf-8", errors="replace"))
                continue
            if kind == wire.DATA:
                if into is not None:
                    into.append(payload)
                continue
            reply = json.loads(payload)
            if "prompt" in reply:
                asked = reply["prompt"]
                from remoteenv.transport.prompts import terminal_prompt

                ask = prompt or terminal_prompt
                try:
                    answers = ask(asked["host"], asked["title"], asked["instructions"],
                                  [(p, bool(e)) for p, e in asked["prompts"]])
                except RemoteenvError:
                    wire.send_json(sock, {"answers": None})
                    raise
                wire.send_json(sock, {"answers": answers})
                continue
            if "progress" in reply:
                if on_progress is not None:
                    on_progress(*reply["progress"])
                continue
            if reply.get("ok"):
                return reply
            raise wire.decode_error(reply.get("error") or {})
    except (wire.WireClosed, OSError, ValueError) as exc:
        raise KeeperGone(str(exc)) from None


def connect(host: Host, options: ConnectOptions) -> KeptConnection | None:
    """The keeper's connection to `host`, signing in through it if needed; None: no keeper."""
    sock = dial()
    if sock is None:
        return None
    return connect_on(sock, host, options)


def connect_on(sock: socket.socket, host: Host, options: ConnectOptions) -> KeptConnection | None:
    request = open_request(host, options)
    try:
        reply = _exchange(sock, request, prompt=options.prompt)
    except KeeperGone:
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    log.debug("%s: %s connection from the keeper", host.name, "reused a" if reply.get("reused") else "a new")
    return KeptConnection(host, sock, reply, request, options)


class ScriptBatch:
    """One script on many held connections in one request (keeper op "scripts"): each item's answer
    comes to `on_item` as it ends. Nothing starts a keeper here: without one, `start` says no."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.closed = False

    @classmethod
    def start(cls, items: list[dict[str, Any]], scripts: dict[str, str], on_item: Callable[[dict[str, Any]], None],
              on_end: Callable[[], None]) -> ScriptBatch | None:
        """`items` name their script by its key in `scripts` (one text for a fleet's hosts)."""
        sock = dial(spawn=False)
        if sock is None:
            return None
        try:
            wire.send_json(sock, {"op": "scripts", "items": items, "scripts": scripts})
        except OSError:
            sock.close()
            return None
        batch = cls(sock)
        threading.Thread(target=batch._read, args=(on_item, on_end), daemon=True).start()
        return batch

    def _read(self, on_item: Callable[[dict[str, Any]], None], on_end: Callable[[], None]) -> None:
        try:
            while True:
                reply = wire.receive_json(self._sock)
                if "item" not in reply:
                    return  # the end (or an error for the whole request): unanswered items go their own way
                on_item(reply)
        except (wire.WireClosed, OSError, ValueError):
            pass
        finally:
            on_end()
            self.close()

    def close(self) -> None:
        """Stop waiting; the keeper signals whatever of it still runs."""
        if not self.closed:
            self.closed = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()


class KeptConnection(Scripted):
    """Connection's interface (run, run_script, put, get, home, interrupt, close) over the keeper."""

    def __init__(self, host: Host, sock: socket.socket, reply: dict[str, Any], request: dict[str, Any],
                 options: ConnectOptions) -> None:
        self.host = host
        self.jumps: list[Any] = []
        self.reused = bool(reply.get("reused"))
        self._sock: socket.socket | None = sock
        self._session = str(reply["session"])
        self._home: str | None = reply.get("home") or None
        self._request = request
        self._options = options
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> KeptConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------------
    def _call(self, request: dict[str, Any], retry: bool = True, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            if self._closed or self._sock is None:
                raise self.lost("after it was closed")
            try:
                return _exchange(self._sock, {**request, "session": self._session}, **kwargs)
            except KeeperGone as exc:
                if not retry or self._closed:
                    raise self.lost("while a command ran", exc) from None
                log.debug("%s: the keeper went away (%s); signing in again", self.host.name, exc)
                orphans = self._request["marker"]
                self._request = {**self._request, "marker": uuid.uuid4().hex}
                self._reopen()
                if request["op"] == "run":
                    # What the dead keeper ran is still running on the host: stop it before the
                    # command goes again (every remoteenv step is safe to run again).
                    _exchange(self._sock, {"op": "reap", "session": self._session,  # type: ignore[arg-type]
                                           "marker": orphans})
                return _exchange(self._sock, {**request, "session": self._session}, **kwargs)  # type: ignore

    def _reopen(self) -> None:
        """A keeper that died is replaced (a new one starts) and the session opened again."""
        for attempt in range(REOPEN_TRIES):
            if self._sock is not None:
                self._sock.close()
            self._sock = dial()
            if self._sock is None:
                raise self.lost("when the keeper ended")
            try:
                reply = _exchange(self._sock, self._request, prompt=self._options.prompt)
                break
            except KeeperGone as exc:
                # A killed keeper's socket still takes connections while the kernel tears the process
                # down, then resets them: that was the old keeper. The next dial starts a new one.
                if attempt == REOPEN_TRIES - 1:
                    raise self.lost("when the keeper ended", exc) from None
                time.sleep(0.05 * (attempt + 1))
        self._session = str(reply["session"])

    def lost(self, when: str, exc: BaseException | None = None) -> HostUnreachable:
        why = f": {exc}" if exc is not None and str(exc) else ""
        return HostUnreachable(self.host.name, f"connection lost {when}{why}",
                               "check the host and its network, then re-run: finished steps are kept")

    # -- the interface ---------------------------------------------------------------------------------
    def run_script(self, script: str, args: list[str] | tuple[str, ...] = (), *, timeout: float | None = None,
                   check: bool = False, on_output: Callable[[str], None] | None = None) -> RunResult:
        if args or on_output is not None:
            return super().run_script(script, args, timeout=timeout, check=check, on_output=on_output)
        # The same text on every run: the keeper may hand it to the connection's kept shell.
        result = self.run("/bin/sh -s", stdin=script, timeout=timeout, _plain=True, _shell=True)
        if check and not result.ok:
            raise CommandFailed(self.host.name, "remote script", result.exited, result.stderr)
        return result

    def run(self, command: str, *, stdin: str | bytes | None = None, timeout: float | None = None,
            check: bool = False, on_output: Callable[[str], None] | None = None,
            _plain: bool = False, _shell: bool = False) -> RunResult:
        request: dict[str, Any] = {"op": "run", "command": command, "timeout": timeout, "plain": _plain,
                                   "stream": on_output is not None, "shell": _shell}
        if isinstance(stdin, bytes):
            import base64

            request["stdin_b64"] = base64.b64encode(stdin).decode()
        else:
            request["stdin"] = stdin
        reply = self._call(request, on_output=on_output)
        result = RunResult(command, **reply["result"])
        if check and not result.ok:
            raise CommandFailed(self.host.name, short_command(command), result.exited, result.stderr)
        return result

    def put(self, data: bytes | Path, remote_path: str, mode: int | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> None:
        request = {"op": "put", "path": remote_path, "mode": mode, "progress": on_progress is not None}
        if isinstance(data, Path):
            # Same user, same machine: the keeper reads the file itself rather than through us.
            self._call({**request, "local": str(data.resolve())}, on_progress=on_progress)
        else:
            self._call(request, on_progress=on_progress, data=bytes(data))

    def get(self, remote_path: str) -> bytes:
        parts: list[bytes] = []
        self._call({"op": "get", "path": remote_path}, into=parts)
        return b"".join(parts)

    @property
    def home(self) -> str:
        if self._home is None:
            self._home = str(self._call({"op": "home"})["home"])
        return self._home

    @home.setter
    def home(self, value: str) -> None:
        known, self._home = self._home, value or None
        if value and value != known:  # the keeper told us on open when it knew
            try:
                self._call({"op": "set_home", "home": value}, retry=False)
            except RemoteenvError:
                pass  # only a saving for later commands

    @property
    def alive(self) -> bool:
        return not self._closed

    def still_alive(self) -> bool:
        """Is the kept SSH connection itself still up? (A round trip to the keeper.)"""
        return bool(self._call({"op": "alive"}, retry=False)["alive"])

    def forward(self, host: str, port: int) -> socket.socket:
        """This connection's socket, turned into a raw byte pipe to host:port as the host sees it.
        The connection is used up: the socket is the caller's to close."""
        with self._lock:
            sock, self._sock = self._sock, None
            self._closed = True
            if sock is None:
                raise self.lost("after it was closed")
            try:
                _exchange(sock, {"op": "forward", "session": self._session, "host": host, "port": port})
            except BaseException:
                sock.close()
                raise
            return sock

    def interrupt(self, signal: str = "TERM") -> None:
        """Signal what this command runs on the host: asked on a socket of its own, since the
        command's own socket is busy with the command."""
        sock = dial(spawn=False)
        if sock is None:
            return
        try:
            sock.settimeout(5)
            _exchange(sock, {"op": "interrupt", "session": self._session, "signal": signal})
        except (KeeperGone, RemoteenvError, OSError):
            pass
        finally:
            sock.close()

    def close(self) -> None:
        self._closed = True
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def listen(host: Host, options: ConnectOptions, tunnel_id: str, forwards: list[tuple[int, str, int]]) -> int:
    """Have the keeper listen on local ports for a detached tunnel to `host` ((local port, host, port)
    each); returns the keeper's pid. Signs in first where needed, asking on this terminal."""
    from remoteenv.tunnel import TunnelError

    conn = connect(host, options)
    if conn is None:
        raise TunnelError(f"{host.name}: no connection keeper could be started", "use --backend openssh")
    with conn:
        reply = conn._call({"op": "listen", "id": tunnel_id, "open": conn._request,
                            "forwards": [list(f) for f in forwards]}, retry=False)
    return int(reply["pid"])


def request(op: str, **fields: Any) -> dict[str, Any] | None:
    """One request to a running keeper (list, disconnect); None when no keeper runs, KeeperStuck
    when one runs and does not answer."""
    sock = _dial_keeper(spawn=False)
    if sock is None:
        return None
    try:
        sock.settimeout(30)
        return _exchange(sock, {"op": op, **fields})
    except KeeperGone:
        return None
    finally:
        sock.close()
