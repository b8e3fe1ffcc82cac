"""remoteenv's own inventory format (configs/hosts.example.yaml documents it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.inventory.model import Group, HostEntry, Inventory
from remoteenv.yamlio import LineDict, where

_SETTING_KEYS = {"hostname", "user", "port", "identity_file", "proxy_jump"}
_HOST_KEYS = _SETTING_KEYS | {"groups", "vars"}
_GROUP_KEYS = _SETTING_KEYS | {"vars", "hosts"}
_TOP_KEYS = {"defaults", "groups", "hosts"}


def _fail(source: str, container: Any, key: Any, problem: str, hint: str | None = None) -> None:
    raise ConfigError(f"{where(source, container, key)}: {problem}", hint)


def _check_keys(source: str, block: LineDict, allowed: set[str], what: str) -> None:
    for key in block:
        if key not in allowed:
            _fail(source, block, key, f"unknown key '{key}' in {what}",
                  f"known keys: {', '.join(sorted(allowed))}")


def _mapping(source: str, parent: Any, key: Any, value: Any, what: str) -> LineDict:
    if value is None:
        empty = LineDict()
        empty.lines = {}
        empty.line = parent.line_of(key) if hasattr(parent, "line_of") else 0
        return empty
    if not isinstance(value, dict):
        _fail(source, parent, key, f"{what} must be a mapping, not {type(value).__name__}")
    return value


def _settings(source: str, block: LineDict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _SETTING_KEYS & set(block):
        value = block[key]
        if key == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                _fail(source, block, key, f"port must be a number from 1 to 65535, not {value!r}")
            out["port"] = value
        elif key == "identity_file":
            files = value if isinstance(value, list) else [value]
            if not all(isinstance(f, str) and f for f in files):
                _fail(source, block, key, "identity_file must be a path or a list of paths")
            out["identity_files"] = list(files)
        else:
            if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
                _fail(source, block, key, f"{key} must be a non-empty string")
            out[key] = str(value)
    return out


def _vars(source: str, block: LineDict) -> dict[str, Any]:
    return dict(_mapping(source, block, "vars", block.get("vars"), "vars"))


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
        for member in listed:
            members.setdefault(str(member), []).append(str(gname))

    hosts = _mapping(source, data, "hosts", data.get("hosts"), "hosts")
    for name, block in hosts.items():
        name = str(name)
        block = _mapping(source, hosts, name, block, f"host '{name}'")
        _check_keys(source, block, _HOST_KEYS, f"host '{name}'")
        own_groups = block.get("groups") or []
        if isinstance(own_groups, str):
            own_groups = [own_groups]
        if not isinstance(own_groups, list):
            _fail(source, block, "groups", "groups must be a list of group names")
        all_groups = [str(g) for g in own_groups]
        all_groups += [g for g in members.pop(name, []) if g not in all_groups]
        for g in all_groups:
            inv.groups.setdefault(g, Group(g, source=where(source, block, "groups")))
        inv.entries[name] = HostEntry(name, _settings(source, block), all_groups,
                                      _vars(source, block), where(source, hosts, name))
    for name, gs in members.items():
        # listed under a group only: a host with no settings of its own
        inv.entries[name] = HostEntry(name, {}, gs, {}, inv.groups[gs[0]].source)
    return inv
