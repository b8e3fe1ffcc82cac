"""A long step's output streams: to the host's log while it runs, and to `--json` as step_output events."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from cli_runner import REPO

pytestmark = pytest.mark.integration

# 10,000 numbered lines over about 15 s, then lines of three-byte characters long enough to be cut
# across the 64 KiB reads of the channel.
NOISY = r"""
steps:
  - name: noisy
    shell:
      command: |
        i=0
        while [ $i -lt 10000 ]; do
          echo "line $i"
          i=$((i + 1))
          [ $((i % 100)) -eq 0 ] && sleep 0.15
        done
        wide=$(printf '中%.0s' $(seq 1 30000))
        for n in 1 2 3; do echo "$wide"; done
        printf 'no newline at the end'
"""


def test_ten_thousand_lines_reach_the_log_during_the_run_and_json_events(testbed, tmp_path):
    host = testbed.host("h03")
    playbook = tmp_path / "noisy.yaml"
    playbook.write_text(textwrap.dedent(NOISY).lstrip())
    env = {**testbed.client.env(), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "apply", str(playbook), host.name, "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events: list[dict] = []
    reader = threading.Thread(target=lambda: events.extend(json.loads(ln) for ln in proc.stdout), daemon=True)
    reader.start()
    runs = testbed.client.home / ".local/state/remoteenv/runs"
    partial_counts: list[int] = []  # line counts the log had while the step was still printing
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        logs = list(runs.glob(f"*/{host.name}.log"))
        newest = max(logs, key=lambda p: p.stat().st_mtime) if logs else None
        if newest is not None:
            lines = newest.read_text(errors="replace").splitlines()
            count = sum(1 for ln in lines if ln.startswith("line "))
            if 0 < count < 10000:
                partial_counts.append(count)
                assert newest.stat().st_mode & 0o077 == 0  # 0600 from the start
        time.sleep(0.3)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    reader.join(timeout=10)
    # The log grew while the step ran: it was read several times holding some lines, not yet all.
    assert len(set(partial_counts)) >= 3, partial_counts

    output = [e for e in events if e["event"] == "step_output"]
    texts = [e["message"] for e in output]
    assert texts[:10000] == [f"line {i}" for i in range(10000)]  # --json: every line, in order
    assert texts[-1] == "no newline at the end"
    end = next(e for e in events if e["event"] == "run_end")
    log = (runs / end["run_id"] / f"{host.name}.log").read_text()
    wide = "中" * 30000
    assert log.count(wide + "\n") == 3 and "\ufffd" not in log  # characters split across reads stay whole
    assert "== step 1 noisy" in log and log.rstrip().endswith(f"# {host.name}: changed")
