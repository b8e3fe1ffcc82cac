"""The person's own key: which one, what it is (type, size, fingerprint), its file's mode, making a new
ed25519 pair, and the ssh-agent.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import os
import shutil
import socket
import stat
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from remoteenv import paths
from remoteenv.errors import ConfigError
from remoteenv.inventory.model import Host
from remoteenv.keys import askpass

# RSA keys shorter than this are warned about (NIST's and OpenSSH's ssh-keygen default since 9.x).
RSA_MIN_BITS = 3072
# The files OpenSSH (and paramiko's look_for_keys) try when no IdentityFile is set.
DEFAULT_KEY_NAMES = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa")


@dataclass(frozen=True)
class KeyInfo:
    """A public key as `ssh-keygen -l` describes it."""

    type: str  # the key's own type name: ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ssh-dss, ...
    bits: int | None
    fingerprint: str  # SHA256:...
    comment: str = ""

    @property
    def weakness(self) -> str | None:
        """Why this key should be replaced, or None."""
        if self.type == "ssh-dss":
            return "a DSA key: OpenSSH no longer accepts DSA by default; make an ed25519 key"
        if self.type == "ssh-rsa" and self.bits is not None and self.bits < RSA_MIN_BITS:
            return f"an RSA key of {self.bits} bits (below {RSA_MIN_BITS}); make an ed25519 key"
        return None

    def to_json(self) -> dict:
        return {"type": self.type, "bits": self.bits, "fingerprint": self.fingerprint, "comment": self.comment}


def describe_blob(blob: bytes, comment: str = "") -> KeyInfo:
    """Type, size and fingerprint of a public key blob (the base64 field of a .pub line, decoded)."""
    parts = _ssh_strings(blob)
    if not parts:
        raise ValueError("empty key blob")
    kind = parts[0].decode("ascii", "replace")
    bits: int | None = None
    if kind == "ssh-rsa" and len(parts) >= 3:
        bits = int.from_bytes(parts[2], "big").bit_length()
    elif kind == "ssh-dss" and len(parts) >= 2:
        bits = int.from_bytes(parts[1], "big").bit_length()
    elif kind.startswith(("ssh-ed25519", "sk-ssh-ed25519")):
        bits = 256
    elif kind.startswith(("ecdsa-sha2-nistp", "sk-ecdsa-sha2-nistp")):
        digits = kind.split("nistp", 1)[1].split("@", 1)[0]
        bits = int(digits) if digits.isdigit() else None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return KeyInfo(kind, bits, f"SHA256:{digest}", comment)


def _ssh_strings(blob: bytes) -> list[bytes]:
    parts, offset = [], 0
    while offset + 4 <= len(blob):
        (size,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise ValueError("truncated key blob")
        parts.append(blob[offset:offset + size])
        offset += size
    return parts


@dataclass(frozen=True)
class PublicKey:
    """One public key line: `type base64 [comment]`."""

    type: str
    blob: bytes
    comment: str = ""

    @classmethod
    def parse(cls, line: str, source: str = "public key") -> PublicKey:
        fields = line.strip().split(None, 2)
        try:
            if len(fields) < 2:
                raise ValueError
            blob = base64.b64decode(fields[1], validate=True)
            describe_blob(blob)
        except (ValueError, binascii.Error, struct.error):
            raise ConfigError(f"{source}: not an OpenSSH public key line",
                              "give the private key's path; its .pub beside it must be `type base64 comment`") from None
        return cls(fields[0], blob, fields[2] if len(fields) > 2 else "")

    @property
    def line(self) -> str:
        text = f"{self.type} {base64.b64encode(self.blob).decode()}"
        return f"{text} {self.comment}" if self.comment else text

    @property
    def info(self) -> KeyInfo:
        return describe_blob(self.blob, self.comment)


def default_key_path(host: Host | None = None) -> Path:
    """The key `keys setup` uses without --key: the host's first IdentityFile, else ~/.ssh/id_ed25519."""
    if host is not None and host.identity_files:
        return Path(os.path.expanduser(host.identity_files[0]))
    return paths.ssh_dir() / "id_ed25519"


def public_key_of(path: Path, passphrase: str | None = None) -> PublicKey:
    """The public half of the private key at `path`: PATH.pub, else derived from the key itself."""
    pub = path.with_name(path.name + ".pub")
    if pub.is_file():
        return PublicKey.parse(paths.read_text_file(pub, "public key", limit=64 * 1024), str(pub))
    key = load_private(path, passphrase)
    if key is None:
        raise ConfigError(f"{path} is passphrase-protected and has no {pub.name} beside it",
                          f"write it once with: ssh-keygen -y -f {path} > {pub}")
    return PublicKey(key.get_name(), key.asbytes())


def load_private(path: Path, passphrase: str | None = None):  # -> paramiko.PKey | None
    """The private key at `path`; None if it needs a passphrase that was not given."""
    from remoteenv.sshlib import load_paramiko

    paramiko = load_paramiko()

    try:
        # Positional: paramiko 3 names it `passphrase`, later releases `password`.
        return paramiko.PKey.from_path(path, passphrase.encode() if passphrase else None)
    except paramiko.PasswordRequiredException:
        return None
    except TypeError as exc:
        if "password" in str(exc).lower():  # how paramiko 4 and later say the same
            return None
        raise
    except (paramiko.SSHException, ValueError) as exc:
        if passphrase is not None:
            raise ConfigError(f"{path}: wrong passphrase (or an unreadable key)",
                              "type the key's passphrase again") from None
        raise ConfigError(f"{path}: not a private key paramiko can read: {exc}",
                          "give the path of an OpenSSH private key (ed25519, ECDSA or RSA)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the key: {exc.strerror or exc}") from None


def mode_problem(path: Path) -> str | None:
    """Why OpenSSH would refuse this private key file for its mode, or None (always None on Windows)."""
    if os.name != "posix":
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (f"{path} is readable by others (mode {mode:04o}): ssh refuses such a key; "
                f"chmod 600 {path}")
    return None


def file_mode(path: Path) -> str | None:
    try:
        return f"{stat.S_IMODE(path.stat().st_mode):04o}"
    except OSError:
        return None


def generate_ed25519(path: Path, passphrase: str, comment: str | None = None) -> PublicKey:
    """Write a new ed25519 pair: PATH (0600, encrypted with `passphrase` unless it is empty) and
    PATH.pub, in OpenSSH's formats. Refuses to replace an existing file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    comment = comment if comment is not None else f"{getpass.getuser()}@{socket.gethostname()}"
    key = Ed25519PrivateKey.generate()
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    pub = path.with_name(path.name + ".pub")
    for target, data, mode in ((path, private, 0o600), (pub, public + (b" " + comment.encode() if comment else b"")
                                                       + b"\n", 0o644)):
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        except FileExistsError:
            raise ConfigError(f"{target} exists already; remoteenv does not replace a key file",
                              "give another path with --key, or the existing key's path") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return public_key_of(path)


def ask_new_passphrase(path: Path) -> str:
    """A passphrase for a new key, typed twice (empty: none)."""
    first = askpass.ask(f"Passphrase for the new key {path} (empty for none): ")
    if not first:
        return ""
    if askpass.ask("Same passphrase again: ") != first:
        raise ConfigError("the two passphrases differ; no key was written", "run the command again")
    return first


# ---------------------------------------------------------------- ssh-agent


def agent_present() -> bool:
    return bool(os.environ.get("SSH_AUTH_SOCK"))


def agent_keys() -> list:  # -> list[paramiko.AgentKey]
    """The identities the running agent holds ([] without one)."""
    if not agent_present():
        return []
    from remoteenv.sshlib import load_paramiko

    paramiko = load_paramiko()

    try:
        agent = paramiko.Agent()
        return list(agent.get_keys())
    except (paramiko.SSHException, OSError):
        return []


def agent_has(public: PublicKey) -> bool:
    return any(k.asbytes() == public.blob for k in agent_keys())


def add_to_agent(path: Path) -> None:
    """`ssh-add PATH`: ssh-add asks for the passphrase itself (the terminal, or REMOTEENV_ASKPASS)."""
    if not agent_present():
        raise ConfigError("no ssh-agent to add the key to (SSH_AUTH_SOCK is not set)",
                          "start one (eval $(ssh-agent)) and run the command again, or leave out --add-to-agent")
    program = shutil.which("ssh-add")
    if program is None:
        raise ConfigError("ssh-add is not installed", "install the OpenSSH client, or leave out --add-to-agent")
    env = dict(os.environ)
    if askpass.uses_program():
        env["SSH_ASKPASS"] = os.environ[askpass.ASKPASS_VARIABLE]
        env["SSH_ASKPASS_REQUIRE"] = "force"
    proc = subprocess.run([program, str(path)], env=env, stdin=None if not askpass.uses_program()
                          else subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise ConfigError(f"ssh-add {path} failed: {why}", "check the passphrase and that the agent runs")
