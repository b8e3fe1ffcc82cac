"""The person's OpenSSH client config, read the way `ssh` reads it.

Without REMOTEENV_SSH_CONFIG that is ~/.ssh/config and then the system-wide /etc/ssh/ssh_config,
as plain `ssh HOST` reads them; REMOTEENV_SSH_CONFIG=FILE (or an explicit path) reads FILE alone,
as `ssh -F FILE HOST` does. The rules are OpenSSH's own (ssh_parse.py reads the files,
ssh_resolve.py resolves a name), proven equal to `ssh -G` by tests/unit/test_ssh_config_vs_ssh_g.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.inventory import ssh_parse
from remoteenv.inventory.ssh_parse import ConfigFile, Reader
from remoteenv.inventory.ssh_resolve import Env, Resolution, resolve
from remoteenv.paths import ssh_dir

_HINT = "fix that line (`ssh -G HOST` shows how OpenSSH reads the file)"


def config_path() -> Path:
    return Path(os.environ.get("REMOTEENV_SSH_CONFIG") or ssh_dir() / "config")


def _walk(config: ConfigFile):
    for line in config.lines:
        yield line
        for included in line.includes:
            yield from _walk(included)


class SSHConfigFile:
    """Lookups in the person's ssh config; absent files answer every lookup with nothing.

    `path` given (or REMOTEENV_SSH_CONFIG set): that file alone, like `ssh -F`. Neither: the user's
    ~/.ssh/config, then the system-wide file, like `ssh`. `system` overrides the system-wide file
    (None: OpenSSH's own; "" : none).
    """

    def __init__(self, path: Path | None = None, system: str | None = None) -> None:
        alone = path is not None or bool(os.environ.get("REMOTEENV_SSH_CONFIG"))
        self.path = Path(path) if path is not None else config_path()
        reader = Reader()
        user = reader.read(str(self.path), user_config=True, check_perm=not alone)
        self._user = user
        self.files: list[ConfigFile] = [user] if user is not None else []
        if not alone:
            system_path = ssh_parse.system_config_path() if system is None else system
            if system_path:
                found = reader.read(system_path, user_config=False, check_perm=False)
                if found is not None:
                    self.files.append(found)
        for config in self.files:
            for line in _walk(config):
                if line.error is not None:  # ssh refuses the whole config, whichever host
                    raise ConfigError(line.refused(), _HINT)
        self._found: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        self._shared: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        self._resolutions: dict[str, Resolution] = {}
        self._env: Env | None = None
        self._host_lines: dict[str, str] | None = None

    def resolution(self, name: str) -> Resolution:
        """Everything ssh would use for `name`, defaults included (what `ssh -G NAME` prints)."""
        found = self._resolutions.get(name)
        if found is None:
            if self._env is None:
                self._env = Env.here()
            found = self._resolutions[name] = resolve(name, self.files, self._env)
        return found

    def _settings(self, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        """(configured fields, their origins) for `name`, worked out once per name. Hosts that
        resolve alike share one pair: an inventory of 200,000 hosts keeps a handful, not 200,000."""
        found = self._found.get(name)
        if found is None:
            if name in self._resolutions:
                resolution = self._resolutions[name]
            else:
                if self._env is None:
                    self._env = Env.here()
                resolution = resolve(name, self.files, self._env)  # not kept: only its answer is
            pair = (resolution.configured, resolution.origins)
            found = self._found[name] = self._shared.setdefault(repr(pair), pair)
        return found

    def lookup(self, name: str) -> dict[str, Any]:
        """Settings for `name` in our field names; only those the config files set."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._settings(name)[0].items()}

    def origin(self, name: str, field_name: str) -> str:
        """`file:line` that set `field_name` for `name`, else the config file's path."""
        return self._settings(name)[1].get(field_name, str(self.path))

    def _host_index(self) -> dict[str, str]:
        """Each name a `Host` line of the person's config gives -> the `file:line` of its first such
        line (built once: an ssh config inventory asks for every host)."""
        if self._host_lines is None:
            self._host_lines = {}
            if self._user is not None:
                for line in _walk(self._user):
                    if line.keyword == "host":
                        for word in line.argv:
                            self._host_lines.setdefault(word, line.where)
        return self._host_lines

    def host_line(self, name: str) -> str:
        """`file:line` of the first `Host` line naming `name` outright, else the file's path."""
        return self._host_index().get(name, str(self.path))

    def host_names(self) -> list[str]:
        """Concrete `Host` names (no wildcards or negations), for importing as inventory.

        `web[12]` is one literal name to ssh, so it is one here too.
        """
        return sorted(name for name in self._host_index() if not any(c in name for c in "*?!"))
