"""`remoteenv plan` / `apply` against real sshd test hosts: idempotency, guards, timeouts, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from cli_runner import REPO, remoteenv

from remoteenv.inventory import load_inventory, resolve_many
from remoteenv.playbook import load_playbook
from remoteenv.runner import run_playbook

pytestmark = pytest.mark.integration


def write_playbook(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def last_report(bed) -> dict:
    return json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())


def exists(host, path: str) -> bool:
    return host.run(f"test -e {path}", check=False).returncode == 0


def test_workstation_plan_changes_nothing_then_apply_is_idempotent(make_testbed, tmp_path):
    import yaml

    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    spec = tmp_path / "requirements.txt"
    spec.write_text("jupyterlab\n")

    plan = remoteenv("plan", "workstation", host.name, "--var", "conda_dist=venv", "--var", f"env_file={spec}",
                     env=env)
    assert plan.code == 0, plan.err
    assert "5 step(s) would change" in plan.out and "create ~/.remoteenv/README" in plan.out, plan.out
    assert "install a venv into ~/.remoteenv/venv" in plan.out and "start jupyter lab" in plan.out
    assert not exists(host, "~/work") and not exists(host, "~/.remoteenv")

    # The steps that need no package index, as the shipped playbook has them (`up` covers the rest).
    shipped = yaml.safe_load(Path(REPO / "playbooks/workstation.yaml").read_text())
    shipped["steps"] = shipped["steps"][:2]
    (bed.dir / "ws.yaml").write_text(yaml.safe_dump(shipped))
    ws = str(bed.dir / "ws.yaml")
    first = remoteenv("apply", ws, host.name, env=env)
    assert first.code == 0, first.err + first.out
    readme = host.run("cat ~/.remoteenv/README; stat -c %a ~/.remoteenv/README").stdout
    assert f'as "{host.name}"' in readme and readme.rstrip().endswith("644")
    assert exists(host, "~/work")
    assert last_report(bed)["hosts"][0]["status"] == "changed"

    again = remoteenv("plan", ws, host.name, "--json", env=env)
    assert again.code == 0, again.err
    report = again.json()
    assert report["hosts"][0]["status"] == "ok"
    assert [s["status"] for s in report["hosts"][0]["steps"]] == ["ok", "ok"]
    second = remoteenv("apply", ws, host.name, env=env)
    assert second.code == 0
    assert last_report(bed)["hosts"][0]["counts"] == {"ok": 2}

    # A file someone changed is put back; a mode someone changed too.
    host.run("echo edited > ~/.remoteenv/README")
    drift = remoteenv("plan", ws, host.name, env=env)
    assert "update ~/.remoteenv/README" in drift.out and "content differs" in drift.out
    assert remoteenv("apply", ws, host.name, env=env).code == 0
    host.run("chmod 600 ~/.remoteenv/README")
    drift = remoteenv("plan", ws, host.name, env=env)
    assert "mode is 0600, want 0644" in drift.out
    assert remoteenv("apply", ws, host.name, env=env).code == 0
    assert host.run("stat -c %a ~/.remoteenv/README").stdout.strip() == "644"
    assert f'as "{host.name}"' in host.run("cat ~/.remoteenv/README").stdout


def test_every_step_type_applied_twice_plans_nothing(testbed, tmp_path):
    host, env = testbed.host("h02"), testbed.client.env()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "conf.tpl").write_text("user={{ who }}\n")
    path = write_playbook(tmp_path, """
        name: all-types
        vars: {who: ada, dir: .rt-all-types}
        steps:
          - shell:
              command: mkdir -p ~/{{ dir | quote }}/sub
              creates: ~/{{ dir }}/sub
          - shell:
              command: echo made > made
              chdir: ~/{{ dir }}
              unless: test -f made
          - shell:
              command: rm gone
              chdir: ~/{{ dir }}
              removes: gone
          - shell:
              command: echo yes > ok
              chdir: ~/{{ dir }}
              only_if: test ! -f ok
          - upload: {src: files/conf.tpl, dest: "~/{{ dir }}/sub/conf", template: true, mode: "0600"}
          - upload: {content: "plain {{ literal }}\\n", dest: "{{ dir }}/literal"}
          - facts: {}
        """)
    try:
        host.run("mkdir -p ~/.rt-all-types && touch ~/.rt-all-types/gone")
        first = remoteenv("apply", str(path), "h02", env=env)
        assert first.code == 0, first.out + first.err
        assert host.run("cat ~/.rt-all-types/sub/conf; stat -c %a ~/.rt-all-types/sub/conf").stdout == \
            "user=ada\n600\n"
        assert host.run("cat ~/.rt-all-types/literal").stdout == "plain {{ literal }}\n"
        assert not exists(host, "~/.rt-all-types/gone")
        again = remoteenv("plan", str(path), "h02", "--json", env=env)
        assert again.code == 0
        steps = again.json()["hosts"][0]["steps"]
        assert [s["status"] for s in steps] == ["ok"] * 7, steps
        second = remoteenv("apply", str(path), "h02", "--json", env=env)
        ends = [json.loads(line) for line in second.out.splitlines() if '"step_end"' in line]
        assert [e["status"] for e in ends] == ["ok"] * 7
    finally:
        host.run("rm -rf ~/.rt-all-types")


def test_guards_are_evaluated_again_at_apply_time(testbed, tmp_path):
    """The second step's plan (from facts gathered before the first ran) is stale; it must not run."""
    host, env = testbed.host("h03"), testbed.client.env()
    path = write_playbook(tmp_path, """
        steps:
          - shell: {command: touch ~/.rt-guard-made, creates: ~/.rt-guard-made}
          - shell: {command: echo ran >> ~/.rt-guard-count, creates: ~/.rt-guard-made}
        """)
    try:
        plan = remoteenv("plan", str(path), "h03", "--json", env=env).json()
        assert [s["status"] for s in plan["hosts"][0]["steps"]] == ["change", "change"]
        result = remoteenv("apply", str(path), "h03", "--json", env=env)
        assert result.code == 0, result.err
        ends = [json.loads(line) for line in result.out.splitlines() if '"step_end"' in line]
        assert [e["status"] for e in ends] == ["changed", "ok"]
        assert ends[1]["message"] == "~/.rt-guard-made exists"
        assert not exists(host, "~/.rt-guard-count")
    finally:
        host.run("rm -f ~/.rt-guard-made ~/.rt-guard-count")


def test_variables_from_command_line_and_library_api(testbed, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(testbed.client.home))
    host = testbed.host("h02")
    path = write_playbook(tmp_path, """
        vars: {word: default}
        steps:
          - shell: printf '%s' {{ word | quote }} > ~/.rt-vars
        """)
    events = []
    inventory = load_inventory(None, search=False)
    report = run_playbook(load_playbook(path), resolve_many(inventory, ["h02"]), inventory,
                          extra_vars={"word": "it's set"}, on_event=events.append)
    try:
        assert report.exit_code() == 0 and report.hosts[0].status == "changed"
        assert host.run("cat ~/.rt-vars").stdout == "it's set"
        kinds = [e.kind for e in events]
        assert kinds == ["run_start", "host_start", "facts", "step_start", "step_end", "host_end", "run_end"]
        assert report.path is not None and report.path.is_file()
        assert all(e.run_id == report.run_id for e in events)
    finally:
        host.run("rm -f ~/.rt-vars")


def test_failing_step_shows_output_and_stops_the_host(testbed, tmp_path):
    host, env = testbed.host("h02"), testbed.client.env()
    path = write_playbook(tmp_path, """
        steps:
          - name: breaks
            shell: echo "something went wrong" >&2; exit 3
          - shell: touch ~/.rt-never
        """)
    result = remoteenv("apply", str(path), "h02", env=env)
    assert result.code == 1
    assert "something went wrong" in result.out
    assert "exited 3" in result.out
    assert not exists(host, "~/.rt-never")
    report = last_report(testbed)
    assert [s["status"] for s in report["hosts"][0]["steps"]] == ["failed", "skipped"]
    logs = testbed.client.home / ".local/state/remoteenv/runs" / report["run_id"]
    assert "something went wrong" in (logs / "h02.log").read_text()


def test_step_timeout_stops_a_hanging_command(testbed, tmp_path):
    env = testbed.client.env()
    path = write_playbook(tmp_path, "steps:\n  - shell: sleep 60\n")
    started = time.monotonic()
    result = remoteenv("apply", str(path), "h03", "--step-timeout", "2", env=env)
    assert time.monotonic() - started < 30
    assert result.code == 1
    assert "timed out after 2s" in result.out
    assert "sleep 60" not in testbed.host("h03").processes()


def test_unreachable_host_exits_3(make_testbed):
    bed = make_testbed(2, down={"h02": "nosshd"})
    result = remoteenv("apply", "examples/hello", "h01", "h02", "--json", env=bed.client.env())
    assert result.code == 3
    ends = {e["host"]: e for e in map(json.loads, result.out.splitlines()) if e["event"] == "host_end"}
    assert ends["h01"]["status"] == "changed"
    assert ends["h02"]["status"] == "unreachable" and "connection refused" in ends["h02"]["message"]


def test_empty_inventory_without_hosts_is_a_usage_error(testbed):
    result = remoteenv("apply", "examples/hello", env=testbed.client.env())
    assert result.code == 2
    assert "inventory is empty" in result.err and "hint:" in result.err


def test_ctrl_c_cancels_cleanly_and_ends_remote_commands(make_testbed, tmp_path):
    bed = make_testbed(2)
    path = write_playbook(tmp_path, """
        steps:
          - shell: touch ~/.rt-before
          - shell: sleep 120
          - shell: touch ~/.rt-after
        """)
    env = {**bed.client.env(), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "apply", str(path), "h01", "h02", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    sleeping: set[str] = set()

    def read() -> None:
        for line in proc.stdout:
            event = json.loads(line)
            lines.append(event)
            if event["event"] == "step_start" and event["step"] == 1:
                sleeping.add(event["host"])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while len(sleeping) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert sleeping == {"h01", "h02"}
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    reader.join(timeout=5)
    assert code == 130, proc.stderr.read()
    end = lines[-1]
    assert end["event"] == "run_end" and end["status"] == "cancelled"
    hosts = {e["host"]: e for e in lines if e["event"] == "host_end"}
    assert {h: e["status"] for h, e in hosts.items()} == {"h01": "cancelled", "h02": "cancelled"}
    for host in bed.hosts:
        assert exists(host, "~/.rt-before") and not exists(host, "~/.rt-after")
        time.sleep(0.5)
        assert "sleep 120" not in host.processes()
    report = last_report(bed)
    assert report["cancelled"] is True
    assert [s["status"] for s in report["hosts"][0]["steps"]] == ["changed", "failed", "skipped"]
    assert os.stat(bed.client.home / ".local/state/remoteenv/runs/last.json").st_mode & 0o077 == 0


def test_shell_env_mapping_rendered_per_host_reaches_command_and_guards(testbed, tmp_path):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  h01: {vars: {gpu: '0'}}\n  h02: {vars: {gpu: '1'}}\n")
    path = write_playbook(tmp_path, """
        steps:
          - shell:
              command: echo "gpu=$CUDA_VISIBLE_DEVICES token=${#TOKEN}" > ~/.rt-env
              unless: test "$(cat ~/.rt-env 2>/dev/null)" = "gpu=$CUDA_VISIBLE_DEVICES token=${#TOKEN}"
              env:
                CUDA_VISIBLE_DEVICES: "{{ gpu }}"
                TOKEN: "s3cret value"
        """)
    env = testbed.client.env()
    assert remoteenv("-i", str(inventory), "apply", str(path), "h01", "h02", env=env).code == 0
    assert testbed.host("h01").run("cat ~/.rt-env").stdout == "gpu=0 token=12\n"
    assert testbed.host("h02").run("cat ~/.rt-env").stdout == "gpu=1 token=12\n"
    # The guard sees the same environment, in the plan (the probe) and at apply time.
    again = remoteenv("-i", str(inventory), "plan", str(path), "h01", "h02", "--json", env=env)
    assert {h["host"]: h["status"] for h in again.json()["hosts"]} == {"h01": "ok", "h02": "ok"}


def test_json_events_into_a_pipe_that_closes_early(testbed, tmp_path):
    path = write_playbook(tmp_path, """
        steps:
          - shell: echo one; echo two; echo three
          - shell: touch ~/.rt-after-pipe
        """)
    env = {**testbed.client.env(), "PYTHONPATH": str(REPO)}
    testbed.host("h02").run("rm -f ~/.rt-after-pipe")
    proc = subprocess.run(f"{sys.executable} -m remoteenv apply {path} h02 --json | head -1", shell=True, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.count("\n") == 1 and '"run_start"' in proc.stdout
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr, proc.stderr
    assert exists(testbed.host("h02"), "~/.rt-after-pipe")  # the run went on to its end
    assert last_report(testbed)["hosts"][0]["status"] == "changed"
