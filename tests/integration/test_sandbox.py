"""The sandbox host (`remoteenv sandbox up|down|status`, `remoteenv demo`), both server flavours.

Each test gets a fresh HOME and state dir; the sandbox runs as the current user on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import os
import pwd
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
import wheelhouse
from cli_runner import remoteenv
from jupyter_http import status_code

from remoteenv import api, sandbox
from remoteenv.errors import HostKeyMismatch
from remoteenv.sandbox import keys, openssh, process
from remoteenv.transport import hostkeys

pytestmark = pytest.mark.integration

USER = pwd.getpwuid(os.geteuid()).pw_name
REAL_SSH_DIR = Path(pwd.getpwuid(os.geteuid()).pw_dir) / ".ssh"


def _need_sshd() -> None:
    if openssh.find_sshd():
        return
    message = "no sshd binary on this machine (the openssh flavour needs one)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=["openssh", "asyncssh"])
def flavour(request) -> str:
    if request.param == "openssh":
        _need_sshd()
    return request.param


def _snapshot(folder: Path) -> dict[str, str] | None:
    if not folder.exists():
        return None
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """A fresh HOME, state and config dir, in this process and for the CLI subprocesses."""
    home = tmp_path / "home"
    home.mkdir()
    settings = {"HOME": str(home), "REMOTEENV_STATE_DIR": str(tmp_path / "state"),
                "REMOTEENV_CONFIG_DIR": str(tmp_path / "config")}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("REMOTEENV_KNOWN_HOSTS", "REMOTEENV_SSH_CONFIG", "REMOTEENV_INVENTORY", "REMOTEENV_SSHD",
                 "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    real_ssh = _snapshot(REAL_SSH_DIR)
    yield dict(os.environ)
    sandbox.down()
    assert _snapshot(REAL_SSH_DIR) == real_ssh, "the person's ~/.ssh changed"


def _gone(pid: int) -> bool:
    """Not running; an unreaped zombie counts as gone (it holds no port, runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def test_up_then_probe(env, flavour):
    started = remoteenv("sandbox", "up", "--server", flavour, env=env)
    assert started.code == 0, started.err
    assert "sandbox up" in started.err
    # `up` has exited: the server outlives the command that started it.
    probed = remoteenv("probe", "sandbox", "--json", env=env)
    assert probed.code == 0, probed.err
    facts = probed.json()
    assert facts["user"] == USER
    assert facts["home"] == str(Path(env["REMOTEENV_STATE_DIR"]) / "sandbox" / "home")
    assert facts["cpus"] >= 1 and facts["os"]["id"]


def test_status_json(env, flavour):
    before = remoteenv("sandbox", "status", "--json", env=env)
    assert before.code == 0, before.err
    assert before.json()["running"] is False
    assert remoteenv("sandbox", "up", "--server", flavour, env=env).code == 0
    status = remoteenv("sandbox", "status", "--json", env=env).json()
    assert status["running"] is True and status["answering"] is True
    assert status["flavour"] == flavour
    assert status["user"] == USER
    assert status["hostname"] == "127.0.0.1" and status["port"] > 1024
    assert status["state_dir"] == str(Path(env["REMOTEENV_STATE_DIR"]) / "sandbox")
    assert not _gone(status["pid"])
    assert status["host_key_fingerprint"].startswith("SHA256:")
    table = remoteenv("sandbox", "status", env=env)
    assert "running" in table.out and str(status["port"]) in table.out


def test_up_is_idempotent(env, flavour):
    first = remoteenv("sandbox", "up", "--server", flavour, "--json", env=env)
    second = remoteenv("sandbox", "up", "--json", env=env)
    assert first.code == 0 and second.code == 0, second.err
    assert first.json()["started"] is True and second.json()["started"] is False
    assert first.json()["pid"] == second.json()["pid"]
    assert "already running" in second.err


def test_down_stops_the_server_and_keeps_keys(env, flavour):
    status = remoteenv("sandbox", "up", "--server", flavour, "--json", env=env).json()
    sandbox_dir = Path(status["state_dir"])
    host_key = (sandbox_dir / "ssh_host_ed25519_key").read_bytes()
    stopped = remoteenv("sandbox", "down", env=env)
    assert stopped.code == 0, stopped.err
    assert f"pid {status['pid']}" in stopped.out
    assert _gone(status["pid"])
    assert _port_closed(status["port"])
    assert remoteenv("sandbox", "status", "--json", env=env).json()["running"] is False
    again = remoteenv("sandbox", "down", env=env)
    assert again.code == 0 and "not running" in again.out
    unreachable = remoteenv("probe", "sandbox", env=env)
    assert unreachable.code == 3 and "remoteenv sandbox up" in unreachable.err
    # The next `up` uses the same keys, so the host key already trusted stays valid.
    restarted = remoteenv("sandbox", "up", "--server", flavour, "--json", env=env).json()
    assert (sandbox_dir / "ssh_host_ed25519_key").read_bytes() == host_key
    assert restarted["host_key_fingerprint"] == status["host_key_fingerprint"]
    assert remoteenv("probe", "sandbox", "--json", env=env).code == 0


def test_down_purge_removes_files_and_trust(env):
    assert remoteenv("sandbox", "up", env=env).code == 0
    sandbox_dir = Path(env["REMOTEENV_STATE_DIR"]) / "sandbox"
    known = hostkeys.own_known_hosts()
    known.write_text(known.read_text() + "[10.0.0.9]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK other\n")
    purged = remoteenv("sandbox", "down", "--purge", env=env)
    assert purged.code == 0, purged.err
    assert not sandbox_dir.exists()
    assert known.read_text().splitlines() == ["[10.0.0.9]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK other"]


def test_files_are_private(env, flavour):
    assert remoteenv("sandbox", "up", "--server", flavour, env=env).code == 0
    sandbox_dir = Path(env["REMOTEENV_STATE_DIR"]) / "sandbox"
    assert sandbox_dir.stat().st_mode & 0o777 == 0o700
    for name in ("ssh_host_ed25519_key", "id_ed25519", "authorized_keys", "server.log", "server.pid"):
        assert (sandbox_dir / name).stat().st_mode & 0o077 == 0, name


def test_sessions_files_and_forwarding(env, flavour):
    """What later features need: exec with stdin/stderr/status, SFTP, TCP and Unix-socket forwards."""
    status = sandbox.up(flavour).status
    with api.open_host("sandbox") as conn:
        result = conn.run("cat; echo oops >&2; echo \"$HOME\"; exit 7", stdin="hello\n")
        assert (result.exited, result.stderr) == (7, "oops\n")
        assert result.stdout == f"hello\n{status.home}\n"

        conn.put(b"payload\n", "~/uploaded.txt", 0o640)
        uploaded = status.home / "uploaded.txt"
        assert uploaded.read_bytes() == b"payload\n"
        assert uploaded.stat().st_mode & 0o777 == 0o640
        assert conn.get("~/uploaded.txt") == b"payload\n"

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            channel = conn.transport.open_channel(
                "direct-tcpip", ("127.0.0.1", server.server_address[1]), ("127.0.0.1", 0), timeout=10)
            channel.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            reply = b""
            while chunk := channel.recv(65536):
                reply += chunk
            channel.close()
        finally:
            server.shutdown()
        assert reply.startswith(b"HTTP/1.0 200") and reply.endswith(b"hello through the sandbox")

    assert asyncio.run(_through_unix_socket(status)) == b"pong:ping"


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello through the sandbox"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


async def _through_unix_socket(status: sandbox.SandboxStatus) -> bytes:
    import asyncssh

    folder = tempfile.mkdtemp(prefix="sbx")
    path = os.path.join(folder, "s.sock")

    async def answer(reader, writer):
        writer.write(b"pong:" + await reader.readexactly(4))
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(answer, path)
    try:
        async with asyncssh.connect(
            status.hostname, status.port, username=status.user, client_keys=[str(status.client_key)],
            known_hosts=str(hostkeys.own_known_hosts()),
        ) as conn:
            reader, writer = await conn.open_unix_connection(path)
            writer.write(b"ping")
            return await reader.read(100)
    finally:
        server.close()
        os.unlink(path)
        os.rmdir(folder)


def test_asyncssh_hangs_up_a_command_whose_client_left(env):
    """sshd leaves such a command running (without a pty); the built-in server does not."""
    sandbox.up("asyncssh")
    seconds = f"{300 + os.getpid() % 1000}.{time.time_ns() % 1000}"
    with api.open_host("sandbox") as conn:
        channel = conn.transport.open_session()
        channel.exec_command(f"sleep {seconds}")
        assert _wait(lambda: _processes(f"sleep {seconds}"), 10), "the command did not start"
    assert _wait(lambda: not _processes(f"sleep {seconds}"), 10), "the command outlived its client"


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _processes(command: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and not _gone(int(p.name)) and process.command_line(int(p.name)) == command]


def test_demo_from_a_fresh_home(tmp_path, monkeypatch):
    """`remoteenv demo` with nothing but a fresh HOME: the state dir comes from it too."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("REMOTEENV_STATE_DIR", "REMOTEENV_CONFIG_DIR", "REMOTEENV_KNOWN_HOSTS", "REMOTEENV_SSH_CONFIG",
                 "REMOTEENV_INVENTORY", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    real_ssh = _snapshot(REAL_SSH_DIR)
    house = wheelhouse.wheelhouse_or_skip()
    try:
        result = remoteenv("demo", "--wheelhouse", str(house), "--no-open", env=dict(os.environ), timeout=900)
        assert result.code == 0, result.out + result.err
        assert "sandbox up" in result.err and ("found" in result.err or "no sshd" in result.err)
        url = result.out.strip().splitlines()[-1]  # the URL is the last line of stdout
        assert url.startswith("http://127.0.0.1:") and "/lab?token=" in url, result.out
        port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
        assert status_code(port, token) == 200 and status_code(port, None) == 403
        assert "remoteenv demo --down" in result.err
        assert (home / ".local" / "state" / "remoteenv" / "sandbox" / "id_ed25519").is_file()
        assert not (home / ".ssh").exists()
        undone = remoteenv("demo", "--down", env=dict(os.environ))
        assert undone.code == 0, undone.out + undone.err
        assert "stopped jupyter demo" in undone.out and "sandbox stopped" in undone.out, undone.out
        assert status_code(port, token) == 0
    finally:
        sandbox.down()
    assert _snapshot(REAL_SSH_DIR) == real_ssh


def test_changed_host_key_is_refused(env, flavour):
    assert remoteenv("sandbox", "up", "--server", flavour, env=env).code == 0
    known = hostkeys.own_known_hosts()
    line = known.read_text().strip()
    other, _ = keys.ensure_keypair(Path(env["HOME"]) / "other_key", "other")
    name, kind, _, mark = line.split()
    known.write_text(f"{name} {kind} {other.split()[1]} {mark}\n")

    refused = remoteenv("probe", "sandbox", env=env)
    assert refused.code == 3
    assert "HOST KEY CHANGED" in refused.err and str(known) in refused.err
    with pytest.raises(HostKeyMismatch):
        api.probe("sandbox")

    # `up` re-trusts the sandbox's own key from its key file.
    assert remoteenv("sandbox", "up", env=env).code == 0
    assert remoteenv("probe", "sandbox", "--json", env=env).code == 0


def test_up_rejects_another_flavour_while_running(env):
    _need_sshd()
    assert remoteenv("sandbox", "up", "--server", "openssh", env=env).code == 0
    clash = remoteenv("sandbox", "up", "--server", "asyncssh", env=env)
    assert clash.code == 2
    assert "already running with openssh" in clash.err and "sandbox down" in clash.err


def test_asyncssh_when_no_sshd(env):
    env = {**env, "REMOTEENV_SSHD": str(Path(env["HOME"]) / "no-such-sshd")}
    bad = remoteenv("sandbox", "up", env=env)
    assert bad.code == 2 and "REMOTEENV_SSHD" in bad.err
    started = remoteenv("sandbox", "up", "--server", "asyncssh", "--json", env=env)
    assert started.code == 0, started.err
    assert started.json()["flavour"] == "asyncssh"


def test_inventory_entry_named_sandbox_wins(env, tmp_path):
    assert remoteenv("sandbox", "up", env=env).code == 0
    (tmp_path / "hosts.yaml").write_text("hosts:\n  sandbox:\n    hostname: 192.0.2.7\n")
    listed = remoteenv("hosts", "sandbox", "--json", env=env)
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["hosts"][0]["hostname"] == "192.0.2.7"


def test_only_its_own_user_gets_in(env, flavour):
    from remoteenv.errors import AuthFailed
    from remoteenv.inventory import Inventory, resolve
    from remoteenv.transport import connect

    sandbox.up(flavour)
    host = resolve(Inventory(), "sandbox")
    host.user = "nobody" if USER != "nobody" else "root"
    with pytest.raises(AuthFailed):
        connect(host).close()
