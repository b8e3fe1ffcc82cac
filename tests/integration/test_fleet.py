"""Many hosts at once: a 50-host apply, and a fleet where some hosts are down, hang or fail."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
from cli_runner import remoteenv
from testbed import needs_netns

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def write_inventory(path: Path, hosts, host_vars: dict[str, dict[str, str]] | None = None) -> Path:
    lines = ["hosts:"]
    for h in hosts:
        own = (host_vars or {}).get(h.name)
        lines.append(f"  {h.name}: " + (json.dumps({"vars": own}) if own else "{}"))
    path.write_text("\n".join(lines) + "\n")
    return path


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_fifty_hosts_apply_hello(make_testbed, tmp_path):
    bed = make_testbed(50)
    env = bed.client.env()
    inventory = write_inventory(tmp_path / "hosts.yaml", bed.hosts)

    # A plan on the whole fleet says what would change and changes nothing anywhere.
    plan = remoteenv("-i", str(inventory), "plan", "examples/hello", "--json", env=env)
    assert plan.code == 0, plan.err
    planned = {h["host"]: h["status"] for h in plan.json()["hosts"]}
    assert planned == {h.name: "change" for h in bed.hosts}
    untouched = [h.name for h in bed.hosts if h.run("test -e ~/.remoteenv-hello", check=False).returncode == 1]
    assert len(untouched) == 50

    started = time.monotonic()
    first = remoteenv("-i", str(inventory), "apply", "examples/hello", "--json", env=env)
    first_took = time.monotonic() - started
    assert first.code == 0, first.err
    stream = events(first.out)
    ends = {e["host"]: e for e in stream if e["event"] == "host_end"}
    assert sorted(ends) == sorted(h.name for h in bed.hosts)
    assert {e["status"] for e in ends.values()} == {"changed"}
    assert stream[0]["event"] == "run_start" and stream[-1]["event"] == "run_end"
    assert stream[-1]["counts"] == {"changed": 50}
    for h in (bed.hosts[0], bed.hosts[24], bed.hosts[49]):
        assert h.run("cat ~/.remoteenv-hello/greeting").stdout.startswith("hello from ")

    started = time.monotonic()
    again = remoteenv("-i", str(inventory), "apply", "examples/hello", env=env)
    noop_took = time.monotonic() - started
    assert again.code == 0, again.err
    assert "50 ok" in again.out
    report = json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())
    assert report["counts"] == {"ok": 50} and len(report["hosts"]) == 50
    print(f"\n50 hosts: first apply {first_took:.2f}s, no-op apply {noop_took:.2f}s")


FLEET_PLAYBOOK = """
    name: fleet-check
    vars: {fail: "no", hang: "no"}
    steps:
      - name: count this apply
        shell: echo run >> ~/.rt-fleet-count
      - name: maybe hang
        timeout: 2
        shell: if [ {{ hang | quote }} = yes ]; then sleep 60; fi
      - name: maybe fail
        shell: if [ {{ fail | quote }} = yes ]; then echo "boom on {{ inventory_hostname }}"; exit 1; fi
"""


def count(host) -> int:
    result = host.run("cat ~/.rt-fleet-count", check=False)
    return len(result.stdout.splitlines()) if result.returncode == 0 else 0


def test_fleet_with_down_hanging_and_failing_hosts(make_testbed, tmp_path):
    bed = make_testbed(10, down={"h08": "nosshd", "h09": "cut", "h10": "nosshd"})
    env = {**bed.client.env(), "REMOTEENV_CONNECT_TIMEOUT": "3"}
    playbook = tmp_path / "fleet.yaml"
    playbook.write_text(textwrap.dedent(FLEET_PLAYBOOK).lstrip())
    inventory = write_inventory(tmp_path / "hosts.yaml", bed.hosts,
                                {"h06": {"hang": "yes"}, "h07": {"fail": "yes"}})

    started = time.monotonic()
    result = remoteenv("-i", str(inventory), "apply", str(playbook), env=env)
    took = time.monotonic() - started
    assert result.code == 1, result.out + result.err
    # Nobody waited for anybody: the slowest trouble is the 3s connect timeout or the 2s step timeout.
    assert took < 30, took
    report = json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())
    durations = {h["host"]: h["duration"] for h in report["hosts"]}
    assert durations["h06"] >= 2
    assert all(durations[f"h0{i}"] < durations["h06"] for i in range(1, 6)), durations
    status = {h["host"]: h["status"] for h in report["hosts"]}
    assert status == {**{f"h0{i}": "changed" for i in range(1, 6)}, "h06": "failed", "h07": "failed",
                      "h08": "unreachable", "h09": "unreachable", "h10": "unreachable"}
    by_host = {h["host"]: h for h in report["hosts"]}
    assert "timed out after 2s" in by_host["h06"]["message"]
    assert by_host["h07"]["steps"][2]["output_tail"] == ["boom on h07"]
    assert [s["status"] for s in by_host["h07"]["steps"]] == ["changed", "changed", "failed"]
    assert "connection refused" in by_host["h08"]["message"]
    # The summary names each failure.
    for name in ("h06", "h07", "h08", "h09", "h10"):
        assert name in result.out
    assert "timed out after 2s" in result.out and "boom on h07" in result.out
    assert "--retry-failed" in result.out
    assert [count(h) for h in bed.hosts[:7]] == [1] * 7

    # Fixed: h06 and h07 no longer hang or fail. Only the failed hosts run again.
    write_inventory(inventory, bed.hosts)
    retry = remoteenv("-i", str(inventory), "apply", str(playbook), "--retry-failed", "--json", env=env)
    stream = events(retry.out)
    started_hosts = sorted(e["host"] for e in stream if e["event"] == "host_start")
    assert started_hosts == ["h06", "h07", "h08", "h09", "h10"]
    ends = {e["host"]: e["status"] for e in stream if e["event"] == "host_end"}
    assert ends == {"h06": "changed", "h07": "changed", "h08": "unreachable", "h09": "unreachable",
                    "h10": "unreachable"}
    assert retry.code == 3  # what still fails is only unreachable hosts
    assert [count(h) for h in bed.hosts[:7]] == [1, 1, 1, 1, 1, 2, 2]

    # A plan does not hide the last apply from --retry-failed.
    assert remoteenv("-i", str(inventory), "plan", str(playbook), "h01", env=env).code == 0
    again = remoteenv("-i", str(inventory), "apply", str(playbook), "--retry-failed", "--json", env=env)
    assert sorted(e["host"] for e in events(again.out) if e["event"] == "host_start") == ["h08", "h09", "h10"]


LONG_STEP_PLAYBOOK = """
    name: long-step
    steps:
      - name: work a while
        timeout: 6
        shell: sleep 4 && echo done >> ~/.rt-long-step
"""


def test_connection_lost_mid_step_stays_that_hosts_problem(make_testbed, tmp_path):
    bed = make_testbed(4)
    needs_netns(bed)  # in local mode a cut stops sshd's listener, not the session already open
    env = {**bed.client.env(), "REMOTEENV_CONNECT_TIMEOUT": "3"}
    playbook = tmp_path / "long.yaml"
    playbook.write_text(textwrap.dedent(LONG_STEP_PLAYBOOK).lstrip())
    inventory = write_inventory(tmp_path / "hosts.yaml", bed.hosts)
    import subprocess
    import sys

    from cli_runner import REPO

    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "-i", str(inventory), "apply", str(playbook),
                             "--json"], env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lost = bed.host("h02")
    try:
        # Cut h02 once its step is running (the others' steps run too).
        deadline = time.monotonic() + 20
        while lost.run("pgrep -u $(id -u) -f '^sleep 4'", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the step never started on h02"
            time.sleep(0.1)
        lost.cut_link()
        out, err = proc.communicate(timeout=90)
    finally:
        lost.restore_link()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    ends = {e["host"]: e for e in events(out) if e["event"] == "host_end"}
    assert {name: e["status"] for name, e in ends.items()} == {
        "h01": "changed", "h02": "failed", "h03": "changed", "h04": "changed"}
    # The lost host ends at its step's deadline; nobody else waited for it.
    assert "timed out" in ends["h02"]["message"] or "connection lost" in ends["h02"]["message"]
    assert all(ends[name]["elapsed"] < ends["h02"]["elapsed"] for name in ("h01", "h03", "h04"))
    for name in ("h01", "h03", "h04"):
        assert bed.host(name).run("cat ~/.rt-long-step").stdout == "done\n"
