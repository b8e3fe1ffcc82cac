"""The person's OpenSSH client config (~/.ssh/config), read the way `ssh` reads it."""

from __future__ import annotations

import glob
import itertools
import os
import re
from pathlib import Path
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.paths import read_regular_file, ssh_dir, text_lines

# OpenSSH's own limit on nested Includes (READCONF_MAX_DEPTH).
_MAX_INCLUDE_DEPTH = 16
_PORT = re.compile(r"[0-9]{1,5}")
_SECONDS = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is true, int("²") fails
# An ssh config is a few KiB; these bound what a wrong path or a hostile Include can cost.
_MAX_FILE_BYTES = 16 * 1024 * 1024
_MAX_FILES = 256  # files one Include pattern may match
_MAX_LINES = 1_000_000  # lines after every Include is inlined


def config_path() -> Path:
    return Path(os.environ.get("REMOTEENV_SSH_CONFIG") or ssh_dir() / "config")


class _Includes:
    """Inline `Include` directives (paramiko does not follow them; OpenSSH does).

    Each file is read once however often it is included; a file that includes itself (directly
    or through others) is an error, as are Includes nested deeper than OpenSSH allows and files
    that are not regular files (/dev/zero, a FIFO).
    """

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}
        self.chain: list[str] = []
        self.count = 0

    def expand(self, path: Path, origin: str | None = None) -> list[tuple[str, str]]:
        """Each resulting line with the `file:line` it came from; a missing file gives none."""
        key = os.path.abspath(path)
        if key in self.chain:
            raise ConfigError(f"{origin}: Include of {path} loops back to a file that includes it",
                              "remove the Include that leads back")
        if len(self.chain) > _MAX_INCLUDE_DEPTH:
            raise ConfigError(f"{origin}: Includes nest more than {_MAX_INCLUDE_DEPTH} deep",
                              "OpenSSH refuses this too; include fewer levels")
        try:
            lines = self._read(path, key)
        except ConfigError as exc:
            if not self.chain:  # the config file itself: the message names it already
                raise
            raise ConfigError(f"{origin}: Include: {exc.message}", exc.hint) from None
        self.chain.append(key)
        out: list[tuple[str, str]] = []
        for number, line in enumerate(lines, start=1):
            words = line.strip().replace("=", " ", 1).split(None, 1)
            here = f"{path}:{number}"
            if len(words) == 2 and words[0].lower() == "include":
                for included in self._matches(words[1], here):
                    out.extend(self.expand(Path(included), here))
                continue
            out.append((line, here))
            self.count += 1
            if self.count > _MAX_LINES:
                raise ConfigError(f"{here}: with its Includes, the ssh config is more than {_MAX_LINES:,} lines",
                                  "include each file once")
        self.chain.pop()
        return out

    def _read(self, path: Path, key: str) -> list[str]:
        if key not in self.texts:
            try:
                is_dir = path.is_dir()
            except (OSError, ValueError):
                is_dir = False
            if is_dir or not os.path.lexists(path):
                self.texts[key] = []  # a folder a glob matched, or no file: nothing, as before
            else:
                data = read_regular_file(path, _MAX_FILE_BYTES, "ssh config file")
                self.texts[key] = text_lines(data.decode("utf-8", errors="replace"))
        return self.texts[key]

    @staticmethod
    def _matches(patterns: str, here: str) -> list[str]:
        found: list[str] = []
        for pattern in patterns.split():
            pattern = os.path.expanduser(pattern.strip('"'))
            if not os.path.isabs(pattern):
                pattern = str(ssh_dir() / pattern)
            try:
                matches = list(itertools.islice(glob.iglob(pattern), _MAX_FILES + 1))
            except (OSError, ValueError):  # a NUL in the pattern, an unreadable folder
                matches = []
            if len(matches) > _MAX_FILES:
                raise ConfigError(f"{here}: Include {pattern} matches more than {_MAX_FILES} files",
                                  "name the files to include more narrowly")
            found += sorted(matches)
        return found


def _expand_includes(path: Path) -> list[tuple[str, str]]:
    return _Includes().expand(path, str(path))


class SSHConfigFile:
    """Lookups in one ssh config file; an absent file answers every lookup with nothing."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_path()
        self._lines = _expand_includes(self.path)
        self._empty = not any(line.strip() for line, _ in self._lines)
        from remoteenv import sshlib  # deferred: listing hosts or reading an inventory needs no SSH

        text = "\n".join(line for line, _ in self._lines)
        sshlib.enable_match_exec(text)
        try:
            self._config = sshlib.fast_ssh_config(text)
        except Exception as exc:  # paramiko's ConfigParseError and friends
            raise ConfigError(f"{self._origin_of(str(exc))}: {exc}",
                              "fix that line (`ssh -G HOST` shows how OpenSSH reads the file)") from None
        self._found: dict[str, dict[str, Any]] = {}
        self._host_lines: dict[str, str] | None = None

    def _origin_of(self, message: str) -> str:
        """file:line of the config line a parse error quotes, else the file."""
        for line, origin in self._lines:
            if line.strip() and line.strip() in message:
                return origin
        return str(self.path)

    def _host_index(self) -> dict[str, str]:
        """Each name a `Host` line gives -> the `file:line` of its first such line (built once:
        an ssh config inventory asks for every host)."""
        if self._host_lines is None:
            self._host_lines = {}
            for line, origin in self._lines:
                words = line.strip().replace("=", " ", 1).split()
                if len(words) > 1 and words[0].lower() == "host":
                    for word in words[1:]:
                        self._host_lines.setdefault(word, origin)
        return self._host_lines

    def host_line(self, name: str) -> str:
        """`file:line` of the first `Host` line naming `name` outright, else the file's path."""
        return self._host_index().get(name, str(self.path))

    def host_names(self) -> list[str]:
        """Concrete `Host` names (no wildcards or negations), for importing as inventory.

        Read from the Host lines themselves: paramiko's get_hostnames() fails on a file with a
        Match block.
        """
        return sorted(name for name in self._host_index() if not any(c in name for c in "*?!"))

    def lookup(self, name: str) -> dict[str, Any]:
        """Settings for `name` in our field names; only those the file sets."""
        if name not in self._found:
            self._found[name] = self._lookup(name)
        return {k: list(v) if isinstance(v, list) else v for k, v in self._found[name].items()}

    def _lookup(self, name: str) -> dict[str, Any]:
        if self._empty:
            return {}  # no config: nothing to find (paramiko's lookup costs ~0.1 ms a host even so)
        try:
            raw = self._config.lookup(name)
        except KeyError as exc:  # paramiko: CanonicalizeHostname without CanonicalDomains
            setting = {"canonicaldomains": "CanonicalDomains"}.get(str(exc.args[0]), str(exc.args[0]))
            raise ConfigError(f"{self.path}: looking up {name}: {setting} is not set",
                              "CanonicalizeHostname needs CanonicalDomains (`ssh -G HOST` shows it)") from None
        except Exception as exc:  # paramiko's CouldNotCanonicalize, a bad number in a setting, ...
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ConfigError(f"{self.path}: looking up {name}: {detail}",
                              "fix the ssh config (`ssh -G HOST` shows how OpenSSH reads it)") from None
        found: dict[str, Any] = {}
        if raw.get("hostname") and raw["hostname"] != name:
            found["hostname"] = raw["hostname"]
        if "user" in raw:
            found["user"] = raw["user"]
        if "port" in raw:
            if not _PORT.fullmatch(raw["port"]) or not 0 < int(raw["port"]) < 65536:
                raise ConfigError(f"{self._origin_of('Port ' + raw['port'])}: Port {raw['port'][:20]!r} for {name} "
                                  "is not a number from 1 to 65535")
            found["port"] = int(raw["port"])
        if "identityfile" in raw:
            found["identity_files"] = [os.path.expanduser(p) for p in raw["identityfile"]]
        if raw.get("identitiesonly", "").lower() == "yes":
            found["identities_only"] = True
        if _SECONDS.fullmatch(raw.get("connecttimeout", "")) and int(raw["connecttimeout"]) > 0:
            found["connect_timeout"] = float(raw["connecttimeout"])
        if raw.get("serveraliveinterval", "").isdigit():
            found["server_alive_interval"] = float(raw["serveraliveinterval"])
        if raw.get("serveralivecountmax", "").isdigit():
            found["server_alive_count_max"] = int(raw["serveralivecountmax"])
        if "userknownhostsfile" in raw:
            found["user_known_hosts_file"] = raw["userknownhostsfile"]
        if "globalknownhostsfile" in raw:
            found["global_known_hosts_file"] = raw["globalknownhostsfile"]
        if raw.get("hashknownhosts", "").lower() == "yes":
            found["hash_known_hosts"] = True
        if "proxycommand" in raw and raw["proxycommand"].lower() != "none":
            found["proxy_command"] = raw["proxycommand"]
        if "proxyjump" in raw and raw["proxyjump"].lower() != "none":
            found["proxy_jump"] = raw["proxyjump"]
        return found
