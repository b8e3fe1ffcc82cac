"""The kept shell (remoteenv/keeper/shell.py, remote/shell.sh): scripts on a kept connection run in one
long-lived shell on the host instead of a new SSH session each, and answer exactly as a session does.
And a run's facts for every kept host in one request (remoteenv/prefetch.py), with a connection of the
host's own opened only for a step that has something to do.

Each test compares with a connection of its own (no keeper) on the same real host, or checks the host's
processes: the shell that ran the script, what a timeout or an interrupt leaves behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_runner import remoteenv

from remoteenv import api
from remoteenv.errors import CommandTimeout
from remoteenv.inventory import Inventory, resolve
from remoteenv.keeper import client as kept
from remoteenv.transport.connection import connect as direct

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHELL_PID = 'ps -o ppid= -p $$ | tr -d " "\n'  # the script's sh <- the shell (no `timeout` between)


@pytest.fixture(scope="module")
def bed():
    from conftest import _make

    made = _make(2)
    yield made
    made.close()


@pytest.fixture
def env(bed, monkeypatch):
    for key, value in bed.client.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("REMOTEENV_NO_REUSE", raising=False)
    yield bed.client.env()
    remoteenv("disconnect", env={k: v for k, v in bed.client.env().items() if k != "REMOTEENV_NO_REUSE"})


def kept_conn(bed):
    host = resolve(Inventory(), bed.hosts[0].name)
    conn = kept.connect(host, api.connect_options(Inventory()))
    assert conn is not None, "no keeper"
    return conn


def own_conn(bed):
    return direct(resolve(Inventory(), bed.hosts[0].name), api.connect_options(Inventory()))


def shells(host) -> list[str]:
    """The host user's kept shells (pids)."""
    out = host.run("ps -u $(id -u) -o pid=,args= | grep \"remoteenv's shell\" | grep -v grep || true").stdout
    return [line.split()[0] for line in out.splitlines()]


def until(condition, seconds: float, why: str) -> None:
    """Wait for `condition()` to hold; fail with `why` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, why
        time.sleep(0.05)


def folders(host) -> list[str]:
    """The host user's kept shells' folders, without their random suffix."""
    out = host.run("find /tmp -maxdepth 1 -user $(id -u) -name 'remoteenv-shell-*'").stdout
    return sorted(line.rsplit(".", 1)[0] for line in out.split())


CASES = {
    "lines": "echo one; echo two >&2; echo three\n",
    "no newline at the end": "printf 'no end'; printf 'err end' >&2\n",
    "exit code": "echo before; exit 3\n",
    "empty": ":\n",
    "end-like lines": "printf '\\nabcdef0123456789 0\\n'; printf '\\nabcdef0123456789\\n' >&2; exit 5\n",
    "set -e failure": "set -e\necho a\nfalse\necho never\n",
    "stdin is empty": "cat; echo \"read: $?\"\n",
    "a MiB and a half": "head -c 1572864 /dev/zero | tr '\\0' 'x'; echo; seq 1 20000 >&2\n",
    "utf-8 and bytes": "printf 'caf\\303\\251 \\377\\n'\n",
}


def test_scripts_answer_as_in_a_session_of_their_own_and_share_one_shell(bed, env):
    host = bed.hosts[0]
    ours, theirs = kept_conn(bed), own_conn(bed)
    try:
        for name, text in CASES.items():
            got, want = ours.run_script(text, timeout=60), theirs.run_script(text, timeout=60)
            assert (got.exited, got.stdout, got.stderr) == (want.exited, want.stdout, want.stderr), name
        # The environment a script sees: the session's, plus the marker an interrupt finds it by.
        probe = "echo \"$HOME|$USER|$PATH|$(pwd)|${REMOTEENV_RUN:+marked}\"\n"
        assert ours.run_script(probe, timeout=60).stdout == theirs.run_script(probe, timeout=60).stdout
        first = ours.run_script(SHELL_PID, timeout=60).stdout.strip()
        assert ours.run_script(SHELL_PID, timeout=60).stdout.strip() == first
        assert shells(host) == [first]
        assert theirs.run_script(SHELL_PID, timeout=60).stdout.strip() != first
    finally:
        ours.close()
        theirs.close()


def test_a_script_over_its_time_ends_and_the_shell_goes_on(bed, env):
    host = bed.hosts[0]
    conn = kept_conn(bed)
    try:
        conn.run_script(":\n", timeout=60)
        started = time.monotonic()
        with pytest.raises(CommandTimeout):
            conn.run_script("sleep 317\n", timeout=1)
        assert time.monotonic() - started < 8
        assert "sleep 317" not in host.processes()
        assert conn.run_script("echo still\n", timeout=60).stdout == "still\n"
        # The time is kept by the keeper, not read from an exit code: 124 (`timeout`'s) is just a code.
        assert conn.run_script("exit 124\n", timeout=60).exited == 124
    finally:
        conn.close()


def test_a_second_script_while_the_shell_is_busy_takes_a_session(bed, env):
    host = bed.hosts[0]
    one, two = kept_conn(bed), kept_conn(bed)
    results = {}
    try:
        one.run_script(":\n", timeout=60)
        slow = threading.Thread(target=lambda: results.setdefault("slow", one.run_script(
            "sleep 2; " + SHELL_PID, timeout=60)))
        slow.start()
        until(lambda: "sleep 2" in host.processes(), 10, "the slow script did not start")
        quick = two.run_script("echo quick; " + SHELL_PID, timeout=60)
        slow.join(30)
        assert quick.stdout.startswith("quick\n")
        kept_shell = results["slow"].stdout.strip()
        assert shells(host) == [kept_shell]
        assert quick.stdout.split()[1] != kept_shell  # it did not wait for the shell
    finally:
        one.close()
        two.close()


def test_a_killed_shell_or_a_cleaned_tmp_costs_nothing_but_a_new_start(bed, env):
    host = bed.hosts[0]
    conn = kept_conn(bed)
    try:
        first = conn.run_script(SHELL_PID, timeout=60).stdout.strip()
        host.run(f"kill -KILL {first}")
        time.sleep(0.5)
        second = conn.run_script(SHELL_PID, timeout=60).stdout.strip()
        assert second != first and shells(host) == [second]
        assert folders(host) == [f"/tmp/remoteenv-shell-{second}"]  # the killed one's is gone
        # The shell's kept copy of the script is gone (a /tmp cleaner): it is sent again.
        host.run("rm -f /tmp/remoteenv-shell-*/*")
        assert conn.run_script(SHELL_PID, timeout=60).stdout.strip() == second
    finally:
        conn.close()
    remoteenv("disconnect", env={k: v for k, v in env.items() if k != "REMOTEENV_NO_REUSE"})
    until(lambda: not (shells(host) or folders(host)), 10, "the shell or its folder outlived the connection")


INTERRUPTED = """
import sys
from remoteenv import api
from remoteenv.inventory import Inventory, resolve
from remoteenv.keeper import client as kept

conn = kept.connect(resolve(Inventory(), sys.argv[1]), api.connect_options(Inventory()))
print("connected", flush=True)
conn.run_script("sleep 319\\n", timeout=600)
"""


def test_a_command_that_goes_away_has_its_script_stopped(bed, env):
    host = bed.hosts[0]
    conn = kept_conn(bed)
    conn.run_script(":\n", timeout=60)  # the shell is there: the script below goes to it
    shell = shells(host)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, host.name], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline() == "connected\n"
        deadline = time.monotonic() + 20
        while "sleep 319" not in host.processes():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        until(lambda: "sleep 319" not in host.processes(), 15, "the script kept running on the host")
        assert conn.run_script("echo after\n", timeout=60).stdout == "after\n"
        assert shell and re.fullmatch(r"\d+", shell[0])
        assert shells(host) == shell  # the marker stopped the script; the shell itself goes on
    finally:
        if proc.poll() is None:
            proc.kill()
        conn.close()


def test_a_script_whose_link_died_is_stopped_when_the_keeper_reaches_the_host_again(bed, env):
    # No `timeout` on the host bounds a kept-shell script: when its link dies, the keeper stops it by
    # its marker on its next connection to the host. A batch's script, whose marker only the keeper knows.
    import dataclasses

    host = bed.hosts[0]
    options = dataclasses.replace(api.connect_options(Inventory()), keepalive_interval=1, keepalive_count_max=2)
    target = resolve(Inventory(), host.name)
    first = kept.connect(target, options)
    assert first is not None, "no keeper"
    first.run_script(":\n", timeout=60)  # the shell is up: the batch's script goes to it
    answers: list[dict] = []
    ended = threading.Event()
    item = {"id": "x", "key": kept.open_request(target, options)["key"], "script": "0", "timeout": 600}
    batch = kept.ScriptBatch.start([item], {"0": "sleep 331\n"}, answers.append, ended.set)
    assert batch is not None
    try:
        until(lambda: "sleep 331" in host.processes(), 20, "the script did not start")
        host.cut_link()
        try:
            assert ended.wait(30), "the keeper did not give the cut link up"
        finally:
            host.restore_link()
        assert "error" in answers[0], answers
        assert "sleep 331" in host.processes()  # the host never heard: it runs on
        again = kept.connect(target, options)  # the keeper signs in again, and stops it
        assert again is not None
        until(lambda: "sleep 331" not in host.processes(), 15, "the lost script kept running on the host")
        assert again.run_script("echo on\n", timeout=60).stdout == "on\n"
        again.close()
    finally:
        batch.close()
        first.close()
        host.run("pkill -f 'sleep 331' || true", check=False)


PLAYBOOK = """
name: kept
steps:
  - shell: {command: "touch ~/.kept-made", creates: ~/.kept-made}
  - shell: {command: "echo checked", unless: "test -e ~/.kept-made"}
"""


def counted_connects(monkeypatch) -> list[str]:
    from remoteenv import fleet

    opened: list[str] = []
    real = fleet.Fleet.connect

    def connect(self, host):
        opened.append(host.name)
        return real(self, host)

    monkeypatch.setattr(fleet.Fleet, "connect", connect)
    return opened


def run(names: list[str], text: str = PLAYBOOK, **kwargs):
    from remoteenv.playbook import load_text
    from remoteenv.runner import run_playbook

    inv = Inventory()
    return run_playbook(load_text(text), [resolve(inv, n) for n in names], inv, record=False, **kwargs)


def statuses(report) -> dict[str, list[str]]:
    return {h.host: [getattr(s.status, "value", s.status) for s in h.steps] for h in report.hosts}


def test_a_run_on_kept_hosts_asks_their_facts_at_once_and_connects_only_to_change(bed, env, monkeypatch):
    h01, h02 = bed.hosts
    for host in bed.hosts:
        host.run("rm -f ~/.kept-made")
    conn = kept_conn(bed)  # the keeper holds h01 only
    conn.close()
    opened = counted_connects(monkeypatch)
    first = run([h01.name, h02.name])
    assert statuses(first) == {h01.name: ["changed", "ok"], h02.name: ["changed", "ok"]}
    assert sorted(opened) == [h01.name, h02.name]  # h01 to change it; h02 to learn it (and then change it)
    opened.clear()
    again = run([h01.name, h02.name])
    assert statuses(again) == {h01.name: ["ok", "ok"], h02.name: ["ok", "ok"]}
    assert opened == []  # nothing to do: both hosts' facts came from the keeper in one request
    plan = run([h01.name, h02.name], mode="plan")
    assert opened == [] and statuses(plan) == statuses(again)


def test_a_run_cancelled_while_the_keeper_asks_stops_the_questions_on_the_hosts(bed, env):
    host = bed.hosts[0]
    kept_conn(bed).close()
    cancel = threading.Event()
    text = PLAYBOOK.replace("test -e ~/.kept-made", "sleep 321")
    threading.Timer(1.5, cancel.set).start()
    started = time.monotonic()
    report = run([host.name], text, cancel=cancel)
    assert report.cancelled and time.monotonic() - started < 10
    until(lambda: "sleep 321" not in host.processes(), 10, "the question kept running on the host")
