"""`remoteenv export ansible`: ansible-playbook runs the export on real hosts, then remoteenv agrees.

Ansible's ssh reads ~/.ssh through the passwd entry, not $HOME, so the test's ssh config and
known_hosts are handed to it with ANSIBLE_SSH_ARGS; host key checking stays on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_tools import ansible_env, tool
from cli_runner import remoteenv
from testbed import needs_netns

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
CHECK_PLAYBOOK = HERE / "export_playbook" / "playbook.yaml"
HELLO = HERE.parent.parent / "playbooks" / "examples" / "hello.yaml"
MARKERS = ".export-check"


def _run_ansible(bed, out_dir: Path, work: Path) -> subprocess.CompletedProcess:
    with ansible_env(bed, work) as env:
        return subprocess.run(
            [tool("ansible-playbook"), "-i", str(out_dir / "inventory.yml"), str(out_dir / "playbook.yml")],
            env=env, cwd=work, capture_output=True, text=True, timeout=600)


def _plan_changes(bed, inventory: Path, playbook: Path, hosts: list[str]) -> dict[str, list[str]]:
    result = remoteenv("-i", str(inventory), "plan", str(playbook), *hosts, "--json", env=bed.client.env())
    assert result.code == 0, result.err
    report = result.json()
    assert sorted(h["host"] for h in report["hosts"]) == sorted(hosts)
    return {h["host"]: [s["description"] for s in h["steps"] if s["status"] != "ok"] for h in report["hosts"]}


def test_exported_playbook_runs_under_ansible_and_leaves_nothing_to_plan(make_testbed, tmp_path):
    bed = make_testbed(3)
    needs_netns(bed)  # hosts that share one user and home confuse Ansible's connection reuse
    names = [h.name for h in bed.hosts]
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        "groups:\n  web: {hosts: [h01, h02]}\n"
        "hosts:\n  h01:\n    vars: {who: h01-own}\n  h02:\n  h03:\n")
    # h02 has a stale file, which the `removes:` step cleans up there and only there
    bed.host("h02").run(f"mkdir -p ~/{MARKERS} && echo old > ~/{MARKERS}/stale")

    out_dir = tmp_path / "export"
    done = remoteenv("-i", str(inventory), "export", "ansible", str(CHECK_PLAYBOOK), *names,
                     "-o", str(out_dir), env=bed.client.env())
    assert done.code == 0, done.err
    assert f"ansible-playbook -i {out_dir}/inventory.yml {out_dir}/playbook.yml" in done.out
    # remoteenv itself sees work to do on every host before Ansible runs
    assert all(_plan_changes(bed, inventory, CHECK_PLAYBOOK, names).values())

    ran = _run_ansible(bed, out_dir, tmp_path)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    assert "failed=0" in ran.stdout and "unreachable=0" in ran.stdout

    for host in bed.hosts:
        files = host.run(f"cd ~/{MARKERS} && ls -A").stdout.split()
        assert {"created", "flagged", "greeting", "settings.env", "literal.txt", "motd.txt"} <= set(files)
        assert "unless-ran" not in files and "only-if-ran" not in files
        assert ("cleaned" in files) == (host.name == "h02") and "stale" not in files
        settings = host.run(f"cat ~/{MARKERS}/settings.env; stat -c %a ~/{MARKERS}/settings.env").stdout
        who = "h01-own" if host.name == "h01" else "remoteenv"
        assert settings == f"WHO={who}\nHOST={host.name}\n600\n"
        assert host.run(f"cat ~/{MARKERS}/greeting").stdout == f"hello from {host.name}\n"
        assert host.run(f"cat ~/{MARKERS}/literal.txt").stdout == "keep {{ this }} as is\n"
        motd = host.run(f"cat ~/{MARKERS}/motd.txt; stat -c %a ~/{MARKERS}/motd.txt").stdout
        assert motd == (HERE / "export_playbook" / "files" / "motd.txt").read_text() + "640\n"

    assert _plan_changes(bed, inventory, CHECK_PLAYBOOK, names) == {n: [] for n in names}

    # a second Ansible run changes nothing either: the guards hold under Ansible too
    again = _run_ansible(bed, out_dir, tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]
    for host in bed.hosts:
        assert host.run(f"cat ~/{MARKERS}/runs.log").stdout == "once\n"


def test_exported_hello_runs_under_ansible(make_testbed, tmp_path):
    bed = make_testbed(2)
    needs_netns(bed)
    names = [h.name for h in bed.hosts]
    out_dir = tmp_path / "hello"
    done = remoteenv("export", "ansible", str(HELLO), *names, "-o", str(out_dir), "--json",
                     env=bed.client.env(), cwd=tmp_path)
    assert done.code == 0, done.err
    assert done.json()["hosts"] == names
    ran = _run_ansible(bed, out_dir, tmp_path)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    for host in bed.hosts:
        greeting = host.run("cat ~/.remoteenv-hello/greeting").stdout
        assert greeting.startswith("hello from ")
    inventory = tmp_path / "hosts.txt"
    inventory.write_text("".join(f"{n}\n" for n in names))
    assert _plan_changes(bed, inventory, HELLO, names) == {n: [] for n in names}
