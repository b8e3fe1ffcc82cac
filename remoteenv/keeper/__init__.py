"""The connection keeper: one local process per user that holds signed-in SSH connections.

Every command (probe, apply, up, tunnels) asks it for a host instead of signing in again: a host
that asks for a one-time code asks once per keeper lifetime, and a repeated command costs a round
trip, not a handshake. It listens on a 0600 Unix socket in a 0700 folder of remoteenv's state dir
and serves only its own user. A connection idle for its persist time (ssh config's ControlPersist,
else DEFAULT_PERSIST) is closed; with none left, the keeper exits. `remoteenv disconnect` ends
them at once; REMOTEENV_NO_REUSE=1 (or `--no-reuse`, or the host var `connection_reuse: false`)
turns it off.
"""

from __future__ import annotations

import os

from remoteenv import xdg

# Not imported at run time: the fast probe loads this module, and pathlib is a tenth of its time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_PERSIST = 600.0  # seconds: ssh's ControlPersist idea, 10 minutes

# What decides how a host name resolves besides the files: a command whose values differ from the
# keeper's own is not answered by the keeper's resolution (remoteenv.cli.fast).
RESOLUTION_ENV = ("HOME", "USER", "LOGNAME", "REMOTEENV_SSH_CONFIG", "REMOTEENV_CONFIG_DIR", "REMOTEENV_STATE_DIR",
                  "XDG_CONFIG_HOME", "XDG_STATE_HOME", "SSH_AUTH_SOCK", "REMOTEENV_NO_AGENT",
                  "REMOTEENV_CONNECT_TIMEOUT", "SHELL")


def resolution_env() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in RESOLUTION_ENV}


def folder() -> Path:
    from remoteenv import paths

    return paths.state_dir() / "keeper"


def socket_path() -> Path:
    return folder() / "keeper.sock"


def socket_file() -> str:
    """socket_path() as a string, with nothing created: all the fast probe needs to find a keeper."""
    return os.path.join(xdg.own_dir("state"), "keeper", "keeper.sock")


def parse_persist(value: object) -> float | None:
    """ControlPersist as ssh takes it: yes (forever: 0), no (None), seconds, or 10m / 1h30m."""
    if value is None or isinstance(value, bool):
        return 0.0 if value is True else None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    if text in ("yes", "true"):
        return 0.0
    if text in ("no", "false", ""):
        return None
    total, number = 0.0, ""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    for char in text:
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
        else:
            return None
    return total + (int(number) if number else 0)


def reuse_off() -> bool:
    return os.environ.get("REMOTEENV_NO_REUSE", "").strip().lower() not in ("", "0", "no", "false")

