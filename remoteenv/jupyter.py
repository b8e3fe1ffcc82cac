"""Jupyter servers that remoteenv runs on hosts: start (or reuse), status, stop, logs.

A server runs from its environment's own bin/ (no `conda activate`, no shell init files), detached
from the SSH session, bound to the host's loopback on a port the host picks, or to a Unix socket in
a 0700 folder. Its token is 256 random bits made here, handed over on stdin and kept on the host in a
0600 file that the server reads through JUPYTER_TOKEN_FILE: it is in no process's argv or
environment. Everything is in ~/.remoteenv/jupyter on the host (remote/jupyter.sh).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from remoteenv import __version__
from remoteenv.errors import CommandFailed, ConfigError
from remoteenv.facts import Query
from remoteenv.remotepath import sh_word
from remoteenv.scripts import script

if TYPE_CHECKING:
    from remoteenv.transport import Connection

FOLDER = "~/.remoteenv/jupyter"
APPS = ("lab", "notebook")
DEFAULT_WAIT = 120.0  # seconds a new server has to answer (a first JupyterLab start on a slow disk)

# What `ready.py check` exits with, and what it means for a plan.
NOT_READY = {
    2: "no server yet",
    3: "its process is gone",
    4: "the env, app or settings changed",
    5: "it does not answer",
    126: "the env is not there yet",
    127: "the env is not there yet",
}


@dataclass(frozen=True)
class Settings:
    """How a server is to run: these, with the env's build, decide whether a running one is reused."""

    name: str  # the server's name on the host (default: the env's)
    env: str  # the env's path on the host (~/ allowed)
    app: str = "lab"
    dir: str = "~/work"
    socket: bool = False
    gpus: str | None = None  # CUDA_VISIBLE_DEVICES; None: leave it as the host has it

    def __post_init__(self) -> None:
        if self.app not in APPS:
            raise ConfigError(f"jupyter app must be one of {', '.join(APPS)}, not {self.app!r}")

    def key_args(self) -> list[str]:
        return [self.name, self.env, self.app, "1" if self.socket else "0", self.dir, self.gpus or "-"]

    def ready_query(self) -> Query:
        """The probe's question: is this server alive, started with these settings, answering?"""
        python = f"{self.env.rstrip('/')}/bin/python"
        words = [python, f"{FOLDER}/ready.py", "check", *self.key_args()]
        return Query("cmd", " ".join(sh_word(w) for w in words))

    def state_query(self) -> Query:
        return Query("read", f"{FOLDER}/{self.name}.json")

    def token_query(self) -> Query:
        return Query("read", f"{FOLDER}/{self.name}.token")


@dataclass(frozen=True)
class Server:
    """A managed server as its state file on the host describes it."""

    name: str
    pid: int
    app: str
    env: str
    dir: str
    port: int = 0  # on the host's 127.0.0.1; 0 with a socket
    sock: str = ""
    gpus: str = "-"
    started: int = 0  # epoch seconds
    env_build: str = ""
    log: str = ""
    remoteenv: str = ""
    alive: bool | None = None  # None: not asked
    answers: bool | None = None
    uptime: int | None = None  # seconds

    @property
    def where(self) -> str:
        """What a tunnel forwards to: a socket path, or 127.0.0.1:PORT on the host."""
        return self.sock or f"127.0.0.1:{self.port}"

    @classmethod
    def from_state(cls, state: dict[str, Any], **extra: Any) -> Server:
        def text(key: str) -> str:
            value = state.get(key)
            return value if isinstance(value, str) else ""

        def number(key: str) -> int:
            value = state.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return cls(name=text("name"), pid=number("pid"), app=text("app") or "lab", env=text("env"),
                   dir=text("dir"), port=number("port"), sock=text("sock"), gpus=text("gpus") or "-",
                   started=number("started"), env_build=text("env_build"), log=text("log"),
                   remoteenv=text("remoteenv"), **extra)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "app": self.app, "env": self.env, "dir": self.dir,
                "port": self.port or None, "sock": self.sock or None,
                "gpus": None if self.gpus == "-" else self.gpus, "started": self.started,
                "alive": self.alive, "answers": self.answers, "uptime": self.uptime, "log": self.log}


@dataclass(frozen=True)
class Endpoint:
    """A running server and its token: what a tunnel and a URL need."""

    server: Server
    token: str = field(repr=False)
    reused: bool = False

    def url(self, local_port: int) -> str:
        path = "lab" if self.server.app == "lab" else "tree"
        return f"http://127.0.0.1:{local_port}/{path}?token={self.token}"


def new_token() -> str:
    """256 random bits, hex."""
    return secrets.token_hex(32)


def _source(name: str) -> str:
    # No trailing newline: jupyter.sh compares it with the kept copy through $(cat), which drops it.
    return resources.files("remoteenv.remote").joinpath(name).read_text(encoding="utf-8").rstrip("\n")


def _ready_source() -> str:
    return _source("jupyter_ready.py")


def _run(conn: Connection, action: str, args: Sequence[str], *, timeout: float,
         on_output: Callable[[str], None] | None = None):
    return conn.run_script(script("jupyter.sh"), [action, _ready_source(), *args], timeout=timeout,
                           on_output=on_output)


def _error(output: str) -> str:
    from remoteenv.steps.base import script_error

    _, why = script_error(output)
    return why or (output.strip().splitlines() or ["the jupyter script failed"])[-1]


def start(conn: Connection, settings: Settings, *, restart: bool = False, wait: float = DEFAULT_WAIT,
          on_output: Callable[[str], None] | None = None) -> Endpoint:
    """Start the server `settings` describe, or reuse the live one that answers; its endpoint."""
    token = new_token()
    args = [settings.name, settings.env, settings.app, settings.dir, "1" if settings.socket else "0", token,
            __version__, str(int(wait)), settings.gpus or "-", "1" if restart else "0",
            _source("jupyter_launch.py")]
    result = _run(conn, "start", args, timeout=wait + 60, on_output=on_output)
    line = next((ln for ln in reversed(result.stdout.splitlines()) if ln.startswith("remoteenv-jupyter\t")), None)
    if not result.ok or line is None:
        raise CommandFailed(conn.host.name, f"jupyter start {settings.name}", result.exited,
                            _error(result.stdout + result.stderr))
    _, state_text, how = line.split("\t", 2)
    server = Server.from_state(json.loads(state_text), alive=True, answers=True)
    if how == "reused":
        token = read_token(conn, settings.name)
    return Endpoint(server, token, reused=how == "reused")


def read_token(conn: Connection, name: str) -> str:
    """The token of server `name` (0600 on the host), read over SFTP: it never passes through a shell."""
    return conn.get(f"{FOLDER}/{name}.token").decode().strip()


def status(conn: Connection, names: Sequence[str] = (), *, timeout: float = 60) -> list[Server]:
    result = _run(conn, "status", list(names), timeout=timeout)
    if not result.ok:
        raise CommandFailed(conn.host.name, "jupyter status", result.exited, _error(result.stdout + result.stderr))
    servers = []
    for line in result.stdout.splitlines():
        fields = line.split("\t", 5)
        if len(fields) != 6 or fields[0] != "server":
            continue
        try:
            state = json.loads(fields[5])
        except ValueError:
            state = {"name": fields[1]}
        servers.append(Server.from_state(state, alive=fields[2] == "1", answers=fields[3] == "1",
                                         uptime=int(fields[4]) if fields[4].isdigit() else None))
    return servers


def stop(conn: Connection, names: Sequence[str] = (), *, timeout: float = 60) -> list[tuple[str, int | None]]:
    """Stop managed servers (all when `names` is empty): [(name, pid stopped or None when already gone)]."""
    result = _run(conn, "stop", list(names), timeout=timeout)
    if not result.ok:
        raise CommandFailed(conn.host.name, "jupyter stop", result.exited, _error(result.stdout + result.stderr))
    done: list[tuple[str, int | None]] = []
    for line in result.stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "stopped" and len(fields) == 3:
            done.append((fields[1], int(fields[2])))
        elif fields[0] == "gone" and len(fields) == 2:
            done.append((fields[1], None))
    return done


def logs(conn: Connection, name: str, lines: int = 100, *, timeout: float = 60) -> str:
    result = _run(conn, "logs", [name, str(lines)], timeout=timeout)
    if not result.ok:
        raise CommandFailed(conn.host.name, f"jupyter logs {name}", result.exited,
                            _error(result.stdout + result.stderr))
    return result.stdout
