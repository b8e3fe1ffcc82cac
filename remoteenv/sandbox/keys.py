"""The sandbox's keys and the trust in its host key.

Keys are made in-process (ed25519, no passphrase), so no ssh-keygen is needed. The host key is
trusted through remoteenv's own known_hosts, on one line marked as the sandbox's: the person's
~/.ssh/known_hosts and ~/.ssh/authorized_keys are never read for this nor written.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from remoteenv.paths import write_private
from remoteenv.sandbox.errors import SandboxError

# Trailing comment of the sandbox's line in remoteenv's known_hosts; it finds the line to replace.
KNOWN_HOSTS_MARK = "remoteenv-sandbox"


def ensure_keypair(path: Path, comment: str) -> tuple[str, bool]:
    """The public line ("ssh-ed25519 AAAA... comment") of the key at `path`, made if missing.

    Returns (public line, whether it was made now).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    made = False
    if path.is_file():
        try:
            key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise SandboxError(f"the sandbox key {path} cannot be read: {exc}",
                               "remoteenv sandbox down --purge makes new keys next time") from None
        os.chmod(path, 0o600)
    else:
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        write_private(path, private.decode())
        made = True
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} {comment}"
    pub_path = path.with_name(path.name + ".pub")
    if made or not pub_path.is_file() or pub_path.read_text().strip() != line:
        write_private(pub_path, line + "\n")
    return line, made


def read_public(path: Path) -> str | None:
    """The public line of an existing key, or None (never makes one)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def fingerprint(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line, as `ssh-keygen -lf` prints it."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def write_authorized_keys(path: Path, public_line: str) -> None:
    kind, blob = public_line.split()[:2]
    write_private(path, f"{kind} {blob} remoteenv-sandbox-client\n")


def trust(hostname: str, port: int, public_line: str) -> Path:
    """Put the sandbox's host key in remoteenv's known_hosts, replacing its earlier line only."""
    kind, blob = public_line.split()[:2]
    from remoteenv.transport import hostkeys

    line = f"{hostkeys.host_key_name(hostname, port)} {kind} {blob} {KNOWN_HOSTS_MARK}"
    path = hostkeys.own_known_hosts()
    _rewrite(path, [*_other_lines(path), line])
    return path


def forget() -> None:
    """Remove the sandbox's line from remoteenv's known_hosts (other lines stay)."""
    from remoteenv.transport import hostkeys

    path = hostkeys.own_known_hosts()
    if path.is_file():
        _rewrite(path, _other_lines(path))


def _other_lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [ln for ln in path.read_text(errors="replace").splitlines() if ln.split()[3:] != [KNOWN_HOSTS_MARK]]


def _rewrite(path: Path, lines: list[str]) -> None:
    write_private(path, "".join(f"{ln}\n" for ln in lines))
