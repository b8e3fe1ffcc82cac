"""The keeper process: `python -m remoteenv.keeper`. Started by the first command that wants it.

One thread per client socket. A client opens a *session* on a host: a view of the one shared SSH
connection with its own running commands and marker, so an interrupt reaches that command's
processes only, and a client that goes away mid-command has what it started signalled, as a closed
session would. Connections are keyed by every setting that decides where and as whom they go, so
two inventories that give one name different settings never share a connection.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import logging
import os
import secrets
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteenv import __version__, paths
from remoteenv.errors import AuthFailed, HostUnreachable, RemoteenvError
from remoteenv.inventory.model import Host
from remoteenv.keeper import wire
from remoteenv.transport.options import ConnectOptions

log = logging.getLogger("remoteenv.keeper")

TICK = 1.0  # seconds between idle checks
LINGER = 5.0  # seconds a keeper with nothing held stays for the next command
LOCK_WAIT = 10.0  # seconds a new keeper waits for an ending one to let go
CHUNK = 4 << 20


@dataclass
class Held:
    key: str
    name: str
    target: str
    conn: Any  # transport.connection.Connection
    persist: float  # seconds idle before closing; 0: until `disconnect`
    prompted: bool = False
    users: int = 0
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    shell: Any = None  # keeper.shell.RemoteShell, made on the first script that can use it


@dataclass
class Hosted:
    """A detached tunnel the keeper itself listens for (no process of its own)."""

    id: str
    key: str
    request: dict  # the open request, to sign in again (keys only) after the connection dropped
    forwards: list[tuple[socket.socket, str, int]]  # (listener, host, port as the host sees it)


@dataclass
class Session:
    id: str
    held: Held
    view: Any  # a Connection sharing held.conn's SSH session


def _host_from(data: dict[str, Any]) -> Host:
    known = set(Host.__dataclass_fields__)
    return Host(**{k: v for k, v in data.items() if k in known})


def _view_of(conn: Any, marker: str = "") -> Any:
    """A Connection over the same SSH session with its own running set, marker and SFTP."""
    view = copy.copy(conn)
    view._running = set()
    view._marker = marker if marker.isalnum() and len(marker) >= 16 else uuid.uuid4().hex[:16]
    view._fabric = None
    view.jumps = []
    return view


def _reap(conn: Any, markers: list[str], signal: str = "TERM") -> None:
    """Signal what runs on `conn`'s host under each of `markers` (commands nobody waits for any more)."""
    for marker in markers:
        view = _view_of(conn, marker)
        if view._marker == marker:  # a marker _view_of would not take is nobody's
            view._signal_marked(signal)
        _close_view(view)


class _Scripts:
    """What facts.gather needs of a connection (host, run_script, home), running its script through
    `run(text, timeout)`: Keeper._script, the kept shell first."""

    def __init__(self, host: Any, run: Callable[[str, float | None], Any]) -> None:
        self.host, self._run = host, run
        self.home: str | None = None

    def run_script(self, script: str, *, timeout: float | None = None) -> Any:
        return self._run(script, timeout)


def _close_view(view: Any) -> None:
    fab = view._fabric
    sftp = getattr(fab, "_sftp", None) if fab is not None else None
    if sftp is not None:
        try:
            sftp.close()
        except Exception:  # a dead link: nothing to close politely
            pass


class Keeper:
    def __init__(self, sock_path: Path) -> None:
        self.path = sock_path
        self.held: dict[str, Held] = {}
        self.sessions: dict[str, Session] = {}
        self.hosted: dict[str, Hosted] = {}
        self.lock = threading.Lock()
        self.key_locks: dict[str, threading.Lock] = {}
        self.clients = 0
        self.quiet_since = time.monotonic()
        self.stopping = threading.Event()
        self.lost: dict[str, set[str]] = {}  # connection key -> markers of kept-shell scripts its link lost

    # -- the loop ----------------------------------------------------------------------------------
    def serve(self) -> int:
        folder = paths.ensure_private_dir(self.path.parent)
        lock_fd = os.open(folder / "keeper.lock", os.O_RDWR | os.O_CREAT, 0o600)
        # We were started because nobody answered on the socket: a keeper that holds the lock is
        # on its way out (ending, hung). Wait for it a little; if it stays, it serves, not us.
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    os.close(lock_fd)
                    return 0
                time.sleep(0.05)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is 0600 from its first moment
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        listener.listen(128)
        listener.settimeout(TICK)
        inode = os.stat(self.path).st_ino
        paths.write_private(folder / "keeper.pid", f"{os.getpid()}\n")
        log.info("keeper %s listening on %s", os.getpid(), self.path)
        try:
            while not self.stopping.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    client = None
                if client is not None:
                    client.settimeout(None)
                    threading.Thread(target=self._serve_client, args=(client,), daemon=True).start()
                self._expire()
                if self._socket_gone(inode) or self._done():
                    break
        finally:
            listener.close()
            if not self._socket_gone(inode):
                self.path.unlink(missing_ok=True)
            for tunnel_id in list(self.hosted):
                self._unlisten(tunnel_id)
            for held in list(self.held.values()):
                self._close(held)
            os.close(lock_fd)
        return 0

    def _socket_gone(self, inode: int) -> bool:
        """The state dir was removed or another keeper took the name: nobody can reach us."""
        try:
            return os.stat(self.path).st_ino != inode
        except OSError:
            return True

    def _done(self) -> bool:
        with self.lock:
            if self.held or self.clients:
                self.quiet_since = time.monotonic()
                return False
            return time.monotonic() - self.quiet_since > LINGER

    def _expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            expired = [h for h in self.held.values()
                       if h.users == 0 and ((h.persist and now - h.last_used > h.persist) or not h.conn.alive)]
            for held in expired:
                self.held.pop(held.key, None)
        for held in expired:
            log.info("closing %s (%s)", held.name, "idle" if held.conn.alive else "dropped")
            self._close(held)

    @staticmethod
    def _close(held: Held) -> None:
        try:
            if held.shell is not None:
                held.shell.close()
            held.conn.close()
        except Exception:  # closing a dead link may fail in many ways; it is closed all the same
            pass

    # -- one client ----------------------------------------------------------------------------------
    def _serve_client(self, client: socket.socket) -> None:
        if not _same_user(client):
            client.close()
            return
        with self.lock:
            self.clients += 1
        sessions: list[Session] = []
        try:
            while True:
                try:
                    request = wire.receive_json(client)
                except (wire.WireClosed, OSError, ValueError):
                    break
                op = str(request.get("op", ""))
                handler = getattr(self, f"_op_{op}", None)
                try:
                    if handler is None:
                        raise RemoteenvError(f"the keeper does not know the request {op!r}",
                                             "remoteenv disconnect --all, then run the command again")
                    reply = handler(client, request, sessions)
                    if reply is None:
                        break  # the socket became a raw byte pipe (a forward) and is done
                    wire.send_json(client, {"ok": True, **reply})
                except RemoteenvError as exc:
                    wire.send_json(client, {"ok": False, "error": wire.encode_error(exc)})
                except (wire.WireClosed, OSError):
                    break
                except Exception as exc:  # a bug costs this request, never the keeper
                    log.exception("request %s failed", op)
                    error = RemoteenvError(f"keeper: internal error: {type(exc).__name__}: {exc}",
                                           "run with --no-reuse to bypass the keeper, and report this")
                    try:
                        wire.send_json(client, {"ok": False, "error": wire.encode_error(error)})
                    except OSError:
                        break
        finally:
            for session in sessions:
                self._end_session(session)
            client.close()
            with self.lock:
                self.clients -= 1

    def _end_session(self, session: Session) -> None:
        if session.view._running:
            session.view.interrupt("TERM")  # its client went away mid-command
        _close_view(session.view)
        with self.lock:
            self.sessions.pop(session.id, None)
            session.held.users -= 1
            session.held.last_used = time.monotonic()

    # -- requests --------------------------------------------------------------------------------------
    def _op_ping(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict | None:
        return {"pid": os.getpid(), "version": __version__}

    def _op_open(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        key = str(request["key"])
        with self.lock:
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        reused = True
        with key_lock:  # one sign-in per host, however many commands ask at once
            with self.lock:
                held = self.held.get(key)
            if held is None or not held.conn.alive:
                if held is not None:
                    with self.lock:
                        self.held.pop(key, None)
                    self._close(held)
                held = self._connect(client, request)
                reused = False
                with self.lock:
                    self.held[key] = held
                self._reap_lost(held)
            with self.lock:
                held.users += 1
                held.last_used = time.monotonic()
        session = Session(secrets.token_hex(8), held, _view_of(held.conn, str(request.get("marker") or "")))
        with self.lock:
            self.sessions[session.id] = session
        sessions.append(session)
        return {"session": session.id, "reused": reused, "prompted": held.prompted,
                "home": held.conn._home or ""}

    def _connect(self, client: socket.socket | None, request: dict) -> Held:
        from remoteenv.transport.connection import connect

        host = _host_from(request["host"])
        jumps = {name: data for name, data in (request.get("jumps") or {}).items()}
        opts = request.get("options") or {}
        prompted = []

        def resolve_jump(name: str) -> Host:
            if name not in jumps:
                raise RemoteenvError(f"{host.name}: jump host {name} was not resolved", "run with --no-reuse")
            return _host_from(jumps[name])

        def relay(name: str, title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
            if client is None:
                raise AuthFailed(name, "the host asks for a code and no command is there to type it",
                                 "run `remoteenv probe HOST` in a terminal: the tunnel then works again")
            prompted.append(name)
            wire.send_json(client, {"prompt": {"host": name, "title": title, "instructions": instructions,
                                               "prompts": [[p, e] for p, e in prompts]}})
            answer = wire.receive_json(client)
            if not isinstance(answer.get("answers"), list):
                raise AuthFailed(name, "no answer to the host's prompt", "run the command again in a terminal")
            return [str(a) for a in answer["answers"]]

        options = ConnectOptions(
            accept_new_host_key=bool(opts.get("accept_new_host_key")),
            connect_timeout=opts.get("connect_timeout"),
            keepalive_interval=opts.get("keepalive_interval"),
            keepalive_count_max=opts.get("keepalive_count_max"),
            resolve_jump=resolve_jump, prompt=relay, reuse=False,
        )
        conn = connect(host, options)
        persist = float(request.get("persist") or 0.0)
        log.info("connected to %s (%s), persist %ss", host.name, host.target, persist or "forever")
        return Held(str(request["key"]), host.name, host.target, conn, persist, prompted=bool(prompted))

    def _session(self, request: dict, sessions: list[Session]) -> Session:
        for session in sessions:
            if session.id == request.get("session"):
                return session
        raise RemoteenvError("no such keeper session", "run the command again")

    def _op_run(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        session = self._session(request, sessions)
        stdin: str | bytes | None = request.get("stdin")
        if request.get("stdin_b64") is not None:
            import base64

            stdin = base64.b64decode(request["stdin_b64"])
        on_output = None
        if request.get("stream"):
            def on_output(text: str) -> None:
                wire.send(client, wire.OUTPUT, text.encode())

        done = threading.Event()
        threading.Thread(target=_watch_client, args=(client, done, lambda: session.view.interrupt("TERM")),
                         daemon=True).start()
        try:
            result = None
            if request.get("shell") and on_output is None and isinstance(stdin, str):
                result = self._shell_of(session.held).run(session.view, stdin, request.get("timeout"))
            if result is None:
                result = session.view.run(str(request["command"]), stdin=stdin, timeout=request.get("timeout"),
                                          on_output=on_output, _plain=bool(request.get("plain")))
        finally:
            done.set()
        return {"result": _result_json(result)}

    def _op_scripts(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        """Run a script on many held connections at once (a fleet's probes in one request).

        Each item {"id", "key", "script", "timeout"} ("script": a key of the request's "scripts", which
        holds each text once however many hosts run it) is answered in a frame of its own as it ends:
        {"item": id, "result": {...}}, {"item": id, "error": {...}}, or {"item": id, "miss": why}
        when no live connection is held for its key (the command then takes its ordinary path). A
        client that goes away has every script still running signalled."""
        items = [i for i in request.get("items") or [] if isinstance(i, dict)]
        texts = request.get("scripts") or {}
        send_lock = threading.Lock()
        go = threading.Event()  # every worker started before any runs: see fleet.Fleet.run
        running: list[Session] = []

        def answer(frame: dict) -> None:
            try:
                with send_lock:
                    wire.send_json(client, frame)
            except OSError:
                pass  # the client went away mid-batch

        def one(item: dict) -> None:
            go.wait()
            with self._borrowed(str(item.get("key"))) as held:
                if held is None:
                    answer({"item": item.get("id"), "miss": "no connection held"})
                else:
                    run_one(item, held)

        def run_one(item: dict, held: Held) -> None:
            session = Session(secrets.token_hex(8), held, _view_of(held.conn))
            with self.lock:
                running.append(session)
            try:
                text, timeout = str(texts.get(str(item.get("script"))) or ""), item.get("timeout")
                result = self._script(held, session.view, text, timeout)
                answer({"item": item.get("id"), "result": _result_json(result)})
            except RemoteenvError as exc:
                answer({"item": item.get("id"), "error": wire.encode_error(exc)})
            except OSError:
                pass  # the client went away: the watcher has signalled what ran
            except Exception as exc:  # a bug costs this item, never the keeper: the command goes its own way
                log.exception("a script of a batch failed")
                answer({"item": item.get("id"), "miss": f"keeper: {type(exc).__name__}: {exc}"})
            finally:
                with self.lock:
                    running.remove(session)
                _close_view(session.view)

        done = threading.Event()

        def stop_all() -> None:
            with self.lock:
                views = [s.view for s in running]
            for view in views:
                view.interrupt("TERM")

        workers = [threading.Thread(target=one, args=(item,), daemon=True) for item in items]
        watcher = threading.Thread(target=_watch_client, args=(client, done, stop_all), daemon=True)
        try:
            watcher.start()
            for worker in workers:
                worker.start()
            go.set()
            for worker in workers:
                worker.join()
        finally:
            done.set()
        return {"items": len(items)}

    @contextlib.contextmanager
    def _borrowed(self, key: str) -> Iterator[Held | None]:
        """The live connection held for `key` (None: none), kept from idling out while in use."""
        with self.lock:
            held = self.held.get(key)
            if held is None or not held.conn.alive:
                held = None
            else:
                held.users += 1
        try:
            yield held
        finally:
            if held is not None:
                with self.lock:
                    held.users -= 1
                    held.last_used = time.monotonic()

    def _shell_of(self, held: Held) -> Any:
        with self.lock:
            if held.shell is None:
                from remoteenv.keeper.shell import RemoteShell

                held.shell = RemoteShell(held.conn, lambda marker, key=held.key: self._lost_script(key, marker))
            return held.shell

    def _script(self, held: Held, view: Any, text: str, timeout: float | None) -> Any:
        """Script `text` (no arguments) for `view`: in the connection's kept shell when that is free (no
        SSH session for the host to make), else in a session, as `/bin/sh -s` in both."""
        result = self._shell_of(held).run(view, text, timeout)
        return result if result is not None else view.run("/bin/sh -s", stdin=text, timeout=timeout, _plain=True)

    def _lost_script(self, key: str, marker: str) -> None:
        with self.lock:
            self.lost.setdefault(key, set()).add(marker)

    def _reap_lost(self, held: Held) -> None:
        """On a new connection to a host, stop the kept-shell scripts the old one's link lost mid-run:
        no `timeout` on the host bounds them (keeper.shell), and nobody waits for their answer."""
        with self.lock:
            markers = self.lost.pop(held.key, set())
        if markers:
            threading.Thread(target=_reap, args=(held.conn, sorted(markers)), daemon=True).start()

    def _op_probe(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        """`probe NAME --json` for a command that loads nothing (remoteenv.cli.fast): resolve NAME as
        that command would, and when a live connection to it is held here, probe over it and send
        the text the command prints (an output frame, then the usual reply). Anything else is a
        miss, and the command takes its ordinary path."""
        from pathlib import Path

        from remoteenv import api, facts, keeper
        from remoteenv.inventory import SSHConfigFile, find_inventory, load_inventory, resolve
        from remoteenv.keeper import client as kept

        if request.get("env") != keeper.resolution_env():
            return {"miss": "another environment"}
        found = find_inventory(request.get("inventory"), cwd=Path(str(request["cwd"])))
        inv = load_inventory(found) if found is not None else load_inventory(None, search=False)
        name = str(request["name"])
        if name in inv.groups or name == "all":
            return {"miss": "a group"}
        config = SSHConfigFile()
        host = resolve(inv, name, config)
        key = kept.open_request(host, api.connect_options(inv, ssh_config=config))["key"]
        with self._borrowed(key) as held:
            if held is None:
                return {"miss": "no connection held"}
            view = _view_of(held.conn)
            try:
                found_facts = facts.gather(_Scripts(view.host, lambda text, timeout: self._script(
                    held, view, text, timeout)))
            finally:
                _close_view(view)
        # The text to print, not the facts: the fast probe parses no JSON (json and the re it imports
        # would be a tenth of its whole time).
        wire.send(client, wire.OUTPUT, facts.json_text(found_facts).encode())
        return {}

    def _op_alive(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        session = self._session(request, sessions)
        return {"alive": bool(session.held.conn.alive)}

    def _op_forward(self, client: socket.socket, request: dict, sessions: list[Session]) -> None:
        """Join this socket to a TCP port seen from the host; then it carries raw bytes both ways."""
        session = self._session(request, sessions)
        channel = _channel_to(session.held, str(request["host"]), int(request["port"]))
        wire.send_json(client, {"ok": True})
        session.held.last_used = time.monotonic()
        try:
            wire.splice(client, channel)
        finally:
            channel.close()
        session.held.last_used = time.monotonic()
        return None

    def _op_listen(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        """Listen on local ports for a detached tunnel of this session's host: each connection made to
        them is carried to the host's port over the kept connection, which stays while it listens."""
        from remoteenv.errors import ConfigError

        session = self._session(request, sessions)
        tunnel_id = str(request["id"])
        self._unlisten(tunnel_id)
        forwards: list[tuple[socket.socket, str, int]] = []
        try:
            for local_port, host, port in request["forwards"]:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                forwards.append((listener, str(host), int(port)))
                try:
                    listener.bind(("127.0.0.1", int(local_port)))
                except OSError as exc:
                    raise ConfigError(f"cannot listen on 127.0.0.1:{local_port}: {exc.strerror}",
                                      "the local port is busy: give another with --local-port") from None
                listener.listen(64)
        except BaseException:
            for listener, _, _ in forwards:
                listener.close()
            raise
        hosted = Hosted(tunnel_id, session.held.key, dict(request.get("open") or {}), forwards)
        with self.lock:
            self.hosted[tunnel_id] = hosted
            session.held.users += 1  # a listening tunnel keeps its connection from idling out
        for listener, host, port in forwards:
            threading.Thread(target=self._accept_for, args=(hosted, listener, host, port), daemon=True).start()
        log.info("tunnel %s listening for %s", tunnel_id, session.held.name)
        return {"pid": os.getpid()}

    def _accept_for(self, hosted: Hosted, listener: socket.socket, host: str, port: int) -> None:
        while True:
            try:
                local, _ = listener.accept()
            except OSError:
                return  # unlistened
            threading.Thread(target=self._carry, args=(hosted, local, host, port), daemon=True).start()

    def _carry(self, hosted: Hosted, local: socket.socket, host: str, port: int) -> None:
        try:
            held = self._held_for(hosted)
            channel = _channel_to(held, host, port)
        except Exception as exc:  # a host still down, a code nobody can type here: this connection fails
            log.info("tunnel %s: %s", hosted.id, exc)
            local.close()
            return
        try:
            wire.splice(local, channel)
        finally:
            channel.close()
            local.close()
            with self.lock:
                held.last_used = time.monotonic()

    def _held_for(self, hosted: Hosted) -> Held:
        """The tunnel's connection, signed in again (with keys: nobody is there to type a code) when
        it dropped."""
        with self.lock:
            key_lock = self.key_locks.setdefault(hosted.key, threading.Lock())
        with key_lock:
            with self.lock:
                held = self.held.get(hosted.key)
            if held is not None and held.conn.alive:
                return held
            fresh = self._connect(None, hosted.request)
            with self.lock:
                old = self.held.get(hosted.key)
                fresh.users = old.users if old is not None else 1
                self.held[hosted.key] = fresh
            if old is not None:
                self._close(old)
            self._reap_lost(fresh)
            return fresh

    def _op_unlisten(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        return {"closed": self._unlisten(str(request.get("id")))}

    def _unlisten(self, tunnel_id: str) -> bool:
        with self.lock:
            hosted = self.hosted.pop(tunnel_id, None)
            if hosted is not None and hosted.key in self.held:
                self.held[hosted.key].users -= 1
        if hosted is None:
            return False
        for listener, _, _ in hosted.forwards:
            wire.stop_listening(listener)
        return True

    def _op_interrupt(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        with self.lock:
            session = self.sessions.get(str(request.get("session")))
        if session is not None:
            session.view.interrupt(str(request.get("signal") or "TERM"))
        return {}

    def _op_reap(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        """Signal what a session of a keeper that died left running (found by its marker)."""
        session = self._session(request, sessions)
        _reap(session.held.conn, [str(request.get("marker") or "")], str(request.get("signal") or "TERM"))
        return {}

    def _op_put(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        session = self._session(request, sessions)
        local = request.get("local")
        if local:
            data: bytes | Path = Path(local)
        else:
            parts = []
            while True:
                kind, payload = wire.receive(client)
                if kind != wire.DATA or not payload:
                    break
                parts.append(payload)
            data = b"".join(parts)
        on_progress = None
        if request.get("progress"):
            def on_progress(done: int, total: int) -> None:
                wire.send_json(client, {"progress": [done, total]})
        mode = request.get("mode")
        session.view.put(data, str(request["path"]), int(mode) if mode is not None else None,
                         on_progress=on_progress)
        return {}

    def _op_get(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        session = self._session(request, sessions)
        data = session.view.get(str(request["path"]))
        for start in range(0, len(data), CHUNK):
            wire.send(client, wire.DATA, data[start:start + CHUNK])
        return {"size": len(data)}

    def _op_home(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        session = self._session(request, sessions)
        home = session.view.home
        session.held.conn._home = home
        return {"home": home}

    def _op_set_home(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        session = self._session(request, sessions)
        session.view.home = str(request.get("home") or "")
        session.held.conn._home = session.view._home
        return {}

    def _op_list(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        now = time.monotonic()
        with self.lock:
            rows = [{"name": h.name, "target": h.target, "alive": bool(h.conn.alive), "users": h.users,
                     "idle_seconds": round(now - h.last_used, 1), "persist_seconds": h.persist,
                     "prompted": h.prompted, "since": h.created} for h in self.held.values()]
            tunnels = [{"id": t.id, "host": self.held[t.key].name if t.key in self.held else "",
                        "local_ports": [f[0].getsockname()[1] for f in t.forwards]} for t in self.hosted.values()]
        return {"pid": os.getpid(), "version": __version__, "connections": rows, "tunnels": tunnels}

    def _op_disconnect(self, client: socket.socket, request: dict, sessions: list[Session]) -> dict:
        names = request.get("names")
        with self.lock:
            chosen = [h for h in self.held.values() if not names or h.name in names]
            keys = {h.key for h in chosen}
            tunnels = [t.id for t in self.hosted.values() if t.key in keys]
        for tunnel_id in tunnels:  # its tunnels go with a connection, as ssh -O exit ends its forwards
            self._unlisten(tunnel_id)
        with self.lock:
            for held in chosen:
                self.held.pop(held.key, None)
        for held in chosen:
            self._close(held)
        if not names:
            # From now on nobody reaches this keeper: a command arriving while it ends starts a new one.
            self.path.unlink(missing_ok=True)
            self.stopping.set()
        return {"closed": sorted({h.name for h in chosen}), "tunnels": tunnels}


def _watch_client(client: socket.socket, done: threading.Event, on_gone: Callable[[], None]) -> None:
    """A client that goes away mid-command (Ctrl-C, killed) has `on_gone` signal what it started."""
    while not done.is_set():
        try:
            readable, _, _ = select.select([client], [], [], 0.25)
            if readable and not client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                on_gone()
                return
        except BlockingIOError:
            continue
        except (OSError, ValueError):
            on_gone()
            return


def _result_json(result: Any) -> dict:
    return {"exited": result.exited, "stdout": result.stdout, "stderr": result.stderr, "duration": result.duration}


def _channel_to(held: Held, host: str, port: int) -> Any:
    """A direct-tcpip channel over the held connection to host:port as the host sees it."""
    try:
        return held.conn.transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=15)
    except Exception as exc:  # paramiko's ChannelException, a dead link
        raise HostUnreachable(held.name, f"cannot reach {host}:{port} from the host: {exc}",
                              "check that the service listens there (remoteenv jupyter status)") from None


def _same_user(client: socket.socket) -> bool:
    """Only this user's processes may use the keeper (the 0700 folder says so too)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True  # no peer credentials on this system: the folder's mode is the guard
    try:
        _pid, uid, _gid = struct.unpack("3i", client.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except OSError as exc:
        return exc.errno == errno.ENOPROTOOPT
    return uid == os.getuid()


def main(argv: list[str] | None = None) -> int:
    import sys

    from remoteenv import keeper

    args = argv if argv is not None else sys.argv[1:]
    sock_path = Path(args[0]) if args else keeper.socket_path()
    folder = paths.ensure_private_dir(sock_path.parent)
    handler = logging.FileHandler(folder / "keeper.log")
    os.chmod(folder / "keeper.log", 0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    for name in ("remoteenv", "paramiko"):
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("remoteenv").setLevel(logging.INFO)
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    return Keeper(sock_path).serve()
