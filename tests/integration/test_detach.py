"""Detached processes: they outlive the connection, keep secrets off argv, and the probe finds them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from remoteenv import facts as facts_mod
from remoteenv.inventory import load_inventory, resolve_many
from remoteenv.transport import ConnectOptions, connect, detach

pytestmark = pytest.mark.integration


@pytest.fixture
def open_conn(testbed, monkeypatch):
    monkeypatch.setenv("HOME", str(testbed.client.home))

    def opener(name: str):
        [host] = resolve_many(load_inventory(None), [name])
        return connect(host, ConnectOptions())

    return opener


def argv_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_detached_process_outlives_its_connection_and_the_probe_sees_it(testbed, open_conn):
    host = testbed.host("h02")
    secret = "tok-" + os.urandom(8).hex()
    script = 'echo "started with ${#RT_TOKEN} chars"; exec sleep 300'
    started_at = time.monotonic()
    with open_conn(host.name) as conn:
        proc = detach.start(conn, ["/bin/sh", "-c", script], name="rt-sleeper", env={"RT_TOKEN": secret})
    # It returned at once: nothing waited for the process.
    assert time.monotonic() - started_at < 5
    try:
        time.sleep(0.5)
        assert os.path.exists(f"/proc/{proc.pid}"), "the process died with its connection"
        assert argv_of(proc.pid).startswith("sleep 300")
        assert secret not in argv_of(proc.pid)
        assert secret.encode() in Path(f"/proc/{proc.pid}/environ").read_bytes()  # where it was handed over
        assert os.getsid(proc.pid) == proc.pid  # a session of its own: the SSH session's end cannot reach it
        log = host.run(f"cat {proc.log}; stat -c %a {proc.log} $(dirname {proc.log})").stdout.split("\n")
        assert log[0] == f"started with {len(secret)} chars"
        assert log[1:3] == ["600", "700"]
        with open_conn(host.name) as conn:
            found = facts_mod.gather(conn)
        assert [(p.name, p.pid, p.alive) for p in found.processes] == [("rt-sleeper", proc.pid, True)]
        assert found.to_json()["processes"] == [{"name": "rt-sleeper", "pid": proc.pid, "alive": True}]
    finally:
        host.run(f"kill {proc.pid}", check=False)
    time.sleep(0.3)
    with open_conn(host.name) as conn:
        gone = facts_mod.gather(conn)
    assert [(p.name, p.alive) for p in gone.processes] == [("rt-sleeper", False)]
    host.run("rm -rf ~/.remoteenv/run")


def test_detach_refuses_names_that_would_escape_its_folder(testbed, open_conn):
    from remoteenv.errors import ConfigError

    with open_conn("h02") as conn:
        for bad in ("../x", "a/b", "", ".hidden"):
            with pytest.raises(ConfigError):
                detach.start(conn, ["true"], name=bad)
        with pytest.raises(ConfigError):
            detach.start(conn, ["true"], name="ok", env={"BAD-KEY": "1"})
