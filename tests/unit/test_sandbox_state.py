"""The sandbox's run record, process checks, and how the name `sandbox` resolves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from remoteenv.errors import EXIT_CONNECT
from remoteenv.inventory import Inventory, SSHConfigFile, load_inventory, resolve
from remoteenv.sandbox import SandboxNotRunning, process, sandbox_host, state


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("REMOTEENV_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("REMOTEENV_INVENTORY", "REMOTEENV_SSH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def _record(pid: int | None) -> state.SandboxPaths:
    p = state.sandbox_paths()
    state.ensure_dirs(p)
    state.save_record(p, state.Record(flavour="openssh", port=40555, user="alice", pid=pid))
    return p


def test_record_round_trip_and_damage():
    p = _record(1234)
    assert state.load_record(p) == state.Record(flavour="openssh", port=40555, user="alice", pid=1234)
    assert p.record.stat().st_mode & 0o777 == 0o600
    p.record.write_text("{not json")
    assert state.load_record(p) is None
    p.record.write_text('{"flavour": "asyncssh", "port": 1, "user": "u", "added_later": true}')
    assert state.load_record(p).flavour == "asyncssh"


def test_sandbox_not_running_is_a_connect_error_with_a_hint():
    with pytest.raises(SandboxNotRunning) as caught:
        resolve(Inventory(), "sandbox")
    assert caught.value.exit_code == EXIT_CONNECT
    assert "remoteenv sandbox up" in caught.value.hint


def test_a_stale_record_is_not_running():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _record(dead.pid)
    with pytest.raises(SandboxNotRunning):
        sandbox_host()


def test_a_reused_pid_is_not_the_sandbox():
    # This test's own process is alive but its command line does not name the sandbox dir.
    _record(os.getpid())
    with pytest.raises(SandboxNotRunning):
        sandbox_host()


def test_running_sandbox_resolves_with_its_own_key():
    p = state.sandbox_paths()
    state.ensure_dirs(p)
    # A live process whose command line names the sandbox dir, as the real servers' do.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(p.dir)])
    try:
        _record(holder.pid)
        host = resolve(Inventory(), "sandbox")
        assert (host.hostname, host.port, host.user) == ("127.0.0.1", 40555, "alice")
        assert host.identity_files == [str(p.client_key)]
        assert set(host.sources.values()) == {"sandbox"}
    finally:
        holder.kill()
        holder.wait()


def test_ssh_config_alias_named_sandbox_is_used_when_none_runs(home: Path):
    (home / ".ssh" / "config").write_text("Host sandbox\n  HostName 192.0.2.10\n  User bob\n")
    host = resolve(Inventory(), "sandbox", SSHConfigFile())
    assert (host.hostname, host.user) == ("192.0.2.10", "bob")


def test_inventory_entry_named_sandbox_wins(tmp_path: Path):
    (tmp_path / "hosts.yaml").write_text("hosts:\n  sandbox:\n    hostname: 192.0.2.11\n")
    host = resolve(load_inventory(), "sandbox")
    assert host.hostname == "192.0.2.11"


def test_free_port_prefers_the_given_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        other = process.free_port(busy)
        assert other != busy and other > 0
    free = process.free_port()
    assert process.free_port(free) == free


def test_answers_ssh_needs_a_banner():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def greet(text: bytes) -> None:
            conn, _ = listener.accept()
            conn.sendall(text)
            conn.close()

        for text, expected in ((b"SSH-2.0-Test\r\n", True), (b"HTTP/1.0 400 Bad\r\n", False)):
            server = threading.Thread(target=greet, args=(text,))
            server.start()
            assert process.answers_ssh("127.0.0.1", port) is expected
            server.join()
    assert process.answers_ssh("127.0.0.1", port) is False


def test_alive_and_descendants():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process.alive(child.pid)
        assert child.pid in process.descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert not process.alive(child.pid)
