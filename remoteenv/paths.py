"""Where remoteenv keeps its own files on the local side (platform-appropriate via platformdirs),
and how it reads the files people give it (bounded, regular files, UTF-8)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from remoteenv import xdg
from remoteenv.errors import ConfigError


def config_dir() -> Path:
    return Path(xdg.own_dir("config"))


def state_dir() -> Path:
    """Local state (reports, logs, sandbox, tunnels). Created private: it may hold keys and tokens."""
    path = Path(xdg.own_dir("state"))
    ensure_private_dir(path)
    return path


def cache_dir() -> Path:
    return Path(xdg.own_dir("cache"))


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


# -- reading files people give us --------------------------------------------------------------
# Inventories, playbooks and ssh configs are text a person wrote: a few MiB at most. Anything
# larger, or anything that is not a regular file (/dev/zero, a FIFO, a directory), is refused
# before it is read, so a wrong path can neither hang remoteenv nor fill its memory.
TEXT_FILE_LIMIT = 64 * 1024 * 1024


def read_regular_file(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes; else a ConfigError naming it.

    `os.devnull` reads as empty (`ssh -F /dev/null` is a common idiom). The file is opened
    non-blocking and checked with fstat on the open descriptor, so a FIFO never blocks the open
    and a file swapped after a stat is still checked.
    """
    if os.fspath(path) == os.devnull:
        return b""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)  # before fdopen, which refuses a folder with an OSError of its own
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConfigError(f"{path}: cannot read {what}: it is {kind}", "give the path of a regular file")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        size = f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
        raise ConfigError(f"{path}: {what} is larger than {size}, which remoteenv does not read",
                          "check the path")
    return data


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text (a leading BOM dropped); bad bytes or a NUL are a ConfigError naming the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x})",
                          "save the file as UTF-8") from None
    nul = text.find("\0")
    if nul >= 0:
        raise ConfigError(f"{source}:{text.count(chr(10), 0, nul) + 1}: binary data (a NUL byte), not text",
                          "check the path: this looks like a binary file")
    return text.removeprefix("\ufeff")


def read_text_file(path: str | os.PathLike, what: str = "file", limit: int = TEXT_FILE_LIMIT) -> str:
    """A UTF-8 text file a person wrote (inventory, playbook, ssh config), bounded and checked."""
    return decode_text(read_regular_file(path, limit, what), str(path))


def text_lines(text: str) -> list[str]:
    """Lines as editors and error messages number them: split on \\n only (a stray \\r dropped).

    str.splitlines() also splits on \\v, \\f, \\x1c-\\x1e, \\x85 and U+2028, which would shift
    every later line number away from the one an editor shows.
    """
    return [line.removesuffix("\r") for line in text.split("\n")]
