"""The sandbox's SSH server where no sshd binary exists: asyncssh, serving one user with one key.

    python -m remoteenv.sandbox.asyncssh_server --dir SANDBOX_DIR --port PORT --user USER [--daemon]

It accepts only USER with the key in SANDBOX_DIR/authorized_keys, runs exec requests through
/bin/sh -c (stdin, stdout, stderr, exit status) in the sandbox's home, serves SFTP there, and
forwards TCP and Unix-socket connections (local forwards). With --daemon it forks into the
background and the launcher exits once the server listens (0) or could not start (1, reason on
stderr); the server writes SANDBOX_DIR/server.pid once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import pwd
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import asyncssh

from remoteenv.sandbox.state import SandboxPaths

log = logging.getLogger("remoteenv.sandbox")

# What sshd gives a session that did not ask for more; the launcher's own PATH (a venv, say) would
# make the two flavours see different tools.
SESSION_PATH = "/usr/local/bin:/usr/bin:/bin"
ROOT_SESSION_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def command(python: str, p: SandboxPaths, port: int, user: str) -> list[str]:
    """The launcher's argv, as `sandbox up` runs it."""
    return [python, "-m", "remoteenv.sandbox.asyncssh_server",
            "--dir", str(p.dir), "--port", str(port), "--user", user, "--daemon"]


class _Server(asyncssh.SSHServer):
    def __init__(self, user: str, keys: asyncssh.SSHAuthorizedKeys) -> None:
        self._user = user
        self._keys = keys
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        log.info("connection from %s", conn.get_extra_info("peername"))

    def begin_auth(self, username: str) -> bool:
        # Only the sandbox's user has a key; anyone else is offered no way in.
        if username == self._user and self._conn is not None:
            self._conn.set_authorized_keys(self._keys)
        else:
            log.warning("refused user %r", username)
        return True

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        return True

    def unix_connection_requested(self, dest_path: str) -> bool:
        return True

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return listen_host in LOOPBACK


class _SFTPServer(asyncssh.SFTPServer):
    """SFTP on the local filesystem, with relative paths (and `.`) starting in the sandbox's home."""

    home = b""

    def map_path(self, path: bytes) -> bytes:
        return path if path.startswith(b"/") else os.path.join(self.home, path)


class _Sessions:
    def __init__(self, user: str, home: Path) -> None:
        entry = pwd.getpwnam(user)
        self.home = home
        self.shell = entry.pw_shell or "/bin/sh"
        self.env = {
            "HOME": str(home),
            "USER": user,
            "LOGNAME": user,
            "SHELL": self.shell,
            "PATH": ROOT_SESSION_PATH if entry.pw_uid == 0 else SESSION_PATH,
        }
        for name in ("LANG", "LC_ALL", "TZ"):
            if os.environ.get(name):
                self.env[name] = os.environ[name]

    async def __call__(self, process: asyncssh.SSHServerProcess) -> None:
        command = process.command
        argv = ["/bin/sh", "-c", command] if command is not None else [self.shell, "-l"]
        env = dict(self.env)
        peer = process.get_extra_info("peername") or ("", 0)
        local = process.get_extra_info("sockname") or ("", 0)
        env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {local[0]} {local[1]}"
        env["SSH_CLIENT"] = f"{peer[0]} {peer[1]} {local[1]}"
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=self.home, env=env, start_new_session=True)
        except OSError as exc:
            process.stderr.write(f"cannot run {argv[0]}: {exc}\n".encode())
            process.exit(127)
            return
        feeding = asyncio.ensure_future(_feed_stdin(process, proc))
        output = asyncio.ensure_future(asyncio.gather(_pump(proc.stdout, process.stdout),
                                                      _pump(proc.stderr, process.stderr)))
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            await asyncio.wait({output, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not output.done():
                # The client went away mid-command: end it as sshd would, with a hang-up.
                _signal_group(proc.pid, signal.SIGHUP)
                await asyncio.wait({output}, timeout=5)
            returncode = await proc.wait()
        finally:
            for task in (feeding, output, closed):
                task.cancel()
            if proc.returncode is None:
                _signal_group(proc.pid, signal.SIGKILL)
        if process.is_closing():
            return
        # EOF before the exit status, as sshd sends them: clients wait for both.
        process.channel.write_eof()
        if returncode < 0:
            process.exit_with_signal(signal.Signals(-returncode).name.removeprefix("SIG"))
        else:
            process.exit(returncode)


async def _pump(source: asyncio.StreamReader | None, target: asyncssh.SSHWriter) -> None:
    if source is None:
        return
    while data := await source.read(65536):
        target.write(data)
        await target.drain()


async def _feed_stdin(process: asyncssh.SSHServerProcess, proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    try:
        while data := await process.stdin.read(65536):
            proc.stdin.write(data)
            await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError, asyncssh.Error):
        pass
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def serve(p: SandboxPaths, port: int, user: str, ready: Callable[[], None]) -> None:
    keys = asyncssh.read_authorized_keys(str(p.authorized_keys))
    sessions = _Sessions(user, p.home)
    _SFTPServer.home = os.fsencode(p.home)
    server = await asyncssh.listen(
        "127.0.0.1", port,
        server_factory=lambda: _Server(user, keys),
        server_host_keys=[str(p.host_key)],
        process_factory=sessions,
        sftp_factory=_SFTPServer,
        allow_scp=False,
        encoding=None,
        line_editor=False,
        password_auth=False,
        kbdint_auth=False,
        agent_forwarding=False,
        x11_forwarding=False,
        keepalive_interval=30,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    p.pid_file.write_text(f"{os.getpid()}\n")
    log.info("listening on 127.0.0.1:%d for %s (pid %d)", port, user, os.getpid())
    ready()
    await stop.wait()
    log.info("stopping")
    server.close()
    await server.wait_closed()
    with contextlib.suppress(OSError):
        p.pid_file.unlink()


def _daemonize() -> tuple[Callable[[], None], Callable[[str], None]]:
    """Fork; the launcher waits for the server's word. Returns (ready, failed) for the server."""
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            word = pipe.read().decode(errors="replace")
        if word == "ok":
            os._exit(0)
        sys.stderr.write((word or "the server exited while starting") + "\n")
        sys.stderr.flush()
        os._exit(1)
    os.close(read_end)
    os.setsid()

    def say(word: str) -> None:
        nonlocal write_end
        if write_end >= 0:
            with contextlib.suppress(OSError):
                os.write(write_end, word.encode())
                os.close(write_end)
            write_end = -1

    return (lambda: say("ok")), say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remoteenv.sandbox.asyncssh_server")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--user", required=True)
    parser.add_argument("--daemon", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    ready, failed = _daemonize() if args.daemon else ((lambda: None), (lambda word: None))
    p = SandboxPaths(args.dir)
    try:
        os.chdir(p.home)
        asyncio.run(serve(p, args.port, args.user, ready))
    except (OSError, asyncssh.Error, ValueError, KeyError) as exc:
        message = f"cannot serve on 127.0.0.1:{args.port}: {exc}"
        log.error("%s", message)
        failed(message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
