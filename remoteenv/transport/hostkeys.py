"""Host-key policy: verify against known_hosts, never accept a new key silently.

The person's ~/.ssh/known_hosts (found through HOME, as OpenSSH finds it) is read; remoteenv's own
known_hosts in its state dir is read too (it holds only hosts remoteenv made, such as the sandbox).
A new key is written only when the person asked (--accept-new-host-key), and then appended as one
line: the file is never rewritten, so its comments, markers and hashed entries stay as they were.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

import paramiko

from remoteenv import paths
from remoteenv.errors import HostKeyMismatch, HostKeyUnknown


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def user_known_hosts() -> Path:
    return Path(os.environ.get("REMOTEENV_KNOWN_HOSTS") or paths.ssh_dir() / "known_hosts")


def own_known_hosts() -> Path:
    """known_hosts that remoteenv owns (sandbox and other hosts it created itself)."""
    return paths.state_dir() / "known_hosts"


def known_hosts_files() -> list[Path]:
    files = [user_known_hosts(), paths.ssh_dir() / "known_hosts2", own_known_hosts()]
    return [f for f in files if f.is_file()]


def host_key_name(hostname: str, port: int) -> str:
    """The name a host has in known_hosts: `host`, or `[host]:port` off port 22."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


_parsed: dict[tuple, paramiko.HostKeys] = {}
_parsed_lock = threading.Lock()


def load_into(client: paramiko.SSHClient) -> None:
    """Give `client` the known hosts of every known_hosts file.

    Parsed once per process while the files stay unchanged: a fleet run opens a connection per host,
    and each parse of a large known_hosts costs more CPU than the host's own key exchange.
    """
    files = known_hosts_files()
    signature = tuple(_stamp(f) for f in files)
    with _parsed_lock:
        keys = _parsed.get(signature)
        if keys is None:
            keys = paramiko.HostKeys()
            for path in files:
                _load_file(keys, path)
            _parsed.clear()
            _parsed[signature] = keys
    # Shared read-only: paramiko only looks keys up in the "system" set; a key accepted during this
    # connection goes to the client's own set (and is appended to the file by VerifyPolicy).
    client._system_host_keys = keys  # no public setter exists


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path), None, None)
    return (str(path), st.st_mtime_ns, st.st_size)


def _load_file(keys: paramiko.HostKeys, path: Path) -> None:
    try:
        keys.load(str(path))
    except FileNotFoundError:
        return
    except (OSError, paramiko.SSHException):
        # A line paramiko cannot parse (a marker, an odd key type) must not hide the others.
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
            except (paramiko.SSHException, ValueError, TypeError):
                continue
            if entry is not None:
                for name in entry.hostnames:
                    keys.add(name, entry.key.get_name(), entry.key)


def find_line(name: str, key_type: str | None = None) -> tuple[str, int | None]:
    """The known_hosts file and 1-based line that hold `name`'s key (hashed entries included)."""
    for path in known_hosts_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            fields = line.split()
            if len(fields) < 3 or line.lstrip().startswith("#") or fields[0].startswith("@"):
                continue
            if key_type and fields[1] != key_type:
                continue
            for pattern in fields[0].split(","):
                if pattern == name:
                    return str(path), number
                if pattern.startswith("|1|"):
                    salt = pattern.split("|")[2]
                    if paramiko.HostKeys.hash_host(name, salt) == pattern:
                        return str(path), number
    return str(user_known_hosts()), None


class VerifyPolicy(paramiko.MissingHostKeyPolicy):
    """Unknown keys are refused (with the fingerprint), or appended when the person said so."""

    def __init__(self, label: str, accept_new: bool, store: Path | None = None) -> None:
        self.label = label
        self.accept_new = accept_new
        self.store = store

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if not self.accept_new:
            raise HostKeyUnknown(self.label, key.get_name(), fingerprint(key))
        store = self.store or user_known_hosts()
        store.parent.mkdir(parents=True, exist_ok=True)
        if store.parent == paths.ssh_dir() and os.name == "posix":
            os.chmod(store.parent, 0o700)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        fd = os.open(store, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as fh:
            if fh.tell() > 0 and not store.read_bytes().endswith(b"\n"):
                fh.write("\n")
            fh.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


def mismatch_error(label: str, name: str, got: paramiko.PKey) -> HostKeyMismatch:
    path, line = find_line(name, got.get_name())
    if line is None:
        path, line = find_line(name)
    return HostKeyMismatch(label, fingerprint(got), path, line)
