"""The sandbox: a throwaway SSH host on 127.0.0.1, for trying remoteenv with no host of your own.

`up()` starts it (OpenSSH's sshd when one is installed, else a built-in asyncssh server), running
as the current user with its own host and client keys under remoteenv's state dir; it is known to
remoteenv as the host `sandbox` until `down()`. Nothing in the person's ~/.ssh is read or written
for it, and its sessions get their own HOME (<state dir>/sandbox/home).

    >>> from remoteenv import sandbox, api
    >>> sandbox.up().status.port              # doctest: +SKIP
    40123
    >>> api.probe("sandbox").user             # doctest: +SKIP
    'alice'
    >>> sandbox.down()                        # doctest: +SKIP
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remoteenv.inventory.model import CONNECTION_FIELDS, Host
from remoteenv.sandbox import keys, openssh, process, state
from remoteenv.sandbox.errors import SandboxError, SandboxNotRunning, SandboxUsageError

__all__ = [
    "FLAVOURS", "HOSTNAME", "NAME", "DownResult", "SandboxError", "SandboxNotRunning",
    "SandboxStatus", "SandboxUsageError", "UpResult", "choose_flavour", "down", "sandbox_host",
    "status", "up",
]

NAME = "sandbox"
HOSTNAME = "127.0.0.1"
FLAVOURS = ("openssh", "asyncssh")
SERVER_CHOICES = ("auto", *FLAVOURS)
START_TIMEOUT = 15.0
PORT_ATTEMPTS = 3

Progress = Callable[[str], None]


@dataclass
class SandboxStatus:
    """The sandbox as it is now. `answering`: its port greets with an SSH banner."""

    running: bool
    answering: bool
    flavour: str | None
    pid: int | None
    port: int | None
    user: str
    dir: Path
    home: Path
    log: Path
    client_key: Path
    host_key_fingerprint: str | None
    started_at: float | None
    hostname: str = HOSTNAME

    def to_json(self) -> dict[str, Any]:
        return {
            "name": NAME,
            "running": self.running,
            "answering": self.answering,
            "flavour": self.flavour,
            "pid": self.pid,
            "hostname": self.hostname,
            "port": self.port,
            "user": self.user,
            "state_dir": str(self.dir),
            "home": str(self.home),
            "log": str(self.log),
            "client_key": str(self.client_key),
            "host_key_fingerprint": self.host_key_fingerprint,
            "started_at": self.started_at,
        }


@dataclass
class UpResult:
    status: SandboxStatus
    started: bool  # False: it was running and answering already
    reason: str  # why this flavour
    seconds: float


@dataclass
class DownResult:
    stopped: bool  # False: it was not running
    pid: int | None
    purged: bool


def local_user() -> str:
    """The account the sandbox's server runs as, and so the only one it can log in."""
    return pwd.getpwuid(os.geteuid()).pw_name


def choose_flavour(server: str = "auto") -> tuple[str, str, str | None]:
    """(flavour, why, sshd path) for `--server auto|openssh|asyncssh`."""
    if server not in SERVER_CHOICES:
        raise SandboxUsageError(f"unknown sandbox server {server!r}", f"choose one of {', '.join(SERVER_CHOICES)}")
    if server == "asyncssh":
        return "asyncssh", "asked for with --server asyncssh", None
    sshd = openssh.find_sshd()
    if sshd:
        why = "asked for with --server openssh" if server == "openssh" else f"found {sshd}"
        return "openssh", why, sshd
    if server == "openssh":
        raise SandboxUsageError(
            "no sshd binary found (looked at REMOTEENV_SSHD, " + ", ".join(openssh.CANDIDATES) + " and PATH)",
            "install OpenSSH's server, set REMOTEENV_SSHD, or use --server asyncssh")
    return "asyncssh", "no sshd binary found, so the built-in asyncssh server is used", None


def _marker(p: state.SandboxPaths) -> str:
    # Both servers' command lines name the sandbox dir; a reused pid's does not.
    return str(p.dir)


def _running(p: state.SandboxPaths, record: state.Record | None) -> bool:
    return bool(record and record.pid and process.is_ours(record.pid, _marker(p)))


def _status(p: state.SandboxPaths, record: state.Record | None, check_answer: bool = True) -> SandboxStatus:
    running = _running(p, record)
    answering = bool(running and check_answer and record and process.answers_ssh(HOSTNAME, record.port))
    return SandboxStatus(
        running=running,
        answering=answering,
        flavour=record.flavour if record else None,
        pid=record.pid if running and record else None,
        port=record.port if record else None,
        user=record.user if record else local_user(),
        dir=p.dir,
        home=p.home,
        log=p.log,
        client_key=p.client_key,
        host_key_fingerprint=(record.host_key_fingerprint or None) if record else None,
        started_at=record.started_at if running and record else None,
    )


def status() -> SandboxStatus:
    p = state.sandbox_paths()
    return _status(p, state.load_record(p))


def up(server: str = "auto", progress: Progress | None = None) -> UpResult:
    """Start the sandbox, or confirm it runs. Safe to repeat: a running, answering one is kept."""
    if os.name != "posix":
        raise SandboxUsageError("the sandbox needs a POSIX system (Linux or macOS)",
                                "on Windows, run remoteenv inside WSL, or use a host of your own")
    say = progress or (lambda message: None)
    began = time.monotonic()
    p = state.sandbox_paths()
    with state.locked(p):
        record = state.load_record(p)
        if _running(p, record):
            assert record is not None and record.pid is not None
            if server != "auto" and server != record.flavour:
                raise SandboxUsageError(f"the sandbox is already running with {record.flavour}",
                                        f"remoteenv sandbox down, then remoteenv sandbox up --server {server}")
            if process.answers_ssh(HOSTNAME, record.port):
                # Re-trusting from our own key file repairs a damaged known_hosts line.
                host_line = keys.read_public(p.host_key)
                if host_line:
                    keys.trust(HOSTNAME, record.port, host_line)
                return UpResult(_status(p, record), False, record.reason, time.monotonic() - began)
            say(f"the sandbox (pid {record.pid}) does not answer; restarting it")
            process.stop(record.pid)
        flavour, why, sshd = choose_flavour(server)
        state.ensure_dirs(p)
        say("preparing keys")
        host_line, made_host = keys.ensure_keypair(p.host_key, "remoteenv-sandbox-host")
        client_line, made_client = keys.ensure_keypair(p.client_key, "remoteenv-sandbox-client")
        if made_host or made_client:
            say("generated new ed25519 " + " and ".join(
                w for w, made in (("host key", made_host), ("client key", made_client)) if made))
        keys.write_authorized_keys(p.authorized_keys, client_line)
        user = local_user()
        preferred = record.port if record else None
        say(f"starting {_describe(flavour)} ({why})")
        pid, port = _start(p, flavour, sshd, user, preferred)
        record = state.Record(flavour=flavour, port=port, user=user, pid=pid, started_at=time.time(),
                              reason=why, host_key_fingerprint=keys.fingerprint(host_line))
        state.save_record(p, record)
        keys.trust(HOSTNAME, port, host_line)
        return UpResult(_status(p, record), True, why, time.monotonic() - began)


def _describe(flavour: str) -> str:
    return "OpenSSH sshd" if flavour == "openssh" else "the built-in asyncssh server"


def _start(p: state.SandboxPaths, flavour: str, sshd: str | None, user: str,
           preferred: int | None) -> tuple[int, int]:
    """Start the server on a free port (retrying when another program takes it first)."""
    process.rotate_log(p.log)
    problem = ""
    for attempt in range(PORT_ATTEMPTS):
        port = process.free_port(preferred if attempt == 0 else None)
        p.pid_file.unlink(missing_ok=True)
        offset = process.log_size(p.log)
        if flavour == "openssh":
            assert sshd is not None
            openssh.prepare_runtime()
            openssh.write_config(p, port, user)
            argv = openssh.command(sshd, p)
        else:
            # Deferred: importing it from this package's import would upset `python -m` running it.
            from remoteenv.sandbox import asyncssh_server

            argv = asyncssh_server.command(sys.executable, p, port, user)
        code = process.launch(argv, p.log, START_TIMEOUT, env=_server_env(flavour))

        def failed(since: int = offset) -> bool:
            return "fatal" in process.log_since(p.log, since, lines=50).lower()

        pid = process.wait_for_pid_file(p.pid_file, START_TIMEOUT, failed) if code == 0 else None
        if pid and process.answers_ssh(HOSTNAME, port, timeout=START_TIMEOUT):
            return pid, port
        if pid:
            process.stop(pid)
        problem = process.log_since(p.log, offset) or f"the launcher exited {code}"
        if not _port_taken(problem):
            break
    last = problem.strip().splitlines()[-1] if problem.strip() else "no output"
    raise SandboxError(f"the sandbox's {_describe(flavour)} did not start: {last}",
                       f"see {p.log}" + ("; or try --server asyncssh" if flavour == "openssh" else ""))


def _port_taken(text: str) -> bool:
    lowered = text.lower()
    return "address already in use" in lowered or "cannot bind any address" in lowered


def _server_env(flavour: str) -> dict[str, str] | None:
    if flavour != "asyncssh":
        return None
    # The server must import this very remoteenv, also when it runs from a source tree.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def down(purge: bool = False, progress: Progress | None = None) -> DownResult:
    """Stop the sandbox (and its open sessions). Keys stay for next time unless `purge`."""
    say = progress or (lambda message: None)
    p = state.sandbox_paths()
    if not p.dir.exists():
        if purge:
            keys.forget()
        return DownResult(False, None, purge)
    with state.locked(p):
        record = state.load_record(p)
        stopped_pid = None
        if record and _running(p, record):
            assert record.pid is not None
            say(f"stopping the sandbox (pid {record.pid})")
            process.stop(record.pid)
            stopped_pid = record.pid
        if record and record.pid is not None:
            record.pid = None
            record.started_at = None
            state.save_record(p, record)
        p.pid_file.unlink(missing_ok=True)
        if purge:
            say(f"removing {p.dir}")
            keys.forget()
            shutil.rmtree(p.dir, ignore_errors=True)
    return DownResult(stopped_pid is not None, stopped_pid, purge)


def sandbox_host(ssh_config: Any = None) -> Host | None:
    """The Host `sandbox` while the sandbox runs.

    When it does not run: None if ~/.ssh/config defines `sandbox` (that host is meant then),
    else SandboxNotRunning, whose hint says how to start it.
    """
    p = state.sandbox_paths()
    record = state.load_record(p)
    if record is None or not _running(p, record):
        if ssh_config is not None and (NAME in ssh_config.host_names() or "hostname" in ssh_config.lookup(NAME)):
            return None
        raise SandboxNotRunning()
    host = Host(name=NAME, hostname=HOSTNAME, user=record.user, port=record.port,
                identity_files=[str(p.client_key)])
    host.sources = dict.fromkeys(CONNECTION_FIELDS, NAME)
    return host
