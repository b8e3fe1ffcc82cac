"""Inventory: host names -> Host. See configs/hosts.example.yaml and the README ("Hosts").

A name resolves, in order, from the inventory file, then ~/.ssh/config, then as a bare hostname;
the name `sandbox` resolves to the running sandbox (remoteenv.sandbox) before ~/.ssh/config.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from remoteenv import paths
from remoteenv.errors import ConfigError, HostRefused
from remoteenv.inventory.ansible_connection import DESTINATION_KEY, REFUSED_KEY, SOURCES_KEY
from remoteenv.inventory.model import CONNECTION_FIELDS, Group, Host, HostEntry, Inventory
from remoteenv.inventory.sshconfig import SSHConfigFile

__all__ = [
    "Group", "Host", "HostEntry", "Inventory", "SSHConfigFile",
    "find_inventory", "load_inventory", "resolve", "resolve_many",
]

DEFAULT_NAMES = ("hosts.yaml", "hosts.yml")


def find_inventory(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Path | None:
    """The inventory file to use: -i / REMOTEENV_INVENTORY, ./hosts.yaml, then the config dir
    (`cwd`: the folder `./` means, for the keeper answering for a command run elsewhere)."""
    here = cwd or Path.cwd()
    given = explicit or os.environ.get("REMOTEENV_INVENTORY")
    if given:
        path = here / Path(given).expanduser()
        if not path.exists():
            raise ConfigError(f"inventory {path} does not exist", "check the -i option or REMOTEENV_INVENTORY")
        return path if cwd is not None else Path(given).expanduser()
    for folder in (here, paths.config_dir()):
        for name in DEFAULT_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


_INI_SECTION = re.compile(r"^\[[A-Za-z_][\w.-]*(:[a-z]+)?\]\s*([#;].*)?$")  # [group] / [g:vars], not [::1]:22
_INI_HOST_VARS = re.compile(r"^\S+(\s+[\w.]+=\S*)+")  # `h1 ansible_host=10.0.0.5 x=1`
# an Ansible host range (`web[01:20].lan`, `db-[a:c]`, `n[1:10:2]`), not a bracketed IPv6 address
_INI_RANGE = re.compile(r"^[^\s\[]*\[[0-9A-Za-z]*:[0-9A-Za-z]+(:[0-9]+)?\]")
_SSH_BLOCK = re.compile(r"(?i)^(host|match)(\s*=\s*|\s+)\S")


def _detect_format(path: Path, text: str) -> str:
    lines = [ln.strip() for ln in paths.text_lines(text) if ln.strip() and not ln.strip().startswith(("#", ";"))]
    first = lines[0] if lines else ""
    if path.suffix.lower() in (".yaml", ".yml") or first == "---" or re.match(r"^[\w.-]+:$", first):
        return "yaml"
    if path.suffix.lower() == ".ini" or any(_INI_SECTION.match(ln) for ln in lines):
        return "ansible-ini"
    # checked before host-with-vars lines: `ProxyCommand ssh -o A=b` looks like one
    if path.name == "config" or any(_SSH_BLOCK.match(ln) for ln in lines):
        return "ssh-config"
    if any("ansible_" in ln or _INI_HOST_VARS.match(ln) or _INI_RANGE.match(ln) for ln in lines):
        return "ansible-ini"
    return "plain"


def load_inventory(path: str | os.PathLike | None = None, *, search: bool = True) -> Inventory:
    """Load an inventory file in any supported format; no file gives an empty inventory."""
    found = find_inventory(path) if (path or search) else None
    if found is None:
        return Inventory()
    from remoteenv import yamlio

    if found.is_dir():  # Ansible's folder of inventories (`-i inventory/mycluster/`)
        from remoteenv.inventory import ansible

        return ansible.parse_folder(found)
    text = paths.read_text_file(found, "inventory")
    fmt = _detect_format(found, text)
    if fmt == "yaml":
        data = yamlio.load_text(text, str(found))
        if _looks_ansible_yaml(data):
            from remoteenv.inventory import ansible

            return ansible.parse_yaml(data, found)
        from remoteenv.inventory import native

        return native.parse(data, found)
    if fmt == "ansible-ini":
        from remoteenv.inventory import ansible

        return ansible.parse_ini(text, found)
    if fmt == "ssh-config":
        return from_ssh_config(found)
    from remoteenv.inventory import plain

    return plain.parse(text, found)


def _looks_ansible_yaml(data: object) -> bool:
    if not isinstance(data, dict) or not data:
        return False
    if "all" in data:
        return True
    if set(data) & {"defaults", "groups"}:
        return False
    if "hosts" in data and len(data) == 1:
        return False  # remoteenv's own `hosts:` list
    # a top-level group may be empty (`ungrouped:` with nothing), as Ansible allows
    return all(v is None or (isinstance(v, dict) and set(v) & {"hosts", "children", "vars"})
               for v in data.values())


def from_ssh_config(path: Path) -> Inventory:
    """Concrete Host entries of an ssh config file, as an inventory (settings come from the file)."""
    config = SSHConfigFile(path)
    inv = Inventory(path=path, format="ssh-config")
    for name in config.host_names():
        inv.entries[name] = HostEntry(name, config.lookup(name), [], {}, config.host_line(name))
    return inv


def resolve(inventory: Inventory, name: str, ssh_config: SSHConfigFile | None = None) -> Host:
    """Turn a host name into a Host, recording where each connection setting came from.

    Precedence per setting: the host's own inventory entry, its groups (in order), the inventory's
    `defaults:`, ~/.ssh/config (looked up by the entry's hostname, else the name), then built-in
    defaults (the name as hostname, port 22, the local user, OpenSSH's default keys and agent).
    Variables: defaults vars < group vars < host vars. Where an inventory value wins over a different
    one from ~/.ssh/config, its source says so ("hosts.yaml:3 (over ~/.ssh/config:12)").

    An ssh config file given as the inventory (`-i ~/.ssh/config`) is read as `ssh -F FILE NAME` reads
    it: by the name only, and ~/.ssh/config does not take part.
    """
    if not name or any(c.isspace() for c in name):
        raise ConfigError(f"invalid host name {name!r}")
    entry = inventory.entries.get(name)
    if entry is not None and REFUSED_KEY in entry.settings:
        message, hint = entry.settings[REFUSED_KEY]
        raise HostRefused(message, hint or None)
    ssh_config = ssh_config if ssh_config is not None else SSHConfigFile()
    if entry is None and name == "sandbox":
        from remoteenv.sandbox import sandbox_host  # deferred: it imports this package

        sandbox = sandbox_host(ssh_config)
        if sandbox is not None:
            return sandbox
    if inventory.format == "ssh-config" and inventory.path is not None:
        return _resolve_in_ssh_config(inventory, name, entry)
    host = Host(name=name, hostname=name)
    layers: list[tuple[dict, str, dict]] = []  # settings, source, per-field sources
    variables: dict = {}
    if entry is not None:
        layers.append((entry.settings, entry.source, entry.settings.get(SOURCES_KEY, {})))
        groups = [inventory.groups[g] for g in entry.groups if g in inventory.groups]
        layers.extend((g.settings, f"group {g.name} ({g.source})", {}) for g in groups)
        layers.append((inventory.defaults.settings, f"defaults ({inventory.defaults.source})", {}))
        variables.update(inventory.defaults.vars)
        for g in reversed(groups):
            variables.update(g.vars)
        variables.update(entry.vars)
        host.groups = list(entry.groups)
    lookup_name = (entry.settings.get("hostname") if entry else None) or name
    from_ssh = ssh_config.lookup(lookup_name)
    ssh_source = ssh_config.host_line(lookup_name)
    # Each value's own file:line (HashKnownHosts may come from /etc/ssh/ssh_config, not ~/.ssh/config).
    ssh_origins = {f: ssh_config.origin(lookup_name, f) for f in from_ssh}
    layers.append((from_ssh, str(ssh_config.path), ssh_origins))

    for field_name in CONNECTION_FIELDS:
        for settings, source, field_sources in layers:
            if field_name in settings:
                setattr(host, field_name, settings[field_name])
                host.sources[field_name] = field_sources.get(field_name, source)
                if (settings is not from_ssh and field_name in from_ssh
                        and _expanded(from_ssh[field_name]) != _expanded(settings[field_name])):
                    host.sources[field_name] += f" (over {ssh_origins.get(field_name, ssh_source)})"
                break
        else:
            host.sources[field_name] = "default"
    if host.hostname == name and host.sources["hostname"] == "default":
        host.sources["hostname"] = "the name itself"
    if "hostname" in from_ssh and host.hostname == lookup_name:
        # an ssh config alias given as the hostname: ssh would connect to its HostName
        host.hostname = from_ssh["hostname"]
        host.sources["hostname"] = host.sources["hostname"].split(" (over ")[0] + f", then {ssh_source}"
    _expand_proxy_command(host, entry)
    host.identity_files = [os.path.expanduser(p) for p in host.identity_files]
    host.certificate_files = [os.path.expanduser(p) for p in host.certificate_files]
    host.vars = variables
    return host


def _expanded(value: object) -> object:
    """A value as compared across sources: `~/k` and the home's k are the same key file."""
    if isinstance(value, str):
        return os.path.expanduser(value)
    if isinstance(value, list):
        return [_expanded(item) for item in value]
    return value


def _resolve_in_ssh_config(inventory: Inventory, name: str, entry: HostEntry | None) -> Host:
    assert inventory.path is not None
    config = SSHConfigFile(inventory.path)
    settings = entry.settings if entry is not None else config.lookup(name)
    source = entry.source if entry is not None else config.host_line(name)
    host = Host(name=name, hostname=name)
    for field_name in CONNECTION_FIELDS:
        if field_name in settings:
            setattr(host, field_name, settings[field_name])
            host.sources[field_name] = source
        else:
            host.sources[field_name] = "the name itself" if field_name == "hostname" else "default"
    host.identity_files = [os.path.expanduser(p) for p in host.identity_files]
    host.certificate_files = [os.path.expanduser(p) for p in host.certificate_files]
    return host


def _expand_proxy_command(host: Host, entry: HostEntry | None) -> None:
    """ssh's %-tokens in a ProxyCommand that an Ansible inventory gave in ssh arguments."""
    if entry is None or DESTINATION_KEY not in entry.settings or not host.proxy_command:
        return
    if host.sources.get("proxy_command", "").split(" (over ")[0] != entry.settings[SOURCES_KEY].get("proxy_command"):
        return  # from ~/.ssh/config: expanded there
    from remoteenv.inventory.sshargs import expand_proxy_command

    host.proxy_command = expand_proxy_command(
        host.proxy_command, hostname=host.hostname, port=host.port, user=host.user,
        name=entry.settings[DESTINATION_KEY], where=host.sources["proxy_command"])


def resolve_many(inventory: Inventory, names: list[str]) -> list[Host]:
    config = SSHConfigFile()
    return [resolve(inventory, n, config) for n in names]
