"""Where remoteenv keeps its own files on the local side (platform-appropriate via platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import PlatformDirs

_DIRS = PlatformDirs("remoteenv", appauthor=False)


def config_dir() -> Path:
    return Path(os.environ.get("REMOTEENV_CONFIG_DIR") or _DIRS.user_config_dir)


def state_dir() -> Path:
    """Local state (reports, logs, sandbox, tunnels). Created private: it may hold keys and tokens."""
    path = Path(os.environ.get("REMOTEENV_STATE_DIR") or _DIRS.user_state_dir)
    ensure_private_dir(path)
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("REMOTEENV_CACHE_DIR") or _DIRS.user_cache_dir)


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only its owner can read (reports, keys, configs)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ssh_dir() -> Path:
    """The person's ~/.ssh, found through HOME so that HOME decides it (as OpenSSH does)."""
    return Path(os.path.expanduser("~")) / ".ssh"
