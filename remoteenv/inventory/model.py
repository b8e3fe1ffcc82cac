"""The Host model: one machine remoteenv can reach, with where each setting came from."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteenv.errors import ConfigError

# The connection settings a host has; each is resolved from the first source that sets it.
CONNECTION_FIELDS = ("hostname", "user", "port", "identity_files", "proxy_jump", "proxy_command", "identities_only",
                     "connect_timeout", "server_alive_interval", "server_alive_count_max",
                     "user_known_hosts_file", "global_known_hosts_file", "hash_known_hosts",
                     "certificate_files", "strict_host_key_checking", "control_master", "control_path",
                     "control_persist", "add_keys_to_agent", "identity_agent")


@dataclass
class Host:
    """A resolved host: everything needed to open a connection, plus groups and variables."""

    name: str
    hostname: str
    user: str | None = None
    port: int = 22
    identity_files: list[str] = field(default_factory=list)
    proxy_jump: str | None = None
    # OpenSSH's ProxyCommand (tokens already expanded): its stdin/stdout carry the SSH connection.
    proxy_command: str | None = None
    # OpenSSH's IdentitiesOnly: offer only identity_files (no agent, no default keys), so a server
    # that counts failed keys does not cut the login off first.
    identities_only: bool = False
    connect_timeout: float | None = None  # seconds (ssh config's ConnectTimeout)
    # ssh config's ServerAliveInterval (0: off) and ServerAliveCountMax: when a peer is declared dead.
    server_alive_interval: float | None = None
    server_alive_count_max: int | None = None
    # ssh config's UserKnownHostsFile / GlobalKnownHostsFile as written there (None: OpenSSH's
    # defaults; tokens are expanded at connect time) and HashKnownHosts (write accepted keys hashed).
    user_known_hosts_file: str | None = None
    global_known_hosts_file: str | None = None
    hash_known_hosts: bool = False
    # ssh config's CertificateFile (expanded paths), StrictHostKeyChecking (yes, no, ask or
    # accept-new; None: not set), ControlMaster (yes, no, auto, ask, autoask), ControlPath
    # (expanded), ControlPersist (seconds, or "yes"/"no"), AddKeysToAgent (yes, no, ask, confirm,
    # or with a lifetime: "confirm 300", "3600") and IdentityAgent (expanded path, "none", or the
    # name of an environment variable), as `ssh -G` resolves them.
    certificate_files: list[str] = field(default_factory=list)
    strict_host_key_checking: str | None = None
    control_master: str | None = None
    control_path: str | None = None
    control_persist: int | str | None = None
    add_keys_to_agent: str | None = None
    identity_agent: str | None = None
    groups: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    # field name -> where its value came from ("hosts.yaml:12", "~/.ssh/config", "default")
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """user@hostname:port, as a person would write it."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"{user}{self.hostname}{port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hostname": self.hostname,
            "user": self.user,
            "port": self.port,
            "identity_files": list(self.identity_files),
            "proxy_jump": self.proxy_jump,
            "proxy_command": self.proxy_command,
            "identities_only": self.identities_only,
            "connect_timeout": self.connect_timeout,
            "server_alive_interval": self.server_alive_interval,
            "server_alive_count_max": self.server_alive_count_max,
            "user_known_hosts_file": self.user_known_hosts_file,
            "global_known_hosts_file": self.global_known_hosts_file,
            "hash_known_hosts": self.hash_known_hosts,
            "certificate_files": list(self.certificate_files),
            "strict_host_key_checking": self.strict_host_key_checking,
            "control_master": self.control_master,
            "control_path": self.control_path,
            "control_persist": self.control_persist,
            "add_keys_to_agent": self.add_keys_to_agent,
            "identity_agent": self.identity_agent,
            "groups": list(self.groups),
            "vars": dict(self.vars),
            "sources": dict(self.sources),
        }


@dataclass
class HostEntry:
    """A host as an inventory file wrote it: only the settings given there."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)  # subset of CONNECTION_FIELDS
    groups: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "file:line" of the entry


@dataclass
class Group:
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    source: str = ""


@dataclass
class Inventory:
    """Hosts and groups from one inventory file (or none)."""

    path: Path | None = None
    format: str = "none"
    entries: dict[str, HostEntry] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    defaults: Group = field(default_factory=lambda: Group("defaults"))

    def names(self) -> list[str]:
        return list(self.entries)

    def group_members(self, group: str) -> list[str]:
        if group == "all" and group not in self.groups:  # Ansible's name for every host
            return self.names()
        if group not in self.groups and not any(group in e.groups for e in self.entries.values()):
            known = ", ".join(sorted(self.groups)) or "none"
            where = self.path or "the inventory"
            raise ConfigError(f"no group '{group}' in {where}", f"known groups: {known}")
        return [name for name, entry in self.entries.items() if group in entry.groups]

    def select(self, patterns: list[str] | None = None, group: str | None = None) -> list[str]:
        """Host names matching any glob pattern (or named outright) and belonging to `group`.

        A pattern that matches no inventory host but has no glob characters is kept as a
        bare name, so `remoteenv probe gpu-box` works with only an ssh config alias.
        """
        names = self.group_members(group) if group else self.names()
        if not patterns:
            return names
        chosen: dict[str, None] = {}  # ordered and O(1) to test: a glob may match 200,000 hosts
        for pattern in patterns:
            for part in pattern.split(","):
                part = part.strip()
                if not part:
                    continue
                if (part in self.groups or part == "all") and part not in self.entries:
                    allowed = set(names)
                    matched = [n for n in self.group_members(part) if n in allowed]
                else:
                    matched = [n for n in names if fnmatch.fnmatchcase(n, part)]
                if not matched and not any(c in part for c in "*?[") and not group:
                    matched = [part]
                chosen.update(dict.fromkeys(matched))
        return list(chosen)
