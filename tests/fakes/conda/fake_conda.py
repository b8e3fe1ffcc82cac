"""A stand-in for conda: the subset of its commands remoteenv uses, as /work/shared/CONDA_FACTS.md documents them.

Test-only. Standard library only: it runs as ``PREFIX/bin/conda`` under the prefix's python (a venv of the
host's /usr/bin/python3, with nothing installed but what the fake channel's packages bring), and, inside an
installer, as the "standalone conda" under /usr/bin/python3 itself.

Packages come from channels laid out as real ones (``<channel>/<subdir>/repodata.json`` and ``.tar.bz2``
packages holding ``info/`` and the files to link). A channel URL is read
* as a local path for ``file://`` URLs and absolute paths,
* over HTTP for ``http://`` URLs whose host is an IP address or ``localhost`` (a server the tests run),
* for any other URL, from ``<channels root>/<host>/<path>``: the channels root is baked in when the installer is
  built (``_fake.json`` beside this file) and ``FAKE_CONDA_CHANNELS_ROOT`` overrides it. A host with no folder
  there is unreachable (``CondaHTTPError: HTTP 000 CONNECTION FAILED``), a missing file is HTTP 404.
Environments are venvs of /usr/bin/python3, made by the ``python`` package's post-link script.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_config() -> dict:
    path = os.path.join(HERE, "_fake.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return {}


CONFIG = _load_config()
VERSION = CONFIG.get("conda_version", "25.5.1")
SUBDIR = CONFIG.get("subdir", "linux-64")
PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
DEFAULT_CHANNELS = ["https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r"]
TOS_CHANNELS = DEFAULT_CHANNELS
DEFAULT_ALIAS = "https://conda.anaconda.org"


def version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        m = re.match(r"\d+", part)
        out.append(int(m.group()) if m else 0)
    return tuple(out)


# ----------------------------------------------------------------------------- errors


class CondaError(Exception):
    name = "CondaError"
    exit_code = 1

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra


def _error(name: str, exit_code: int = 1):
    return type(name, (CondaError,), {"name": name, "exit_code": exit_code})


PackagesNotFoundError = _error("PackagesNotFoundError")
LibMambaUnsatisfiableError = _error("LibMambaUnsatisfiableError")
CondaValueError = _error("CondaValueError")
CondaEnvException = _error("CondaEnvException")
CondaHTTPError = _error("CondaHTTPError")
EnvironmentLocationNotFound = _error("EnvironmentLocationNotFound")
EnvironmentFileNotFound = _error("EnvironmentFileNotFound")
CondaToSNonInteractiveError = _error("CondaToSNonInteractiveError")
CondaToSRejectedError = _error("CondaToSRejectedError")
ChecksumMismatchError = _error("ChecksumMismatchError")
LinkError = _error("LinkError")
CondaEnvironmentError = _error("CondaEnvironmentError")
DirectoryNotACondaEnvironmentError = _error("DirectoryNotACondaEnvironmentError")
SpecNotFound = _error("SpecNotFound")
CondaSystemExit = _error("CondaSystemExit", 0)
DryRunExit = _error("DryRunExit", 0)


# ----------------------------------------------------------------------------- a small YAML subset


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


_KEY = re.compile(r"""^("[^"]*"|'[^']*'|[^\s'"\-\[{][^:]*?|-[^\s:][^:]*?)\s*:(?:\s+(.*))?$""")


def _scalar(text: str):
    text = text.strip()
    if not text:
        return None
    if text[0] in "\"'" and text[-1] == text[0] and len(text) >= 2:
        return text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(p) for p in _split_flow(inner)] if inner else []
    if text.startswith("{") and text.endswith("}"):
        out = {}
        for part in _split_flow(text[1:-1]):
            if part.strip():
                k, _, v = part.partition(":")
                out[str(_scalar(k))] = _scalar(v)
        return out
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "~"):
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _split_flow(text: str) -> list[str]:
    parts, depth, cur, quote = [], 0, [], None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def yaml_load(text: str):
    """Block mappings and sequences, flow lists/maps, quoted and plain scalars: what .condarc and
    environment.yml use."""
    lines = []
    for raw in text.splitlines():
        if raw.strip() in ("---", "..."):
            continue
        line = _strip_comment(raw.replace("\t", "    "))
        if line.strip():
            lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
    if not lines:
        return None
    value, _ = _block(lines, 0, lines[0][0])
    return value


def _block(lines, i, indent):
    if lines[i][1] == "-" or lines[i][1].startswith("- "):
        return _sequence(lines, i, indent)
    if _KEY.match(lines[i][1]):
        return _mapping(lines, i, indent)
    return _scalar(lines[i][1]), i + 1


def _sequence(lines, i, indent):
    out = []
    while i < len(lines) and lines[i][0] == indent and (lines[i][1] == "-" or lines[i][1].startswith("- ")):
        rest = lines[i][1][1:].strip()
        if not rest:
            if i + 1 < len(lines) and lines[i + 1][0] > indent:
                value, i = _block(lines, i + 1, lines[i + 1][0])
            else:
                value, i = None, i + 1
            out.append(value)
            continue
        if _KEY.match(rest) and not rest.startswith(("[", "{")):
            # A mapping inside a list item: "- pip:" with its value below, deeper.
            sub = [(indent + 2, rest)]
            j = i + 1
            while j < len(lines) and lines[j][0] > indent:
                sub.append(lines[j])
                j += 1
            value, _ = _mapping(sub, 0, indent + 2)
            out.append(value)
            i = j
            continue
        out.append(_scalar(rest))
        i += 1
    return out, i


def _mapping(lines, i, indent):
    out = {}
    while i < len(lines) and lines[i][0] == indent:
        m = _KEY.match(lines[i][1])
        if not m:
            break
        key, rest = m.group(1), m.group(2)
        key = key[1:-1] if key[:1] in "'\"" else key
        i += 1
        if rest is None or not rest.strip():
            # The value is the block below: deeper, or a sequence at the same indent.
            if i < len(lines) and (lines[i][0] > indent or (
                    lines[i][0] == indent and (lines[i][1] == "-" or lines[i][1].startswith("- ")))):
                value, i = _block(lines, i, lines[i][0])
            else:
                value = None
        else:
            value = _scalar(rest)
        out[key] = value
    return out, i


def yaml_dump_env(name, channels, deps, pip_deps, prefix, variables=None) -> str:
    out = [f"name: {name}", "channels:"]
    out += [f"  - {c}" for c in channels]
    out.append("dependencies:")
    out += [f"  - {d}" for d in deps]
    if pip_deps:
        out.append("  - pip:")
        out += [f"      - {d}" for d in pip_deps]
    if variables:
        out.append("variables:")
        out += [f"  {k}: {v}" for k, v in variables.items()]
    if prefix:
        out.append(f"prefix: {prefix}")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- configuration


def truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


class Context:
    def __init__(self, root_prefix: str, target_prefix: str | None = None):
        self.root_prefix = root_prefix
        self.home = os.path.expanduser("~")
        self.files = self._search_path(target_prefix)
        self.rc: dict = {}
        self.loaded: list[str] = []
        for path in self.files:
            try:
                with open(path) as f:
                    data = yaml_load(f.read()) or {}
            except OSError:
                continue
            if not isinstance(data, dict):
                continue
            self.loaded.append(path)
            self._merge(data)

    def _search_path(self, target_prefix):
        home, root = self.home, self.root_prefix
        paths = ["/etc/conda/.condarc", "/etc/conda/condarc"]
        paths += sorted(_glob_yml("/etc/conda/condarc.d"))
        paths += ["/var/lib/conda/.condarc", "/var/lib/conda/condarc"]
        paths += [os.path.join(root, ".condarc"), os.path.join(root, "condarc")]
        paths += sorted(_glob_yml(os.path.join(root, "condarc.d")))
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        paths += [os.path.join(xdg, "conda", ".condarc"), os.path.join(xdg, "conda", "condarc")]
        paths += [os.path.join(home, ".conda", ".condarc"), os.path.join(home, ".conda", "condarc")]
        paths += [os.path.join(home, ".condarc")]
        active = os.environ.get("CONDA_PREFIX")
        if active and os.path.realpath(active) != os.path.realpath(root):
            paths += [os.path.join(active, ".condarc")]
        if os.environ.get("CONDARC"):
            paths.append(os.environ["CONDARC"])
        return paths

    def _merge(self, data: dict):
        for key, value in data.items():
            old = self.rc.get(key)
            if isinstance(value, list) and isinstance(old, list):
                # Lists merge: the file read later has precedence, its items come first.
                self.rc[key] = list(dict.fromkeys([*value, *old]))
            elif isinstance(value, dict) and isinstance(old, dict):
                self.rc[key] = {**old, **value}
            else:
                self.rc[key] = value

    def get(self, key: str, default=None):
        env = os.environ.get("CONDA_" + key.upper())
        if env is not None:
            return env
        return self.rc.get(key, default)

    def get_list(self, key: str) -> list | None:
        env = os.environ.get("CONDA_" + key.upper())
        if env is not None:
            return [p.strip() for p in env.split(",") if p.strip()]
        value = self.rc.get(key)
        if value is None:
            return None
        return value if isinstance(value, list) else [value]

    # -- channels

    @property
    def channel_alias(self) -> str:
        return str(self.get("channel_alias") or DEFAULT_ALIAS).rstrip("/")

    @property
    def default_channels(self) -> list[str]:
        return [c.rstrip("/") for c in (self.get_list("default_channels") or DEFAULT_CHANNELS)]

    def channel_names(self, extra: list[str] | None = None, override: bool = False) -> list[str]:
        names = list(extra or [])
        if not override:
            names += self.get_list("channels") or ["defaults"]
        return list(dict.fromkeys(names))

    def expand(self, name: str) -> list[tuple[str, str]]:
        """A channel name or URL -> [(display name, base URL)]."""
        name = name.rstrip("/")
        if name == "defaults":
            return [(_display_default(u), u) for u in self.default_channels]
        if "://" in name:
            return [(name, name)]
        if name.startswith("/"):
            return [(name, "file://" + name)]
        custom = self.get("custom_channels") or {}
        if isinstance(custom, dict) and name in custom:
            return [(name, f"{str(custom[name]).rstrip('/')}/{name}")]
        return [(name, f"{self.channel_alias}/{name}")]

    def channels(self, extra=None, override=False) -> list[tuple[str, str]]:
        out = []
        for name in self.channel_names(extra, override):
            out += self.expand(name)
        return list(dict.fromkeys(out))

    # -- other settings

    @property
    def always_yes(self) -> bool:
        return truthy(self.get("always_yes", False))

    @property
    def auto_accept_tos(self) -> bool:
        env = os.environ.get("CONDA_PLUGINS_AUTO_ACCEPT_TOS")
        if env is not None:
            return truthy(env)
        plugins = self.rc.get("plugins")
        return isinstance(plugins, dict) and truthy(plugins.get("auto_accept_tos", False))

    @property
    def envs_dirs(self) -> list[str]:
        configured = [os.path.expanduser(p) for p in (self.get_list("envs_dirs") or [])]
        root_envs = os.path.join(self.root_prefix, "envs")
        user_envs = os.path.join(self.home, ".conda", "envs")
        defaults = [root_envs, user_envs] if _writable(self.root_prefix) else [user_envs, root_envs]
        return list(dict.fromkeys(configured + defaults))

    @property
    def pkgs_dirs(self) -> list[str]:
        configured = [os.path.expanduser(p) for p in (self.get_list("pkgs_dirs") or [])]
        root_pkgs = os.path.join(self.root_prefix, "pkgs")
        user_pkgs = os.path.join(self.home, ".conda", "pkgs")
        defaults = [root_pkgs, user_pkgs] if _writable(self.root_prefix) else [user_pkgs, root_pkgs]
        return list(dict.fromkeys(configured + defaults))

    def writable_pkgs_dir(self) -> str:
        for d in self.pkgs_dirs:
            with contextlib.suppress(OSError):
                os.makedirs(d, exist_ok=True)
            if _writable(d):
                return d
        raise CondaError("NoWritablePkgsDirError: no writable package cache among " + ", ".join(self.pkgs_dirs))

    def virtual_packages(self) -> dict[str, tuple[str, str]]:
        out = {"__unix": ("0", "0"), "__linux": (_kernel_version(), "0"),
               "__glibc": (_glibc_version(), "0"), "__archspec": ("1", os.uname().machine)}
        cuda = os.environ.get("CONDA_OVERRIDE_CUDA")
        if cuda is None:
            overrides = self.rc.get("override_virtual_packages")
            if isinstance(overrides, dict) and overrides.get("cuda") is not None:
                cuda = str(overrides["cuda"])
        # Without an override conda asks libcuda for the driver's version; no test host has one.
        if cuda:
            out["__cuda"] = (cuda, "0")
        return out


def canonical_name(ctx: Context, base_url: str) -> str:
    """How conda names a channel: pkgs/main for the defaults, NAME under the channel alias or a custom
    channel's base, else the URL itself."""
    base_url = (base_url or "").rstrip("/")
    if base_url in ctx.default_channels or base_url in DEFAULT_CHANNELS:
        return _display_default(base_url)
    custom = ctx.get("custom_channels") or {}
    if isinstance(custom, dict):
        for name, base in custom.items():
            if base_url == f"{str(base).rstrip('/')}/{name}":
                return name
    if base_url.startswith(ctx.channel_alias + "/"):
        return base_url[len(ctx.channel_alias) + 1:]
    return base_url


def _display_default(url: str) -> str:
    parts = url.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else url


def _glob_yml(folder):
    try:
        return [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith((".yml", ".yaml"))]
    except OSError:
        return []


def _writable(path: str) -> bool:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.access(path, os.W_OK)


def _kernel_version() -> str:
    m = re.match(r"[\d.]+", os.uname().release)
    return m.group().rstrip(".") if m else "0"


def _glibc_version() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    except (ValueError, OSError, AttributeError, IndexError):
        return "2.17"


# ----------------------------------------------------------------------------- versions and specs


def _version_key(v: str):
    v = v.lower().split("+", 1)[0]
    parts = []
    for comp in re.split(r"[._-]", v):
        for piece in re.findall(r"\d+|[a-z]+", comp):
            parts.append((1, int(piece), "") if piece.isdigit() else (0, 0, piece))
    return parts


def vcmp(a: str, b: str) -> int:
    ka, kb = _version_key(a), _version_key(b)
    n = max(len(ka), len(kb))
    ka += [(1, 0, "")] * (n - len(ka))
    kb += [(1, 0, "")] * (n - len(kb))
    return (ka > kb) - (ka < kb)


def _version_prefix(version: str, prefix: str) -> bool:
    a, b = _version_key(version), _version_key(prefix)
    return a[: len(b)] == b


def version_matches(version: str, spec: str | None) -> bool:
    if spec is None or spec in ("", "*"):
        return True
    for alternative in spec.split("|"):
        if all(_one_version(version, part.strip()) for part in alternative.split(",") if part.strip()):
            return True
    return False


def _one_version(version: str, spec: str) -> bool:
    m = re.match(r"^(==|!=|>=|<=|~=|>|<|=)?\s*(.+)$", spec)
    op, value = m.group(1), m.group(2).strip()
    if value.endswith(".*") or value.endswith("*"):
        stem = value.rstrip("*").rstrip(".")
        if op in (None, "=", "=="):
            return _version_prefix(version, stem)
        if op == "!=":
            return not _version_prefix(version, stem)
        value = stem
    if op == "=":
        return _version_prefix(version, value)
    c = vcmp(version, value)
    return {None: c == 0, "==": c == 0, "!=": c != 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0,
            "~=": c >= 0 and _version_prefix(version, ".".join(value.split(".")[:-1]) or value)}[op]


class MatchSpec:
    def __init__(self, text: str):
        self.original = text.strip()
        s = self.original
        self.channel = None
        if "::" in s:
            self.channel, s = s.split("::", 1)
        m = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(.*)$", s)
        if not m:
            raise CondaValueError(f"Invalid spec: {text}")
        self.name = m.group(1).lower()
        rest = m.group(2).strip()
        self.version = self.build = None
        if rest.startswith("["):
            for key, value in re.findall(r"(\w+)\s*=\s*['\"]?([^'\",\]]+)['\"]?", rest):
                if key == "version":
                    self.version = value
                elif key == "build":
                    self.build = value
        elif rest.startswith("=") and not rest.startswith("=="):
            parts = rest[1:].split("=")
            if len(parts) == 1:
                v = parts[0].strip()
                self.version = v if v.endswith("*") else v + "*"
            else:
                self.version, self.build = parts[0].strip(), parts[1].strip()
        elif rest:
            pieces = rest.split()
            self.version = pieces[0]
            if len(pieces) > 1:
                self.build = pieces[1]
        if self.version and self.version.endswith("*") and not self.version.endswith(".*") and \
                re.search(r"\d\*$", self.version):
            self.version = self.version[:-1] + ".*"

    def match(self, rec: dict) -> bool:
        if rec["name"] != self.name:
            return False
        if not version_matches(rec["version"], self.version):
            return False
        return not (self.build and not fnmatch.fnmatch(rec.get("build", ""), self.build))

    def __str__(self) -> str:
        out = self.name
        if self.version:
            out += self.version if self.version[0] in "<>=!~" else f"={self.version}".replace("=.*", "")
        if self.build:
            out += f"[build={self.build}]"
        return out

    def pretty(self) -> str:
        return self.original


# ----------------------------------------------------------------------------- channels and fetching


def channels_root() -> str | None:
    return os.environ.get("FAKE_CONDA_CHANNELS_ROOT") or CONFIG.get("channels_root")


def _is_ip_host(host: str) -> bool:
    return host == "localhost" or bool(re.fullmatch(r"[\d.]+|\[[0-9a-fA-F:]+\]", host))


def fetch(url: str) -> bytes:
    """Bytes at a channel URL, as described in the module docstring."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file" or url.startswith("/"):
        path = urllib.parse.unquote(parsed.path if parsed.scheme == "file" else url)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            raise CondaHTTPError(f"HTTP 404 NOT FOUND for url <{url}>\nElapsed: -\n\n"
                                 "A remote server error occurred when trying to retrieve this URL.") from None
    host = parsed.hostname or ""
    if parsed.scheme in ("http", "https") and _is_ip_host(host):
        try:
            with urllib.request.urlopen(url, timeout=15) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raise CondaHTTPError(f"HTTP {e.code} {e.reason.upper()} for url <{url}>\nElapsed: -\n\n"
                                 "A remote server error occurred when trying to retrieve this URL.") from None
        except (urllib.error.URLError, OSError):
            raise _connection_failed(url) from None
    root = channels_root()
    if not root or not os.path.isdir(os.path.join(root, parsed.netloc)):
        raise _connection_failed(url)
    path = os.path.join(root, parsed.netloc, urllib.parse.unquote(parsed.path).lstrip("/"))
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise CondaHTTPError(f"HTTP 404 NOT FOUND for url <{url}>\nElapsed: -\n\n"
                             "A remote server error occurred when trying to retrieve this URL.") from None


def _connection_failed(url):
    return CondaHTTPError(
        f"HTTP 000 CONNECTION FAILED for url <{url}>\nElapsed: -\n\n"
        "An HTTP error occurred when trying to retrieve this URL.\n"
        "HTTP errors are often intermittent, and a simple retry will get you on your way.\n"
        f"'{url}'")


class Index:
    def __init__(self, ctx: Context, channels: list[tuple[str, str]], offline=False):
        self.channels = channels
        self.by_name: dict[str, list[dict]] = {}
        for priority, (display, base) in enumerate(channels):
            for subdir in (SUBDIR, "noarch"):
                url = f"{base}/{subdir}/repodata.json"
                if offline:
                    continue
                data = json.loads(fetch(url))
                for group in ("packages", "packages.conda"):
                    for fn, rec in (data.get(group) or {}).items():
                        rec = dict(rec)
                        rec.update(fn=fn, url=f"{base}/{subdir}/{fn}", channel=f"{base}/{subdir}",
                                   base_url=base, subdir=subdir, channel_display=display, priority=priority)
                        rec.setdefault("build_number", 0)
                        rec.setdefault("depends", [])
                        self.by_name.setdefault(rec["name"], []).append(rec)
        for records in self.by_name.values():
            records.sort(key=_record_order)

    def urls(self) -> list[str]:
        return [f"{base}/{s}" for _, base in self.channels for s in (SUBDIR, "noarch")]


def _record_order(rec):
    return (rec["priority"], _Neg(rec["version"]), -rec.get("build_number", 0))


class _Neg:
    """Sorts versions newest first."""

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return vcmp(self.v, other.v) > 0

    def __eq__(self, other):
        return vcmp(self.v, other.v) == 0

    __hash__ = None


# ----------------------------------------------------------------------------- the solver


def solve(index: Index, specs: list[MatchSpec], installed: dict[str, dict], vpkgs: dict, *,
          keep: bool = True) -> dict[str, dict]:
    """Pick one record per name so that every spec and every dependency holds (greedy, newest first)."""
    missing = [s for s in specs if not s.name.startswith("__") and not any(
        s.match(r) and (not s.channel or _channel_ok(s, r)) for r in index.by_name.get(s.name, []))]
    if missing:
        raise PackagesNotFoundError(_not_found_message([s.pretty() for s in missing], index.urls()),
                                    packages=[s.pretty() for s in missing], channel_urls=index.urls())
    for s in specs:
        if s.name.startswith("__"):
            _check_virtual(s, vpkgs, None)
    chosen: dict[str, dict] = {}
    if keep:
        chosen.update({n: r for n, r in installed.items() if not r.get("_pypi")})
    for _ in range(100):
        constraints: dict[str, list[tuple[MatchSpec, str | None]]] = {}
        for s in specs:
            constraints.setdefault(s.name, []).append((s, None))
        for rec in chosen.values():
            for dep in rec.get("depends", []):
                d = MatchSpec(dep)
                constraints.setdefault(d.name, []).append((d, _dist(rec)))
        changed = False
        for name, cons in constraints.items():
            if name.startswith("__"):
                for spec, needed_by in cons:
                    _check_virtual(spec, vpkgs, needed_by)
                continue
            current = chosen.get(name)
            if current and all(s.match(current) for s, _ in cons):
                continue
            candidates = [r for r in index.by_name.get(name, [])
                          if all(s.match(r) and (not s.channel or _channel_ok(s, r)) for s, _ in cons)]
            if not candidates:
                lines = [f"  - {s.pretty()}" + (f" needed by {by}" if by else " requested") for s, by in cons]
                raise LibMambaUnsatisfiableError(
                    "Encountered problems while solving:\n  - nothing provides a package matching all of:\n"
                    + "\n".join(lines) + "\n\nCould not solve for environment specs\n"
                    f"The following packages are incompatible\n└─ {name} cannot be installed")
            chosen[name] = candidates[0]
            changed = True
        # Drop packages nothing asks for any more (only those this solve added).
        wanted = set(constraints)
        for name in list(chosen):
            if name not in wanted and name not in installed:
                del chosen[name]
                changed = True
        if not changed:
            return chosen
    raise LibMambaUnsatisfiableError("Encountered problems while solving: no stable solution")


def _channel_ok(spec: MatchSpec, rec: dict) -> bool:
    ch = spec.channel.rstrip("/")
    return ch in (rec["channel_display"], rec["base_url"]) or rec["base_url"].endswith("/" + ch)


def _check_virtual(spec: MatchSpec, vpkgs: dict, needed_by: str | None):
    have = vpkgs.get(spec.name)
    if have is None or not version_matches(have[0], spec.version):
        who = f"{needed_by}" if needed_by else "the requested specs"
        raise LibMambaUnsatisfiableError(
            "Encountered problems while solving:\n"
            f"  - nothing provides {spec.name} {spec.version or ''} needed by {who}\n\n"
            "Could not solve for environment specs\n"
            f"The following package could not be installed\n└─ {who} is not installable because it requires\n"
            f"   └─ {spec.name} {spec.version or ''}, which is missing on the system.")


def _not_found_message(specs: list[str], urls: list[str]) -> str:
    return ("The following packages are not available from current channels:\n\n"
            + "".join(f"  - {s}\n" for s in specs)
            + "\nCurrent channels:\n\n" + "".join(f"  - {u}\n" for u in urls)
            + "\nTo search for alternate channels that may provide the conda package you're\n"
              "looking for, navigate to\n\n    https://anaconda.org\n\n"
              "and use the search bar at the top of the page.\n")


def _dist(rec: dict) -> str:
    return f"{rec['name']}-{rec['version']}-{rec['build']}"


# ----------------------------------------------------------------------------- prefixes


def is_env(prefix: str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta"))


def installed_records(prefix: str) -> dict[str, dict]:
    out = {}
    meta = os.path.join(prefix, "conda-meta")
    try:
        names = sorted(os.listdir(meta))
    except OSError:
        return out
    for n in names:
        if n.endswith(".json"):
            with contextlib.suppress(OSError, ValueError):
                with open(os.path.join(meta, n)) as f:
                    rec = json.load(f)
                out[rec["name"]] = rec
    return out


def pip_records(prefix: str) -> list[dict]:
    """Packages in the env's site-packages that conda did not install (their INSTALLER is not conda)."""
    out = []
    for sp in _site_packages(prefix):
        for n in sorted(os.listdir(sp)):
            if not n.endswith(".dist-info"):
                continue
            d = os.path.join(sp, n)
            installer = ""
            with contextlib.suppress(OSError), open(os.path.join(d, "INSTALLER")) as f:
                installer = f.read().strip()
            if installer == "conda":
                continue
            name = version = None
            with contextlib.suppress(OSError), open(os.path.join(d, "METADATA"), encoding="utf-8",
                                                    errors="replace") as f:
                for line in f:
                    if line.startswith("Name:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("Version:"):
                        version = line.split(":", 1)[1].strip()
                    elif not line.strip():
                        break
            if name and version:
                out.append({"name": name.lower().replace("_", "-"), "version": version, "build": "pypi_0",
                            "build_number": 0, "channel": "pypi", "_pypi": True, "pip_name": name})
    return out


def _site_packages(prefix: str) -> list[str]:
    lib = os.path.join(prefix, "lib")
    try:
        return [os.path.join(lib, n, "site-packages") for n in sorted(os.listdir(lib))
                if n.startswith("python") and os.path.isdir(os.path.join(lib, n, "site-packages"))]
    except OSError:
        return []


def register_env(ctx: Context, prefix: str):
    path = os.path.join(ctx.home, ".conda", "environments.txt")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lines = []
        if os.path.exists(path):
            with open(path) as f:
                lines = [ln.strip() for ln in f if ln.strip()]
        if prefix not in lines:
            with open(path, "a") as f:
                f.write(prefix + "\n")
    except OSError:
        pass


def unregister_env(ctx: Context, prefix: str):
    path = os.path.join(ctx.home, ".conda", "environments.txt")
    with contextlib.suppress(OSError):
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        with open(path, "w") as f:
            f.writelines(ln + "\n" for ln in lines if ln != prefix)


def list_envs(ctx: Context) -> list[str]:
    envs = [ctx.root_prefix]
    for d in ctx.envs_dirs:
        with contextlib.suppress(OSError):
            for n in sorted(os.listdir(d)):
                p = os.path.join(d, n)
                if is_env(p):
                    envs.append(p)
    path = os.path.join(ctx.home, ".conda", "environments.txt")
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            p = line.strip()
            if p and is_env(p):
                envs.append(p)
    return list(dict.fromkeys(os.path.normpath(e) for e in envs))


def write_history(prefix: str, argv: list[str], linked: list[dict], unlinked: list[dict],
                  update_specs: list[str] | None = None, remove_specs: list[str] | None = None):
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"==> {now} <==", "# cmd: " + " ".join(argv), f"# conda version: {VERSION}"]
    lines += [f"-{r.get('channel', '')}::{_dist(r)}" for r in unlinked]
    lines += [f"+{r.get('channel', '')}::{_dist(r)}" for r in linked]
    if update_specs:
        lines.append(f"# update specs: {update_specs!r}")
    if remove_specs:
        lines.append(f"# remove specs: {remove_specs!r}")
    with open(os.path.join(prefix, "conda-meta", "history"), "a") as f:
        f.write("\n".join(lines) + "\n")


def history_specs(prefix: str) -> list[str]:
    specs: dict[str, str] = {}
    with contextlib.suppress(OSError), open(os.path.join(prefix, "conda-meta", "history")) as f:
        for line in f:
            m = re.match(r"# (update|remove) specs: (\[.*\])", line.strip())
            if not m:
                continue
            import ast

            for s in ast.literal_eval(m.group(2)):
                name = MatchSpec(s).name
                if m.group(1) == "update":
                    specs[name] = s
                else:
                    specs.pop(name, None)
    return list(specs.values())


# ----------------------------------------------------------------------------- transactions


def _extract(ctx: Context, rec: dict, pkgs_dir: str) -> str:
    """Download (or reuse) the package tarball and extract it in the package cache; return that folder."""
    tarball = os.path.join(pkgs_dir, rec["fn"])
    folder = os.path.join(pkgs_dir, _dist(rec))
    if os.path.isfile(os.path.join(folder, "info", "index.json")) and os.path.isfile(
            os.path.join(folder, "info", "repodata_record.json")):
        return folder
    data = None
    if os.path.isfile(tarball):
        with open(tarball, "rb") as f:
            data = f.read()
        if rec.get("sha256") and hashlib.sha256(data).hexdigest() != rec["sha256"]:
            data = None
    if data is None:
        data = fetch(rec["url"])
        if rec.get("sha256") and hashlib.sha256(data).hexdigest() != rec["sha256"]:
            raise ChecksumMismatchError(
                f"Conda detected a mismatch between the expected content and downloaded content\n"
                f"for url '{rec['url']}'.\n  download saved to: {tarball}\n"
                f"  expected sha256: {rec['sha256']}\n  actual sha256: {hashlib.sha256(data).hexdigest()}\n")
        if rec.get("md5") and hashlib.md5(data).hexdigest() != rec["md5"]:
            raise ChecksumMismatchError(f"md5 mismatch for url '{rec['url']}'")
        with open(tarball + ".partial", "wb") as f:
            f.write(data)
        os.replace(tarball + ".partial", tarball)
    shutil.rmtree(folder, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(folder, filter="tar") if hasattr(tarfile, "tar_filter") else tar.extractall(folder)
    clean = {k: v for k, v in rec.items() if k not in ("priority", "channel_display", "_pypi")}
    with open(os.path.join(folder, "info", "repodata_record.json"), "w") as f:
        json.dump(clean, f, indent=2, sort_keys=True)
    with open(os.path.join(pkgs_dir, "urls.txt"), "a") as f:
        f.write(rec["url"] + "\n")
    return folder


def _link(folder: str, rec: dict, prefix: str, requested: str | None) -> dict:
    with open(os.path.join(folder, "info", "files")) as f:
        files = [ln.rstrip("\n") for ln in f if ln.strip()]
    has_prefix = set()
    with contextlib.suppress(OSError), open(os.path.join(folder, "info", "has_prefix")) as f:
        for ln in f:
            if ln.strip():
                has_prefix.add(ln.split()[-1])
    for rel in files:
        src, dst = os.path.join(folder, rel), os.path.join(prefix, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            os.unlink(dst)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif rel in has_prefix:
            with open(src, "rb") as f:
                data = f.read().replace(PLACEHOLDER.encode(), prefix.encode())
            with open(dst, "wb") as f:
                f.write(data)
            shutil.copymode(src, dst)
        else:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
    meta = dict(rec)
    for k in ("priority", "channel_display", "_pypi"):
        meta.pop(k, None)
    meta.update(files=files, extracted_package_dir=folder, requested_spec=requested or "",
                paths_data={"paths": [{"_path": p, "path_type": "hardlink"} for p in files], "paths_version": 1},
                link={"source": folder, "type": 1})
    meta_dir = os.path.join(prefix, "conda-meta")
    os.makedirs(meta_dir, exist_ok=True)
    tmp = os.path.join(meta_dir, f".{_dist(rec)}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    os.replace(tmp, os.path.join(meta_dir, f"{_dist(rec)}.json"))
    return meta


def _post_link(ctx: Context, rec: dict, prefix: str):
    script = os.path.join(prefix, "bin", f".{rec['name']}-post-link.sh")
    if not os.path.isfile(script):
        return
    env = dict(os.environ, PREFIX=prefix, PKG_NAME=rec["name"], PKG_VERSION=rec["version"],
               PKG_BUILDNUM=str(rec.get("build_number", 0)), ROOT_PREFIX=ctx.root_prefix)
    proc = subprocess.run(["/bin/sh", script], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LinkError(f"post-link script failed for package {rec.get('channel', '')}::{_dist(rec)}\n"
                        f"location of failed script: {script}\n==> script messages <==\n"
                        f"{proc.stdout}{proc.stderr}\n==> script output <==\nreturn code: {proc.returncode}\n")


def _unlink(prefix: str, rec: dict):
    for rel in rec.get("files", []):
        p = os.path.join(prefix, rel)
        with contextlib.suppress(OSError):
            os.unlink(p)
        # Remove folders left empty, up to the prefix.
        d = os.path.dirname(p)
        while d.startswith(prefix + os.sep) and d != prefix:
            try:
                os.rmdir(d)
            except OSError:
                break
            d = os.path.dirname(d)
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(prefix, "conda-meta", f"{_dist(rec)}.json"))


def _order(records: list[dict]) -> list[dict]:
    """Dependencies before dependants (python first)."""
    by_name = {r["name"]: r for r in records}
    out, seen = [], set()

    def visit(r):
        if r["name"] in seen:
            return
        seen.add(r["name"])
        for dep in r.get("depends", []):
            d = by_name.get(MatchSpec(dep).name)
            if d:
                visit(d)
        out.append(r)

    for r in sorted(records, key=lambda r: (r["name"] != "python", r["name"])):
        visit(r)
    return out


class Transaction:
    def __init__(self, ctx: Context, prefix: str, link: list[dict], unlink: list[dict],
                 requested: dict[str, str] | None = None):
        self.ctx, self.prefix = ctx, prefix
        self.link, self.unlink = _order(link), unlink
        self.requested = requested or {}

    def nothing(self) -> bool:
        return not self.link and not self.unlink

    def print_plan(self, out, specs: list[str]):
        out.write("\n## Package Plan ##\n\n")
        out.write(f"  environment location: {self.prefix}\n\n")
        if specs:
            out.write("  added / updated specs:\n")
            out.writelines(f"    - {s}\n" for s in specs)
            out.write("\n")
        unlinked = {r["name"]: r for r in self.unlink}
        linked = {r["name"]: r for r in self.link}
        new = [r for n, r in linked.items() if n not in unlinked]
        updated = [r for n, r in linked.items() if n in unlinked]
        removed = [r for n, r in unlinked.items() if n not in linked]
        for title, recs in (("NEW packages will be INSTALLED", new), ("packages will be REMOVED", removed),
                            ("packages will be UPDATED", updated)):
            if not recs:
                continue
            out.write(f"\nThe following {title}:\n\n")
            for r in sorted(recs, key=lambda r: r["name"]):
                where = f"{r.get('channel_display', r.get('channel', ''))}/{r.get('subdir', SUBDIR)}::"
                if title.endswith("REMOVED"):
                    where = ""
                out.write(f"  {r['name']:<18} {where}{_dist(r)}\n")
            out.write("\n")
        out.write("\n")

    def execute(self, quiet=False, json_mode=False):
        out = sys.stdout if not (quiet or json_mode) else _Null()
        pkgs_dir = self.ctx.writable_pkgs_dir()
        if self.link:
            out.write("\nDownloading and Extracting Packages:\n")
            out.flush()
        folders = {r["name"]: _extract(self.ctx, r, pkgs_dir) for r in self.link}
        _step(out, "Preparing transaction")
        _step(out, "Verifying transaction")
        out.write("Executing transaction: ")
        out.flush()
        os.makedirs(os.path.join(self.prefix, "conda-meta"), exist_ok=True)
        for r in self.unlink:
            _unlink(self.prefix, r)
        linked = []
        # Test-only (not a conda setting): `fake_link_delay: SECONDS` in a .condarc slows each link, so a
        # test can cut a host's link while a build is under way.
        delay = float(self.ctx.get("fake_link_delay", 0) or 0)
        for r in self.link:
            linked.append(_link(folders[r["name"]], r, self.prefix, self.requested.get(r["name"])))
            if delay:
                time.sleep(delay)
        for r in linked:
            _post_link(self.ctx, r, self.prefix)
        out.write("done\n")
        out.flush()
        register_env(self.ctx, self.prefix)
        return linked


def _step(out, what: str, result: str = "done"):
    out.write(f"{what}: {result}\n")
    out.flush()


# ----------------------------------------------------------------------------- terms of service


def tos_dir(ctx: Context) -> str:
    return os.path.join(ctx.home, ".conda", "tos")


def _tos_key(url: str) -> str:
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:32]


def tos_plugin_installed(ctx: Context) -> bool:
    return any(n.startswith("conda-anaconda-tos-") for n in _listdir(os.path.join(ctx.root_prefix, "conda-meta")))


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def tos_state(ctx: Context, url: str) -> bool | None:
    url = url.rstrip("/")
    for base in (tos_dir(ctx), os.path.join(ctx.root_prefix, "conda-meta", "tos")):
        path = os.path.join(base, _tos_key(url) + ".json")
        with contextlib.suppress(OSError, ValueError), open(path) as f:
            return bool(json.load(f).get("tos_accepted"))
    return None


def tos_record(ctx: Context, url: str, accepted: bool, system: bool = False):
    base = os.path.join(ctx.root_prefix, "conda-meta", "tos") if system else tos_dir(ctx)
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, _tos_key(url) + ".json"), "w") as f:
        json.dump({"base_url": url.rstrip("/"), "tos_accepted": accepted, "version": 1,
                   "acceptance_timestamp": time.time()}, f, indent=2)


def tos_check(ctx: Context, channel_urls: list[str], interactive: bool):
    if not tos_plugin_installed(ctx):
        return
    needing = [u for u in dict.fromkeys(c.rstrip("/") for c in channel_urls) if u in TOS_CHANNELS]
    pending = [u for u in needing if tos_state(ctx, u) is not True]
    rejected = [u for u in needing if tos_state(ctx, u) is False]
    if rejected:
        raise CondaToSRejectedError("Terms of Service rejected for the following channels. Please remove "
                                    "them before proceeding:\n" + "".join(f"    • {u}\n" for u in rejected))
    if not pending:
        return
    if ctx.auto_accept_tos:
        for u in pending:
            tos_record(ctx, u, True)
        return
    if interactive:
        for u in pending:
            sys.stdout.write(f"Do you accept the Terms of Service (ToS) for {u}? [(a)ccept/(r)eject/(v)iew]: ")
            sys.stdout.flush()
            answer = sys.stdin.readline().strip().lower()
            if answer in ("a", "accept"):
                tos_record(ctx, u, True)
            else:
                tos_record(ctx, u, False)
                raise CondaToSRejectedError(f"Terms of Service rejected for the following channels:\n    • {u}\n")
        return
    raise CondaToSNonInteractiveError(
        "Terms of Service have not been accepted for the following channels. "
        "Please accept or remove them before proceeding:\n"
        + "".join(f"    • {u}\n" for u in pending)
        + "\nTo accept these channels' Terms of Service, run the following commands:\n"
        + "".join(f"    conda tos accept --override-channels --channel {u}\n" for u in pending)
        + "\nFor information on safely removing channels from your conda configuration,\n"
          "please see the official documentation:\n\n"
          "    https://www.anaconda.com/docs/tools/working-with-conda/channels\n")


# ----------------------------------------------------------------------------- prompts and output


def confirm(ctx: Context, args, question="Proceed", default_yes=True) -> None:
    """Conda's [y]/n prompt: empty line or EOF takes the default; 'n' exits 0 having done nothing."""
    if getattr(args, "dry_run", False):
        raise DryRunExit("Dry run. Exiting.")
    if getattr(args, "yes", False) or ctx.always_yes or getattr(args, "json", False):
        return
    choices = "([y]/n)" if default_yes else "(y/[n])"
    while True:
        sys.stdout.write(f"{question} {choices}? ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        answer = line.strip().lower()
        if not line or not answer:
            if default_yes:
                sys.stdout.write("\n")
                return
            raise CondaSystemExit("Exiting.")
        if answer in ("y", "yes"):
            sys.stdout.write("\n")
            return
        if answer in ("n", "no"):
            raise CondaSystemExit("Exiting.")
        sys.stdout.write(f"Invalid choice: {answer}\n")


def header(ctx: Context, channels: list[tuple[str, str]], out=None):
    out = out or sys.stdout
    out.write("Channels:\n")
    out.writelines(f" - {name}\n" for name in dict.fromkeys(d for d, _ in channels_display(channels)))
    out.write(f"Platform: {SUBDIR}\n")
    out.flush()


def channels_display(channels):
    return list(channels)


class _Null:
    def write(self, _text):
        return 0

    def writelines(self, _lines):
        pass

    def flush(self):
        pass


def activation_hint(prefix: str, name: str | None) -> str:
    target = name or prefix
    return ("#\n# To activate this environment, use\n#\n"
            f"#     $ conda activate {target}\n#\n"
            "# To deactivate an active environment, use\n#\n#     $ conda deactivate\n\n")


# ----------------------------------------------------------------------------- environment files


def read_env_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise EnvironmentFileNotFound(f"'{os.path.abspath(path)}' file not found")
    with open(path, encoding="utf-8") as f:
        data = yaml_load(f.read()) or {}
    if not isinstance(data, dict):
        raise CondaEnvException(f"Invalid environment file: {path}")
    deps, pip_deps = [], []
    for item in data.get("dependencies") or []:
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "pip":
                    pip_deps += [str(v) for v in (value or [])]
                else:
                    raise CondaEnvException(f"Unsupported dependency section: {key}")
        elif item is not None:
            deps.append(str(item))
    return {"name": data.get("name"), "channels": [str(c) for c in data.get("channels") or []],
            "dependencies": deps, "pip": pip_deps, "variables": data.get("variables") or {},
            "path": os.path.abspath(path)}


def pip_install(prefix: str, pip_deps: list[str], workdir: str, quiet=False):
    python = os.path.join(prefix, "bin", "python")
    fd, req = tempfile.mkstemp(prefix="condaenv.", suffix=".requirements.txt", dir=workdir)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(pip_deps) + "\n")
    argv = [python, "-m", "pip", "install", "-U", "-r", req, "--exists-action=b"]
    try:
        if not quiet:
            sys.stdout.write("Installing pip dependencies: ...working... ")
            sys.stdout.flush()
        env = dict(os.environ, CONDA_PREFIX=prefix, PATH=os.path.join(prefix, "bin") + os.pathsep
                   + os.environ.get("PATH", ""))
        proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, env=env)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(req)
    if not quiet:
        sys.stdout.write("Ran pip subprocess with arguments:\n")
        sys.stdout.write(repr(argv) + "\n")
        sys.stdout.write("Pip subprocess output:\n")
        sys.stdout.write(proc.stdout + "\n")
    if proc.returncode != 0:
        sys.stderr.write("Pip subprocess error:\n")
        sys.stderr.write(proc.stderr + "\n")
        if not quiet:
            sys.stdout.write("failed\n")
        raise CondaEnvException("Pip failed")
    if not quiet:
        sys.stdout.write("done\n")


def write_env_vars(prefix: str, variables: dict):
    if not variables:
        return
    path = os.path.join(prefix, "conda-meta", "state")
    state = {}
    with contextlib.suppress(OSError, ValueError), open(path) as f:
        state = json.load(f)
    state.setdefault("env_vars", {}).update({str(k): str(v) for k, v in variables.items()})
    with open(path, "w") as f:
        json.dump(state, f, indent=2)


# ----------------------------------------------------------------------------- commands


def root_prefix() -> str:
    return os.path.normpath(CONFIG.get("root_prefix_override") or sys.prefix)


def target_prefix(ctx: Context, args, must_exist=False) -> str:
    if getattr(args, "prefix", None):
        prefix = os.path.abspath(os.path.expanduser(args.prefix))
    elif getattr(args, "name", None):
        name = args.name
        if name in ("base", "root"):
            prefix = ctx.root_prefix
        elif "/" in name:
            raise CondaValueError(f"Invalid environment name: '{name}'\n  Characters not allowed: ('/',)")
        else:
            prefix = None
            for d in ctx.envs_dirs:
                if is_env(os.path.join(d, name)):
                    prefix = os.path.join(d, name)
                    break
            if prefix is None:
                if must_exist:
                    raise EnvironmentLocationNotFound(f"Not a conda environment: {name}")
                first = next((d for d in ctx.envs_dirs if _writable(d)), ctx.envs_dirs[0])
                prefix = os.path.join(first, name)
    else:
        prefix = os.environ.get("CONDA_PREFIX") or ctx.root_prefix
    if must_exist and not is_env(prefix):
        raise EnvironmentLocationNotFound(f"Not a conda environment: {prefix}")
    return os.path.normpath(prefix)


def _ctx(args, prefix=None) -> Context:
    return Context(root_prefix(), prefix)


def _interactive(args, ctx) -> bool:
    return (not getattr(args, "json", False) and not getattr(args, "yes", False) and not ctx.always_yes
            and sys.stdin.isatty())


def _channels_for(ctx: Context, args, file_channels: list[str] | None = None):
    extra = list(getattr(args, "channel", None) or [])
    override = getattr(args, "override_channels", False)
    configured = ctx.channels(extra, override)
    if file_channels:
        # The environment file's channels come first, then the configured ones (conda env create).
        merged = [c for name in file_channels for c in ctx.expand(name)] + configured
        return list(dict.fromkeys(merged)), configured
    return configured, configured


def _install(ctx, args, prefix, specs, *, creating, file_channels=None, pip_deps=None, pip_workdir=None,
             prune=False, variables=None, prompt=True, name_hint=None, env_command=False):
    channels, configured = _channels_for(ctx, args, file_channels)
    tos_check(ctx, [b for _, b in configured], _interactive(args, ctx))
    quiet = args.json or getattr(args, "quiet", False)
    out = sys.stdout if not quiet else _Null()
    if pip_deps and not any(MatchSpec(s).name == "pip" for s in specs):
        sys.stderr.write("Warning: you have pip-installed dependencies in your environment file, but you do not "
                         "list pip itself as one of your conda dependencies.  Conda may not use the correct pip "
                         "to install your packages, and they may end up in the wrong place.  Please add an "
                         "explicit pip dependency.  I'm adding one for you, but still nagging you.\n")
        specs = [*specs, "pip"]
    header(ctx, channels, out)
    out.write("Collecting package metadata (repodata.json): ")
    out.flush()
    try:
        index = Index(ctx, channels)
    except CondaError:
        out.write("failed\n")
        raise
    out.write("done\nSolving environment: ")
    out.flush()
    match_specs = [MatchSpec(s) for s in specs]
    installed = {} if creating else installed_records(prefix)
    try:
        if prune:
            keep_names = {s.name for s in match_specs}
            solved = solve(index, match_specs, {}, ctx.virtual_packages(), keep=False)
            for n, r in installed.items():
                if n in solved and _dist(solved[n]) == _dist(r):
                    solved[n] = r
            del keep_names
        else:
            solved = solve(index, match_specs, installed, ctx.virtual_packages(), keep=True)
    except CondaError:
        out.write("failed\n\n")
        out.flush()
        raise
    out.write("done\n")
    out.flush()
    link = [r for n, r in solved.items() if n not in installed or _dist(installed[n]) != _dist(r)]
    unlink = [r for n, r in installed.items() if n in solved and _dist(solved[n]) != _dist(r)]
    if prune:
        unlink += [r for n, r in installed.items() if n not in solved]
    requested = {s.name: s.original for s in match_specs}
    tx = Transaction(ctx, prefix, link, unlink, requested)
    if not env_command:
        if tx.nothing() and not creating:
            out.write("\n# All requested packages already installed.\n\n")
            return tx
        tx.print_plan(out, specs)
        if prompt:
            confirm(ctx, args)
    elif getattr(args, "dry_run", False):
        tx.print_plan(out, specs)
        raise DryRunExit("Dry run. Exiting.")
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    linked = tx.execute(quiet=quiet, json_mode=args.json)
    write_history(prefix, sys.argv, linked, tx.unlink, update_specs=list(specs))
    write_env_vars(prefix, variables or {})
    if pip_deps:
        pip_install(prefix, pip_deps, pip_workdir or os.getcwd(), quiet=quiet)
    if creating and not quiet:
        out.write(activation_hint(prefix, name_hint))
    tx.linked = linked
    return tx


def _json_actions(prefix, tx) -> dict:
    def brief(r):
        return {"name": r["name"], "version": r["version"], "build_string": r["build"],
                "build_number": r.get("build_number", 0), "channel": r.get("channel_display", r.get("channel")),
                "base_url": r.get("base_url"), "platform": r.get("subdir"), "dist_name": _dist(r)}

    return {"actions": {"LINK": [brief(r) for r in tx.link], "UNLINK": [brief(r) for r in tx.unlink],
                        "PREFIX": prefix}, "prefix": prefix, "success": True}


def _prepare_new_prefix(ctx, args, prefix, *, env_create: bool):
    if os.path.normpath(prefix) == os.path.normpath(ctx.root_prefix):
        raise CondaValueError("The target prefix is the base prefix. Aborting.")
    if is_env(prefix):
        if env_create:
            if version_tuple(VERSION) >= (26,):
                shutil.rmtree(prefix)  # conda 26 replaces the environment
            elif getattr(args, "yes", False):
                shutil.rmtree(prefix)
            else:
                raise CondaValueError(f"prefix already exists: {prefix}")
        else:
            if not (getattr(args, "yes", False) or ctx.always_yes or args.json):
                sys.stdout.write(f"WARNING: A conda environment already exists at '{prefix}'\n\n")
                confirm(ctx, args, "Remove existing environment?\nThis will remove ALL directories contained "
                        "within this specified prefix directory.\n\n", default_yes=False)
            else:
                sys.stderr.write(f"WARNING: A conda environment already exists at '{prefix}'\n"
                                 "Remove existing environment\n")
            shutil.rmtree(prefix)
    elif os.path.isdir(prefix) and os.listdir(prefix):
        raise DirectoryNotACondaEnvironmentError(
            f"The target directory exists, but it is not a conda environment.\n"
            f"Use 'conda create' to convert the directory to a conda environment.\n  target directory: {prefix}")
    elif os.path.exists(prefix) and not os.path.isdir(prefix):
        raise CondaValueError(f"Cannot create environment at {prefix}: a file is in the way")


def cmd_create(args):
    ctx = _ctx(args)
    if not args.prefix and not args.name:
        raise CondaValueError("one of the arguments -n/--name -p/--prefix is required")
    prefix = target_prefix(ctx, args)
    specs = list(args.packages or [])
    explicit = None
    for path in args.file or []:
        text = _read_text(path)
        if re.search(r"^@EXPLICIT\s*$", text, re.M):
            explicit = text
        else:
            specs += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    _prepare_new_prefix(ctx, args, prefix, env_create=False)
    if explicit is not None:
        return _explicit_install(ctx, args, prefix, explicit)
    tx = _install(ctx, args, prefix, specs, creating=True, name_hint=args.name)
    if not tx.link:
        # An empty environment is still an environment.
        os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
        write_history(prefix, sys.argv, [], [])
        register_env(ctx, prefix)
    if args.json:
        _print_json(_json_actions(prefix, tx))
    return 0


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        raise CondaValueError(f"could not read file: {path}") from None


def _explicit_install(ctx, args, prefix, text):
    platform = re.search(r"^#\s*platform:\s*(\S+)", text, re.M)
    if platform and platform.group(1) != SUBDIR:
        raise CondaValueError(f"The explicit file is for platform {platform.group(1)}; this is {SUBDIR}.")
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line == "@EXPLICIT":
            continue
        url, _, checksum = line.partition("#")
        url = url.strip()
        fn = url.rsplit("/", 1)[-1]
        channel = url.rsplit("/", 1)[0]
        subdir = channel.rsplit("/", 1)[-1]
        if subdir not in (SUBDIR, "noarch"):
            raise CondaValueError(f"The package {url} is for platform {subdir}; this is {SUBDIR}.")
        base = channel.rsplit("/", 1)[0]
        try:
            repodata = json.loads(fetch(f"{channel}/repodata.json"))
            known = (repodata.get("packages") or {}).get(fn)
        except CondaError:
            known = None
        m = re.match(r"^(.+)-([^-]+)-([^-]+)\.tar\.bz2$", fn)
        if not m:
            raise CondaValueError(f"Could not parse explicit URL: {url}")
        rec = dict(known or {"name": m.group(1), "version": m.group(2), "build": m.group(3), "depends": []})
        rec.update(fn=fn, url=url, channel=channel, base_url=base, subdir=subdir,
                   channel_display=_display_default(base))
        checksum = checksum.strip()
        rec.pop("md5", None) if checksum else None
        rec.pop("sha256", None) if checksum else None
        if checksum.startswith("sha256:") or len(checksum) == 64:
            rec["sha256"] = checksum.split(":")[-1]
        elif len(checksum) == 32:
            rec["md5"] = checksum
        records.append(rec)
    _channels, configured = _channels_for(ctx, args)
    tos_check(ctx, [b for _, b in configured], _interactive(args, ctx))
    quiet = args.json or getattr(args, "quiet", False)
    tx = Transaction(ctx, prefix, records, [])
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    linked = tx.execute(quiet=quiet, json_mode=args.json)
    write_history(prefix, sys.argv, linked, [], update_specs=[_dist(r) for r in linked])
    if args.json:
        _print_json(_json_actions(prefix, tx))
    return 0


def cmd_install(args):
    ctx = _ctx(args)
    prefix = target_prefix(ctx, args, must_exist=True)
    specs = list(args.packages or [])
    for path in args.file or []:
        specs += [ln.strip() for ln in _read_text(path).splitlines() if ln.strip() and not ln.startswith("#")]
    if not specs:
        raise CondaValueError("too few arguments, must supply command line package specs or --file")
    tx = _install(ctx, args, prefix, specs, creating=False)
    if args.json:
        _print_json(_json_actions(prefix, tx))
    return 0


def cmd_remove(args):
    ctx = _ctx(args)
    if not args.prefix and not args.name:
        prefix = os.environ.get("CONDA_PREFIX") or ctx.root_prefix
    else:
        prefix = target_prefix(ctx, args)
    if not is_env(prefix):
        raise EnvironmentLocationNotFound(f"Not a conda environment: {prefix}")
    _channels, configured = _channels_for(ctx, args)
    tos_check(ctx, [b for _, b in configured], _interactive(args, ctx))
    quiet = args.json or args.quiet
    out = sys.stdout if not quiet else _Null()
    installed = installed_records(prefix)
    if getattr(args, "all", False):
        if os.path.normpath(prefix) == ctx.root_prefix:
            raise CondaEnvironmentError("cannot remove root environment, add -n NAME or -p PREFIX option")
        out.write(f"\nRemove all packages in environment {prefix}:\n\n")
        tx = Transaction(ctx, prefix, [], list(installed.values()))
        if installed:
            tx.print_plan(out, [])
        confirm(ctx, args)
        out.write("\n")
        _step(out, "Preparing transaction")
        _step(out, "Verifying transaction")
        _step(out, "Executing transaction")
        for r in installed.values():
            _unlink(prefix, r)
        shutil.rmtree(prefix, ignore_errors=True)
        unregister_env(ctx, prefix)
        if args.json:
            _print_json(_json_actions(prefix, tx))
        return 0
    if not args.packages:
        raise CondaValueError("no package names supplied,\n       try \"conda remove -h\" for more details")
    names = [MatchSpec(p).name for p in args.packages]
    missing = [n for n in names if n not in installed]
    if missing:
        raise PackagesNotFoundError("The following packages are missing from the target environment:\n"
                                    + "".join(f"  - {n}\n" for n in missing))
    # Remove the packages and whatever depends on them.
    doomed = set(names)
    while True:
        more = {n for n, r in installed.items() if n not in doomed
                and any(MatchSpec(d).name in doomed for d in r.get("depends", []))}
        if not more:
            break
        doomed |= more
    tx = Transaction(ctx, prefix, [], [installed[n] for n in sorted(doomed)])
    out.write("Channels:\n" + "".join(f" - {d}\n" for d, _ in configured) + f"Platform: {SUBDIR}\n")
    _step(out, "Collecting package metadata (repodata.json)")
    _step(out, "Solving environment")
    tx.print_plan(out, list(args.packages))
    confirm(ctx, args)
    tx.execute(quiet=quiet, json_mode=args.json)
    write_history(prefix, sys.argv, [], tx.unlink, remove_specs=list(args.packages))
    if args.json:
        _print_json(_json_actions(prefix, tx))
    return 0


def cmd_env_create(args):
    ctx = _ctx(args)
    env = read_env_file(args.file)
    if not args.prefix and not args.name:
        if not env["name"]:
            raise SpecNotFound("Environment with requirements.txt file needs a name")
        args.name = env["name"]
    prefix = target_prefix(ctx, args)
    _prepare_new_prefix(ctx, args, prefix, env_create=True)
    tx = _install(ctx, args, prefix, env["dependencies"], creating=True, file_channels=env["channels"],
                  pip_deps=env["pip"], pip_workdir=os.path.dirname(env["path"]), variables=env["variables"],
                  name_hint=args.name, env_command=True)
    if not tx.link:
        os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
        register_env(ctx, prefix)
    if args.json:
        _print_json({"success": True, "prefix": prefix})
    return 0


def cmd_env_update(args):
    ctx = _ctx(args)
    env = read_env_file(args.file)
    if not args.prefix and not args.name:
        args.name = env["name"]
    prefix = target_prefix(ctx, args)
    creating = not is_env(prefix)
    tx = _install(ctx, args, prefix, env["dependencies"], creating=creating, file_channels=env["channels"],
                  pip_deps=env["pip"], pip_workdir=os.path.dirname(env["path"]), prune=args.prune and not creating,
                  variables=env["variables"], name_hint=args.name, env_command=True)
    del tx
    if args.json:
        _print_json({"success": True, "prefix": prefix})
    elif not args.quiet:
        sys.stdout.write(activation_hint(prefix, args.name))
    return 0


def cmd_env_remove(args):
    args.all = True
    args.packages = []
    return cmd_remove(args)


def cmd_env_list(args):
    ctx = _ctx(args)
    envs = list_envs(ctx)
    if args.json:
        data = {"envs": envs}
        if version_tuple(VERSION) >= (25, 11):
            data["envs_details"] = {e: {"base": e == ctx.root_prefix, "name": _env_name(ctx, e),
                                        "writable": _writable(e), "active": False} for e in envs}
        _print_json(data)
        return 0
    active = os.environ.get("CONDA_PREFIX", "")
    sys.stdout.write("\n# conda environments:\n#\n")
    for e in envs:
        name = _env_name(ctx, e) or ""
        star = "*" if os.path.normpath(active or "") == e else " "
        sys.stdout.write(f"{name:<25}{star}  {e}\n")
    sys.stdout.write("\n")
    return 0


def _env_name(ctx, prefix):
    if prefix == ctx.root_prefix:
        return "base"
    for d in ctx.envs_dirs:
        if os.path.dirname(prefix) == os.path.normpath(d):
            return os.path.basename(prefix)
    return None


def cmd_env_export(args):
    ctx = _ctx(args)
    prefix = target_prefix(ctx, args, must_exist=True)
    name = args.name or _env_name(ctx, prefix) or os.path.basename(prefix)
    installed = installed_records(prefix)
    channels = [canonical_name(ctx, r.get("base_url", "")) for r in installed.values()]
    channels = list(dict.fromkeys(list(dict.fromkeys(channels)) + ctx.channel_names(args.channel or [],
                                                                                    args.override_channels)))
    if "defaults" in channels:
        channels = [c for c in channels if c not in ("pkgs/main", "pkgs/r")]
    if args.from_history:
        deps, pip_deps = history_specs(prefix), []
    else:
        deps = [f"{r['name']}={r['version']}" + ("" if args.no_builds else f"={r['build']}")
                for r in sorted(installed.values(), key=lambda r: r["name"])]
        pip_deps = [f"{p['pip_name']}=={p['version']}" for p in pip_records(prefix)
                    if p["name"] not in installed]
    variables = {}
    with contextlib.suppress(OSError, ValueError), open(os.path.join(prefix, "conda-meta", "state")) as f:
        variables = json.load(f).get("env_vars", {})
    text = yaml_dump_env(name, channels, deps, pip_deps, prefix, variables)
    if args.json:
        _print_json({"name": name, "channels": channels, "dependencies": deps + ([{"pip": pip_deps}]
                                                                                if pip_deps else []),
                     "prefix": prefix})
    elif args.file:
        with open(args.file, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_list(args):
    ctx = _ctx(args)
    prefix = target_prefix(ctx, args)
    if not is_env(prefix):
        raise EnvironmentLocationNotFound(f"Not a conda environment: {prefix}")
    installed = installed_records(prefix)
    if args.explicit:
        sys.stdout.write("# This file may be used to create an environment using:\n"
                         "# $ conda create --name <env> --file <this file>\n"
                         f"# platform: {SUBDIR}\n# created-by: conda {VERSION}\n@EXPLICIT\n")
        for r in sorted(installed.values(), key=lambda r: r["name"]):
            url = r.get("url")
            if not url:
                sys.stdout.write(f"# no URL for: {r.get('fn')}\n")
                continue
            key = "md5" if args.md5 else "sha256" if args.sha256 else None
            sys.stdout.write(url + (f"#{r[key]}" if key and r.get(key) else "") + "\n")
        return 0
    pips = [] if args.no_pip else [p for p in pip_records(prefix) if p["name"] not in installed]
    rows = []
    for r in installed.values():
        rows.append({"base_url": r.get("base_url"), "build_number": r.get("build_number", 0),
                     "build_string": r["build"], "channel": canonical_name(ctx, r.get("base_url", "")),
                     "dist_name": _dist(r), "name": r["name"], "platform": r.get("subdir", SUBDIR),
                     "version": r["version"]})
    for p in pips:
        rows.append({"base_url": "pypi", "build_number": 0, "build_string": "pypi_0", "channel": "pypi",
                     "dist_name": f"{p['name']}-{p['version']}-pypi_0", "name": p["name"], "platform": "pypi",
                     "version": p["version"]})
    rows.sort(key=lambda r: r["name"])
    if args.regex:
        rows = [r for r in rows if re.search(args.regex, r["name"])]
    if args.json:
        _print_json(rows)
        return 0
    sys.stdout.write(f"# packages in environment at {prefix}:\n#\n")
    sys.stdout.write(f"# {'Name':<23} {'Version':<25} {'Build':>6}  Channel\n")
    for r in rows:
        channel = "pypi" if r["channel"] == "pypi" else ""
        sys.stdout.write(f"{r['name']:<25} {r['version']:<25} {r['build_string']:>6}  {channel}\n")
    return 0


def cmd_info(args):
    ctx = _ctx(args)
    if args.envs:
        return cmd_env_list(args)
    channels = [f"{b}/{s}" for _, b in ctx.channels() for s in (SUBDIR, "noarch")]
    vpkgs = [[n, v, b] for n, (v, b) in sorted(ctx.virtual_packages().items())]
    info = {
        "GID": os.getgid(), "UID": os.getuid(), "active_prefix": os.environ.get("CONDA_PREFIX"),
        "active_prefix_name": None, "av_data_dir": os.path.join(ctx.root_prefix, "etc", "conda"),
        "channels": channels, "conda_build_version": "not installed", "conda_env_version": VERSION,
        "conda_location": os.path.join(ctx.root_prefix, "lib", _pyver(), "site-packages", "conda"),
        "conda_prefix": ctx.root_prefix, "conda_version": VERSION, "config_files": ctx.loaded,
        "default_prefix": os.environ.get("CONDA_PREFIX") or ctx.root_prefix, "envs": list_envs(ctx),
        "envs_dirs": ctx.envs_dirs, "netrc_file": None, "offline": False, "pkgs_dirs": ctx.pkgs_dirs,
        "platform": SUBDIR, "python_version": ".".join(map(str, sys.version_info[:3])) + ".final.0",
        "rc_path": os.path.join(ctx.home, ".condarc"), "root_prefix": ctx.root_prefix, "root_writable":
        _writable(ctx.root_prefix), "site_dirs": [], "solver": {"default": True, "name": "libmamba"},
        "sys.executable": sys.executable, "sys.prefix": sys.prefix, "sys.version": sys.version,
        "sys_rc_path": os.path.join(ctx.root_prefix, ".condarc"), "user_agent": f"conda/{VERSION}",
        "user_rc_path": os.path.join(ctx.home, ".condarc"), "virtual_pkgs": vpkgs,
    }
    if args.json:
        _print_json(info)
        return 0
    sys.stdout.write("\n     active environment : None\n")
    sys.stdout.write(f"       user config file : {info['user_rc_path']}\n")
    sys.stdout.write(f"          conda version : {VERSION}\n")
    sys.stdout.write(f"         python version : {info['python_version']}\n")
    sys.stdout.write("       virtual packages : " + "\n                          ".join(
        f"{n}={v}={b}" for n, v, b in vpkgs) + "\n")
    sys.stdout.write(f"       base environment : {ctx.root_prefix}  (writable)\n")
    sys.stdout.write("           channel URLs : " + "\n                          ".join(channels) + "\n")
    sys.stdout.write("          package cache : " + "\n                          ".join(ctx.pkgs_dirs) + "\n")
    sys.stdout.write("       envs directories : " + "\n                          ".join(ctx.envs_dirs) + "\n")
    sys.stdout.write(f"               platform : {SUBDIR}\n\n")
    return 0


def _pyver():
    return f"python{sys.version_info[0]}.{sys.version_info[1]}"


def cmd_clean(args):
    ctx = _ctx(args)
    if not (args.all or args.packages or args.tarballs or args.index_cache):
        raise CondaValueError("At least one removal target must be given. See 'conda clean -h'.")
    in_use = set()
    for e in list_envs(ctx):
        for r in installed_records(e).values():
            in_use.add(_dist(r))
    tarballs, folders = [], []
    for d in ctx.pkgs_dirs:
        for n in _listdir(d):
            p = os.path.join(d, n)
            if n.endswith((".tar.bz2", ".conda")) and (args.all or args.tarballs):
                tarballs.append(p)
            elif os.path.isdir(p) and n not in ("cache",) and n not in in_use and (args.all or args.packages):
                folders.append(p)
        if args.all or args.index_cache:
            shutil.rmtree(os.path.join(d, "cache"), ignore_errors=True)
    if not args.json:
        sys.stdout.write(f"Will remove {len(tarballs)} tarball(s).\n" if tarballs else "There are no tarballs "
                         "to remove\n")
        sys.stdout.write(f"Will remove {len(folders)} package(s).\n" if folders else "There are no unused "
                         "packages to remove\n")
    if tarballs or folders:
        confirm(ctx, args)
    for p in tarballs:
        with contextlib.suppress(OSError):
            os.unlink(p)
    for p in folders:
        shutil.rmtree(p, ignore_errors=True)
    if args.json:
        _print_json({"tarballs": {"files": tarballs}, "packages": {"files": folders}, "success": True})
    return 0


def cmd_run(args):
    ctx = _ctx(args)
    prefix = target_prefix(ctx, args, must_exist=True)
    argv = list(args.executable_call)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise CondaValueError("No executable provided")
    env = dict(os.environ)
    env.update(CONDA_PREFIX=prefix, CONDA_DEFAULT_ENV=prefix, CONDA_SHLVL="1",
               PATH=os.path.join(prefix, "bin") + os.pathsep + env.get("PATH", ""))
    with contextlib.suppress(OSError, ValueError), open(os.path.join(prefix, "conda-meta", "state")) as f:
        env.update(json.load(f).get("env_vars", {}))
    script = ('for f in "$CONDA_PREFIX"/etc/conda/activate.d/*.sh; do [ -f "$f" ] && . "$f"; done\n'
              'exec "$@"\n')
    cwd = args.cwd or None
    full = ["/bin/sh", "-c", script, "sh", *argv]
    if args.no_capture_output or args.live_stream:
        return subprocess.run(full, env=env, cwd=cwd).returncode
    proc = subprocess.run(full, env=env, cwd=cwd, capture_output=True)
    sys.stdout.buffer.write(proc.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(proc.stderr)
    sys.stderr.flush()
    if proc.returncode != 0:
        sys.stderr.write(f"\nERROR conda.cli.main_run:execute(127): `conda run {' '.join(argv)}` failed. "
                         "(See above for error)\n") if proc.returncode == 127 else None
    return proc.returncode


def cmd_tos(args):
    ctx = _ctx(args)
    if not tos_plugin_installed(ctx):
        sys.stderr.write("usage: conda [-h] [-v] [--no-plugins] [-V] COMMAND ...\n"
                         "conda: error: argument COMMAND: invalid choice: 'tos'\n")
        return 2
    extra = list(args.channel or [])
    urls = [b for _, b in ctx.channels(extra, args.override_channels)]
    action = args.tos_command or "view"
    if action in ("accept", "reject"):
        for u in urls:
            tos_record(ctx, u, action == "accept", system=args.system)
            if not args.json:
                verb = "accepted" if action == "accept" else "rejected"
                sys.stdout.write(f"{verb} Terms of Service for {u}\n")
        return 0
    if action == "clean":
        shutil.rmtree(tos_dir(ctx), ignore_errors=True)
        return 0
    rows = []
    for u in urls:
        state = tos_state(ctx, u) if u in TOS_CHANNELS else None
        rows.append({"channel": u, "tos_accepted": state, "requires_tos": u in TOS_CHANNELS})
    if args.json:
        _print_json(rows)
    else:
        sys.stdout.write(f"{'Channel':<45} {'Version':<8} {'Accepted':<10}\n")
        for r in rows:
            acc = "-" if not r["requires_tos"] else ("yes" if r["tos_accepted"] else
                                                     "rejected" if r["tos_accepted"] is False else "-")
            ver = "1" if r["requires_tos"] else "-"
            sys.stdout.write(f"{r['channel']:<45} {ver:<8} {acc:<10}\n")
    return 0


def cmd_config(args):
    ctx = _ctx(args)
    keys = args.show if args.show else None
    data = dict(ctx.rc)
    data.setdefault("channels", ctx.channel_names())
    data.setdefault("default_channels", ctx.default_channels)
    data.setdefault("channel_alias", ctx.channel_alias)
    data.setdefault("custom_channels", {})
    data.setdefault("envs_dirs", ctx.envs_dirs)
    data.setdefault("pkgs_dirs", ctx.pkgs_dirs)
    data.setdefault("always_yes", ctx.always_yes)
    if keys:
        data = {k: data.get(k) for k in keys}
    if args.show_sources:
        sys.stdout.write("".join(f"==> {p} <==\n" for p in ctx.loaded))
        return 0
    if args.json:
        _print_json(data)
        return 0
    for k, v in data.items():
        if isinstance(v, list):
            sys.stdout.write(f"{k}:\n" + "".join(f"  - {x}\n" for x in v))
        elif isinstance(v, dict):
            sys.stdout.write(f"{k}:\n" + "".join(f"  {a}: {b}\n" for a, b in v.items()))
        else:
            sys.stdout.write(f"{k}: {v}\n")
    return 0


def cmd_constructor_install(args):
    """What the installer runs with the host's python: link the payload's packages into PREFIX, offline."""
    prefix = os.path.abspath(args.prefix)
    CONFIG["root_prefix_override"] = prefix
    ctx = Context(prefix)
    pkgs_dir = os.path.join(prefix, "pkgs")
    with open(os.path.join(pkgs_dir, "env.txt")) as f:
        urls = [ln.strip() for ln in f if ln.strip() and not ln.startswith(("#", "@"))]
    records = []
    for line in urls:
        url, _, md5 = line.partition("#")
        fn = url.rsplit("/", 1)[-1]
        with tarfile.open(os.path.join(pkgs_dir, fn), "r:bz2") as tar:
            index = json.load(tar.extractfile("info/index.json"))
        channel = url.rsplit("/", 1)[0]
        rec = dict(index, fn=fn, url=url, channel=channel, base_url=channel.rsplit("/", 1)[0],
                   subdir=channel.rsplit("/", 1)[-1], md5=md5 or None)
        with open(os.path.join(pkgs_dir, fn), "rb") as f:
            data = f.read()
        if md5 and hashlib.md5(data).hexdigest() != md5:
            raise ChecksumMismatchError(f"md5 mismatch for {fn}")
        rec["sha256"] = hashlib.sha256(data).hexdigest()
        rec["size"] = len(data)
        records.append(rec)
    sys.stdout.write("Preparing transaction: ")
    sys.stdout.flush()
    folders = {r["name"]: _extract(ctx, r, pkgs_dir) for r in records}
    sys.stdout.write("...working... done\nExecuting transaction: ")
    sys.stdout.flush()
    linked = [_link(folders[r["name"]], r, prefix, None) for r in _order(records)]
    for r in linked:
        _post_link(ctx, r, prefix)
    write_history(prefix, ["constructor", "install"], linked, [], update_specs=[r["name"] for r in linked])
    register_env(ctx, prefix)
    sys.stdout.write("...working... done\n")
    if not args.keep_pkgs:
        for r in records:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(pkgs_dir, r["fn"]))
    return 0


# ----------------------------------------------------------------------------- argument parsing


def _print_json(data):
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def _common(p, prefix=True, channels=False, yes=True):
    if prefix:
        g = p.add_mutually_exclusive_group()
        g.add_argument("-n", "--name")
        g.add_argument("-p", "--prefix")
    if channels:
        p.add_argument("-c", "--channel", action="append")
        p.add_argument("--override-channels", action="store_true")
        p.add_argument("--strict-channel-priority", action="store_true")
        p.add_argument("--use-local", action="store_true")
        p.add_argument("--offline", action="store_true")
        p.add_argument("--solver")
        p.add_argument("--dry-run", "-d", action="store_true")
    if yes:
        p.add_argument("-y", "--yes", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("--debug", action="store_true")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="conda")
    top.add_argument("-V", "--version", action="store_true")
    top.add_argument("--no-plugins", action="store_true")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("create")
    _common(p, channels=True)
    p.add_argument("--file", action="append")
    p.add_argument("--clone")
    p.add_argument("packages", nargs="*")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("install")
    _common(p, channels=True)
    p.add_argument("--file", action="append")
    p.add_argument("packages", nargs="*")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("update")
    _common(p, channels=True)
    p.add_argument("--file", action="append")
    p.add_argument("--all", action="store_true")
    p.add_argument("packages", nargs="*")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("remove", aliases=["uninstall"])
    _common(p, channels=True)
    p.add_argument("--all", action="store_true")
    p.add_argument("packages", nargs="*")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("list")
    _common(p, yes=False)
    p.add_argument("--explicit", action="store_true")
    p.add_argument("--md5", action="store_true")
    p.add_argument("--sha256", action="store_true")
    p.add_argument("--no-pip", action="store_true")
    p.add_argument("--export", "-e", action="store_true")
    p.add_argument("--full-name", "-f", action="store_true")
    p.add_argument("--show-channel-urls", action="store_true")
    p.add_argument("regex", nargs="?")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info")
    _common(p, prefix=False, yes=False)
    p.add_argument("-e", "--envs", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-s", "--system", action="store_true")
    p.add_argument("--base", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("clean")
    _common(p, prefix=False)
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-p", "--packages", action="store_true")
    p.add_argument("-t", "--tarballs", action="store_true")
    p.add_argument("-i", "--index-cache", action="store_true")
    p.add_argument("-f", "--force-pkgs-dirs", action="store_true")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("run")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-n", "--name")
    g.add_argument("-p", "--prefix")
    p.add_argument("--no-capture-output", "--live-stream", dest="no_capture_output", action="store_true")
    p.add_argument("--cwd")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("--debug-wrapper-scripts", action="store_true")
    p.add_argument("executable_call", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run, live_stream=False, json=False)

    p = sub.add_parser("config")
    _common(p, prefix=False, yes=False)
    p.add_argument("--show", nargs="*")
    p.add_argument("--show-sources", action="store_true")
    p.add_argument("--system", action="store_true")
    p.add_argument("--env", action="store_true")
    p.add_argument("--file")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("tos")
    tsub = p.add_subparsers(dest="tos_command")
    for action in ("accept", "reject", "view", "interactive", "clean"):
        t = tsub.add_parser(action)
        t.add_argument("-c", "--channel", action="append")
        t.add_argument("--override-channels", action="store_true")
        t.add_argument("--system", action="store_true")
        t.add_argument("--json", action="store_true")
        t.add_argument("--all", action="store_true")
    p.add_argument("-c", "--channel", action="append")
    p.add_argument("--override-channels", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tos, system=False)

    env = sub.add_parser("env")
    esub = env.add_subparsers(dest="env_command", metavar="COMMAND")
    p = esub.add_parser("create")
    _common(p, channels=True)
    p.add_argument("-f", "--file", default="environment.yml")
    p.add_argument("remote_definition", nargs="?")
    p.set_defaults(func=cmd_env_create)
    p = esub.add_parser("update")
    _common(p, channels=True)
    p.add_argument("-f", "--file", default="environment.yml")
    p.add_argument("--prune", action="store_true")
    p.add_argument("remote_definition", nargs="?")
    p.set_defaults(func=cmd_env_update)
    p = esub.add_parser("list")
    _common(p, prefix=False, yes=False)
    p.set_defaults(func=cmd_env_list)
    p = esub.add_parser("export")
    _common(p, yes=False, channels=False)
    p.add_argument("-c", "--channel", action="append")
    p.add_argument("--override-channels", action="store_true")
    p.add_argument("-f", "--file")
    p.add_argument("--no-builds", action="store_true")
    p.add_argument("--from-history", action="store_true")
    p.add_argument("--ignore-channels", action="store_true")
    p.set_defaults(func=cmd_env_export)
    p = esub.add_parser("remove")
    _common(p, channels=True)
    p.set_defaults(func=cmd_env_remove, quiet=False)

    p = sub.add_parser("init")
    p.add_argument("shells", nargs="*")
    p.add_argument("--reverse", action="store_true")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("constructor-install")
    p.add_argument("--prefix", required=True)
    p.add_argument("--keep-pkgs", action="store_true")
    p.set_defaults(func=cmd_constructor_install, json=False)
    return top


INIT_FILES = {"bash": ".bashrc", "zsh": ".zshrc", "sh": ".profile"}


def cmd_init(args):
    """`conda init SHELL`: conda's `# >>> conda initialize >>>` block in that shell's rc file (once)."""
    prefix = root_prefix()
    for shell in args.shells or ["bash"]:
        if shell not in INIT_FILES:
            raise CondaError("ArgumentError", f"Invalid choice for shell: {shell}")
        rc = os.path.join(os.path.expanduser("~"), INIT_FILES[shell])
        text = _read_text(rc) if os.path.exists(rc) else ""
        if "# >>> conda initialize >>>" in text:
            sys.stdout.write(f"no change     {rc}\n")
            continue
        block = ("\n# >>> conda initialize >>>\n# !! Contents within this block are managed by 'conda init' !!\n"
                 f"__conda_setup=\"$('{prefix}/bin/conda' 'shell.{shell}' 'hook' 2> /dev/null)\"\n"
                 f"export PATH=\"{prefix}/bin:$PATH\"\n# <<< conda initialize <<<\n")
        with open(rc, "a") as fh:
            fh.write(block)
        sys.stdout.write(f"modified      {rc}\n\n"
                         "==> For changes to take effect, close and re-open your current shell. <==\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = parser()
    args = p.parse_args(argv)
    if args.version:
        sys.stdout.write(f"conda {VERSION}\n")
        return 0
    if not args.command:
        p.print_help()
        return 0
    if args.command == "env" and not getattr(args, "env_command", None):
        sys.stderr.write("usage: conda env [-h] COMMAND ...\n")
        return 2
    try:
        return args.func(args) or 0
    except CondaError as e:
        json_mode = getattr(args, "json", False)
        if json_mode:
            data = {"caused_by": "None", "error": f"{e.name}: {e.message}", "exception_name": e.name,
                    "exception_type": f"<class 'conda.exceptions.{e.name}'>", "message": e.message}
            data.update(e.extra)
            _print_json(data)
        elif e.exit_code == 0:
            sys.stdout.write(f"\n{e.name}: {e.message}\n\n")
        else:
            sys.stderr.write(f"\n{e.name}: {e.message}\n\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\nCondaSystemExit: \nOperation aborted.  Exiting.\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
