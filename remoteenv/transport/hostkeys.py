"""Host-key policy: verify against known_hosts as OpenSSH does, never accept a new key silently.

The files read are OpenSSH's: the user's (~/.ssh/known_hosts and known_hosts2, or ssh config's
UserKnownHostsFile), the system's (/etc/ssh/ssh_known_hosts and ssh_known_hosts2, or
GlobalKnownHostsFile), and remoteenv's own known_hosts in its state dir (it holds only hosts
remoteenv made, such as the sandbox).

known_hosts is parsed here, line by line, with OpenSSH's rules (hostfile.c): `@revoked` keys are
refused, `@cert-authority` lines take no part in checking a plain host key (paramiko has no host
certificates, and OpenSSH ignores CA lines for a server that shows a plain key), host patterns
(`*`, `?`, `!`) and hashed names (`|1|salt|hash`) match as in OpenSSH, and a line OpenSSH would not
parse is skipped with a warning naming file:line, never an exception.

A new key is written only when the person asked (--accept-new-host-key), and then appended as one
line: the file is never rewritten, so its comments, markers and hashed entries stay byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import shlex
import struct
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from remoteenv import paths
from remoteenv.errors import ConfigError, ConnectError, HostKeyMismatch, HostKeyUnknown
from remoteenv.sshlib import load_paramiko

# Held-back Invoke: see remoteenv.sshlib. Not at the package's import: a kept connection needs no paramiko.
paramiko = load_paramiko()

log = logging.getLogger(__name__)

# The system-wide files OpenSSH reads when ssh config sets no GlobalKnownHostsFile.
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")

REVOKED = "@revoked"
CERT_AUTHORITY = "@cert-authority"

# Key types OpenSSH reads in known_hosts (sshkey.c's table). A line with another type is invalid for
# OpenSSH, so it is skipped here too; a valid type paramiko cannot use still counts as a known key.
_OPENSSH_KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "rsa-sha2-256", "rsa-sha2-512", "ssh-dss",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com", "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com", "ssh-xmss@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com", "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-512-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com", "ssh-xmss-cert-v01@openssh.com",
})
_EC_POINT_BYTES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
_RSA_MIN_BITS = 1024  # OpenSSH refuses to load a shorter RSA key, so such a line is invalid

_FIELD_SEP = re.compile(r"[ \t]+")  # OpenSSH splits known_hosts fields on spaces and tabs only
_HASH_BYTES = 20  # HMAC-SHA1 salt and digest
# A name is refused for writing when known_hosts would read it as something else: a list (`,`), a
# pattern (`*?!`), a hash (`|`), a comment (`#`), a field break or a control character.
_UNSAFE_NAME = re.compile(r"[\s,*?!|#\x00-\x1f\x7f]")


# ---------------------------------------------------------------- files


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def user_known_hosts() -> Path:
    """The person's known_hosts: REMOTEENV_KNOWN_HOSTS, else ~/.ssh/known_hosts."""
    return Path(os.environ.get("REMOTEENV_KNOWN_HOSTS") or paths.ssh_dir() / "known_hosts")


def own_known_hosts() -> Path:
    """known_hosts that remoteenv owns (sandbox and other hosts it created itself)."""
    return paths.state_dir() / "known_hosts"


def user_files(configured: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """The user known_hosts files, in order; the first is where an accepted key is written.

    REMOTEENV_KNOWN_HOSTS replaces them all (tests and scripts rely on that); else ssh config's
    UserKnownHostsFile when given (`configured`), else OpenSSH's default pair.
    """
    override = os.environ.get("REMOTEENV_KNOWN_HOSTS")
    if override:
        return [Path(override)]
    if configured is not None:
        return _expand(configured)
    return [paths.ssh_dir() / "known_hosts", paths.ssh_dir() / "known_hosts2"]


def global_files(configured: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """The system-wide known_hosts files: REMOTEENV_GLOBAL_KNOWN_HOSTS (os.pathsep-separated; empty
    for none), else ssh config's GlobalKnownHostsFile when given, else /etc/ssh's pair."""
    override = os.environ.get("REMOTEENV_GLOBAL_KNOWN_HOSTS")
    if override is not None:
        return _expand(p for p in override.split(os.pathsep) if p)
    return _expand(GLOBAL_KNOWN_HOSTS if configured is None else configured)


def _expand(files: Iterable[str | os.PathLike]) -> list[Path]:
    # `none` is OpenSSH's word for "no file" in UserKnownHostsFile and GlobalKnownHostsFile.
    return [Path(os.path.expanduser(f)) for f in files if str(f).lower() != "none"]


def option_files(value: str | None, *, tokens: dict[str, str] | None = None) -> list[str] | None:
    """ssh config's UserKnownHostsFile / GlobalKnownHostsFile value as paths; None if it is not set.

    Split as OpenSSH splits an argument list (white space, quotes); `tokens` expands OpenSSH's
    %-tokens (UserKnownHostsFile has them, GlobalKnownHostsFile does not): see ssh_tokens().
    """
    if value is None:
        return None
    try:
        words = shlex.split(value, posix=True)
    except ValueError as exc:
        raise ConfigError(f"known hosts file list {value!r}: {exc}", "check the quotes in your ssh config") from None
    return [_percent_expand(w, tokens) for w in words] if tokens is not None else words


def ssh_tokens(alias: str, hostname: str, port: int, user: str, proxy_jump: str | None = None) -> dict[str, str]:
    """OpenSSH's %-tokens for UserKnownHostsFile (ssh_config(5), TOKENS) for one connection, as the
    ssh config resolver (remoteenv.inventory.ssh_resolve) and OpenSSH 9.2 give them: no %j, and %C
    without the jump host. `proxy_jump` is accepted for callers' sake and plays no part."""
    import getpass
    import socket

    from remoteenv.inventory.ssh_resolve import conn_hash

    local = socket.gethostname()
    return {
        "%": "%", "d": os.path.expanduser("~"), "u": getpass.getuser(), "h": hostname, "p": str(port),
        "r": user, "n": alias, "k": alias, "l": local, "L": local.split(".")[0],
        "i": str(os.getuid()) if hasattr(os, "getuid") else "",
        "C": conn_hash(local, hostname, port, user),
    }


def _percent_expand(word: str, tokens: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) not in tokens:
            raise ConfigError(f"unknown token %{match.group(1)} in known hosts file {word!r}",
                              "see TOKENS in `man ssh_config` for the ones UserKnownHostsFile takes")
        return tokens[match.group(1)]

    return re.sub(r"%(.?)", one, word)


def known_hosts_files(user: Sequence[str | os.PathLike] | None = None,
                      system: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Every known_hosts file that exists, in the order their entries count."""
    files = [*user_files(user), *global_files(system), own_known_hosts()]
    return [f for f in files if f.is_file()]


def store_path(user: Sequence[str | os.PathLike] | None = None) -> Path:
    """Where --accept-new-host-key writes: the first user known_hosts file, as OpenSSH does."""
    files = user_files(user)
    if not files:
        raise ConfigError("UserKnownHostsFile is none: there is no file to record a new host key in",
                          "set UserKnownHostsFile in your ssh config, or add the key by hand")
    return files[0]


def host_key_name(hostname: str, port: int) -> str:
    """The name a host has in known_hosts: `host`, or `[host]:port` off port 22."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class Entry:
    """One usable known_hosts line."""

    path: str
    line: int
    order: int  # position among every entry of every file: the order OpenSSH meets them in
    marker: str | None  # REVOKED, CERT_AUTHORITY or None
    names: str  # the host field as stored
    key_type: str
    blob: bytes
    hashed: tuple[bytes, bytes] | None  # (salt, HMAC-SHA1 of the name) of a `|1|` entry
    patterns: tuple[tuple[bool, str | re.Pattern[str]], ...]  # (negated, literal or wildcard)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def matches(self, name: str) -> bool:
        """Does this line name `name` (lowercase), by OpenSSH's match_maybe_hashed?"""
        if self.hashed is not None:
            salt, digest = self.hashed
            return hmac.compare_digest(hmac.digest(salt, name.encode(), "sha1"), digest)
        positive = False
        for negated, pattern in self.patterns:
            if pattern == name if isinstance(pattern, str) else pattern.fullmatch(name):
                if negated:
                    return False  # a matching `!pattern` excludes the host, whatever else matches
                positive = True
        return positive


class BadLine(ValueError):
    """Why OpenSSH would not read a known_hosts line."""


def parse_line(text: str) -> tuple[str | None, str, str, bytes] | None:
    """(marker, names, key type, key blob) of one line; None for blank and comment lines.

    Raises BadLine for a line OpenSSH would skip as invalid.
    """
    text = text.lstrip(" \t")
    if not text.strip() or text[0] == "#":
        return None
    marker = None
    if text[0] == "@":
        marker, *rest = _FIELD_SEP.split(text, 1)
        text = rest[0] if rest else ""
        if marker not in (REVOKED, CERT_AUTHORITY):
            raise BadLine(f"unknown marker {marker!r}")
        if text.startswith("@"):
            raise BadLine("more than one marker")
    fields = [f for f in _FIELD_SEP.split(text, 3)[:3] if f]
    if len(fields) < 3 or fields[1].startswith("#") or fields[2].startswith("#"):
        raise BadLine("no key on the line")
    names, key_type, encoded = fields
    # The key ends at a space or tab; other white space (\r of a CRLF file) is ignored in base64.
    try:
        blob = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadLine("the key is not valid base64") from None
    _check_blob(key_type, blob)
    return marker, names, key_type, blob


def _check_blob(key_type: str, blob: bytes) -> None:
    """Is `blob` a well-formed public key of `key_type`, as OpenSSH's sshkey_from_blob checks it?"""
    try:
        parts = _ssh_strings(blob)
    except (struct.error, IndexError):
        raise BadLine("the key is truncated") from None
    inner = parts[0].decode("ascii", "replace") if parts else ""
    if inner not in _OPENSSH_KEY_TYPES:
        raise BadLine(f"unknown key type {inner or key_type!r}")
    if key_type != inner and not (inner == "ssh-rsa" and key_type in ("rsa-sha2-256", "rsa-sha2-512")):
        raise BadLine(f"the line says {key_type} but the key is {inner}")
    if inner == "ssh-ed25519":
        ok = len(parts) == 2 and len(parts[1]) == 32
    elif inner.startswith("ecdsa-sha2-") and "cert" not in inner:
        curve = inner.removeprefix("ecdsa-sha2-")
        ok = (len(parts) == 3 and parts[1] == curve.encode() and len(parts[2]) == _EC_POINT_BYTES[curve]
              and parts[2][0] == 4)
    elif inner == "ssh-rsa":
        ok = len(parts) == 3 and int.from_bytes(parts[2], "big").bit_length() >= _RSA_MIN_BITS
    elif inner == "ssh-dss":
        ok = len(parts) == 5
    else:
        ok = True  # a type paramiko never negotiates: only its name is checked
    if not ok:
        raise BadLine(f"malformed {inner} key")


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The length-prefixed strings an SSH key blob is made of; struct.error if one is cut short."""
    parts, offset = [], 0
    while offset < len(blob):
        (size,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise struct.error("string runs past the end")
        parts.append(blob[offset:offset + size])
        offset += size
    return parts


def parse_hashed(names: str) -> tuple[bytes, bytes]:
    """(salt, digest) of `|1|base64salt|base64hash`; BadLine if malformed."""
    parts = names.split("|")
    if len(parts) != 4 or parts[0] or parts[1] != "1":
        raise BadLine("malformed hashed host name")
    try:
        salt, digest = (base64.b64decode(p, validate=True) for p in parts[2:])
    except (binascii.Error, ValueError):
        raise BadLine("hashed host name is not valid base64") from None
    if len(salt) != _HASH_BYTES or len(digest) != _HASH_BYTES:
        raise BadLine("hashed host name has the wrong length")
    return salt, digest


def parse_patterns(names: str) -> tuple[tuple[bool, str | re.Pattern[str]], ...]:
    """OpenSSH's pattern list: comma-separated, `!` negates, `*` and `?` are wildcards, any case."""
    patterns = []
    for pattern in names.lower().split(","):
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if "*" in pattern or "?" in pattern:
            regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
            patterns.append((negated, re.compile(regex, re.DOTALL)))
        else:
            patterns.append((negated, pattern))
    return tuple(patterns)


def parse_file(path: Path, first_order: int = 0) -> list[Entry]:
    """Every usable entry of one file; each unusable line is logged (file:line) and skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("%s: cannot read this known_hosts file: %s", path, exc.strerror or exc)
        return []
    entries: list[Entry] = []
    # Split on \n only, as OpenSSH reads lines: a stray \r or form feed must not shift line numbers.
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            entry = _entry(str(path), number, first_order + len(entries), raw)
        except BadLine as exc:
            log.warning("%s:%d: skipped this known_hosts line: %s", path, number, exc)
            continue
        if entry is not None:
            entries.append(entry)
    return entries


def _entry(path: str, number: int, order: int, raw: bytes) -> Entry | None:
    parsed = parse_line(raw.decode("utf-8", errors="replace"))
    if parsed is None:
        return None
    marker, names, key_type, blob = parsed
    if names.startswith("|"):
        return Entry(path, number, order, marker, names, key_type, blob, parse_hashed(names), ())
    return Entry(path, number, order, marker, names, key_type, blob, None, parse_patterns(names))


# ---------------------------------------------------------------- lookups


@dataclass(frozen=True)
class Verdict:
    """What known_hosts says about a key a host showed: "ok", "changed", "revoked" or "new"."""

    status: str
    entry: Entry | None = None  # the matching, offending or revoking line
    authorities: tuple[Entry, ...] = ()  # @cert-authority lines naming the host (new keys only)


@dataclass
class KnownHosts:
    """Every entry of the known_hosts files, indexed for cheap lookups by name."""

    entries: list[Entry]
    _by_name: dict[str, list[Entry]] = field(default_factory=dict, repr=False)
    _patterned: list[Entry] = field(default_factory=list, repr=False)  # lines with `*`, `?` or `!`
    _hashed: list[Entry] = field(default_factory=list, repr=False)
    _hmac_pads: list[tuple[Entry, object, object]] | None = field(default=None, repr=False)
    _found: dict[str, tuple[Entry, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            if entry.hashed is not None:
                self._hashed.append(entry)
            elif all(isinstance(p, str) and not neg for neg, p in entry.patterns):
                for _, name in entry.patterns:
                    self._by_name.setdefault(name, []).append(entry)  # type: ignore[arg-type]
            else:
                self._patterned.append(entry)

    @classmethod
    def from_files(cls, files: Iterable[Path]) -> KnownHosts:
        entries: list[Entry] = []
        for path in files:
            entries += parse_file(path, first_order=len(entries))
        return cls(entries)

    def lookup(self, name: str) -> tuple[Entry, ...]:
        """The entries naming `name` (`host` or `[host]:port`), markers included, in file order."""
        name = name.lower()  # ssh lowercases the host name it looks up
        found = self._found.get(name)
        if found is None:
            hits = {id(e): e for e in self._by_name.get(name, ())}
            hits.update((id(e), e) for e in self._patterned if e.matches(name))
            hits.update((id(e), e) for e in self._hashed_matches(name))
            found = tuple(sorted(hits.values(), key=lambda e: e.order))
            self._found[name] = found
        return found

    def _hashed_matches(self, name: str) -> list[Entry]:
        """Hashed entries for `name`: one HMAC-SHA1 per entry, each with its own salt.

        HMAC's keyed pads are computed once per entry (on the first lookup), which makes each later
        test about three times cheaper than hmac.digest: a fleet looks up every host in every entry.
        """
        if self._hmac_pads is None:
            self._hmac_pads = [(e, *_hmac_pads(e.hashed[0])) for e in self._hashed]  # type: ignore[index]
        message = name.encode()
        found = []
        for entry, inner, outer in self._hmac_pads:
            digest = inner.copy()  # type: ignore[attr-defined]
            digest.update(message)
            final = outer.copy()  # type: ignore[attr-defined]
            final.update(digest.digest())
            if final.digest() == entry.hashed[1]:  # type: ignore[index]
                found.append(entry)
        return found

    def key_types(self, name: str) -> list[str]:
        """Key types of the plain (unmarked) keys known for `name`, in file order, once each."""
        return list(dict.fromkeys(e.key_type for e in self.lookup(name) if e.marker is None))

    def check(self, name: str, key: paramiko.PKey) -> Verdict:
        """OpenSSH's check_key_in_hostkeys for a plain key: revoked wins, then a match, then any other
        plain key for the name means the key changed; with none the key is new."""
        entries = self.lookup(name)
        blob = key.asbytes()
        for entry in entries:
            if entry.marker == REVOKED and entry.blob == blob:
                return Verdict("revoked", entry)
        plain = [e for e in entries if e.marker is None]
        for entry in plain:
            if entry.blob == blob:
                return Verdict("ok", entry)
        if plain:
            same_type = [e for e in plain if e.key_type == key.get_name()]
            return Verdict("changed", (same_type or plain)[0])
        return Verdict("new", authorities=tuple(e for e in entries if e.marker == CERT_AUTHORITY))


def _hmac_pads(salt: bytes) -> tuple[object, object]:
    """SHA-1 states after HMAC's inner and outer key pads (RFC 2104), for a key of up to 64 bytes."""
    key = salt.ljust(64, b"\0")
    return (hashlib.sha1(bytes(b ^ 0x36 for b in key)), hashlib.sha1(bytes(b ^ 0x5C for b in key)))


_parsed: dict[tuple, KnownHosts] = {}
_parsed_lock = threading.Lock()


def load(files: Sequence[Path] | None = None) -> KnownHosts:
    """The parsed known_hosts files (all of them by default).

    Parsed once per process while the files stay unchanged: a fleet run opens a connection per host,
    and a parse of a large known_hosts costs more CPU than the host's own key exchange.
    """
    files = known_hosts_files() if files is None else files
    signature = tuple(_stamp(f) for f in files)
    with _parsed_lock:
        known = _parsed.get(signature)
        if known is None:
            known = KnownHosts.from_files(files)
            _parsed.clear()
            _parsed[signature] = known
    return known


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path), None, None, None)
    return (str(path), st.st_mtime_ns, st.st_size, st.st_ino)


# ---------------------------------------------------------------- paramiko


def load_into(client: paramiko.SSHClient, user_files: Sequence[str | os.PathLike] | None = None,
              global_files: Sequence[str | os.PathLike] | None = None) -> KnownHosts:
    """Make `client` verify host keys against the known_hosts files.

    user_files / global_files: ssh config's UserKnownHostsFile / GlobalKnownHostsFile for this host,
    when it sets them (None: OpenSSH's defaults).
    """
    known = load(known_hosts_files(user_files, global_files))
    client._system_host_keys = _SystemHostKeys(client, known)  # paramiko has no public setter
    return known


class _SystemHostKeys:
    """What SSHClient.connect asks known_hosts, answered from our own parse.

    connect() asks `get(name)` before the key exchange, puts the first key type of the answer first
    in its offer (as OpenSSH prefers the types it knows), then asks the answer for the key of the
    type the server showed and refuses if that is not the server's key. We verify there, before
    authentication: the server's key is trusted, or a typed error is raised. A name with no plain
    key known goes to the client's MissingHostKeyPolicy (VerifyPolicy) instead.
    """

    def __init__(self, client: paramiko.SSHClient, known: KnownHosts) -> None:
        self._client = weakref.ref(client)  # no cycle: the client holds us
        self.known = known

    def get(self, name: str, default: object = None) -> _KnownForName | None:
        types = _paramiko_order(self.known.key_types(name))
        return _KnownForName(self, name, types) if types else None  # type: ignore[return-value]

    lookup = get  # paramiko.HostKeys' name for the same question

    def client(self) -> paramiko.SSHClient:
        client = self._client()
        if client is None:
            raise RuntimeError("the SSH client is gone")
        return client


class _KnownForName:
    def __init__(self, system: _SystemHostKeys, name: str, types: list[str]) -> None:
        self._system = system
        self._name = name
        self._types = types

    def keys(self) -> list[str]:
        return self._types

    def get(self, key_type: str, default: object = None) -> paramiko.PKey:
        client = self._system.client()
        server_key = client.get_transport().get_remote_server_key()
        _policy_of(client, self._name).verify(client, self._name, server_key)
        return server_key  # trusted: connect() compares it with itself and goes on

    def values(self) -> list[paramiko.PKey]:
        return []


def _paramiko_order(types: list[str]) -> list[str]:
    """Known key types paramiko can negotiate, best first in paramiko's own order."""
    preferred = list(paramiko.Transport._preferred_keys)
    rank = {t: i for i, t in enumerate(preferred)}
    rank["ssh-rsa"] = rank.get("rsa-sha2-512", len(preferred))  # connect() maps it to rsa-sha2-*
    usable = [t for t in types if t in rank or t in paramiko.Transport._key_info]
    return sorted(usable, key=lambda t: rank.get(t, len(preferred)))


def _policy_of(client: paramiko.SSHClient, name: str) -> VerifyPolicy:
    policy = getattr(client, "_policy", None)
    return policy if isinstance(policy, VerifyPolicy) else VerifyPolicy(name, accept_new=False)


def _known_of(client: paramiko.SSHClient) -> KnownHosts:
    system = getattr(client, "_system_host_keys", None)
    return system.known if isinstance(system, _SystemHostKeys) else load()


# ---------------------------------------------------------------- policy


class HostKeyRevoked(ConnectError):
    """The host showed a key that a known_hosts `@revoked` line names."""

    def __init__(self, host: str, key_type: str, fingerprint: str, where: str) -> None:
        super().__init__(
            host,
            f"HOST KEY REVOKED: the host offers {key_type} {fingerprint}, which {where} marks @revoked",
            "do not connect; ask the host's admin for its new host key (keep the @revoked line)",
        )
        self.fingerprint = fingerprint
        self.where = where


class VerifyPolicy(paramiko.MissingHostKeyPolicy):
    """Known keys are checked as OpenSSH does; new keys are refused (with the fingerprint) unless
    the person said --accept-new-host-key, and then appended (hashed if `hashed`) to `store`, else to
    the first of `user_files` (ssh config's UserKnownHostsFile), else to ~/.ssh/known_hosts."""

    def __init__(self, label: str, accept_new: bool, store: Path | None = None, hashed: bool = False,
                 user_files: Sequence[str | os.PathLike] | None = None) -> None:
        self.label = label
        self.accept_new = accept_new
        self.store = store
        self.hashed = hashed
        self.user_files = user_files

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.verify(client, hostname, key)

    def verify(self, client: paramiko.SSHClient, name: str, key: paramiko.PKey) -> None:
        """Return if `key` is trusted for `name` (`host` or `[host]:port`), else raise a typed error."""
        verdict = _known_of(client).check(name, key)
        if verdict.status == "ok":
            return
        if verdict.status == "revoked":
            assert verdict.entry is not None
            raise HostKeyRevoked(self.label, key.get_name(), fingerprint(key), verdict.entry.where)
        if verdict.status == "changed":
            assert verdict.entry is not None
            raise _mismatch(self.label, name, key, verdict.entry)
        if not self.accept_new:
            raise HostKeyUnknown(self.label, key.get_name(), fingerprint(key),
                                 note=_authorities_note(verdict.authorities))
        # Where to write is decided only now: `UserKnownHostsFile none` is an error only when recording.
        record(self.store or store_path(self.user_files), name, key, hashed=self.hashed, label=self.label)
        client.get_host_keys().add(name, key.get_name(), key)


def _authorities_note(authorities: tuple[Entry, ...]) -> str | None:
    if not authorities:
        return None
    return (f"{authorities[0].where} trusts a certificate authority for this host, but remoteenv checks "
            "plain host keys only")


def _mismatch(label: str, name: str, key: paramiko.PKey, entry: Entry) -> HostKeyMismatch:
    return HostKeyMismatch(label, fingerprint(key), entry.path, entry.line, remove=removal_hint(name, entry))


def removal_hint(name: str, entry: Entry) -> str:
    """How to remove the entry `name` matched, naming it as it is stored."""
    name = name.lower()
    command = f"ssh-keygen -R {shlex.quote(name)}"
    if entry.path != _ssh_keygen_default():
        command += f" -f {shlex.quote(entry.path)}"
    if entry.hashed is not None:
        return f"remove the hashed entry at {entry.where} ({command})"
    if entry.patterns != ((False, name),):
        # ssh-keygen -R drops the whole line, and with it every other host the line names.
        return f"edit {entry.where} by hand (it also names other hosts: {entry.names})"
    return f"remove that line ({command})"


def _ssh_keygen_default() -> str:
    """The file `ssh-keygen -R` edits without -f: ~/.ssh/known_hosts of the passwd entry, not $HOME."""
    try:
        import pwd

        home = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):
        home = os.path.expanduser("~")
    return os.path.join(home, ".ssh", "known_hosts")


def mismatch_error(label: str, name: str, got: paramiko.PKey) -> HostKeyMismatch:
    """HostKeyMismatch for a key paramiko found changed (BadHostKeyException), naming the line."""
    verdict = load().check(name, got)
    if verdict.entry is not None:
        return _mismatch(label, name, got, verdict.entry)
    return HostKeyMismatch(label, fingerprint(got), str(user_known_hosts()), None)


# ---------------------------------------------------------------- writing


_append_lock = threading.Lock()


def check_name(label: str, name: str) -> None:
    """Refuse to record a name known_hosts would read as something else (a pattern, a list, ...).

    `HostName *` would otherwise write a `*` entry: OpenSSH then trusts that key for every host.
    """
    if not name or name.startswith("@") or _UNSAFE_NAME.search(name):
        raise ConfigError(
            f"{label}: will not record a host key for the name {name!r}: known_hosts would read it as a "
            "pattern, a list or a comment",
            "set HostName (or hostname in the inventory) to the host's real name or address",
        )


def known_hosts_line(name: str, key: paramiko.PKey, hashed: bool = False) -> str:
    """The line OpenSSH writes for `name`'s key (lowercased name; `|1|salt|hash` if hashed)."""
    name = name.lower()
    if hashed:
        salt = os.urandom(_HASH_BYTES)
        digest = hmac.digest(salt, name.encode(), "sha1")
        name = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    return f"{name} {key.get_name()} {key.get_base64()}\n"


def record(store: Path, name: str, key: paramiko.PKey, hashed: bool = False, label: str | None = None) -> str:
    """Append `name`'s key to `store` as one line; nothing already there changes. Returns the line.

    A missing directory is created 0700 and a missing file 0600; an existing one keeps its mode.
    """
    check_name(label or name, name)
    line = known_hosts_line(name, key, hashed)
    if not store.parent.exists():
        store.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    with _append_lock:  # fleet threads accepting at once: one whole line each
        fd = os.open(store, flags, 0o600)
        try:
            data = line.encode()
            if os.fstat(fd).st_size > 0 and not _ends_with_newline(store):
                data = b"\n" + data
            os.write(fd, data)
        finally:
            os.close(fd)
    log.debug("%s: recorded its %s key %s in %s", label or name, key.get_name(), fingerprint(key), store)
    return line


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
