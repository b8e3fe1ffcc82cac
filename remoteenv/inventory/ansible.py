"""Ansible inventories (INI, YAML, or a folder of them), read into remoteenv's Inventory model as
`ansible-inventory` reads them.

Each host's variables are worked out here as Ansible merges them (VARIABLE_PRECEDENCE's default), each
layer replacing the keys of the one before:

    the inventory file's `all` vars < its vars of the host's other groups < group_vars/all
    < group_vars/<group> < the inventory file's host vars < host_vars/<host>

where a host's groups are every group it is in, directly or through `children`, ordered by depth (a child
after its parents), then ansible_group_priority, then name. group_vars/ and host_vars/ are the folders
beside the inventory file, or in the inventory folder (ansible_varsfiles). The merged connection
variables then become remoteenv's connection settings (ansible_connection); every other variable is
kept as a variable. A host whose
connection remoteenv cannot make as Ansible would (ansible_connection=local, an ssh option it cannot
honour, a Jinja template) is refused when it is resolved; the rest of the inventory loads.
"""

from __future__ import annotations

import ast
import itertools
import math
import os
import re
import shlex
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteenv import yamlio
from remoteenv.errors import ConfigError
from remoteenv.inventory.ansible_connection import CONNECTION_VARS, REFUSED_KEY, SOURCES_KEY, connection
from remoteenv.inventory.ansible_varsfiles import VarsFiles
from remoteenv.inventory.model import Group, HostEntry, Inventory
from remoteenv.paths import text_lines
from remoteenv.yamlio import LineDict, kind_of

# Inventory metadata (a group's priority), not a variable, when an inventory file sets it.
_PRIORITY_VAR = "ansible_group_priority"
# Groups every Ansible inventory has; they are not listed among a host's groups.
_IMPLICIT_GROUPS = ("all", "ungrouped")

# Ansible's INI patterns (plugins/inventory/ini.py), comments after a section only with '#'.
_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_HOST_NAME = re.compile(r"^[\w](?:[\w.-]*[\w])?$")
_IPV6_CHARS = re.compile(r"^[0-9A-Fa-f:.]+$")
_RANGE = re.compile(r"\[([^\]]*)\]")


@dataclass
class _GroupDraft:
    name: str
    source: str
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, str] = field(default_factory=dict)  # variable -> "file:line"
    parents: list[str] = field(default_factory=list)
    declared: bool = False  # has a section / mapping of its own, not just a mention
    priority: int = 1

    def set(self, key: str, value: Any, where: str) -> None:
        if key == _PRIORITY_VAR:  # Ansible: int(value), kept as the group's priority only
            text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
            if not re.fullmatch(r"[-+]?[0-9]{1,9}", text):
                raise ConfigError(f"{where}: {_PRIORITY_VAR} must be a whole number, not {value!r}")
            self.priority = int(text)
            return
        self.vars[key] = value
        self.var_lines[key] = where


@dataclass
class _HostDraft:
    name: str
    source: str
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


class _Drafts:
    """Groups and hosts as the file declares them, before precedence is worked out."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the inventory: a file, or a folder of them
        self.current = path  # the file being read
        self.groups: dict[str, _GroupDraft] = {}
        self.hosts: dict[str, _HostDraft] = {}
        self.range_hosts = 0  # hosts made by [a:b] ranges so far

    def expand(self, pattern: str, where: str) -> tuple[list[str], int | None]:
        """expand_host_pattern, with all the ranges of the file together capped too."""
        names, port = expand_host_pattern(pattern, where)
        if len(names) > 1:
            self.range_hosts += len(names)
            if self.range_hosts > MAX_RANGE_HOSTS:
                raise ConfigError(f"{where}: the host ranges of {self.path} expand to more than "
                                  f"{MAX_RANGE_HOSTS:,} hosts", "list the hosts, or use fewer or smaller ranges")
        return names, port

    def group(self, name: str, source: str) -> _GroupDraft:
        if name not in self.groups:
            self.groups[name] = _GroupDraft(name, source)
        return self.groups[name]

    def add_child(self, parent: str, child: str, source: str) -> None:
        draft = self.group(child, source)
        if parent not in draft.parents:
            draft.parents.append(parent)

    def add_host(self, name: str, group: str, port: int | None, variables: dict[str, Any],
                 var_lines: dict[str, str], where: str) -> None:
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = _HostDraft(name, where)
            if port is not None:  # Ansible takes `host:port` only where the host first appears
                host.vars["ansible_port"], host.var_lines["ansible_port"] = port, where
        # Ansible sets a variable on the group of that name when there is one (InventoryData.set_variable
        # looks groups up first): `[bastion]` + `bastion ansible_user=x` gives group bastion that variable
        same_name = self.groups.get(name)
        for key, value in variables.items():
            if same_name is not None and same_name.declared:
                same_name.set(key, value, var_lines.get(key, where))
            else:
                host.vars[key] = value
                host.var_lines[key] = var_lines.get(key, where)
        if group != "all" and group not in host.groups:
            host.groups.append(group)


# ---------------------------------------------------------------- shared helpers


# A range is a few bytes that can stand for any number of hosts: `h[1:999999]` is a million.
MAX_PATTERN_HOSTS = 10_000  # hosts one pattern may expand to
MAX_RANGE_HOSTS = 100_000  # hosts all the ranges of one inventory may expand to
_NUMBER = re.compile(r"[0-9]{1,9}")


def expand_host_pattern(pattern: str, where: str, limit: int = MAX_PATTERN_HOSTS) -> tuple[list[str], int | None]:
    """`web[01:03].lan:2222` -> (["web01.lan", "web02.lan", "web03.lan"], 2222), as Ansible does.

    A pattern that would expand to more than `limit` hosts is a ConfigError, found before expanding.
    """
    port: int | None = None
    text = pattern.strip()
    bracketed = re.match(r"^\[([^\]]+)\]:([0-9]+)$", text)
    if bracketed and _is_ipv6(bracketed[1]):
        text, port = bracketed[1], _port_number(bracketed[2], pattern, where)
    elif not _is_ipv6(text):
        with_port = re.match(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$", text)
        if with_port:
            text, port = with_port[1], _port_number(with_port[2], pattern, where)
        elif text.endswith(":"):
            raise ConfigError(f"{where}: host pattern {pattern!r} ends in ':' without a port")
    names = _expand_ranges(text, where, limit) if "[" in text else [text]
    for name in names:
        if not (_HOST_NAME.match(name) or _is_ipv6(name)):
            raise ConfigError(f"{where}: {name!r} is not a valid host name",
                              "host names are letters, digits, '.', '-' and '_', with [a:b] ranges")
    return names, port


def _port_number(text: str, pattern: str, where: str) -> int:
    if len(text) > 5 or not 0 < int(text) < 65536:
        raise ConfigError(f"{where}: port {text[:12]} in {pattern[:80]!r} is not from 1 to 65535")
    return int(text)


def _is_ipv6(text: str) -> bool:
    # one or two colons are a port or a [a:b:step] range; an IPv6 address has '::' or seven
    return bool(_IPV6_CHARS.match(text)) and ("::" in text or text.count(":") == 7)


def _expand_ranges(text: str, where: str, limit: int = MAX_PATTERN_HOSTS) -> list[str]:
    """Every name of a pattern with [a:b] / [a:b:step] ranges; their product is counted first."""
    parts: list[Sequence[str]] = []
    position = 0
    for match in _RANGE.finditer(text):
        parts += [[text[position: match.start()]], _range(match[1], where)]
        position = match.end()
    parts.append([text[position:]])
    count = math.prod(len(part) for part in parts)
    if count > limit:
        raise ConfigError(f"{where}: host pattern {text[:80]!r} expands to {count:,} hosts, "
                          f"more than the {limit:,} remoteenv takes from one pattern",
                          "split the range over several lines, or list the hosts")
    return ["".join(names) for names in itertools.product(*parts)]


def _range(spec: str, where: str) -> Sequence[str]:
    """The values of one `[begin:end]` or `[begin:end:step]`, not yet expanded (a range is lazy)."""
    bounds = spec.split(":")
    if len(bounds) not in (2, 3) or not bounds[1]:
        raise ConfigError(f"{where}: host range [{spec[:40]}] must be [begin:end] or [begin:end:step]")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not _NUMBER.fullmatch(step_text) or int(step_text) < 1:
        raise ConfigError(f"{where}: host range [{spec[:40]}] needs a positive whole step")
    step = int(step_text)
    letters = string.ascii_letters
    if len(begin) == len(end) == 1 and begin in letters and end in letters:
        if letters.index(begin) > letters.index(end):
            raise ConfigError(f"{where}: host range [{spec}] must have begin <= end")
        return letters[letters.index(begin): letters.index(end) + 1: step]
    if _NUMBER.fullmatch(begin) and _NUMBER.fullmatch(end):
        width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
        if width and len(end) != width:
            raise ConfigError(f"{where}: host range [{spec}] must have begin and end of equal width",
                              "write it like [01:10]")
        numbers = range(int(begin), int(end) + 1, step)
        if not numbers:
            raise ConfigError(f"{where}: host range [{spec}] must have begin <= end")
        return _Numbers(numbers, width)
    raise ConfigError(f"{where}: host range [{spec[:40]}] must be numbers (up to 9 digits) or single letters")


@dataclass(frozen=True)
class _Numbers(Sequence[str]):
    """The numbers of a range as zero-padded text, made only when expanded."""

    numbers: range
    width: int

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, index):  # type: ignore[override]
        return str(self.numbers[index]).zfill(self.width)


def _literal(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal when it parses as one, else the text.

    Only literals a YAML or JSON value could be (text, numbers, booleans, None, lists, tuples as
    lists, mappings with scalar keys, not too deep or long) are taken; anything else
    (`{1j: 2}`, `{1, 2}`, b'x', a 5,000-digit number) stays the text it was written as, so every
    variable can be printed as JSON and written as YAML.
    """
    if not text or text[0] not in "-+0123456789.[{(\"'TFN":  # cheap: most values are plain words
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    plain = _plain(value, 0)
    return text if plain is _NOT_PLAIN else plain


_NOT_PLAIN = object()
_MAX_LITERAL_DEPTH = 32


def _plain(value: Any, depth: int) -> Any:
    if isinstance(value, (str, bool, float, type(None))):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 1000 else _NOT_PLAIN
    if depth >= _MAX_LITERAL_DEPTH:
        return _NOT_PLAIN
    if isinstance(value, bytes):  # Ansible turns b'..' into its text
        try:
            return value.decode()
        except UnicodeDecodeError:
            return _NOT_PLAIN
    if isinstance(value, (set, frozenset)):
        value = list(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(item, depth + 1) for item in value]
        return _NOT_PLAIN if any(item is _NOT_PLAIN for item in items) else items
    if isinstance(value, dict):
        pairs = {k: _plain(v, depth + 1) for k, v in value.items()}
        keys_ok = all(isinstance(k, (str, int, float, bool, type(None))) and _plain(k, depth) is not _NOT_PLAIN
                      for k in pairs)
        return pairs if keys_ok and all(v is not _NOT_PLAIN for v in pairs.values()) else _NOT_PLAIN
    return _NOT_PLAIN


# ---------------------------------------------------------------- precedence


def _depths(drafts: _Drafts) -> dict[str, int]:
    """Each group's distance from `all` (the longest path), as Ansible counts it."""
    depth: dict[str, int] = {"all": 0}
    visiting: set[str] = set()

    def of(name: str) -> int:
        if name in depth:
            return depth[name]
        draft = drafts.groups.get(name)
        if name in visiting:
            raise ConfigError(f"{draft.source if draft else drafts.path}: group '{name}' is its own "
                              "ancestor (a loop of :children)")
        visiting.add(name)
        parents = draft.parents if draft and draft.parents else ["all"]
        depth[name] = 1 + max(of(p) for p in parents)
        visiting.discard(name)
        return depth[name]

    for name in drafts.groups:
        of(name)
    return depth


def _ancestors(drafts: _Drafts, name: str) -> list[str]:
    seen: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        draft = drafts.groups.get(current)
        stack.extend(draft.parents if draft else [])
    return seen


def _finish(drafts: _Drafts, fmt: str, basedir: Path) -> Inventory:
    inv = Inventory(path=drafts.path, format=fmt)
    depth = _depths(drafts)
    files = VarsFiles(basedir)
    for name, draft in drafts.groups.items():
        group = Group(name, {}, {}, draft.source)
        if name == "all":
            group.name = "defaults"
            inv.defaults = group
        elif name != "ungrouped":
            inv.groups[name] = group
    all_group = drafts.groups["all"]
    # where a group's own variable came from, with the group named ("group web (hosts.ini:7)")
    labelled = {name: {k: f"{'defaults' if name == 'all' else 'group ' + name} ({w})" for k, w in g.var_lines.items()}
                for name, g in drafts.groups.items()}
    ancestors: dict[str, list[str]] = {}
    memo: dict = {}
    # hosts in the same groups share everything below their own variables: worked out once
    by_groups: dict[tuple[str, ...], tuple[list[str], dict[str, Any], dict[str, str]]] = {}
    for name, host in drafts.hosts.items():
        key = tuple(host.groups)
        if key not in by_groups:
            for direct in key:
                if direct not in ancestors:
                    ancestors[direct] = _ancestors(drafts, direct)
            member_of = {g for direct in key for g in ancestors[direct]}
            member_of.discard("all")
            # Ansible's reconcile: `ungrouped` holds the hosts in no other group, and only those
            member_of = (member_of - {"ungrouped"}) or {"ungrouped"}
            ordered = sorted(member_of, key=lambda g: (depth[g], drafts.groups[g].priority, g))
            layers = [(all_group.vars, labelled["all"])]
            layers += [(drafts.groups[g].vars, labelled[g]) for g in ordered]
            layers += [(layer.vars, layer.origins) for g in ("all", *ordered) for layer in files.group(g)]
            base: dict[str, Any] = {}
            base_origins: dict[str, str] = {}
            for variables, lines in layers:
                base.update(variables)
                base_origins.update(lines)
            by_groups[key] = (ordered, base, base_origins)
        ordered, base, base_origins = by_groups[key]
        merged = dict(base)
        origins = dict(base_origins)
        for variables, lines in [(host.vars, host.var_lines)] + [(layer.vars, layer.origins)
                                                                 for layer in files.host(name)]:
            merged.update(variables)
            origins.update(lines)
        made = connection(name, merged, origins, host.source, memo)
        settings: dict[str, Any] = dict(made.settings)
        settings[SOURCES_KEY] = made.sources
        if made.refused:
            settings[REFUSED_KEY] = made.refused
        variables = {k: v for k, v in merged.items() if k not in CONNECTION_VARS}
        # listed deepest first, then higher priority, then the later name: the order they win in
        groups = [g for g in reversed(ordered) if g != "ungrouped"]
        inv.entries[name] = HostEntry(name, settings, groups, variables, host.source)
    return inv


# ---------------------------------------------------------------- INI


def parse_ini(text: str, path: Path) -> Inventory:
    """An Ansible INI inventory: [group], [group:vars], [group:children], host lines with vars."""
    drafts = _new_drafts(path)
    _fill_ini(drafts, text, path)
    return _finish(drafts, "ansible-ini", path.parent)


def _new_drafts(path: Path) -> _Drafts:
    drafts = _Drafts(path)
    for implicit in _IMPLICIT_GROUPS:
        drafts.group(implicit, f"{path}:1").declared = True
    return drafts


def _fill_ini(drafts: _Drafts, text: str, path: Path) -> None:
    drafts.current = path
    group, state = "ungrouped", "hosts"
    # as Ansible's INI plugin: a group named in :children before its own section, or given only
    # a :vars section, waits for that section; one that never comes is an error
    pending: dict[str, tuple[str, str, list[str]]] = {}  # group -> (where, state, parents)
    for number, raw in enumerate(text_lines(text), start=1):
        where = f"{path}:{number}"
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        section = _SECTION.match(line)
        if section:
            group, state = section[1], section[2] or "hosts"
            if state not in ("hosts", "children", "vars"):
                raise ConfigError(f"{where}: section [{group}:{state}] has unknown type '{state}'",
                                  "use [name], [name:vars] or [name:children]")
            draft = drafts.groups.get(group)
            if draft is None or not draft.declared:
                draft = drafts.group(group, where)
                draft.source, draft.declared = where, True
                if state == "vars" and group not in pending:
                    pending[group] = (where, "vars", [])
            if group in pending and state != "vars":
                _settle(drafts, group, pending)
            continue
        if line.startswith("[") and line.endswith("]"):
            raise ConfigError(f"{where}: not a valid section header: {line!r}",
                              "write [name], [name:vars] or [name:children], without spaces")
        if state == "hosts":
            _ini_host_line(drafts, group, line, where)
        elif state == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise ConfigError(f"{where}: expected name=value in [{group}:vars], got {line!r}")
            drafts.groups[group].set(key.strip(), _literal(value.strip()), where)
        else:
            child = _GROUP_NAME.match(line)
            if not child:
                raise ConfigError(f"{where}: expected a group name in [{group}:children], got {line!r}")
            name = child[1]
            known = drafts.groups.get(name)
            if known is not None and known.declared:
                drafts.add_child(group, name, where)
            elif name in pending:
                pending[name][2].append(group)
            else:
                pending[name] = (where, "children", [group])
    for name, (where, _, _) in pending.items():
        raise ConfigError(f"{where}: group '{name}' is used but never defined",
                          f"add a [{name}] section (it may be empty)")


def _settle(drafts: _Drafts, group: str, pending: dict[str, tuple[str, str, list[str]]]) -> None:
    """A pending group got its section: link it to the parents that named it."""
    where, state, parents = pending.pop(group)
    if state != "children":
        return
    for parent in parents:
        drafts.add_child(parent, group, where)
        if parent in pending and pending[parent][1] == "children":
            _settle(drafts, parent, pending)


def _ini_host_line(drafts: _Drafts, group: str, line: str, where: str) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot read host line {line!r}: {exc}") from None
    if not words:
        return
    names, port = drafts.expand(words[0], where)
    variables: dict[str, Any] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise ConfigError(f"{where}: expected name=value after the host name, got {word!r}",
                              "host lines are: NAME [name=value ...]")
        variables[key] = _literal(value)
    for name in names:
        drafts.add_host(name, group, port, variables, {}, where)


# ---------------------------------------------------------------- YAML


def parse_yaml(data: Any, path: Path) -> Inventory:
    """An Ansible YAML inventory: `all: {hosts:, vars:, children: {group: {...}}}` (any depth).

    Keys are applied in the order written, as Ansible does: a host's variables given twice, or a
    group's, end as the later ones.
    """
    drafts = _new_drafts(path)
    _fill_yaml(drafts, data, path)
    return _finish(drafts, "ansible-yaml", path.parent)


def _fill_yaml(drafts: _Drafts, data: Any, path: Path) -> None:
    source = str(path)
    drafts.current = path
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: an Ansible YAML inventory must be a mapping of groups")
    for name, block in data.items():
        _yaml_group(drafts, str(name), block, yamlio.where(source, data, name))


def _yaml_group(drafts: _Drafts, name: str, block: Any, where: str) -> None:
    source = str(drafts.current)
    draft = drafts.group(name, where)
    if not draft.declared:
        draft.source, draft.declared = where, True
    if block is None:
        return
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: group '{name}' must be a mapping with hosts, vars or children, "
                          f"not {kind_of(block)}")
    for key in block:
        if key not in ("hosts", "vars", "children"):
            raise ConfigError(f"{yamlio.where(source, block, key)}: unknown key '{key}' in group '{name}'",
                              "a group has only hosts:, vars: and children:")
    for key in block:
        if key == "vars":
            variables = _yaml_mapping(block, "vars", name, source)
            for var, value in variables.items():
                draft.set(str(var), value, yamlio.where(source, variables, var))
        elif key == "hosts":
            _yaml_hosts(drafts, name, _yaml_mapping(block, "hosts", name, source))
        else:
            children = _yaml_mapping(block, "children", name, source)
            for child, child_block in children.items():
                _yaml_group(drafts, str(child), child_block, yamlio.where(source, children, child))
                drafts.add_child(name, str(child), yamlio.where(source, children, child))


def _yaml_hosts(drafts: _Drafts, group: str, hosts: dict) -> None:
    source = str(drafts.current)
    for pattern, host_vars in hosts.items():
        at = yamlio.where(source, hosts, pattern)
        if not isinstance(pattern, str):
            raise ConfigError(f"{at}: host name {pattern!r} must be a string", "quote it")
        if host_vars is not None and not isinstance(host_vars, dict):
            raise ConfigError(f"{at}: host '{pattern}' must map to its variables (or nothing), "
                              f"not {kind_of(host_vars)}")
        names, port = drafts.expand(pattern, at)
        variables = {str(k): v for k, v in (host_vars or {}).items()}
        lines = {str(k): yamlio.where(source, host_vars, k) for k in (host_vars or {})}
        for host in names:
            drafts.add_host(host, group, port, variables, lines, at)


def _yaml_mapping(block: dict, key: str, group: str, source: str) -> dict:
    value = block.get(key)
    if value is None:
        return {}
    if isinstance(value, str) and key != "vars":
        one = LineDict({value: None})  # Ansible reads `hosts: h1` as one host
        line = block.line_of(key) if hasattr(block, "line_of") else 0
        one.line, one.lines = line, {value: line}
        return one
    if not isinstance(value, dict):
        raise ConfigError(f"{yamlio.where(source, block, key)}: '{key}' of group '{group}' must be a mapping, "
                          f"not {kind_of(value)}")
    return value


# ---------------------------------------------------------------- a folder of inventories

# What Ansible skips in an inventory folder (inventory/manager.py IGNORED, INVENTORY_IGNORE_EXTS' default).
_SKIPPED_NAMES = re.compile(r"^\.|^host_vars$|^group_vars$|^vars_plugins$")
_SKIPPED_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry")
_YAML_EXTS = ("", ".yaml", ".yml", ".json")
_MAX_SOURCES = 1_000


def parse_folder(path: Path) -> Inventory:
    """A folder as Ansible reads it: every file in it and its sub-folders (by name), into one inventory.

    group_vars/ and host_vars/ are read from the folder itself. An executable file is an inventory
    script to Ansible, which remoteenv does not run.
    """
    drafts = _new_drafts(path)
    sources = _folder_sources(path)
    if not sources:
        raise ConfigError(f"{path}: no inventory files in this folder", "give the path of an inventory file")
    for source in sources:
        _fill_source(drafts, source)
    return _finish(drafts, "ansible-folder", path)


def _folder_sources(folder: Path) -> list[Path]:
    found: list[Path] = []
    for name in sorted(os.listdir(folder)):
        if _SKIPPED_NAMES.search(name) or name.endswith(_SKIPPED_EXTS):
            continue
        full = folder / name
        found.extend(_folder_sources(full) if full.is_dir() else [full])
        if len(found) > _MAX_SOURCES:
            raise ConfigError(f"{folder}: more than {_MAX_SOURCES:,} inventory files", "is this the right folder?")
    return found


def _fill_source(drafts: _Drafts, path: Path) -> None:
    from remoteenv import paths

    if os.access(path, os.X_OK):
        raise ConfigError(f"{path}: is executable, an inventory script to Ansible, which remoteenv does not run",
                          "write its output (ansible-inventory -i SCRIPT --list -y) to a file, or clear the x bit")
    text = paths.read_text_file(path, "inventory")
    ext = path.suffix.lower()
    if ext in _YAML_EXTS:
        try:
            data = yamlio.load_text(text, str(path))
        except ConfigError:
            if ext:
                raise
            data = None  # no extension and not YAML: Ansible reads it as INI
        if isinstance(data, dict) and data:
            _fill_yaml(drafts, data, path)
            return
        if ext:
            raise ConfigError(f"{path}: not an Ansible YAML inventory (a mapping of groups)")
    _fill_ini(drafts, text, path)
