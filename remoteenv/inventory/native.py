"""remoteenv's own inventory format (configs/hosts.example.yaml documents it)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.inventory.model import Group, HostEntry, Inventory
from remoteenv.yamlio import LineDict, kind_of, where

_SETTING_KEYS = {"hostname", "user", "port", "identity_file", "proxy_jump"}
_HOST_KEYS = _SETTING_KEYS | {"groups", "vars"}
_GROUP_KEYS = _SETTING_KEYS | {"vars", "hosts"}
_TOP_KEYS = {"defaults", "groups", "hosts"}


def _fail(source: str, container: Any, key: Any, problem: str, hint: str | None = None) -> None:
    raise ConfigError(f"{where(source, container, key)}: {problem}", hint)


def _check_keys(source: str, block: LineDict, allowed: set[str], what: str) -> None:
    for key in block:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            _fail(source, block, key, f"unknown key '{key}' in {what}",
                  f"{hint}known keys: {', '.join(sorted(allowed))}")


def _name(source: str, container: Any, key: Any, value: Any, what: str) -> str:
    name = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not name or any(c.isspace() for c in name):
        _fail(source, container, key, f"{what} {value!r} is not a valid name",
              "names are non-empty and have no spaces")
    return name


def _mapping(source: str, parent: Any, key: Any, value: Any, what: str) -> LineDict:
    if value is None:
        empty = LineDict()
        empty.lines = {}
        empty.line = parent.line_of(key) if hasattr(parent, "line_of") else 0
        return empty
    if not isinstance(value, dict):
        _fail(source, parent, key, f"{what} must be a mapping, not {kind_of(value)}")
    return value


def _settings(source: str, block: LineDict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _SETTING_KEYS & set(block):
        value = block[key]
        if key == "port":
            text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
            if not text.isdigit() or not 0 < int(text) < 65536:
                _fail(source, block, key, f"port must be a number from 1 to 65535, not {value!r}")
            out["port"] = int(text)
        elif key == "identity_file":
            files = value if isinstance(value, list) else [value]
            if not files or not all(isinstance(f, str) and f for f in files):
                _fail(source, block, key, "identity_file must be a path or a non-empty list of paths")
            out["identity_files"] = list(files)
        else:
            if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
                _fail(source, block, key, f"{key} must be a non-empty string")
            out[key] = str(value)
    return out


def _vars(source: str, block: LineDict) -> dict[str, Any]:
    return dict(_mapping(source, block, "vars", block.get("vars"), "vars"))


def _hosts(source: str, data: LineDict) -> LineDict:
    """`hosts:` as a mapping of name -> settings; a plain list of names is accepted too."""
    hosts = data.get("hosts")
    if not isinstance(hosts, list):
        return _mapping(source, data, "hosts", hosts, "hosts")
    as_mapping = LineDict()
    as_mapping.line, as_mapping.lines = getattr(hosts, "line", 0), {}
    for index, item in enumerate(hosts):
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            _fail(source, hosts, index, "hosts: must map names to settings, or list host names",
                  "see configs/hosts.example.yaml")
        as_mapping[item] = None
        as_mapping.lines[item] = hosts.line_of(index) if hasattr(hosts, "line_of") else 0
    return as_mapping


def parse(data: Any, path: Path) -> Inventory:
    source = str(path)
    inv = Inventory(path=path, format="remoteenv")
    if data is None:
        return inv
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: an inventory must be a mapping with 'hosts:'",
                          "see configs/hosts.example.yaml")
    _check_keys(source, data, _TOP_KEYS, "the inventory")

    defaults = _mapping(source, data, "defaults", data.get("defaults"), "defaults")
    _check_keys(source, defaults, _SETTING_KEYS | {"vars"}, "defaults")
    inv.defaults = Group("defaults", _settings(source, defaults), _vars(source, defaults),
                         where(source, data, "defaults"))

    members: dict[str, list[str]] = {}
    groups = _mapping(source, data, "groups", data.get("groups"), "groups")
    for gname, gblock in groups.items():
        gblock = _mapping(source, groups, gname, gblock, f"group '{gname}'")
        _check_keys(source, gblock, _GROUP_KEYS, f"group '{gname}'")
        inv.groups[str(gname)] = Group(str(gname), _settings(source, gblock), _vars(source, gblock),
                                       where(source, groups, gname))
        listed = gblock.get("hosts") or []
        if not isinstance(listed, list):
            _fail(source, gblock, "hosts", "a group's hosts must be a list of host names")
        for index, member in enumerate(listed):
            members.setdefault(_name(source, listed, index, member, "host name"), []).append(str(gname))

    hosts = _hosts(source, data)
    for key, block in hosts.items():
        name = _name(source, hosts, key, key, "host name")
        block = _mapping(source, hosts, key, block, f"host '{name}'")
        _check_keys(source, block, _HOST_KEYS, f"host '{name}'")
        own_groups = block.get("groups") or []
        if isinstance(own_groups, str):
            own_groups = [own_groups]
        if not isinstance(own_groups, list):
            _fail(source, block, "groups", "groups must be a list of group names")
        all_groups = [_name(source, block, "groups", g, "group name") for g in own_groups]
        all_groups += [g for g in members.pop(name, []) if g not in all_groups]
        for g in all_groups:
            inv.groups.setdefault(g, Group(g, source=where(source, block, "groups")))
        inv.entries[name] = HostEntry(name, _settings(source, block), all_groups,
                                      _vars(source, block), where(source, hosts, name))
    for name, gs in members.items():
        # listed under a group only: a host with no settings of its own
        inv.entries[name] = HostEntry(name, {}, gs, {}, inv.groups[gs[0]].source)
    return inv
