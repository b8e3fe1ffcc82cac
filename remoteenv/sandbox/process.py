"""Starting, finding and stopping the sandbox's server process, detached from the terminal.

Both flavours daemonize themselves: the launcher we run returns once the server is set up (the
asyncssh server) or forked (sshd), and the server writes its pid file once it listens. So the
server is never a child of the command that started it, and survives that command and its terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from remoteenv.pids import alive

LOG_ROTATE_BYTES = 1 << 20


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` when nothing listens there, else a port the kernel hands out."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port")  # unreachable: port 0 always binds


def rotate_log(log: Path) -> None:
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(log.name + ".1"))


def launch(argv: list[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> int:
    """Run a self-daemonizing launcher with no terminal (new session, stdin from /dev/null,
    output to `log`) and return its exit code."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as out:
        # umask: the server's pid file and log stay private like the rest of the sandbox dir.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env, umask=0o077)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -1


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def command_line(pid: int) -> str | None:
    """The process's command line (its title, for sshd), or None where it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return ""
    except OSError:
        return None
    try:
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def is_ours(pid: int | None, marker: str) -> bool:
    """`pid` is alive and still our server (after a reboot, the pid may belong to something else)."""
    if not pid or not alive(pid):
        return False
    line = command_line(pid)
    return line is None or marker in line


def answers_ssh(host: str, port: int, timeout: float = 3.0) -> bool:
    """Something on host:port greets with an SSH banner."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False
    return any(line.startswith(b"SSH-") for line in data.splitlines())


def wait_for_pid_file(pid_file: Path, timeout: float, gave_up: Callable[[], bool]) -> int | None:
    """The pid the server wrote once it listens; None on timeout or when `gave_up()` says so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = read_pid(pid_file)
        if pid and alive(pid):
            return pid
        if gave_up():
            return None
        time.sleep(0.05)
    return None


def descendants(pid: int) -> list[int]:
    """Children, grandchildren... of `pid` (sshd's per-connection processes and their commands)."""
    parents: dict[int, int] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    parents[int(entry.name)] = int(stat.rsplit(")", 1)[-1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
    else:
        try:
            out = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True,
                                 timeout=5, stdin=subprocess.DEVNULL).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        for line in out.splitlines():
            with contextlib.suppress(ValueError):
                child, parent = map(int, line.split())
                parents[child] = parent
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [c for c, p in parents.items() if p == parent and c not in found]
        found.extend(kids)
        frontier.extend(kids)
    return found


def stop(pid: int, timeout: float = 5.0) -> None:
    """Stop the server and what runs under it (open sessions), as a host going down would."""
    victims = [pid, *descendants(pid)]
    _signal(victims, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(v) for v in victims):
            return
        time.sleep(0.05)
    _signal([v for v in victims if alive(v)], signal.SIGKILL)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def log_since(log: Path, offset: int, lines: int = 6) -> str:
    """The last lines written to `log` after `offset`, for error messages."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(ln for ln in text.strip().splitlines()[-lines:])


def log_size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0
