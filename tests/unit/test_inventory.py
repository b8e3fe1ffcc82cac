"""Inventory formats, selection, errors, ssh config lookups and precedence."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible_tools import tool

from remoteenv.cli import main as cli_main
from remoteenv.errors import ConfigError
from remoteenv.inventory import Inventory, SSHConfigFile, load_inventory, resolve
from remoteenv.inventory.ansible import expand_host_pattern

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of our own, so the person's real ~/.ssh/config never takes part."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("REMOTEENV_INVENTORY", "REMOTEENV_SSH_CONFIG", "REMOTEENV_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REMOTEENV_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return home


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- one fleet, five formats

# node01, node02: group gpu; node03: group cpu; gpu and cpu are children of lab.
# Every host's key comes from the person's ~/.ssh/config (`Host *.lab.test`), which a plain
# host list cannot name itself.
FLEET = {
    "hosts.yaml": """\
defaults:
  user: alice
groups:
  gpu: {hosts: [node01.lab.test, node02.lab.test]}
  cpu: {hosts: [node03.lab.test]}
hosts:
  node01.lab.test: {groups: [gpu, lab]}
  node02.lab.test: {port: 2222, groups: [gpu, lab]}
  node03.lab.test: {user: bob, groups: [cpu, lab]}
""",
    "hosts.txt": """\
# the lab fleet
alice@node01.lab.test
alice@node02.lab.test:2222
bob@node03.lab.test   # the CPU box
""",
    "hosts.ini": """\
[gpu]
node01.lab.test
node02.lab.test:2222

[cpu]
node03.lab.test ansible_user=bob

[lab:children]
gpu
cpu

[all:vars]
ansible_user=alice
""",
    "ansible.yml": """\
all:
  vars:
    ansible_user: alice
  children:
    lab:
      children:
        gpu:
          hosts:
            node01.lab.test:
            node02.lab.test: {ansible_port: 2222}
        cpu:
          hosts:
            node03.lab.test: {ansible_user: bob}
""",
    "fleet_ssh_config": """\
Host node01.lab.test
  User alice
Host node02.lab.test
  User alice
  Port 2222
Host node03.lab.test
  User bob
Host *.lab.test
  IdentityFile ~/.ssh/lab_ed25519
""",
}
FLEET_FORMATS = {"hosts.yaml": "remoteenv", "hosts.txt": "plain", "hosts.ini": "ansible-ini",
                 "ansible.yml": "ansible-yaml", "fleet_ssh_config": "ssh-config"}
WITH_GROUPS = ("hosts.yaml", "hosts.ini", "ansible.yml")


def _fleet(tmp_path: Path, home: Path, file_name: str) -> list[tuple]:
    write(home / ".ssh", "config", "Host *.lab.test\n  IdentityFile ~/.ssh/lab_ed25519\n")
    inv = load_inventory(write(tmp_path, file_name, FLEET[file_name]))
    assert inv.format == FLEET_FORMATS[file_name]
    config = SSHConfigFile()
    hosts = [resolve(inv, name, config) for name in sorted(inv.names())]
    return [(h.name, h.hostname, h.user, h.port, h.identity_files, h.groups) for h in hosts]


def test_every_format_resolves_to_the_same_fleet(tmp_path: Path, home: Path) -> None:
    key = str(home / ".ssh" / "lab_ed25519")
    expected = [
        ("node01.lab.test", "node01.lab.test", "alice", 22, [key]),
        ("node02.lab.test", "node02.lab.test", "alice", 2222, [key]),
        ("node03.lab.test", "node03.lab.test", "bob", 22, [key]),
    ]
    groups = [["gpu", "lab"], ["gpu", "lab"], ["cpu", "lab"]]
    for file_name in FLEET:
        resolved = _fleet(tmp_path, home, file_name)
        assert [row[:5] for row in resolved] == expected, file_name
        wanted_groups = groups if file_name in WITH_GROUPS else [[], [], []]
        assert [row[5] for row in resolved] == wanted_groups, file_name


def test_format_is_detected_without_a_telling_suffix(tmp_path: Path) -> None:
    cases = {
        "a": ("[web]\nh1\n", "ansible-ini"),
        "b": ("h1 ansible_host=10.0.0.5\n", "ansible-ini"),
        "c": ("h1 color=red\nh2\n", "ansible-ini"),
        "d": ("# lab\nInclude other\nHost h1\n  HostName 10.0.0.5\n", "ssh-config"),
        "e": ("ServerAliveInterval 30\nHost h1\n  ProxyCommand ssh -o A=b -W %h:%p j\n", "ssh-config"),
        "f": ("all:\n  hosts:\n    h1:\n", "ansible-yaml"),
        "g": ("hosts:\n  h1:\n", "remoteenv"),
        "h": ("alice@h1:2222\n[::1]:22\n", "plain"),
        "i": ("web[01:20].example.com\ndb-[a:c]\n", "ansible-ini"),  # ranges, no section, no suffix
        "j": ("ungrouped:\nweb:\n  hosts:\n    h1:\n", "ansible-yaml"),  # a top-level group left empty
        "k": ("[2001:db8::11]:2222\n[web]\nh1\n", "ansible-ini"),
    }
    for name, (text, fmt) in cases.items():
        assert load_inventory(write(tmp_path, name, text)).format == fmt, name


# ---------------------------------------------------------------- selection


def test_select_by_group_glob_and_group_name(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, "hosts.ini", FLEET["hosts.ini"]))
    assert inv.select(None, "gpu") == ["node01.lab.test", "node02.lab.test"]
    assert inv.select(None, "lab") == ["node01.lab.test", "node02.lab.test", "node03.lab.test"]
    assert inv.select(["node0[13]*"]) == ["node01.lab.test", "node03.lab.test"]
    assert inv.select(["cpu"]) == ["node03.lab.test"]  # a group named where a host goes
    assert inv.select(["*02*,cpu"]) == ["node02.lab.test", "node03.lab.test"]
    assert inv.select(["node0*"], "cpu") == ["node03.lab.test"]
    assert inv.select(["all"]) == inv.names()
    assert inv.select(["gpu-box"]) == ["gpu-box"]  # not listed: kept as a bare name for ssh
    assert inv.select(["gpu-*"]) == []
    with pytest.raises(ConfigError, match="no group 'nope'") as err:
        inv.select(None, "nope")
    assert "cpu, gpu, lab" in (err.value.hint or "")


def test_remoteenv_format_groups_from_both_sides(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, "hosts.yaml", """\
groups:
  gpu:
    hosts: [a, only-in-group]
hosts:
  a: {groups: [lab]}
  b:
"""))
    assert inv.entries["a"].groups == ["lab", "gpu"]
    assert inv.entries["only-in-group"].groups == ["gpu"]
    assert inv.select(None, "lab") == ["a"]
    assert inv.select(None, "gpu") == ["a", "only-in-group"]
    listed = load_inventory(write(tmp_path, "list.yaml", "hosts: [a, b]\n"))
    assert listed.names() == ["a", "b"]


# ---------------------------------------------------------------- errors name file and line


@pytest.mark.parametrize(("name", "text", "line", "words"), [
    ("syntax.yaml", "hosts:\n  a:\n    user: [alice\n  b: {}\n", 4, "expected"),
    ("unknown.yaml", "hosts:\n  a:\n    prot: 22\n", 3, "unknown key 'prot'"),
    ("port.yaml", "defaults:\n  user: x\nhosts:\n  a:\n    port: 70000\n", 5, "port must be"),
    ("hostslist.yaml", "hosts:\n  a:\n    identity_file: []\n", 3, "identity_file"),
    ("space.yaml", "hosts:\n  a:\n  b c:\n", 3, "not a valid name"),
    ("groupvars.yaml", "groups:\n  g:\n    vars: [1]\n", 3, "vars must be a mapping, not a list"),
    ("bad.ini", "[web]\nh1 ansible_user=alice\nh2 oops\n", 3, "expected name=value"),
    ("section.ini", "[web]\nh1\n[web:hostz]\n", 3, "unknown type"),
    ("spaces.ini", "[web]\nh1\n[my group]\n", 3, "not a valid section"),
    ("vars.ini", "[web]\nh1\n[web:vars]\njust-a-word\n", 4, "expected name=value"),
    ("undef.ini", "[lab:children]\ngpu\n[web]\nh1\n", 2, "group 'gpu' is used but never defined"),
    ("range.ini", "[web]\nnode[3:1]\n", 2, "begin <= end"),
    ("width.ini", "[web]\nnode[01:100]\n", 2, "equal width"),
    ("badname.ini", "[web]\nh!1\n", 2, "not a valid host name"),
    ("plain.txt", "alice@h1\nh2:0\n", 2, "[user@]host[:port]"),
    ("ansible.yml", "all:\n  children:\n    web:\n      hostz: {}\n", 4, "unknown key 'hostz'"),
    ("ayhosts.yml", "all:\n  hosts:\n    - h1\n", 2, "must be a mapping, not a list"),
])
def test_malformed_files_name_file_and_line(tmp_path: Path, name: str, text: str, line: int,
                                            words: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as err:
        load_inventory(path)
    assert err.value.message.startswith(f"{path}:{line}:"), err.value.message
    assert words in err.value.message
    assert err.value.exit_code == 2


@pytest.mark.parametrize(("name", "text", "line", "words"), [
    ("port.ini", "[web]\nh1\n\n[web:vars]\nansible_port=ssh\n", 5, "ansible_port of host 'h1' must be"),
    ("templ.ini", "[web]\nh1 ansible_host='{{ x }}.lan'\n", 2, "Jinja"),
    ("ayport.yml", "web:\n  hosts:\n    h1:\n      ansible_port: -3\n", 4, "ansible_port of host 'h1' must be"),
    ("local.ini", "[web]\nh1 ansible_connection=local\n", 2, "ansible_connection=local"),
    ("sshopt.ini", "[web]\nh1 ansible_ssh_common_args='-o HostKeyAlias=x'\n", 2, "-o HostKeyAlias"),
])
def test_a_host_ansible_cannot_reach_over_ssh_is_refused_alone(tmp_path: Path, name: str, text: str, line: int,
                                                               words: str) -> None:
    """The inventory loads (other hosts stay usable); resolving that host names file, line and host."""
    path = write(tmp_path, name, ("other-host\n" if name.endswith(".ini") else "") + text)
    inv = load_inventory(path)
    with pytest.raises(ConfigError) as err:
        resolve(inv, "h1", SSHConfigFile(tmp_path / "none"))
    line += name.endswith(".ini")
    assert err.value.message.startswith(f"{path}:{line}:"), err.value.message
    assert words in err.value.message and "h1" in err.value.message
    assert err.value.exit_code == 2
    if name.endswith(".ini"):
        assert resolve(inv, "other-host", SSHConfigFile(tmp_path / "none")).hostname == "other-host"


def test_missing_inventory_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_inventory(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- Ansible specifics


def test_host_patterns_expand_like_ansible() -> None:
    assert expand_host_pattern("node[01:03]", "x") == (["node01", "node02", "node03"], None)
    assert expand_host_pattern("db-[a:c].lan:2200", "x") == (["db-a.lan", "db-b.lan", "db-c.lan"], 2200)
    assert expand_host_pattern("n[1:7:3]", "x")[0] == ["n1", "n4", "n7"]
    assert expand_host_pattern("r[1:2]c[1:2]", "x")[0] == ["r1c1", "r1c2", "r2c1", "r2c2"]
    assert expand_host_pattern("[fd00::7]:2222", "x") == (["fd00::7"], 2222)
    assert expand_host_pattern("fd00::7", "x") == (["fd00::7"], None)
    assert expand_host_pattern("198.18.0.5:22", "x") == (["198.18.0.5"], 22)


def test_ini_nested_groups_vars_and_connection_settings(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "hosts.ini", """\
# hosts before any section are in no group
jump ansible_host=198.18.0.1
[web]
h1 ansible_host=198.18.0.5 ansible_user=alice ansible_port=2222 ansible_ssh_private_key_file=~/.ssh/k other=1
node[01:03]

[web:vars]
color=blue
ansible_ssh_common_args='-o ServerAliveInterval=5 -J jump'

[prod:children]
web

[prod]

[prod:vars]
color=red
tier=prod
ansible_user=carol

[all:vars]
ansible_user=root
everywhere=True
""")
    inv = load_inventory(path)
    assert inv.names() == ["jump", "h1", "node01", "node02", "node03"]
    config = SSHConfigFile()
    h1 = resolve(inv, "h1", config)
    assert (h1.hostname, h1.user, h1.port, h1.proxy_jump) == ("198.18.0.5", "alice", 2222, "jump")
    assert h1.identity_files == [str(home / ".ssh" / "k")]
    assert h1.groups == ["web", "prod"]
    # child group over parent group over all; the ssh arguments are connection settings
    assert h1.vars == {"everywhere": True, "color": "blue", "tier": "prod", "other": 1}
    assert h1.server_alive_interval == 5
    node = resolve(inv, "node02", config)
    assert (node.hostname, node.user, node.proxy_jump) == ("node02", "carol", "jump")
    assert node.sources["user"] == f"group prod ({path}:19)"  # the variable's own line
    assert node.sources["proxy_jump"] == f"group web ({path}:9)"
    jump = resolve(inv, "jump", config)
    assert (jump.user, jump.proxy_jump, jump.groups) == ("root", None, [])
    assert jump.sources["user"] == f"defaults ({path}:22)"


def test_ansible_yaml_depth_priority_and_proxy_jump_option(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.yaml", """\
all:
  hosts:
    solo: {ansible_host: 198.18.0.9}
  children:
    lab:
      vars: {color: red, ansible_ssh_common_args: "-o ProxyJump=bastion"}
      children:
        gpu:
          hosts:
            a: {color: own}
            b:
          vars: {color: blue}
    zeta:
      hosts: b
      vars: {color: green}
    alpha:
      hosts: {b: }
      vars: {color: white, ansible_group_priority: 9}
""")
    inv = load_inventory(path)
    assert inv.format == "ansible-yaml"
    config = SSHConfigFile()
    a, b = resolve(inv, "a", config), resolve(inv, "b", config)
    assert a.vars["color"] == "own"
    assert b.vars["color"] == "blue"  # gpu is deeper than alpha, zeta and lab
    assert b.groups == ["gpu", "alpha", "zeta", "lab"]
    assert a.proxy_jump == b.proxy_jump == "bastion"
    assert "ansible_ssh_common_args" not in a.vars
    assert resolve(inv, "solo", config).groups == []


def test_ssh_arguments_give_jump_and_further_keys(tmp_path: Path, home: Path) -> None:
    inv = load_inventory(write(tmp_path, "hosts.ini", (
        "h1 ansible_ssh_private_key_file=~/.ssh/k1 ansible_ssh_common_args="
        "'-C -o ProxyJump=alice@j1:2200,j2 -i ~/.ssh/k2 -oIdentityFile=~/.ssh/k3 -o ServerAliveInterval=9'\n"
        "h2 ansible_ssh_extra_args='-Jjump'\n")))
    h1, h2 = (resolve(inv, n) for n in ("h1", "h2"))
    assert h1.proxy_jump == "alice@j1:2200,j2"
    assert h1.identity_files == [str(home / ".ssh" / k) for k in ("k1", "k2", "k3")]
    assert h1.vars == {}
    assert h1.server_alive_interval == 9
    assert (h2.proxy_jump, h2.vars) == ("jump", {})


_BACK = {"hostname": "ansible_host", "user": "ansible_user", "port": "ansible_port"}


@pytest.mark.parametrize("example", ["configs/hosts.example.ini", "hosts.ini", "ansible.yml"])
def test_reads_ansible_inventories_as_ansible_does(example: str, tmp_path: Path) -> None:
    """Variables and groups agree with ansible-inventory's view of the same file."""
    path = ROOT / example if example.startswith("configs/") else write(tmp_path, example, FLEET[example])
    out = subprocess.run([tool("ansible-inventory"), "-i", str(path), "--list"], capture_output=True,
                         text=True, check=True, env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path)})
    theirs = json.loads(out.stdout)
    inv = load_inventory(path)
    assert sorted(inv.names()) == sorted(theirs["_meta"]["hostvars"])
    config = SSHConfigFile(tmp_path / "no-ssh-config")
    for name, their_vars in theirs["_meta"]["hostvars"].items():
        host = resolve(inv, name, config)
        ours = dict(host.vars)
        for field_name, var in _BACK.items():
            if host.sources[field_name] not in ("default", "the name itself"):
                ours[var] = getattr(host, field_name)
        key_var = "ansible_ssh_private_key_file"
        if key_var in their_vars:
            assert host.identity_files == [os.path.expanduser(their_vars.pop(key_var))]
        if host.proxy_jump:
            assert f"-J {host.proxy_jump}" in their_vars.pop("ansible_ssh_common_args")
        assert ours == their_vars, name
        member_of = {g for g, block in theirs.items() if name in block.get("hosts", [])}
        assert member_of - {"ungrouped"} <= set(host.groups), name


# ---------------------------------------------------------------- ~/.ssh/config


def test_ssh_config_aliases_and_include(home: Path) -> None:
    ssh = home / ".ssh"
    (ssh / "config.d").mkdir()
    write(ssh, "config", """\
Include config.d/*.conf
Host gpu-box
  HostName 198.18.0.7
  User alice
  Port 2222
  IdentityFile ~/.ssh/gpu_key
  ProxyJump bastion
Host bastion
  HostName=198.18.0.1
Host *
  User fallback
""")
    write(ssh / "config.d", "lab.conf", "Host lab1\n  HostName 198.18.0.9\n  IdentityFile %d/.ssh/lab_%r\n"
          "  User bob\n")
    empty = Inventory()
    gpu = resolve(empty, "gpu-box")
    assert (gpu.hostname, gpu.user, gpu.port, gpu.proxy_jump) == ("198.18.0.7", "alice", 2222, "bastion")
    assert gpu.identity_files == [str(ssh / "gpu_key")]
    assert _line_of(gpu.sources["port"]).split() == ["Port", "2222"]
    lab = resolve(empty, "lab1")
    assert (lab.hostname, lab.user) == ("198.18.0.9", "bob")
    assert lab.identity_files == [str(ssh / "lab_bob")]
    other = resolve(empty, "other")
    assert (other.hostname, other.user, other.port) == ("other", "fallback", 22)
    assert other.sources["hostname"] == "the name itself"

    imported = load_inventory(ssh / "config")
    assert imported.format == "ssh-config"
    assert imported.names() == ["bastion", "gpu-box", "lab1"]
    assert imported.entries["lab1"].source == f"{ssh / 'config.d' / 'lab.conf'}:1"
    assert imported.entries["gpu-box"].source == f"{ssh / 'config'}:2"


def test_ssh_aliases_named_by_inventories_connect_to_their_hostname(tmp_path: Path, home: Path) -> None:
    """As with `ssh ALIAS`: an alias (a plain list's host, or a hostname:) goes to its HostName."""
    write(home / ".ssh", "config", "Host gpu-box\n  HostName 198.18.0.7\n  User alice\n")
    config_line = f"{home / '.ssh' / 'config'}:1"
    plain = load_inventory(write(tmp_path, "hosts.txt", "gpu-box\nbob@gpu-box:2222\n"))
    first, second = (resolve(plain, n) for n in plain.names())
    assert (first.name, first.hostname, first.user, first.port) == ("gpu-box", "198.18.0.7", "alice", 22)
    assert (second.hostname, second.user, second.port) == ("198.18.0.7", "bob", 2222)
    assert second.sources["hostname"] == f"{tmp_path / 'hosts.txt'}:2, then {config_line}"
    native = load_inventory(write(tmp_path, "hosts.yaml", "hosts:\n  box:\n    hostname: gpu-box\n"))
    box = resolve(native, "box")
    assert (box.hostname, box.user) == ("198.18.0.7", "alice")


def test_inventory_hostname_is_looked_up_in_ssh_config(tmp_path: Path, home: Path) -> None:
    write(home / ".ssh", "config", "Host 198.18.0.5\n  User from-ssh\n  Port 2200\n")
    inv = load_inventory(write(tmp_path, "hosts.ini", "[web]\nweb1 ansible_host=198.18.0.5\n"))
    host = resolve(inv, "web1")
    assert (host.hostname, host.user, host.port) == ("198.18.0.5", "from-ssh", 2200)
    assert host.sources["user"] == f"{home / '.ssh' / 'config'}:2"  # the line that set it


def test_an_ssh_config_given_as_inventory_is_read_as_ssh_reads_it(tmp_path: Path, home: Path) -> None:
    """`-i FILE` with an ssh config: as `ssh -F FILE NAME`, by the name only (never again by its HostName)."""
    write(home / ".ssh", "config", "Host *\n  User from-home-config\n")
    config = write(tmp_path, "config", "Host gpu\n  HostName 198.18.0.7\n  User alice\n"
                                       "Host 198.18.0.7\n  User wrong\n  Port 2222\n")
    inv = load_inventory(config)
    assert inv.format == "ssh-config"
    gpu = resolve(inv, "gpu")
    ssh = subprocess.run(["ssh", "-G", "-F", str(config), "gpu"], capture_output=True, text=True, timeout=30)
    if ssh.returncode == 0:  # OpenSSH present: its answer
        seen = dict(line.split(" ", 1) for line in ssh.stdout.splitlines())
        assert (gpu.hostname, gpu.user, gpu.port) == (seen["hostname"], seen["user"], int(seen["port"]))
    assert (gpu.hostname, gpu.user, gpu.port) == ("198.18.0.7", "alice", 22)
    assert gpu.sources["user"] == f"{config}:1"


def test_an_inventory_value_over_ssh_config_says_so(tmp_path: Path, home: Path) -> None:
    ssh_config = write(home / ".ssh", "config", "# lab\nHost 198.18.0.5\n  User from-ssh\n  Port 2200\n")
    inv = load_inventory(write(tmp_path, "hosts.ini", "[web]\nweb1 ansible_host=198.18.0.5 ansible_user=alice\n"))
    host = resolve(inv, "web1")
    assert (host.user, host.port) == ("alice", 2200)
    assert host.sources["user"] == f"{tmp_path / 'hosts.ini'}:2 (over {ssh_config}:3)"
    assert host.sources["port"] == f"{ssh_config}:4"


def test_a_folder_inventory_reads_every_file_and_its_vars_folders(tmp_path: Path) -> None:
    folder = tmp_path / "inventory"
    (folder / "group_vars").mkdir(parents=True)
    write(folder, "a.ini", "[web]\nw1 ansible_host=198.18.0.5\n")
    write(folder, "b.yml", "all:\n  children:\n    web:\n      hosts:\n        w2:\n")
    write(folder, "README.md", "not [an inventory\n")
    write(folder / "group_vars", "web.yml", "ansible_user: webuser\n")
    inv = load_inventory(folder)
    assert inv.format == "ansible-folder" and inv.names() == ["w1", "w2"]
    assert [resolve(inv, n).user for n in inv.names()] == ["webuser", "webuser"]
    script = write(folder, "dynamic.py", "#!/bin/sh\n")
    script.chmod(0o755)
    with pytest.raises(ConfigError, match="inventory script"):
        load_inventory(folder)


# ---------------------------------------------------------------- precedence, via the CLI


def _line_of(source: str) -> str:
    """The text of the `file:line` a source names."""
    path, _, number = source.rpartition(":")
    return Path(path).read_text().splitlines()[int(number) - 1]


def _hosts_json(capsys: pytest.CaptureFixture, *args: str) -> dict:
    with pytest.raises(SystemExit) as done:
        cli_main(list(args))
    captured = capsys.readouterr()
    assert done.value.code == 0, captured.err
    return json.loads(captured.out)


def test_precedence_and_sources_in_hosts_json(tmp_path: Path, home: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    write(home / ".ssh", "config", "Host *\n  User ssh-user\n  Port 2022\n  IdentityFile ~/.ssh/ssh_key\n"
          "  ProxyJump ssh-jump\n")
    path = write(tmp_path, "hosts.yaml", """\
defaults:
  user: default-user
  vars: {level: defaults, d: 1}
groups:
  gpu:
    port: 2200
    identity_file: ~/.ssh/gpu_key
    vars: {level: gpu, g: 1}
hosts:
  box:
    hostname: 198.18.0.7
    groups: [gpu]
    identity_file: [~/.ssh/own_key, ~/.ssh/spare_key]
    vars: {level: box}
  plain-box:
""")
    data = _hosts_json(capsys, "-i", str(path), "hosts", "--json")
    assert data["inventory"] == str(path) and data["format"] == "remoteenv"
    box, plain = data["hosts"]
    assert box["hostname"] == "198.18.0.7" and box["sources"]["hostname"] == f"{path}:10"
    assert box["identity_files"] == [str(home / ".ssh/own_key"), str(home / ".ssh/spare_key")]
    # the inventory wins over ~/.ssh/config on purpose, and says so
    config = home / ".ssh/config"
    assert box["sources"]["identity_files"] == f"{path}:10 (over {config}:4)"
    assert box["port"] == 2200 and box["sources"]["port"] == f"group gpu ({path}:5) (over {config}:3)"
    assert box["user"] == "default-user"
    assert box["sources"]["user"] == f"defaults ({path}:1) (over {config}:2)"
    assert box["proxy_jump"] == "ssh-jump" and box["sources"]["proxy_jump"] == f"{config}:5"
    assert box["vars"] == {"level": "box", "d": 1, "g": 1}
    assert box["groups"] == ["gpu"]
    assert (plain["hostname"], plain["port"], plain["user"]) == ("plain-box", 2022, "default-user")
    assert plain["sources"]["port"] == f"{config}:3"
    assert plain["vars"] == {"level": "defaults", "d": 1}

    gpu_only = _hosts_json(capsys, "-i", str(path), "hosts", "--group", "gpu", "--json")
    assert [h["name"] for h in gpu_only["hosts"]] == ["box"]


def test_hosts_command_reports_a_bad_file_in_one_line(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "hosts.ini", "[web]\nh1 ansible_port=99999\nh2\n")
    # The listing shows the one bad host with its reason, and the rest as usual...
    data = _hosts_json(capsys, "-i", str(path), "hosts", "--json")
    assert [h["name"] for h in data["hosts"]] == ["h2"]
    assert f"{path}:2: ansible_port of host 'h1' must be a number from 1 to 65535" in data["refused"][0]["error"]
    # ...and a command that needs the host stops with it, in one line.
    with pytest.raises(SystemExit) as done:
        cli_main(["-i", str(path), "probe", "h1"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}:2: ansible_port of host 'h1' must be a number from 1 to 65535" in " ".join(err.split())
    assert "Traceback" not in err


def test_hosts_lists_a_refused_host_with_its_reason_and_the_rest_as_usual(tmp_path: Path, home: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "site.ini", "[web]\nweb1 ansible_host=198.18.0.5\nlocalhost ansible_connection=local\n")
    data = _hosts_json(capsys, "-i", str(path), "hosts", "--json")
    assert [h["name"] for h in data["hosts"]] == ["web1"]
    assert [r["name"] for r in data["refused"]] == ["localhost"]
    assert "ansible_connection=local" in data["refused"][0]["error"] and f"{path}:3" in data["refused"][0]["error"]


def test_a_vault_encrypted_connection_value_refuses_that_host_only(tmp_path: Path, home: Path) -> None:
    inv_dir = tmp_path / "inv"
    (inv_dir / "host_vars").mkdir(parents=True)
    write(inv_dir, "hosts.ini", "[web]\nweb1\nweb2\n")
    write(inv_dir / "host_vars", "web1.yml", "ansible_user: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6231\n")
    inv = load_inventory(inv_dir / "hosts.ini")
    with pytest.raises(ConfigError, match="ansible-vault"):
        resolve(inv, "web1")
    assert resolve(inv, "web2").hostname == "web2"
