"""A playbook and its hosts as Ansible files: `playbook.yml` and `inventory.yml` in one folder.

What becomes what:
  each step            the ansible.builtin task(s) of its `to_ansible()`, in order
  playbook `vars:`     the play's `vars:`; a variable some selected host also sets goes into every
                       host's variables instead (Ansible ranks play vars above inventory vars,
                       remoteenv ranks the host's value above the playbook's default)
  `--var` values       the play's `vars:` (they win over everything, in both tools)
  upload `src` files   copied to `files/` beside the playbook, so the folder stands alone
  each host            ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file,
                       ansible_ssh_common_args (`-J` for ProxyJump, `-i` for further keys),
                       ansible_python_interpreter: auto_silent, then its merged variables
  each group           a child of `all` listing its selected hosts

Variable values are written `!unsafe` when they hold `{{` or `{%`: remoteenv inserts a variable's
value as it is, while Ansible would render it again. A jump host that is an inventory entry is
written as user@address:port; its key must then come from ssh config or the agent.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from remoteenv.errors import ConfigError
from remoteenv.inventory import Host, Inventory, resolve
from remoteenv.playbook import Playbook
from remoteenv.steps import Step

PLAYBOOK_FILE = "playbook.yml"
INVENTORY_FILE = "inventory.yml"
FILES_DIR = "files"
_FILE_MODULES = ("ansible.builtin.copy", "ansible.builtin.template")
_IMPLICIT_GROUPS = ("all", "ungrouped")


@dataclass
class AnsibleExport:
    """Where an export went and what it holds."""

    directory: Path
    playbook: Path
    inventory: Path
    hosts: list[str]
    tasks: int
    files: list[Path] = field(default_factory=list)  # local files copied beside the playbook

    @property
    def command(self) -> list[str]:
        return ["ansible-playbook", "-i", str(self.inventory), str(self.playbook)]

    def to_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "playbook": str(self.playbook),
                "inventory": str(self.inventory), "hosts": list(self.hosts), "tasks": self.tasks,
                "files": [str(f) for f in self.files], "command": self.command}


def export_ansible(playbook: Playbook, hosts: list[Host], directory: str | os.PathLike,
                   inventory: Inventory | None = None,
                   extra_vars: Mapping[str, Any] | None = None) -> AnsibleExport:
    """Write `playbook.yml` and `inventory.yml` for `hosts` into `directory` (made if missing).

    Raises ConfigError, before writing anything, when a step has no Ansible equivalent or an
    upload's local file cannot be read.
    """
    folder = Path(directory)
    tasks, files = playbook_tasks(playbook)
    play_vars, host_vars = split_vars(playbook.vars, hosts, extra_vars)
    play: dict[str, Any] = {"name": playbook.name, "hosts": "all", "gather_facts": False}
    if play_vars:
        play["vars"] = _unsafe(play_vars)
    play["tasks"] = tasks
    inventory_doc = inventory_document(hosts, inventory, host_vars)

    folder.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    for source, name in files:
        target = folder / FILES_DIR / name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    result = AnsibleExport(folder, folder / PLAYBOOK_FILE, folder / INVENTORY_FILE,
                           [h.name for h in hosts], len(tasks), copied)
    run = f"ansible-playbook -i {INVENTORY_FILE} {PLAYBOOK_FILE}"
    _write(result.playbook, f"# Exported by `remoteenv export ansible` from {playbook.source}.\n"
                            f"# Run from this folder: {run}\n" + dump([play]))
    _write(result.inventory, f"# The hosts of {PLAYBOOK_FILE}, exported by `remoteenv export ansible`.\n"
                             + dump(inventory_doc))
    return result


# -- the play ---------------------------------------------------------------------------------
def playbook_tasks(playbook: Playbook) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """Every step's tasks, and the local files (source, name under files/) they upload."""
    tasks: list[dict[str, Any]] = []
    files: list[tuple[Path, str]] = []
    for spec, step in zip(playbook.steps, playbook.build(None), strict=True):
        where = f"{spec.where}: step {spec.index + 1} '{step.describe()}' ({spec.type})"
        missing = f"{where} has no Ansible equivalent"
        hint = "remove the step to export the rest, or apply the playbook with remoteenv apply"
        if type(step).to_ansible is Step.to_ansible:
            raise ConfigError(missing, hint)
        try:
            produced = step.to_ansible(spec.index)
        except NotImplementedError:
            raise ConfigError(missing, hint) from None
        for task in produced:
            tasks.append(_with_local_files(task, spec.index, files, spec.param_lines.get("src", spec.where)))
    return tasks, files


def _with_local_files(task: dict[str, Any], index: int, files: list[tuple[Path, str]],
                      where: str) -> dict[str, Any]:
    """Point copy/template tasks at a copy of their local file under files/."""
    out = dict(task)
    for module in _FILE_MODULES:
        args = out.get(module)
        if not isinstance(args, dict) or not isinstance(args.get("src"), str) or "{{" in args["src"]:
            continue
        source = Path(args["src"]).expanduser()
        if not source.is_file():
            raise ConfigError(f"{where}: cannot read {source}", "src is relative to the playbook's folder")
        name = f"{index + 1:02d}-{source.name}"
        files.append((source, name))
        out[module] = {**args, "src": posixpath.join("{{ playbook_dir }}", FILES_DIR, name)}
    return out


def split_vars(defaults: Mapping[str, Any], hosts: list[Host], extra_vars: Mapping[str, Any] | None
               ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(play vars, each host's vars) that give every host the variables remoteenv would."""
    play = dict(defaults)
    per_host = {h.name: dict(h.vars) for h in hosts}
    for name in [n for n in play if any(n in v for v in per_host.values())]:
        default = play.pop(name)
        for variables in per_host.values():
            variables.setdefault(name, default)
    for name, value in (extra_vars or {}).items():
        play[name] = value
        for variables in per_host.values():
            variables.pop(name, None)
    return play, per_host


# -- the inventory ----------------------------------------------------------------------------
def inventory_document(hosts: list[Host], inventory: Inventory | None,
                       host_vars: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """An Ansible YAML inventory of `hosts`, with each one's resolved connection settings."""
    entries: dict[str, Any] = {}
    children: dict[str, Any] = {}
    for host in hosts:
        variables = dict(host.vars if host_vars is None else host_vars.get(host.name, {}))
        connection: dict[str, Any] = {"ansible_host": host.hostname, "ansible_port": host.port}
        if host.user:
            connection["ansible_user"] = host.user
        if host.identity_files:
            connection["ansible_ssh_private_key_file"] = host.identity_files[0]
        args: list[str] = []
        if host.proxy_jump:
            args += ["-J", jump_spec(host.proxy_jump, inventory)]
        for key in host.identity_files[1:]:
            args += ["-i", key]
        given = variables.pop("ansible_ssh_common_args", None)
        common = " ".join(part for part in (shlex.join(args), str(given or "")) if part)
        if common:
            connection["ansible_ssh_common_args"] = common
        entry = {**connection, "ansible_python_interpreter": "auto_silent"}
        entry.update(_unsafe({k: v for k, v in variables.items() if k not in connection}))
        entries[host.name] = entry
        for group in host.groups:
            if group not in _IMPLICIT_GROUPS:
                children.setdefault(group, {"hosts": {}})["hosts"][host.name] = None
    body: dict[str, Any] = {"hosts": entries}
    if children:
        body["children"] = children
    return {"all": body}


def jump_spec(proxy_jump: str, inventory: Inventory | None) -> str:
    """ProxyJump hops as ssh -J takes them; a hop named in the inventory becomes its address."""
    hops = []
    for hop in (h.strip() for h in proxy_jump.split(",")):
        if inventory is None or hop not in inventory.entries:
            hops.append(hop)
            continue
        target = resolve(inventory, hop)
        user = f"{target.user}@" if target.user else ""
        if ":" in target.hostname:  # IPv6: only the URI form carries a port
            hops.append(f"ssh://{user}[{target.hostname}]:{target.port}")
        else:
            hops.append(f"{user}{target.hostname}" + (f":{target.port}" if target.port != 22 else ""))
    return ",".join(hops)


# -- YAML out ---------------------------------------------------------------------------------
class _Unsafe(str):
    """Text Ansible must not render (written with the !unsafe tag)."""


def _unsafe(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, _Unsafe) and ("{{" in value or "{%" in value):
        return _Unsafe(value)
    if isinstance(value, Mapping):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unsafe(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    tag = "!unsafe" if isinstance(data, _Unsafe) else "tag:yaml.org,2002:str"
    style = "|" if "\n" in data else None
    return dumper.represent_scalar(tag, str(data), style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Unsafe, _represent_str)
# LineDict / LineList from yamlio, and any other mapping or list, as plain YAML
_Dumper.add_multi_representer(dict, yaml.representer.SafeRepresenter.represent_dict)
_Dumper.add_multi_representer(list, yaml.representer.SafeRepresenter.represent_list)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


def _write(path: Path, text: str) -> None:
    # Variables may hold secrets: the files are the person's alone.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        if hasattr(os, "fchmod"):
            os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
