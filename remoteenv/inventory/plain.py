"""A plain hosts file: one `[user@]host[:port]` a line; `#` starts a comment."""

from __future__ import annotations

import re
from pathlib import Path

from remoteenv.errors import ConfigError
from remoteenv.inventory.model import HostEntry, Inventory
from remoteenv.paths import text_lines

# An IPv6 address takes a port only in brackets ([::1]:2222), as in Ansible and OpenSSH's ssh://.
_LINE = re.compile(
    r"^(?:(?P<user>[^@\s\[\]]+)@)?"
    r"(?:(?P<host>\[[0-9a-fA-F:.]+\]|[\w.-]+)(?::(?P<port>[0-9]{1,5}))?|(?P<ipv6>[0-9a-fA-F.]*::[0-9a-fA-F:.]*))$"
)


def parse(text: str, path: Path) -> Inventory:
    inv = Inventory(path=path, format="plain")
    for number, raw in enumerate(text_lines(text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
            raise ConfigError(f"{path}:{number}: not a [user@]host[:port] line: {line!r}")
        host = (match["host"] or match["ipv6"]).strip("[]")
        settings: dict = {}
        if match["user"]:
            settings["user"] = match["user"]
        if match["port"]:
            settings["port"] = int(match["port"])
        name = host
        if host in inv.entries:  # the same host again, as another user or port
            name, settings["hostname"] = line, host
        # The host is the name, so an ~/.ssh/config alias still finds its HostName there.
        inv.entries[name] = HostEntry(name, settings, [], {}, f"{path}:{number}")
    return inv
