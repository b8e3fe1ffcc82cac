"""`remoteenv gpus` on real hosts with the stand-in nvidia-smi: GPUs with processes of several users, a host
without GPUs, a host that is down, a failing nvidia-smi, --free, and --watch over connections that stay open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import REPO, remoteenv

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(make_testbed):
    bed = make_testbed(4, gpus=[2, 0, 1, 0], down={"h04": "nosshd"})
    h01, _h02, h03, _h04 = bed.hosts
    # Real processes to own the GPU memory: one of h01's user, one of h03's (another user; hosts share
    # the machine's process table, as users of one box do).
    mine = int(h01.run("nohup sleep 600 >/dev/null 2>&1 & echo $!").stdout)
    theirs = int(h03.run("nohup sleep 601 >/dev/null 2>&1 & echo $!").stdout)
    h01.run(f"printf 'gpu 0 30000 87 71 312.5\\nproc 0 {mine} 20000\\nproc 0 {theirs} 9000\\n' > ~/.fake-gpu-state")
    h03.run("printf 'gpu 0 40000 0 35 70\\n' > ~/.fake-gpu-state")  # memory held, no process: not free
    yield bed, mine, theirs
    for host, pid in ((h01, mine), (h03, theirs)):
        host.run(f"kill {pid}", check=False)


def test_every_gpu_with_its_processes_and_hosts_without_or_down(fleet):
    bed, mine, theirs = fleet
    h01, _h02, h03, _h04 = bed.hosts
    result = remoteenv("gpus", "h01", "h02", "h03", "h04", "--json", env=bed.client.env())
    assert result.code == 1, result.err  # h04 is down: scripts can tell
    hosts = {h["host"]: h for h in result.json()}
    assert set(hosts) == {"h01", "h02", "h03", "h04"}

    gpu0, gpu1 = hosts["h01"]["gpus"]
    assert gpu0["memory_used_mib"] == 30000 and gpu0["memory_mib"] == 81920 and gpu0["utilization_pct"] == 87
    assert gpu0["temperature_c"] == 71 and gpu0["power_w"] == 312.5 and not gpu0["free"]
    procs = {p["pid"]: p for p in gpu0["processes"]}
    assert procs[mine]["user"] == h01.user and procs[mine]["memory_mib"] == 20000
    assert procs[theirs]["user"] == h03.user and procs[theirs]["command"] == "sleep 601"
    assert gpu1["free"] and gpu1["processes"] == [] and gpu1["memory_free_mib"] == 81920

    assert hosts["h02"]["nvidia_smi"] is False and hosts["h02"]["gpus"] == [] and hosts["h02"]["error"] is None
    assert hosts["h03"]["gpus"][0]["free"] is False  # 40 GB held with no process
    assert hosts["h04"]["error"] and "h04" in hosts["h04"]["error"]

    table = remoteenv("gpus", "h01", "h02", "h03", "h04", env={**bed.client.env(), "COLUMNS": "160"})
    assert "no GPU (no nvidia-smi)" in table.out and "free" in table.out
    assert f"{h03.user} {theirs}" in table.out and "29.3/80 GiB" in table.out
    assert "h04" in table.out


def test_free_lists_only_free_gpus(fleet):
    bed, _, _ = fleet
    result = remoteenv("gpus", "h01", "h02", "h03", "--free", "--json", env=bed.client.env())
    assert result.code == 0, result.err
    free = {h["host"]: [g["index"] for g in h["gpus"]] for h in result.json()}
    assert free == {"h01": [1], "h02": [], "h03": []}
    table = remoteenv("gpus", "h03", "--free", env=bed.client.env())
    assert "no free GPU" in table.out


@pytest.mark.parametrize("mode, expected", [("exit", "exit 9"), ("garbage", "cannot read")])
def test_a_failing_nvidia_smi_gives_that_host_an_error_line(fleet, mode, expected):
    bed, _, _ = fleet
    h03 = bed.hosts[2]
    h03.run(f"echo {mode} > ~/.fake-gpu-broken")
    result = remoteenv("gpus", "h01", "h03", "--json", env=bed.client.env())
    hosts = {h["host"]: h for h in result.json()}
    assert result.code == 1 and expected in hosts["h03"]["error"], result.out + result.err
    assert len(hosts["h01"]["gpus"]) == 2 and hosts["h01"]["error"] is None  # the others are shown
    probe = remoteenv("probe", "h03", "--json", env=bed.client.env())
    assert probe.code == 0 and expected in probe.json()["gpu_error"]


def test_watch_refreshes_over_the_same_connection_and_shows_a_new_process(fleet):
    bed, _mine, _ = fleet
    h01 = bed.hosts[0]
    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "gpus", "h01", "--watch", "-n", "1", "--json"],
                            env={**bed.client.env(), "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert [len(g["processes"]) for g in first["gpus"]] == [2, 0]
        sessions = _sshd_sessions(h01.user)
        late = int(h01.run("nohup sleep 602 >/dev/null 2>&1 & echo $!").stdout)
        h01.run(f"echo 'proc 1 {late} 5000' >> ~/.fake-gpu-state")
        seen = [first]
        deadline = time.monotonic() + 30
        while len(seen) < 3 or not seen[-1]["gpus"][1]["processes"]:
            assert time.monotonic() < deadline, seen
            seen.append(json.loads(proc.stdout.readline()))
        assert [p["pid"] for p in seen[-1]["gpus"][1]["processes"]] == [late]
        assert _sshd_sessions(h01.user) == sessions  # no new connection for a refresh
        h01.run(f"kill {late}", check=False)
    finally:
        proc.send_signal(2)
        try:
            proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0


def _sshd_sessions(user: str) -> set[int]:
    """The sshd processes serving `user`'s sessions (one per connection)."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if cmd.startswith(f"sshd: {user}"):
                found.add(int(pid))
    return found
