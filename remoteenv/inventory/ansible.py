"""Ansible inventories (INI and YAML), read into remoteenv's Inventory model.

Connection variables become settings (`ansible_host` -> hostname, `ansible_user` -> user,
`ansible_port` -> port, `ansible_ssh_private_key_file` -> identity_files, `-J X` or
`ProxyJump=X` in `ansible_ssh_common_args` -> proxy_jump, and `-i KEY` there -> further
identity files); every other variable is kept as a variable. Precedence follows Ansible:
host > child group > parent group > `all`; groups at the same depth are ordered by
`ansible_group_priority`, then by name (the later name wins).
"""

from __future__ import annotations

import ast
import itertools
import math
import re
import shlex
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteenv import yamlio
from remoteenv.errors import ConfigError
from remoteenv.inventory.model import Group, HostEntry, Inventory
from remoteenv.paths import text_lines
from remoteenv.yamlio import LineDict, kind_of

# Ansible's own spellings of each connection setting (older `ansible_ssh_*` names included).
_SETTING_VARS = {
    "ansible_host": "hostname",
    "ansible_ssh_host": "hostname",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_ssh_private_key_file": "identity_files",
    "ansible_private_key_file": "identity_files",
}
_SSH_ARG_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
# Inventory metadata, not a variable anyone reads.
_PRIORITY_VAR = "ansible_group_priority"
# Groups every Ansible inventory has; they are not listed among a host's groups.
_IMPLICIT_GROUPS = ("all", "ungrouped")

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")
_HOST_NAME = re.compile(r"^[\w](?:[\w.-]*[\w])?$")
_IPV6_CHARS = re.compile(r"^[0-9A-Fa-f:.]+$")
_RANGE = re.compile(r"\[([^\]]*)\]")


@dataclass
class _GroupDraft:
    name: str
    source: str
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, str] = field(default_factory=dict)  # variable -> "file:line"
    vars_source: str | None = None
    parents: list[str] = field(default_factory=list)
    declared: bool = False  # has a section / mapping of its own, not just a mention


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
        self.path = path
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

    def add_host(self, name: str, group: str, variables: dict[str, Any], where: str,
                 var_lines: dict[str, str]) -> None:
        host = self.hosts.setdefault(name, _HostDraft(name, where))
        host.vars.update(variables)
        host.var_lines.update(var_lines)
        if group not in _IMPLICIT_GROUPS and group not in host.groups:
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


def _from_ssh_args(args: str, where: str) -> tuple[str | None, list[str], str]:
    """Pull `-J X` / `-o ProxyJump=X` and `-i KEY` / `-o IdentityFile=KEY` out of ssh arguments.

    Returns (jump, keys, the other arguments).
    """
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot split ssh arguments {args!r}: {exc}") from None
    jump: str | None = None
    keys: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        flag, value, used = word[:2], word[2:], 1
        if flag in ("-J", "-i", "-o") and not value and i + 1 < len(words):
            value, used = words[i + 1], 2
        if flag == "-o" and value:
            option, _, option_value = value.replace("=", " ", 1).partition(" ")
            flag, value = {"proxyjump": "-J", "identityfile": "-i"}.get(option.lower(), ""), option_value.strip()
        if flag in ("-J", "-i") and value:
            if flag == "-J":
                jump = value
            else:
                keys.append(value)
            i += used
            continue
        rest.append(word)
        i += 1
    return jump, keys, shlex.join(rest)


def _split_vars(variables: dict[str, Any], lines: dict[str, str], fallback: str
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ansible variables -> (remoteenv connection settings, the remaining variables)."""
    settings: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    keys: list[str] = []
    more_keys: list[str] = []  # -i in ssh arguments: tried after the private key file
    for key, value in variables.items():
        where = lines.get(key, fallback)
        field_name = _SETTING_VARS.get(key)
        if field_name is None and key not in _SSH_ARG_VARS:
            if key != _PRIORITY_VAR:
                rest[key] = value
            continue
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            raise ConfigError(f"{where}: {key} is a Jinja template, which remoteenv does not evaluate",
                              "write the value out, or put the host in ~/.ssh/config and name it there")
        if key in _SSH_ARG_VARS:
            jump, found_keys, others = _from_ssh_args(str(value), where)
            if jump:
                settings["proxy_jump"] = jump
            more_keys += found_keys
            if others:
                rest[key] = others
        elif field_name == "port":
            settings["port"] = _port(value, key, where)
        elif field_name == "identity_files":
            files = value if isinstance(value, list) else [value]
            if not all(isinstance(f, str) and f for f in files):
                raise ConfigError(f"{where}: {key} must be a path")
            keys = list(files)
        else:
            if value is None or isinstance(value, (bool, dict, list)) or str(value) == "":
                raise ConfigError(f"{where}: {key} must be a non-empty string, not {value!r}")
            settings[field_name] = str(value)
    if keys or more_keys:
        settings["identity_files"] = keys + [k for k in more_keys if k not in keys]
    return settings, rest


def _port(value: Any, key: str, where: str) -> int:
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 0 < int(text) < 65536:
        raise ConfigError(f"{where}: {key} must be a number from 1 to 65535, not {value!r}")
    return int(text)


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


def _finish(drafts: _Drafts, fmt: str) -> Inventory:
    inv = Inventory(path=drafts.path, format=fmt)
    depth = _depths(drafts)
    priority: dict[str, int] = {}
    for name, draft in drafts.groups.items():
        raw = draft.vars.get(_PRIORITY_VAR, 1)
        where = draft.var_lines.get(_PRIORITY_VAR, draft.source)
        if not isinstance(raw, (int, str)) or isinstance(raw, bool) or not re.fullmatch(r"-?[0-9]{1,9}", str(raw)):
            raise ConfigError(f"{where}: {_PRIORITY_VAR} must be a whole number, not {raw!r}")
        priority[name] = int(raw)
        settings, variables = _split_vars(draft.vars, draft.var_lines, draft.source)
        group = Group(name, settings, variables, draft.vars_source or draft.source)
        if name == "all":
            group.name = "defaults"
            inv.defaults = group
        elif name != "ungrouped":
            inv.groups[name] = group
    for name, host in drafts.hosts.items():
        settings, variables = _split_vars(host.vars, host.var_lines, host.source)
        member_of = {g for direct in host.groups for g in _ancestors(drafts, direct)}
        member_of -= set(_IMPLICIT_GROUPS)
        # first group wins in resolve(): deepest first, then higher priority, then the later name
        ordered = sorted(member_of, key=lambda g: (depth[g], priority.get(g, 1), g), reverse=True)
        inv.entries[name] = HostEntry(name, settings, ordered, variables, host.source)
    return inv


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
    if isinstance(value, (list, tuple)):
        items = [_plain(item, depth + 1) for item in value]
        return _NOT_PLAIN if any(item is _NOT_PLAIN for item in items) else items
    if isinstance(value, dict):
        pairs = {k: _plain(v, depth + 1) for k, v in value.items()}
        keys_ok = all(isinstance(k, (str, int, float, bool, type(None))) and _plain(k, depth) is not _NOT_PLAIN
                      for k in pairs)
        return pairs if keys_ok and all(v is not _NOT_PLAIN for v in pairs.values()) else _NOT_PLAIN
    return _NOT_PLAIN


# ---------------------------------------------------------------- INI


def parse_ini(text: str, path: Path) -> Inventory:
    """An Ansible INI inventory: [group], [group:vars], [group:children], host lines with vars."""
    drafts = _Drafts(path)
    drafts.group("all", f"{path}:1").declared = True
    group, state = "ungrouped", "hosts"
    pending: dict[str, str] = {}  # group mentioned in :children or :vars -> where, until declared
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
            draft = drafts.group(group, where)
            if state == "vars":
                draft.vars_source = draft.vars_source or where
                if not draft.declared:
                    pending.setdefault(group, where)
            else:
                if not draft.declared:
                    draft.source, draft.declared = where, True
            continue
        if line.startswith("["):
            raise ConfigError(f"{where}: not a valid section header: {line!r}",
                              "write [name], [name:vars] or [name:children], without spaces")
        if state == "hosts":
            _ini_host_line(drafts, group, line, where)
        elif state == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
                raise ConfigError(f"{where}: expected name=value in [{group}:vars], got {line!r}")
            drafts.groups[group].vars[key.strip()] = _literal(value.strip())
            drafts.groups[group].var_lines[key.strip()] = where
        else:
            child = _GROUP_NAME.match(line)
            if not child:
                raise ConfigError(f"{where}: expected a group name in [{group}:children], got {line!r}")
            drafts.add_child(group, child[1], where)
            if not drafts.groups[child[1]].declared:
                pending.setdefault(child[1], where)
    for name, where in pending.items():
        if not drafts.groups[name].declared:
            raise ConfigError(f"{where}: group '{name}' is used but never defined",
                              f"add a [{name}] section (it may be empty)")
    return _finish(drafts, "ansible-ini")


def _ini_host_line(drafts: _Drafts, group: str, line: str, where: str) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot read host line {line!r}: {exc}") from None
    if not words:
        return
    names, port = drafts.expand(words[0], where)
    variables: dict[str, Any] = {}
    if port is not None:
        variables["ansible_port"] = port
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ConfigError(f"{where}: expected name=value after the host name, got {word!r}",
                              "host lines are: NAME [name=value ...]")
        variables[key] = _literal(value)
    for name in names:
        drafts.add_host(name, group, variables, where, dict.fromkeys(variables, where))


# ---------------------------------------------------------------- YAML


def parse_yaml(data: Any, path: Path) -> Inventory:
    """An Ansible YAML inventory: `all: {hosts:, vars:, children: {group: {...}}}` (any depth)."""
    source = str(path)
    drafts = _Drafts(path)
    drafts.group("all", f"{source}:1").declared = True
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: an Ansible YAML inventory must be a mapping of groups")
    for name, block in data.items():
        _yaml_group(drafts, str(name), block, yamlio.where(source, data, name))
    return _finish(drafts, "ansible-yaml")


def _yaml_group(drafts: _Drafts, name: str, block: Any, where: str) -> None:
    source = str(drafts.path)
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
    variables = _yaml_mapping(block, "vars", name, source)
    if variables:
        draft.vars_source = draft.vars_source or yamlio.where(source, block, "vars")
        for key, value in variables.items():
            draft.vars[str(key)] = value
            draft.var_lines[str(key)] = yamlio.where(source, variables, key)
    hosts = _yaml_mapping(block, "hosts", name, source)
    for pattern, host_vars in hosts.items():
        at = yamlio.where(source, hosts, pattern)
        if not isinstance(pattern, str):
            raise ConfigError(f"{at}: host name {pattern!r} must be a string", "quote it")
        if host_vars is not None and not isinstance(host_vars, dict):
            raise ConfigError(f"{at}: host '{pattern}' must map to its variables (or nothing), "
                              f"not {kind_of(host_vars)}")
        names, port = drafts.expand(pattern, at)
        variables = {} if port is None else {"ansible_port": port}
        lines = dict.fromkeys(variables, at)
        for key, value in (host_vars or {}).items():
            variables[str(key)] = value
            lines[str(key)] = yamlio.where(source, host_vars, key)
        for host in names:
            drafts.add_host(host, name, variables, at, lines)
    children = _yaml_mapping(block, "children", name, source)
    for child, child_block in children.items():
        drafts.add_child(name, str(child), yamlio.where(source, children, child))
        _yaml_group(drafts, str(child), child_block, yamlio.where(source, children, child))


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
