"""`remoteenv conda` with the venv distribution on real hosts: the host's own python3, no stand-in."""

from __future__ import annotations

import json

import pytest
from cli_runner import remoteenv

pytestmark = pytest.mark.integration


def last_report(bed) -> dict:
    return json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())


def test_venv_install_is_idempotent_and_settings_follow_the_mirror(make_testbed):
    bed = make_testbed(2)
    env = bed.client.env()
    host = bed.hosts[0]

    plan = remoteenv("conda", "install", host.name, "--dist", "venv", "--plan", env=env)
    assert plan.code == 0 and "install a venv into ~/.remoteenv/venv" in plan.out, plan.out + plan.err
    assert host.run("test -e ~/.remoteenv/venv", check=False).returncode != 0  # a plan changes nothing

    first = remoteenv("conda", "install", host.name, "--dist", "venv", env=env)
    assert first.code == 0, first.out + first.err
    assert host.run("~/.remoteenv/venv/bin/python -m pip --version").returncode == 0
    stamp = json.loads(host.run("cat ~/.remoteenv/venv/.remoteenv/install.json").stdout)
    assert stamp["dist"] == "venv"
    assert last_report(bed)["hosts"][0]["steps"][0]["data"] == {"prefix": "~/.remoteenv/venv", "dist": "venv"}

    again = remoteenv("conda", "install", host.name, "--dist", "venv", env=env)
    assert again.code == 0 and last_report(bed)["hosts"][0]["status"] == "ok"

    # A mirror is a settings change: planned, then written to the venv's pip.conf.
    plan = remoteenv("conda", "install", host.name, "--dist", "venv", "--mirror", "tuna", "--plan", env=env)
    assert "update pip.conf in ~/.remoteenv/venv" in plan.out, plan.out
    assert remoteenv("conda", "install", host.name, "--dist", "venv", "--mirror", "tuna", env=env).code == 0
    conf = host.run("~/.remoteenv/venv/bin/python -m pip config list").stdout
    assert "index-url='https://pypi.tuna.tsinghua.edu.cn/simple'" in conf  # pip itself reads it

    # Settings from the inventory's host vars, when the command line does not say.
    inventory = bed.dir / "hosts.yaml"
    inventory.write_text(f"hosts:\n  {host.name}:\n    vars: {{conda_dist: venv, conda_mirror: ustc}}\n")
    plan = remoteenv("-i", str(inventory), "conda", "install", host.name, "--plan", env=env)
    assert "update pip.conf" in plan.out, plan.out + plan.err


def test_uninstall_moves_aside_and_clean_reports(make_testbed):
    bed = make_testbed(1)
    env = bed.client.env()
    host = bed.hosts[0]
    assert remoteenv("conda", "install", host.name, "--dist", "venv", env=env).code == 0
    cleaned = remoteenv("conda", "clean", host.name, "--dist", "venv", "--json", env=env)
    assert cleaned.code == 0, cleaned.err
    assert any(e.get("message", "").startswith("freed ") for e in map(json.loads, cleaned.out.splitlines())
               if e["event"] == "step_output")
    refused = remoteenv("conda", "uninstall", host.name, "--dist", "venv", env=env, input="")
    assert refused.code == 2 and "--yes" in refused.err
    told = remoteenv("conda", "clean", host.name, "--dist", "venv", env=env)
    assert f"{host.name}: freed " in told.out, told.out  # the result is on the screen, not only in the log
    gone = remoteenv("conda", "uninstall", host.name, "--dist", "venv", "--yes", env=env)
    assert gone.code == 0, gone.out + gone.err
    assert "moved " in gone.out and "venv.old-" in gone.out, gone.out
    kept = host.run("ls -d ~/.remoteenv/venv.old-*").stdout.split()
    assert len(kept) == 1 and host.run(f"test -x {kept[0]}/bin/python").returncode == 0
    assert host.run("test -e ~/.remoteenv/venv", check=False).returncode != 0


def test_a_prefix_remoteenv_did_not_make_is_refused_then_moved_aside_with_force(make_testbed):
    bed = make_testbed(1)
    env = bed.client.env()
    host = bed.hosts[0]
    host.run("mkdir -p ~/.remoteenv/venv && echo mine > ~/.remoteenv/venv/notes")
    refused = remoteenv("conda", "install", host.name, "--dist", "venv", env=env)
    assert refused.code == 1
    assert "is not a venv install made by remoteenv" in last_report(bed)["hosts"][0]["message"]
    assert host.run("cat ~/.remoteenv/venv/notes").stdout == "mine\n"
    forced = remoteenv("conda", "install", host.name, "--dist", "venv", "--force", env=env)
    assert forced.code == 0, forced.out
    assert host.run("cat ~/.remoteenv/venv.old-*/notes").stdout == "mine\n"
    assert host.run("test -x ~/.remoteenv/venv/bin/python").returncode == 0
