"""The person's OpenSSH client config (~/.ssh/config), read the way `ssh` reads it."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.paths import ssh_dir

_MAX_INCLUDE_DEPTH = 16


def config_path() -> Path:
    return Path(os.environ.get("REMOTEENV_SSH_CONFIG") or ssh_dir() / "config")


def _expand_includes(path: Path, depth: int = 0) -> list[tuple[str, str]]:
    """Inline `Include` directives (paramiko does not follow them; OpenSSH does).

    Returns each resulting line with the `file:line` it came from.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.strip().replace("=", " ", 1).split(None, 1)
        if len(words) == 2 and words[0].lower() == "include" and depth < _MAX_INCLUDE_DEPTH:
            for pattern in words[1].split():
                pattern = os.path.expanduser(pattern.strip('"'))
                if not os.path.isabs(pattern):
                    pattern = str(ssh_dir() / pattern)
                for included in sorted(glob.glob(pattern)):
                    out.extend(_expand_includes(Path(included), depth + 1))
            continue
        out.append((line, f"{path}:{number}"))
    return out


class SSHConfigFile:
    """Lookups in one ssh config file; an absent file answers every lookup with nothing."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_path()
        self._lines = _expand_includes(self.path)
        from remoteenv import sshlib  # deferred: listing hosts or reading an inventory needs no SSH

        text = "\n".join(line for line, _ in self._lines)
        sshlib.enable_match_exec(text)
        try:
            self._config = sshlib.fast_ssh_config(text)
        except Exception as exc:  # paramiko's ConfigParseError and friends
            raise ConfigError(f"{self._origin_of(str(exc))}: {exc}",
                              "fix that line (`ssh -G HOST` shows how OpenSSH reads the file)") from None
        self._found: dict[str, dict[str, Any]] = {}

    def _origin_of(self, message: str) -> str:
        """file:line of the config line a parse error quotes, else the file."""
        for line, origin in self._lines:
            if line.strip() and line.strip() in message:
                return origin
        return str(self.path)

    def host_line(self, name: str) -> str:
        """`file:line` of the first `Host` line naming `name` outright, else the file's path."""
        for line, origin in self._lines:
            words = line.strip().replace("=", " ", 1).split()
            if len(words) > 1 and words[0].lower() == "host" and name in words[1:]:
                return origin
        return str(self.path)

    def host_names(self) -> list[str]:
        """Concrete `Host` names (no wildcards or negations), for importing as inventory."""
        return sorted(
            name
            for name in self._config.get_hostnames()
            if name != "*" and not any(c in name for c in "*?!")
        )

    def lookup(self, name: str) -> dict[str, Any]:
        """Settings for `name` in our field names; only those the file sets."""
        if name not in self._found:
            self._found[name] = self._lookup(name)
        return {k: list(v) if isinstance(v, list) else v for k, v in self._found[name].items()}

    def _lookup(self, name: str) -> dict[str, Any]:
        raw = self._config.lookup(name)
        found: dict[str, Any] = {}
        if raw.get("hostname") and raw["hostname"] != name:
            found["hostname"] = raw["hostname"]
        if "user" in raw:
            found["user"] = raw["user"]
        if "port" in raw:
            try:
                found["port"] = int(raw["port"])
            except ValueError:
                raise ConfigError(f"{self._origin_of('Port ' + raw['port'])}: Port {raw['port']!r} for {name} "
                                  "is not a number") from None
        if "identityfile" in raw:
            found["identity_files"] = [os.path.expanduser(p) for p in raw["identityfile"]]
        if raw.get("identitiesonly", "").lower() == "yes":
            found["identities_only"] = True
        if raw.get("connecttimeout", "").isdigit() and int(raw["connecttimeout"]) > 0:
            found["connect_timeout"] = float(raw["connecttimeout"])
        if raw.get("serveraliveinterval", "").isdigit():
            found["server_alive_interval"] = float(raw["serveraliveinterval"])
        if raw.get("serveralivecountmax", "").isdigit():
            found["server_alive_count_max"] = int(raw["serveralivecountmax"])
        if "proxycommand" in raw and raw["proxycommand"].lower() != "none":
            found["proxy_command"] = raw["proxycommand"]
        if "proxyjump" in raw and raw["proxyjump"].lower() != "none":
            found["proxy_jump"] = raw["proxyjump"]
        return found
