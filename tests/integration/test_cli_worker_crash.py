"""The fleet runner through the CLI: a bug on one host costs that host only, and --forks bounds the pool.

Both run the real `remoteenv apply` on real test hosts. The crash is planted by a small launcher that
patches the library in the CLI's own process, then runs the CLI's entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_runner import REPO, CliResult, remoteenv

pytestmark = pytest.mark.integration

# Raises RuntimeError on one host (argv[1]) at one place (argv[2]), then runs `remoteenv argv[3:]`.
CRASHING_LAUNCHER = """
import sys

import remoteenv.facts
import remoteenv.steps.shell

victim, where = sys.argv[1], sys.argv[2]


def crashing(original):
    def wrapper(conn, *args, **kwargs):
        if conn.host.name == victim:
            raise RuntimeError(f"planted crash in {where}")
        return original(conn, *args, **kwargs)
    return wrapper


if where == "facts":
    remoteenv.facts.gather = crashing(remoteenv.facts.gather)
else:
    original_apply = remoteenv.steps.shell.Shell.apply
    remoteenv.steps.shell.Shell.apply = lambda self, conn, *args, **kwargs: crashing(
        lambda c, *a, **k: original_apply(self, c, *a, **k))(conn, *args, **kwargs)

from remoteenv.cli import main

main(sys.argv[3:])
"""


def write_inventory(path: Path, hosts) -> Path:
    path.write_text("hosts:\n" + "".join(f"  {h.name}: {{}}\n" for h in hosts))
    return path


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def run_crashing(env: dict[str, str], victim: str, where: str, *args: str, tmp_path: Path) -> CliResult:
    launcher = tmp_path / "crashing_remoteenv.py"
    launcher.write_text(textwrap.dedent(CRASHING_LAUNCHER))
    proc = subprocess.run([sys.executable, str(launcher), victim, where, *args],
                          env={**env, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=300)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("where", ["facts", "step"])
def test_a_crash_in_one_hosts_worker_is_that_hosts_failure(make_testbed, tmp_path, where):
    bed = make_testbed(4, prefix=f"crash{where}")
    victim = bed.hosts[1].name
    inventory = write_inventory(tmp_path / "hosts.yaml", bed.hosts)
    env = bed.client.env()

    result = run_crashing(env, victim, where, "-i", str(inventory), "apply", "examples/hello", "--json",
                          tmp_path=tmp_path)
    assert result.code == 1, result.out + result.err
    ends = {e["host"]: e for e in events(result.out) if e["event"] == "host_end"}
    assert sorted(ends) == sorted(h.name for h in bed.hosts)
    assert ends[victim]["status"] == "failed"
    assert ends[victim]["message"].startswith("internal error: RuntimeError: planted crash"), ends[victim]
    assert {name: e["status"] for name, e in ends.items() if name != victim} == {
        h.name: "changed" for h in bed.hosts if h.name != victim}
    run_end = events(result.out)[-1]
    assert run_end["event"] == "run_end" and run_end["exit_code"] == 1
    assert run_end["counts"] == {"changed": 3, "failed": 1}
    # The others really ran; the victim was never changed (the crash came before or instead of its step).
    for host in bed.hosts:
        greeted = host.run("test -s ~/.remoteenv-hello/greeting", check=False).returncode == 0
        assert greeted == (host.name != victim), host.name

    # People see the same in the summary, and --retry-failed picks exactly the victim.
    table = run_crashing(env, victim, where, "-i", str(inventory), "apply", "examples/hello", tmp_path=tmp_path)
    assert table.code == 1
    assert f"{victim} failed: internal error: RuntimeError: planted crash" in " ".join(table.out.split())
    # The retry line names the playbook as it was given, not where it is installed.
    assert "remoteenv apply examples/hello --retry-failed" in " ".join(table.out.split())
    report = json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())
    assert [h["host"] for h in report["hosts"] if h["status"] == "failed"] == [victim]
    retry = remoteenv("-i", str(inventory), "apply", "examples/hello", "--retry-failed", "--json", env=env)
    assert retry.code == 0, retry.out + retry.err
    assert [e["host"] for e in events(retry.out) if e["event"] == "host_start"] == [victim]


SLOW_PLAYBOOK = """
    name: slow
    steps:
      - name: take a while
        shell: sleep 0.6
"""


def test_forks_bounds_how_many_hosts_are_in_progress(make_testbed, tmp_path):
    bed = make_testbed(6, prefix="forks")
    inventory = write_inventory(tmp_path / "hosts.yaml", bed.hosts)
    playbook = tmp_path / "slow.yaml"
    playbook.write_text(textwrap.dedent(SLOW_PLAYBOOK).lstrip())

    def most_at_once(*options: str) -> int:
        result = remoteenv("-i", str(inventory), "apply", str(playbook), "--json", *options, env=bed.client.env())
        assert result.code == 0, result.out + result.err
        stream = events(result.out)
        busy = peak = 0
        # Events reach the stream one at a time, in the order they happened.
        for event in stream:
            if event["event"] == "host_start":
                busy += 1
                peak = max(peak, busy)
            elif event["event"] == "host_end":
                busy -= 1
        assert busy == 0 and sum(e["event"] == "host_end" for e in stream) == 6
        return peak

    assert most_at_once("--forks", "2") == 2
    assert most_at_once("-f", "1") == 1
    # Without the option every host runs at once (default 32): the bound above is --forks at work.
    assert most_at_once() >= 3


def test_forks_must_be_positive(tmp_path):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  a: {}\n")
    result = remoteenv("-i", str(inventory), "apply", "examples/hello", "--forks", "0",
                       env={**os.environ, "HOME": str(tmp_path)})
    assert result.code == 2 and "--forks" in result.err
