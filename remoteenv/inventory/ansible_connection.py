"""A host's Ansible variables (after precedence) -> remoteenv's connection settings, as Ansible's ssh uses them.

Ansible's ssh connection reads each setting from the last of its variable names that is set (not null),
so the older spelling wins where both are set: `ansible_ssh_host` over `ansible_host`, `ansible_ssh_user`
over `ansible_user`, `ansible_ssh_port` over `ansible_port`, `ansible_ssh_private_key_file` over
`ansible_private_key_file`. It then runs

    ssh [ansible_ssh_args] -o Port=P -o IdentityFile=K -o User=U [ansible_ssh_common_args]
        [ansible_ssh_extra_args] HOST

and ssh takes the first value of each option, so the arguments are read in that order (sshargs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.inventory import sshargs

# Ansible's names for each setting, the winning one last (its ssh plugin's `vars:` lists).
_SPELLINGS = {
    "hostname": ("ansible_host", "ansible_ssh_host"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "identity_files": ("ansible_private_key_file", "ansible_ssh_private_key_file"),
}
_ARG_VARS = ("ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args")
_CONNECTION_VAR = "ansible_connection"
# Variables read as connection settings; they are not kept among the host's variables.
CONNECTION_VARS = frozenset({v for names in _SPELLINGS.values() for v in names} | set(_ARG_VARS)
                            | {_CONNECTION_VAR})
# Keys of HostEntry.settings that are not connection fields, read by inventory.resolve: per-field
# sources, a refusal (message, hint) raised when the host is resolved, and ssh's destination (%n).
SOURCES_KEY, REFUSED_KEY, DESTINATION_KEY = "_sources", "_refused", "_destination"
_SORTED_VARS = sorted(CONNECTION_VARS)
_LABELLED = re.compile(r"^(?:group \S+|defaults) \((.*)\)$")
# Connection plugins that speak ssh to the host; any other is refused for that host.
_SSH_CONNECTIONS = {"ssh", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh",
                    "ansible.builtin.paramiko_ssh", "ansible.legacy.ssh"}


@dataclass
class Connection:
    """A host's connection settings, where each came from, and why it is refused (if it is)."""

    settings: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    refused: tuple[str, str] | None = None  # (message, hint)


def connection(name: str, merged: dict[str, Any], origins: dict[str, str], fallback: str,
               memo: dict | None = None) -> Connection:
    """Settings for host `name` from its merged variables; a problem refuses only this host.

    `memo` (one per inventory) keeps the answer for hosts whose connection variables are the same
    ones (a group's hosts, often thousands): only ssh's destination differs between them.
    """
    key = None
    if memo is not None:
        key = tuple((var, _hashable(merged[var]), origins.get(var)) for var in _SORTED_VARS if var in merged)
        found = memo.get(key)
        if found is not None:
            settings = dict(found.settings)
            settings[DESTINATION_KEY] = _destination(name, merged)
            return Connection(settings, dict(found.sources))
    try:
        made = _connection(name, merged, origins, fallback)
    except ConfigError as exc:
        return Connection(refused=(exc.message, exc.hint or ""))
    if memo is not None:
        memo[key] = made
    return made


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _connection(name: str, merged: dict[str, Any], origins: dict[str, str], fallback: str) -> Connection:
    out = Connection()

    def winner(field_name: str) -> str | None:
        chosen = None
        for var in _SPELLINGS[field_name]:
            if merged.get(var) is not None:
                chosen = var
        return chosen

    def where(var: str) -> str:  # "file:line", for messages that start with it
        label = origins.get(var, fallback)
        inner = _LABELLED.match(label)
        return inner[1] if inner else label

    def source(var: str) -> str:  # "group web (file:line)", for `hosts` to show
        return origins.get(var, fallback)

    kind = merged.get(_CONNECTION_VAR)
    if kind is not None and str(kind) not in _SSH_CONNECTIONS:
        at = where(_CONNECTION_VAR)
        if str(kind) == "local":
            raise ConfigError(f"{at}: host '{name}' has ansible_connection=local; remoteenv runs playbooks "
                              "over ssh only and does not run them on this machine",
                              f"leave '{name}' out (--limit), or give it an ssh address")
        raise ConfigError(f"{at}: host '{name}' has ansible_connection={kind}; remoteenv connects over ssh only",
                          f"leave '{name}' out (--limit), or connect it over ssh")
    # ssh's argv in Ansible's order, each word with the variable it came from; ssh takes the first value
    words: list[str] = []
    wheres: list[str] = []
    labels: dict[str, str] = {}  # "file:line" -> "group web (file:line)"

    def add(more: list[str], var: str) -> None:
        words.extend(more)
        wheres.extend([where(var)] * len(more))
        labels[where(var)] = source(var)

    for var in _ARG_VARS:
        if merged.get(var) is not None:
            add(_args(name, merged, var, where(var)), var)
        if var != "ansible_ssh_args":
            continue
        for field_name, option in (("port", "Port"), ("identity_files", "IdentityFile"), ("user", "User")):
            chosen = winner(field_name)
            if chosen is not None:
                value = _checked(name, chosen, merged[chosen], where(chosen))
                if field_name == "port":
                    value = str(_port(name, chosen, value, where(chosen)))
                elif '"' in value:
                    raise ConfigError(f"{where(chosen)}: {chosen} of host '{name}' has a '\"', which ssh cannot take")
                add(["-o", f'{option}="{value}"'], chosen)
    try:
        parsed = _parse(tuple(words), tuple(wheres))
    except ConfigError as exc:
        raise ConfigError(f"{exc.message} (host '{name}')", exc.hint) from None
    out.settings = dict(parsed.settings)
    out.sources = {k: labels.get(v, v) for k, v in parsed.sources.items()}
    if parsed.identity_files:
        out.settings["identity_files"] = list(parsed.identity_files)
    if parsed.certificate_files:
        out.settings["certificate_files"] = list(parsed.certificate_files)
    # the destination ssh is given; a HostName option in the arguments replaces it, as in ssh
    host_var = winner("hostname")
    if "hostname" not in out.settings and host_var is not None:
        out.settings["hostname"] = _checked(name, host_var, merged[host_var], where(host_var))
        out.sources["hostname"] = source(host_var)
    out.settings[DESTINATION_KEY] = _destination(name, merged)
    return out


def _destination(name: str, merged: dict[str, Any]) -> str:
    """What Ansible tells ssh to connect to (ProxyCommand's %n): the host's address, else its name."""
    for var in reversed(_SPELLINGS["hostname"]):
        if merged.get(var) is not None:
            return str(merged[var])
    return name


_PARSED: dict[tuple, sshargs.SSHArgs | ConfigError] = {}
_MAX_PARSED = 4096


def _parse(words: tuple[str, ...], wheres: tuple[str, ...]) -> sshargs.SSHArgs:
    """sshargs.parse, once for each distinct argv: the hosts of a group share theirs."""
    key = (words, wheres)
    if key not in _PARSED:
        if len(_PARSED) >= _MAX_PARSED:
            _PARSED.clear()
        try:
            _PARSED[key] = sshargs.parse(list(words), list(wheres))
        except ConfigError as exc:
            _PARSED[key] = exc
    found = _PARSED[key]
    if isinstance(found, ConfigError):
        raise ConfigError(found.message, found.hint)
    return found  # shared: read only


def _args(name: str, merged: dict[str, Any], var: str, at: str) -> list[str]:
    return sshargs.split(_checked(name, var, merged[var], at), at)


def _checked(name: str, var: str, value: Any, where: str) -> str:
    if isinstance(value, dict) and "__ansible_vault" in value:
        raise ConfigError(f"{where}: {var} of host '{name}' is encrypted with ansible-vault, which remoteenv does "
                          "not decrypt", "write the value out, or name the host in ~/.ssh/config")
    if isinstance(value, (dict, list, bool)) or str(value) == "":
        raise ConfigError(f"{where}: {var} of host '{name}' must be a non-empty string, not {value!r}")
    text = str(value)
    if "{{" in text or "{%" in text:
        raise ConfigError(f"{where}: {var} of host '{name}' is a Jinja template ({text[:60]!r}), which remoteenv "
                          "does not evaluate", "write the value out, or name the host in ~/.ssh/config")
    return text


def _port(name: str, var: str, value: str, where: str) -> int:
    text = value.strip()
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 0 < int(text) < 65536:
        raise ConfigError(f"{where}: {var} of host '{name}' must be a number from 1 to 65535, not {value!r}")
    return int(text)
