"""A detached tunnel's process (remoteenv.tunnel.keeper) against a real host: a stop that comes while
its ssh is still opening ends both, and leaves no port, process or record behind."""

from __future__ import annotations

import os
import secrets
import time

import pytest

from remoteenv import api
from remoteenv.inventory import load_inventory, resolve
from remoteenv.tunnel import Forward, free_local_port, listening, records
from remoteenv.tunnel import keeper as detached
from remoteenv.tunnel.openssh import OpenSSHBackend

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone for what matters here
        return fh.read().rpartition(")")[2].split()[0] != "Z"


def _text(path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_stop_while_ssh_opens_ends_ssh_and_frees_the_port(testbed, monkeypatch, tmp_path):
    # What `up` does when the server it aimed an early tunnel at has moved: it stops that tunnel,
    # which may still be opening. ssh runs in a session of its own, so only the tunnel's process
    # can end it. An ssh slow to listen (here: 2 s before the real `ssh -L`) makes the window wide.
    env = testbed.client.env()
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", env["HOME"])
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    inventory = load_inventory(None)
    port = free_local_port(9750)
    forwards = [Forward(port, "127.0.0.1:9")]
    ssh = OpenSSHBackend(resolve(inventory, "h01"), forwards, api.connect_options(inventory)).argv()
    started = tmp_path / "ssh.pid"
    slow_ssh = ["sh", "-c", 'echo $$ > "$0"; sleep 2; exec "$@"', str(started), *ssh]
    record = records.Record(id=f"t{secrets.token_hex(4)}", host="h01", backend="openssh",
                            forwards=[{"local_port": port, "remote": "127.0.0.1:9"}], argv=slow_ssh)
    proc = detached.start(record)
    deadline = time.monotonic() + 30
    while not started.exists() or not started.read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, _text(record.log)
        time.sleep(0.01)
    ssh_pid = int(started.read_text())

    proc.terminate()
    assert proc.wait(10) == 0, _text(record.log)  # a stop, not a failure
    assert not _alive(ssh_pid)
    time.sleep(3)  # past the moment the slow ssh would have listened
    assert not listening(port)
    assert records.load(record.path) is None and not record.log.exists()  # a clean end removes both

    # The same tunnel, left alone, opens: the test's ssh does listen when nothing stops it.
    record = records.Record(id=f"t{secrets.token_hex(4)}", host="h01", backend="openssh",
                            forwards=[{"local_port": port, "remote": "127.0.0.1:9"}], argv=slow_ssh)
    opened = detached.spawn(record)
    try:
        assert opened.state == "open" and listening(port)
    finally:
        records.stop(opened)
    assert not listening(port)
