"""remoteenv reads Ansible inventories as ansible-core does: a corpus compared with the real tools.

For each inventory under tests/data/ansible_inventories/<case>/ (INI and YAML, group_vars/ and host_vars/
folders, kubespray layouts, ranges, children trees, IPv6, ssh arguments, precedence conflicts):

- `ansible-inventory -i INV --list` gives the hosts, each host's groups and each host's variables;
  `--host H` is run for a few hosts too;
- `ansible all -i INV -m raw` is run with an ssh executable that only records the argv Ansible builds for
  each host (nothing connects anywhere), and `ssh -G -F /dev/null ARGV` says where that ssh would connect:
  hostname, user, port, identity files, ProxyJump, ProxyCommand;
- remoteenv loads the same file and resolves every host (with no ssh config of the person's).

Every difference fails the test unless DIFFERENCES lists it; the README states the same list.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ansible_tools import tool
from ssh_g import ssh_g_options

from remoteenv.errors import ConfigError
from remoteenv.inventory import SSHConfigFile, load_inventory, resolve
from remoteenv.inventory.ansible_connection import CONNECTION_VARS
from remoteenv.inventory.sshargs import expand_proxy_command

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "ansible_inventories"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())

# Where remoteenv answers differently from Ansible, on purpose: (case, host, aspect) -> why.
# README.md ("Ansible inventories", "Differences from Ansible") states each; keep this small.
DIFFERENCES = {
    ("yaml_jinja_values", "j2", "connection"):
        "a connection variable that is a Jinja template (ansible_user: '{{ base_user }}') is refused for "
        "that host: remoteenv does not evaluate Jinja",
}
# The phrase README.md must hold for each documented difference.
README_PHRASES = {("yaml_jinja_values", "j2", "connection"): "Jinja template"}
# A few hosts also asked for one by one (`ansible-inventory --host`): about 1 s each.
HOST_CHECKS = {"kubespray_ini": ["node2", "bastion"], "yaml_spellings": ["h1"], "ini_group_vars_dir": ["web1"]}
# Groups every Ansible inventory has; remoteenv lists neither among a host's groups.
IMPLICIT = {"all", "ungrouped"}

# The argv ansible-core's ssh connection plugin builds for each host from its variables (run in a
# separate ansible-core process: about 10 ms a host, where `ansible` itself takes over a second a run).
_ARGV_BUILDER = """
import json, sys
from ansible.plugins.loader import connection_loader
from ansible.playbook.play_context import PlayContext
out = {}
for key, (name, hostvars) in json.load(sys.stdin).items():
    if str(hostvars.get("ansible_connection", "ssh")) not in ("ssh", "smart"):
        continue
    conn = connection_loader.get("ssh", PlayContext(), None)
    conn.set_options(var_options={**hostvars, "inventory_hostname": name})
    argv = [w.decode() for w in conn._build_command(conn.get_option("ssh_executable"), "ssh")]
    out[key] = argv[1:] + [conn.get_option("host")]
json.dump(out, sys.stdout)
"""
# Cases also run through `ansible all -m raw` with an ssh that only records its argv, to show that
# _ARGV_BUILDER gives the argv Ansible really runs (nothing connects anywhere).
END_TO_END = ("ini_connection_local", "ini_ssh_args_mixed", "yaml_spellings")
_FAKE_SSH = """#!/bin/sh
# records the argv Ansible gives ssh, then fails like an unreachable host
for a in "$@"; do printf '%s\\0' "$a"; done > "$FAKE_SSH_OUT/$$"
exit 255
"""
_MARK = "# REMOTEENV_HOST="


def _inventory_of(case: str) -> Path:
    if (CORPUS / case / "inv").is_dir():  # a folder of inventories, as `-i DIR`
        return CORPUS / case / "inv"
    found = [p for p in (CORPUS / case).rglob("*") if p.is_file()
             and not {"group_vars", "host_vars", "keys"} & set(p.relative_to(CORPUS / case).parts[:-1])]
    assert len(found) == 1, f"{case}: one inventory file expected, found {found}"
    return found[0]


@dataclass
class Theirs:
    listing: dict
    home: Path  # Ansible's HOME: `~` in key paths expands to it
    argv: dict[str, list[str]] = field(default_factory=dict)  # host -> ssh options + destination
    by_host: dict[str, dict] = field(default_factory=dict)  # `--host H` answers
    recorded: dict[str, list[str]] = field(default_factory=dict)  # END_TO_END: argv `ansible` ran


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    config = work / "ansible.cfg"
    config.write_text("")
    env.update({"HOME": str(work / "home"), "ANSIBLE_HOME": str(work / "ansible-home"),
                "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"), "ANSIBLE_CONFIG": str(config),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_SSH_RETRIES": "0", "ANSIBLE_RETRY_FILES_ENABLED": "False"})
    return env


def _ask_ansible(case: str, base: Path) -> Theirs:
    inv = _inventory_of(case)
    work = base / case
    (work / "home").mkdir(parents=True)
    env = _env(work)
    run = {"capture_output": True, "text": True, "env": env, "cwd": work, "timeout": 120}
    listed = subprocess.run([tool("ansible-inventory"), "-i", str(inv), "--list"], **run)
    assert listed.returncode == 0, f"{case}: ansible-inventory failed: {listed.stderr}"
    theirs = Theirs(json.loads(listed.stdout), base / "home")
    for host in HOST_CHECKS.get(case, []):
        one = subprocess.run([tool("ansible-inventory"), "-i", str(inv), "--host", host], **run)
        assert one.returncode == 0, one.stderr
        theirs.by_host[host] = json.loads(one.stdout)
    if case in END_TO_END:
        fake = work / "fake-ssh"
        fake.write_text(_FAKE_SSH)
        fake.chmod(0o755)
        (work / "argv").mkdir()
        env.update({"ANSIBLE_SSH_EXECUTABLE": str(fake), "FAKE_SSH_OUT": str(work / "argv"),
                    "HOME": str(base / "home")})
        # the raw command is a shell comment: a host Ansible runs locally (ansible_connection=local) runs nothing
        subprocess.run([tool("ansible"), "all", "-i", str(inv), "-m", "raw", "-a",
                        _MARK + "{{ inventory_hostname }}", "-f", "20"], **run)
        for recorded in (work / "argv").iterdir():
            words = recorded.read_bytes().decode().split("\0")[:-1]
            assert words[-1].startswith(_MARK), words
            theirs.recorded[words[-1][len(_MARK):]] = words[:-1]
    return theirs


@pytest.fixture(scope="module")
def ansible_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Theirs]:
    tool("ansible-inventory")
    tool("ansible")
    if shutil.which("ssh") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("OpenSSH's ssh is missing: `ssh -G` says where Ansible's ssh would connect")
        pytest.skip("OpenSSH's ssh is not installed")
    base = tmp_path_factory.mktemp("ansible")
    (base / "home").mkdir()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        answers = dict(zip(CASES, pool.map(lambda c: _ask_ansible(c, base), CASES), strict=True))
    hosts = {f"{case}\0{name}": (name, theirs.listing["_meta"]["hostvars"].get(name, {}))
             for case, theirs in answers.items() for name in _listed(theirs.listing)}
    env = _env(base) | {"HOME": str(base / "home")}
    built = subprocess.run([sys.executable, "-c", _ARGV_BUILDER], input=json.dumps(hosts), capture_output=True,
                           text=True, env=env, cwd=base, timeout=300)
    assert built.returncode == 0, built.stderr
    for key, argv in json.loads(built.stdout).items():
        case, name = key.split("\0")
        answers[case].argv[name] = argv
    print(f"ansible answered {len(CASES)} inventories in {time.monotonic() - started:.1f} s")
    return answers


def _listed(listing: dict) -> set[str]:
    """Every host of an `ansible-inventory --list` answer (_meta.hostvars names only those with variables)."""
    return {h for g, block in listing.items() if g != "_meta" for h in block.get("hosts", [])}


def _groups(listing: dict, host: str) -> set[str]:
    parents: dict[str, set[str]] = {}
    for name, block in listing.items():
        for child in block.get("children", []) if name != "_meta" else []:
            parents.setdefault(child, set()).add(name)
    found: set[str] = set()
    todo = [g for g, block in listing.items() if g != "_meta" and host in block.get("hosts", [])]
    while todo:
        group = todo.pop()
        if group not in found:
            found.add(group)
            todo.extend(parents.get(group, ()))
    return found - IMPLICIT


def _plain(value: object) -> object:
    return json.loads(json.dumps(value, default=str))


def _differences(case: str, theirs: Theirs, home: Path) -> list[str]:
    inv_path = _inventory_of(case)
    inv = load_inventory(inv_path)
    wrong: list[str] = []
    # _meta.hostvars lists only hosts with variables; every host is in some group's hosts
    hostvars = {h: theirs.listing["_meta"]["hostvars"].get(h, {}) for h in _listed(theirs.listing)}
    if sorted(inv.names()) != sorted(hostvars):
        return [f"{case}: hosts {sorted(inv.names())} != ansible's {sorted(hostvars)}"]
    no_config = SSHConfigFile(home / "no-ssh-config")
    local_user = pwd.getpwuid(os.getuid()).pw_name
    for name, their_vars in hostvars.items():
        entry = inv.entries[name]
        if set(entry.groups) != _groups(theirs.listing, name):
            wrong.append(f"{case}/{name}: groups {sorted(entry.groups)} != {sorted(_groups(theirs.listing, name))}")
        wanted = _plain({k: v for k, v in their_vars.items() if k not in CONNECTION_VARS})
        if _plain(entry.vars) != wanted:
            wrong.append(f"{case}/{name}: vars {entry.vars} != ansible's {wanted}")
        for asked_host, asked in theirs.by_host.items():
            if asked_host == name and _plain(asked) != _plain(their_vars):
                wrong.append(f"{case}/{name}: --host gives {asked}, --list {their_vars}")
        try:
            host = resolve(inv, name, no_config)
        except ConfigError as exc:
            if name in theirs.argv and (case, name, "connection") not in DIFFERENCES:
                wrong.append(f"{case}/{name}: refused ({exc.message}), ansible connects with {theirs.argv[name]}")
            continue
        if name not in theirs.argv:
            wrong.append(f"{case}/{name}: ansible made no ssh connection, remoteenv resolves {host.target}")
            continue
        ssh = ssh_g_options(theirs.argv[name], inv_path if inv_path.is_dir() else inv_path.parent)
        destination = theirs.argv[name][-1]
        theirs_conn = {
            "hostname": ssh["hostname"][0], "user": ssh["user"][0], "port": int(ssh["port"][0]),
            "proxy_jump": ssh.get("proxyjump", [None])[0],
            "proxy_command": ssh.get("proxycommand", [None])[0],
            "identity_files": ssh.get("identityfile", []),
            "certificate_files": ssh.get("certificatefile", []),
            # ssh prints yes/no as true/false; unset is its default, ask
            "strict_host_key_checking": {"true": "yes", "false": "no"}.get(ssh["stricthostkeychecking"][0],
                                                                          ssh["stricthostkeychecking"][0]),
        }
        if theirs_conn["proxy_jump"]:  # ssh -G prints `user@[host]`: the brackets are its spelling
            theirs_conn["proxy_jump"] = re.sub(r"\[([^\]:]*)\]", r"\1", theirs_conn["proxy_jump"])
        if theirs_conn["proxy_command"]:
            theirs_conn["proxy_command"] = expand_proxy_command(
                theirs_conn["proxy_command"], hostname=theirs_conn["hostname"], port=theirs_conn["port"],
                user=theirs_conn["user"], name=destination, where=case)
        if not host.identity_files:  # none given: ssh lists its default keys
            theirs_conn["identity_files"] = [k for k in theirs_conn["identity_files"] if not k.startswith("~/.ssh/id_")]
        ours = {"hostname": host.hostname, "user": host.user or local_user, "port": host.port,
                "proxy_jump": host.proxy_jump, "proxy_command": host.proxy_command,
                "identity_files": host.identity_files, "certificate_files": host.certificate_files,
                "strict_host_key_checking": host.strict_host_key_checking or "ask"}
        if ours != theirs_conn and (case, name, "connection") not in DIFFERENCES:
            wrong.append(f"{case}/{name}: connection {ours} != ssh's {theirs_conn} (argv {theirs.argv[name]})")
    return wrong


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("REMOTEENV_INVENTORY", "REMOTEENV_SSH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_remoteenv_reads_the_inventory_as_ansible(case: str, ansible_answers: dict[str, Theirs], home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = ansible_answers[case]
    monkeypatch.setenv("HOME", str(theirs.home))  # Ansible expanded `~` in key paths with this HOME
    wrong = _differences(case, theirs, home)
    assert not wrong, "\n".join(wrong)


def test_the_argv_builder_gives_the_argv_ansible_runs(ansible_answers: dict[str, Theirs]) -> None:
    for case in END_TO_END:
        theirs = ansible_answers[case]
        assert theirs.recorded, f"{case}: ansible ran no ssh"
        for name, argv in theirs.recorded.items():
            built = theirs.argv.get(name, [])
            assert _same(argv) == _same(built), f"{case}/{name}: ansible ran {argv}, built {built}"
        assert set(theirs.recorded) == set(theirs.argv), case


def _same(argv: list[str]) -> list[str]:
    """An argv without what differs between runs (ControlPath's hash) or is the raw module's (-tt)."""
    return [w for w in argv if w != "-tt" and not w.startswith("ControlPath=")]


def test_every_documented_difference_occurs_and_the_readme_states_it(ansible_answers: dict[str, Theirs],
                                                                      home: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    for (case, host, aspect), why in DIFFERENCES.items():
        assert why
        assert README_PHRASES[(case, host, aspect)] in readme, f"README.md does not state: {why}"
        inv = load_inventory(_inventory_of(case))
        with pytest.raises(ConfigError):
            resolve(inv, host, SSHConfigFile(home / "none"))
        assert host in ansible_answers[case].argv  # Ansible does connect it
