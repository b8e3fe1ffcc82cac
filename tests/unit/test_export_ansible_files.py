"""Exporting a playbook and its hosts to Ansible files (no hosts needed; Ansible parses the output)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_tools import tool as ansible_tool

from remoteenv.cli import main as cli_main
from remoteenv.errors import ConfigError
from remoteenv.export import export_ansible
from remoteenv.inventory import SSHConfigFile, load_inventory, resolve
from remoteenv.playbook import load_playbook, load_text
from remoteenv.steps import STEP_TYPES, Step, register

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "playbooks" / "examples" / "hello.yaml"

INVENTORY = """\
defaults:
  vars: {greeting: hi-from-defaults, plain: 1}
groups:
  gpu:
    hosts: [box]
    vars: {cuda: "12.4"}
hosts:
  box:
    hostname: 198.18.0.7
    user: alice
    port: 2222
    identity_file: [~/.ssh/box_key, ~/.ssh/spare key]
    proxy_jump: bastion
    vars: {greeting: "{{ not rendered }}"}
  bastion:
    hostname: 198.18.0.1
    user: jump
    port: 2200
  other:
    hostname: 198.18.0.9
    proxy_jump: outer-jump
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("REMOTEENV_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("REMOTEENV_INVENTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def _ansible(tool: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(cwd / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run([ansible_tool(tool), *args], capture_output=True, text=True, cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _load_all(tmp_path: Path):
    inv = load_inventory(_write(tmp_path / "hosts.yaml", INVENTORY))
    config = SSHConfigFile()
    return inv, [resolve(inv, n, config) for n in inv.names()]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_hello_becomes_a_play_and_an_inventory_ansible_accepts(tmp_path: Path, home: Path) -> None:
    inv, hosts = _load_all(tmp_path)
    pb = load_playbook(HELLO)
    out = export_ansible(pb, hosts, tmp_path / "out", inv)
    assert out.command == ["ansible-playbook", "-i", str(tmp_path / "out" / "inventory.yml"),
                           str(tmp_path / "out" / "playbook.yml")]
    assert oct(out.playbook.stat().st_mode & 0o777) == "0o600"

    [play] = yaml.safe_load(out.playbook.read_text())
    assert (play["name"], play["hosts"], play["gather_facts"]) == ("hello", "all", False)
    expected = [t for i, step in enumerate(pb.build(None)) for t in step.to_ansible(i)]
    assert play["tasks"] == expected and out.tasks == len(expected)
    # every host sets greeting, so the playbook's default moves into the hosts
    assert "vars" not in play

    _ansible("ansible-playbook", "--syntax-check", "-i", str(out.inventory), str(out.playbook), cwd=tmp_path)
    listed = json.loads(_ansible("ansible-inventory", "-i", str(out.inventory), "--list", cwd=tmp_path))
    box = listed["_meta"]["hostvars"]["box"]
    key, spare = str(home / ".ssh/box_key"), str(home / ".ssh/spare key")
    assert box == {
        "ansible_host": "198.18.0.7", "ansible_port": 2222, "ansible_user": "alice",
        "ansible_ssh_private_key_file": key,
        "ansible_ssh_common_args": f"-J jump@198.18.0.1:2200 -i '{spare}'",
        "ansible_python_interpreter": "auto_silent",
        "greeting": {"__ansible_unsafe": "{{ not rendered }}"}, "plain": 1, "cuda": "12.4",
    }
    assert "!unsafe '{{ not rendered }}'" in out.inventory.read_text()
    assert listed["_meta"]["hostvars"]["other"]["ansible_ssh_common_args"] == "-J outer-jump"
    assert listed["_meta"]["hostvars"]["bastion"]["greeting"] == "hi-from-defaults"
    assert listed["gpu"]["hosts"] == ["box"]


def test_exported_inventory_reads_back_as_the_same_hosts(tmp_path: Path) -> None:
    inv, hosts = _load_all(tmp_path)
    out = export_ansible(load_playbook(HELLO), hosts, tmp_path / "out", inv)
    again = load_inventory(out.inventory)
    assert again.format == "ansible-yaml"
    config = SSHConfigFile()
    for before in hosts:
        after = resolve(again, before.name, config)
        for field_name in ("hostname", "user", "port", "identity_files", "groups"):
            assert getattr(after, field_name) == getattr(before, field_name), (before.name, field_name)
        assert after.vars == {**before.vars, "ansible_python_interpreter": "auto_silent"}
    assert resolve(again, "box", config).proxy_jump == "jump@198.18.0.1:2200"


def test_variables_keep_remoteenv_precedence(tmp_path: Path) -> None:
    inv, hosts = _load_all(tmp_path)
    pb = load_text("vars: {greeting: pb-default, only_here: pb}\nsteps:\n  - shell: echo {{ greeting }}\n",
                   path=tmp_path / "pb.yaml")
    out = export_ansible(pb, hosts, tmp_path / "out", inv, {"plain": "from --var"})
    [play] = yaml.safe_load(out.playbook.read_text())
    assert play["vars"] == {"only_here": "pb", "plain": "from --var"}
    listed = json.loads(_ansible("ansible-inventory", "-i", str(out.inventory), "--list", cwd=tmp_path))
    hostvars = listed["_meta"]["hostvars"]
    assert hostvars["box"]["greeting"] == {"__ansible_unsafe": "{{ not rendered }}"}  # the host's own
    assert hostvars["other"]["greeting"] == "hi-from-defaults"  # inventory defaults over playbook
    assert all("plain" not in v for v in hostvars.values())  # --var wins: it lives in the play


def test_uploaded_local_files_travel_with_the_export(tmp_path: Path) -> None:
    _write(tmp_path / "site" / "files" / "motd.txt", "hello\n")
    pb_path = _write(tmp_path / "site" / "site.yaml",
                     "steps:\n  - upload: {src: files/motd.txt, dest: ~/motd}\n")
    inv, hosts = _load_all(tmp_path)
    out = export_ansible(load_playbook(pb_path), hosts, tmp_path / "out", inv)
    assert [f.name for f in out.files] == ["01-motd.txt"]
    assert (tmp_path / "out" / "files" / "01-motd.txt").read_text() == "hello\n"
    [play] = yaml.safe_load(out.playbook.read_text())
    assert play["tasks"][-1]["ansible.builtin.copy"]["src"] == "{{ playbook_dir }}/files/01-motd.txt"

    (tmp_path / "site" / "files" / "motd.txt").unlink()
    with pytest.raises(ConfigError, match=r"site\.yaml:2: cannot read .*motd\.txt"):
        export_ansible(load_playbook(pb_path), hosts, tmp_path / "out2", inv)
    assert not (tmp_path / "out2").exists()


class _NoAnsible(Step):
    PARAMS = ()

    def check(self, facts: Any) -> None:
        return None


@pytest.fixture
def step_without_ansible():
    register("no_ansible_here")(_NoAnsible)
    yield
    del STEP_TYPES["no_ansible_here"]


@pytest.mark.usefixtures("step_without_ansible")
def test_a_step_without_an_ansible_equivalent_is_named(tmp_path: Path, capsys) -> None:
    pb_path = _write(tmp_path / "pb.yaml", "steps:\n  - shell: 'true'\n  - name: special\n"
                                           "    no_ansible_here: {}\n")
    inv, hosts = _load_all(tmp_path)
    with pytest.raises(ConfigError) as err:
        export_ansible(load_playbook(pb_path), hosts, tmp_path / "out", inv)
    assert err.value.message == f"{pb_path}:4: step 2 'special' (no_ansible_here) has no Ansible equivalent"
    assert not (tmp_path / "out").exists()

    with pytest.raises(SystemExit) as done:
        cli_main(["-i", str(tmp_path / "hosts.yaml"), "export", "ansible", str(pb_path), "box"])
    assert done.value.code == 2
    err_text = capsys.readouterr().err
    assert "step 2 'special' (no_ansible_here) has no Ansible equivalent" in " ".join(err_text.split())
    assert "Traceback" not in err_text


def test_cli_prints_where_the_files_went_and_how_to_run_them(tmp_path: Path, capsys) -> None:
    _write(tmp_path / "hosts.yaml", INVENTORY)
    with pytest.raises(SystemExit) as done:
        cli_main(["-i", "hosts.yaml", "export", "ansible", str(HELLO), "--group", "gpu", "-o", "site"])
    out = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0
    assert "Wrote site/playbook.yml (4 tasks) and site/inventory.yml (1 host)." in out
    assert "ansible-playbook -i site/inventory.yml site/playbook.yml" in out
    inventory = yaml.safe_load((tmp_path / "site" / "inventory.yml").read_text().replace("!unsafe", ""))
    assert list(inventory["all"]["hosts"]) == ["box"]

    with pytest.raises(SystemExit) as done:
        cli_main(["-i", "hosts.yaml", "export", "ansible", str(HELLO), "other", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert done.value.code == 0
    assert data["hosts"] == ["other"] and data["directory"] == "hello-ansible"
    assert data["command"] == ["ansible-playbook", "-i", "hello-ansible/inventory.yml",
                               "hello-ansible/playbook.yml"]
