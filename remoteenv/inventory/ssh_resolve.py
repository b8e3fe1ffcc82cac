"""One host name through parsed ssh config files, as OpenSSH's ssh.c and readconf.c resolve it.

In file order, first value wins: `Host` against the name as given, `Match` with the values set so
far, `Include` only where its block applies. Then, as ssh does: HostName's `%h`, the name
lowercased, CanonicalizeHostname, and a second (final) pass when `Match final` or canonicalization
asks for one. Last the defaults and the `%` tokens of the path options. The answer is a
`Resolution`: what `ssh -G` prints for the options remoteenv uses, and the same values in
remoteenv's field names, each with the `file:line` that set it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.inventory.ssh_parse import ConfigFile, Jump, Line
from remoteenv.inventory.ssh_words import (
    WordError,
    ascii_lower,
    home_dir,
    match_hostname,
    match_pattern_list,
    percent_expand,
    strdelim,
    tilde_expand,
)

DEFAULT_IDENTITIES = ["~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
                      "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa"]
DEFAULT_USER_KNOWN_HOSTS = ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"]
DEFAULT_GLOBAL_KNOWN_HOSTS = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
_HINT = "fix that line (`ssh -G HOST` shows how OpenSSH reads the file)"
_MATCH_CRITERIA = ("host", "originalhost", "user", "localuser", "exec")


def local_user() -> str:
    """The local account name ssh uses (%u, the default User): the password database's."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        import getpass

        return getpass.getuser()


def _resolves(name: str, port: int) -> bool:
    """Whether the resolver knows `name` (CanonicalizeHostname tries each CanonicalDomains suffix)."""
    try:
        return bool(socket.getaddrinfo(name, port, type=socket.SOCK_STREAM))
    except (OSError, UnicodeError):
        return False


# Replaceable in tests, which give ssh and remoteenv the same host table.
resolve_name: Callable[[str, int], bool] = _resolves


@dataclass
class _Options:
    """readconf.c's Options for the keywords remoteenv reads: unset until the first value."""

    values: dict[str, Any] = field(default_factory=dict)  # keyword -> first value
    origins: dict[str, str] = field(default_factory=dict)  # keyword -> file:line
    identity_files: list[tuple[str, bool, str]] = field(default_factory=list)  # (raw, user config, where)
    certificate_files: list[tuple[str, bool, str]] = field(default_factory=list)

    def first(self, line: Line, value: Any) -> None:
        if line.keyword not in self.values:
            self.values[line.keyword] = value
            self.origins[line.keyword] = line.where

    def get(self, keyword: str, default: Any = None) -> Any:
        return self.values.get(keyword, default)


@dataclass
class _Pass:
    host: str  # what `Host` lines match: the name as given, then (final pass) the final hostname
    original: str
    final: bool
    env: Env
    wants_final: bool = False


@dataclass
class Env:
    """Facts about this machine that tokens and `Match` use, asked for once per lookup."""

    user: str
    home: str
    uid: str
    thishost: str
    plain_paths: dict[str, str] = field(default_factory=dict)  # token-free path -> expanded

    @classmethod
    def here(cls) -> Env:
        uid = str(os.getuid()) if hasattr(os, "getuid") else "0"
        return cls(local_user(), home_dir(), uid, socket.gethostname())

    @property
    def shorthost(self) -> str:
        return self.thishost.split(".", 1)[0]


def conn_hash(thishost: str, host: str, port: int, user: str) -> str:
    """readconf.c ssh_connection_hash() (%C) as OpenSSH 9.2 computes it."""
    return hashlib.sha1(f"{thishost}{host}{port}{user}".encode()).hexdigest()


def check_match(rest: str) -> None:
    """A `Match` line's syntax, checked once when the file is read (WordError if ssh refuses it)."""
    _match(rest, None, None)


def _match(rest: str, opts: _Options | None, ctx: _Pass | None) -> bool:
    """readconf.c match_cfg_line(). Without `opts` it only checks the syntax."""
    evaluate = opts is not None and ctx is not None
    cp: str | None = rest
    result, attributes = True, 0
    host = ruser = ""
    port = 22
    if evaluate:
        port = opts.get("port", 22)
        ruser = opts.get("user") or ctx.env.user
        hostname = opts.get("hostname")
        if ctx.final:
            host = hostname
        elif hostname is not None:
            host = _expand(hostname, {"h": ctx.host}, opts.origins["hostname"], "HostName")
        else:
            host = ctx.host
    while True:
        attrib, cp = strdelim(cp)
        if not attrib:
            break
        if attrib.startswith("#"):
            break
        negate = attrib.startswith("!")
        name = attrib[1:] if negate else attrib
        lname = name.lower()
        if lname == "all":
            arg, cp = strdelim(cp)
            if attributes > 1 or (arg and not arg.startswith("#")):
                raise WordError(f"'{attrib}' cannot be combined with other Match attributes")
            if result:
                result = not negate
            return result
        attributes += 1
        if lname in ("canonical", "final"):
            if lname == "final" and ctx is not None:
                ctx.wants_final = True
            if evaluate and ctx.final == negate:
                result = False
            continue
        arg, cp = strdelim(cp)
        if not arg or arg.startswith("#"):
            raise WordError(f"Missing Match criteria for {name}")
        if lname not in _MATCH_CRITERIA:
            raise WordError(f"Unsupported Match attribute {name}")
        if not evaluate:
            continue
        if lname == "host":
            hit = match_hostname(host, arg)
        elif lname == "originalhost":
            hit = match_hostname(ctx.original, arg)
        elif lname == "user":
            hit = match_pattern_list(ruser, arg, False) == 1
        elif lname == "localuser":
            hit = match_pattern_list(ctx.env.user, arg, False) == 1
        else:
            env = ctx.env
            tokens = {"C": conn_hash(env.thishost, host, port, ruser), "L": env.shorthost, "d": env.home,
                      "h": host, "k": ascii_lower(opts.get("hostkeyalias") or host), "l": env.thishost,
                      "n": ctx.original, "p": str(port), "r": ruser, "u": env.user, "i": env.uid}
            command = _expand(arg, tokens, None, "Match exec")
            if not result:
                continue  # ssh skips the command once an earlier criterion failed
            hit = _run(command) == 0
        if hit == negate:
            result = False
    if attributes == 0:
        raise WordError("One or more attributes required for Match")
    return result


def _run(command: str) -> int:
    """Run a `Match exec` command as ssh does: the user's shell, stdin and stdout on /dev/null."""
    shell = os.environ.get("SHELL") or "/bin/sh"
    if not os.access(shell, os.X_OK):
        raise ConfigError(f'Shell "{shell}" is not executable', "set SHELL to a shell, as ssh needs it too")
    try:
        done = subprocess.run([shell, "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              check=False)
    except OSError as exc:
        raise ConfigError(f"Match exec '{command[:100]}': {exc}") from None
    if done.returncode < 0:
        raise ConfigError(f"match exec '{command[:100]}' error", "the command was killed by a signal")
    return done.returncode


def _expand(value: str, tokens: dict[str, str], where: str | None, what: str, dollar: bool = False) -> str:
    try:
        return percent_expand(value, tokens, dollar=dollar)
    except WordError as exc:
        place = f"{where}: " if where else ""
        raise ConfigError(f"{place}{what} {value}: {exc}",
                          "see TOKENS in `man ssh_config` for what this option takes") from None


class Walker:
    """Walks the config files for one pass, as readconf.c read_config_file() does."""

    def __init__(self, opts: _Options, ctx: _Pass) -> None:
        self.opts = opts
        self.ctx = ctx
        self.active = True

    def file(self, config: ConfigFile, never: bool = False) -> None:
        opts = self.opts
        for line in config.segments:
            if isinstance(line, list):  # plain settings: they count only where the block applies
                if self.active:
                    for setting in line:
                        self._apply(setting, config.user_config)
                continue
            if line.error is not None:
                raise ConfigError(line.refused(), _HINT)
            if line.unknown:
                ignored = opts.get("ignoreunknown")
                if ignored is None or match_pattern_list(line.keyword, ignored, True) != 1:
                    raise ConfigError(f"{line.where}: Bad configuration option: {line.keyword}",
                                      "remove it, or name it in IgnoreUnknown (ssh refuses it too)")
                continue
            keyword = line.keyword
            if keyword == "host":
                self.active = False if never else line.value.matches(self.ctx.host)
            elif keyword == "match":
                try:
                    matched = _match(line.rest, opts, self.ctx)
                except WordError as exc:
                    raise ConfigError(f"{line.where}: {exc}", _HINT) from None
                self.active = False if never else matched
            else:  # include
                was_active = self.active
                for included in line.includes:
                    self.file(included, never or not was_active)
                    self.active = was_active  # a Match in the included file ends with it

    def _apply(self, line: Line, user_config: bool) -> None:
        opts, keyword, value = self.opts, line.keyword, line.value
        if keyword in ("identityfile", "certificatefile"):
            files = opts.certificate_files if keyword == "certificatefile" else opts.identity_files
            if not any(raw == value and user == user_config for raw, user, _ in files):
                files.append((value, user_config, line.where))
        elif keyword in ("connecttimeout", "serveraliveinterval"):
            if value != -1:  # `none` leaves the option unset: a later value still counts
                opts.first(line, value)
        elif keyword == "proxycommand":
            jump = opts.get("proxyjump")
            if jump is None or jump.none:
                opts.first(line, value)
        elif keyword == "proxyjump":
            if "proxycommand" not in opts.values:
                opts.first(line, value)
        else:
            opts.first(line, value)


class Resolution:
    """One host as ssh resolves it: `configured` and `origins` at once (all a lookup needs), the
    defaults and `ssh -G`'s view when first asked for."""

    def __init__(self, name: str, host: str, opts: _Options, env: Env) -> None:
        self.name, self._host, self._opts, self._env = name, host, opts, env
        self.configured, self.origins = _finish(name, host, opts, env, full=False)[2:]
        self._full: tuple[dict[str, Any], dict[str, Any]] | None = None

    def _complete(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._full is None:
            self._full = _finish(self.name, self._host, self._opts, self._env, full=True)[:2]
        return self._full

    @property
    def ssh_g(self) -> dict[str, Any]:
        """ssh -G's key -> its value as printed (a list for repeated keys)."""
        return self._complete()[0]

    @property
    def fields(self) -> dict[str, Any]:
        """remoteenv field -> value, defaults included."""
        return self._complete()[1]


_FIELD_OF = {"hostname": "hostname", "user": "user", "port": "port", "identityfile": "identity_files",
             "identitiesonly": "identities_only", "certificatefile": "certificate_files",
             "connecttimeout": "connect_timeout", "proxyjump": "proxy_jump", "proxycommand": "proxy_command",
             "serveraliveinterval": "server_alive_interval", "serveralivecountmax": "server_alive_count_max",
             "userknownhostsfile": "user_known_hosts_file", "globalknownhostsfile": "global_known_hosts_file",
             "hashknownhosts": "hash_known_hosts", "stricthostkeychecking": "strict_host_key_checking",
             "controlpersist": "control_persist", "controlpath": "control_path",
             "controlmaster": "control_master", "addkeystoagent": "add_keys_to_agent",
             "identityagent": "identity_agent"}


def resolve(name: str, files: list[ConfigFile], env: Env | None = None) -> Resolution:
    """ssh.c main(), from reading the config files to `ssh -G`'s dump."""
    env = env or Env.here()
    opts = _Options()
    first = _Pass(name, name, False, env)
    for config in files:
        Walker(opts, first).file(config)
    host = name
    if opts.get("hostname") is not None:
        host = _expand(opts.get("hostname"), {"h": name}, opts.origins["hostname"], "HostName")
        opts.values["hostname"] = host
    was_addr = _is_addr(host)
    if not was_addr:
        host = ascii_lower(host)
    canonicalize = opts.get("canonicalizehostname", "false")
    if canonicalize != "false" and not was_addr:
        host = _canonicalize(host, opts, canonicalize)
    wants_final = first.wants_final or canonicalize != "false"
    if wants_final:
        opts.values["hostname"] = host
        final = _Pass(host, name, True, env)
        for config in files:
            Walker(opts, final).file(config)
    return Resolution(name, host, opts, env)


_DIGITS_DOTS = re.compile(r"[0-9.]*")
_MAYBE_NUMERIC = re.compile(r"[0-9a-fA-FxX.]+")


def _is_addr(name: str) -> bool:
    """ssh.c is_addr(): a numeric address, which ssh neither lowercases nor canonicalizes."""
    if "%" in name or ":" in name or _DIGITS_DOTS.fullmatch(name):
        return True
    if not _MAYBE_NUMERIC.fullmatch(name):  # inet_aton's spellings (0x7f.1) are all this could be
        return False
    try:
        found = socket.getaddrinfo(name, 22, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
    except (OSError, UnicodeError):
        return False
    return len(found) == 1


def _canonicalize(host: str, opts: _Options, mode: str) -> str:
    """ssh.c resolve_canonicalize(), without following CNAMEs (CanonicalizePermittedCNAMEs)."""
    direct = opts.get("proxycommand") in (None, "none") and (
        opts.get("proxyjump") is None or opts.get("proxyjump").none)
    if not direct and mode != "always":
        return host
    port = opts.get("port", 22)
    if host.endswith("."):
        if resolve_name(host, port):
            return host[:-1]
    else:
        if host.count(".") > opts.get("canonicalizemaxdots", 1):
            return host
        domains = opts.get("canonicaldomains") or []
        for domain in domains:
            if domain.lower() == "none":
                break
            if resolve_name(f"{host}.{domain}.", port):
                return f"{host}.{domain}"
    if not opts.get("canonicalizefallbacklocal", True):
        raise ConfigError(f'Could not resolve host "{host}"',
                          "CanonicalizeFallbackLocal is no: add the right CanonicalDomains")
    return host


def _quote(word: str) -> str:
    return shlex.quote(word) if any(c in word for c in " \t\"'\\") else word


def _finish(name: str, host: str, opts: _Options, env: Env, full: bool) -> tuple[dict, dict, dict, dict]:
    """fill_default_options() and the expansions ssh.c does before `ssh -G` prints:
    (ssh -G's view, every field, the configured fields, their origins). Without `full`, only the
    configured fields are worked out (a lookup needs no more)."""
    g: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    configured: dict[str, Any] = {}
    origins: dict[str, str] = {}
    values, where = opts.values, opts.origins

    def wanted(key: str) -> bool:
        return full or key in where

    def put(key: str, shown: Any, value: Any) -> None:
        if shown is not None:
            g[key] = shown
        field_name = _FIELD_OF[key]
        fields[field_name] = value
        origin = where.get(key)
        if origin:
            configured[field_name] = value
            origins[field_name] = origin

    user = values.get("user") or env.user
    port = values.get("port", 22)
    alias = ascii_lower(values["hostkeyalias"]) if "hostkeyalias" in values else name
    tokens: dict[str, str] = {}

    def path(raw: str, origin: str | None, what: str) -> str:
        plain = "%" not in raw and "${" not in raw
        if plain and raw in env.plain_paths:  # the same for every host: the defaults, most keys
            return env.plain_paths[raw]
        if not tokens:
            tokens.update({"C": conn_hash(env.thishost, host, port, user), "L": env.shorthost, "i": env.uid,
                           "k": alias, "l": env.thishost, "n": name, "p": str(port), "d": env.home, "h": host,
                           "r": user, "u": env.user})
        try:
            expanded = tilde_expand(raw, env.home)
        except WordError as exc:
            raise ConfigError(f"{origin}: {what} {raw}: {exc}") from None
        expanded = _expand(expanded, tokens, origin, what, dollar=True)
        if plain:
            env.plain_paths[raw] = expanded
        return expanded

    if wanted("user"):
        put("user", user, user)
    put("hostname", host, host)
    if "hostname" in where and host == name:
        del configured["hostname"], origins["hostname"]  # HostName %h: the name itself
    if "hostname" not in where and host != name:
        configured["hostname"] = host  # ssh lowercases the name (and may canonicalize it)
    if wanted("port"):
        put("port", str(port), port)
    if opts.identity_files or full:
        identities = opts.identity_files or [(p, False, "") for p in DEFAULT_IDENTITIES]
        put("identityfile", [raw for raw, _, _ in identities],
            [path(raw, origin or None, "IdentityFile") for raw, _, origin in identities])
    if opts.identity_files:
        origins["identity_files"] = opts.identity_files[0][2]
        configured["identity_files"] = fields["identity_files"]
    if wanted("identitiesonly"):
        only = bool(values.get("identitiesonly"))
        put("identitiesonly", "yes" if only else "no", only)
    if opts.certificate_files or full:
        put("certificatefile", [raw for raw, _, _ in opts.certificate_files],
            [path(raw, origin, "CertificateFile") for raw, _, origin in opts.certificate_files])
    if opts.certificate_files:
        origins["certificate_files"] = opts.certificate_files[0][2]
        configured["certificate_files"] = fields["certificate_files"]
    if wanted("connecttimeout"):
        timeout = values.get("connecttimeout", -1)
        put("connecttimeout", "none" if timeout == -1 else str(timeout), None if timeout == -1 else float(timeout))
    jump: Jump | None = values.get("proxyjump")
    command = values.get("proxycommand")
    if jump is not None and not jump.none:
        put("proxyjump", jump.ssh_g(), jump.hops())
    else:
        fields["proxy_jump"] = None
    if command is not None and command.lower() != "none" and (jump is None or jump.none):
        proxy_tokens = {"h": host, "k": alias, "n": name, "p": str(port), "r": user}
        put("proxycommand", command, _expand(command, proxy_tokens, where["proxycommand"], "ProxyCommand"))
    else:
        fields["proxy_command"] = None
    if wanted("serveraliveinterval"):
        interval = values.get("serveraliveinterval", 0)
        put("serveraliveinterval", str(interval), float(interval))
    if wanted("serveralivecountmax"):
        count = values.get("serveralivecountmax", 3)
        put("serveralivecountmax", str(count), count)
    if wanted("userknownhostsfile"):
        user_files = [path(raw, where.get("userknownhostsfile"), "UserKnownHostsFile")
                      for raw in values.get("userknownhostsfile", DEFAULT_USER_KNOWN_HOSTS)]
        # remoteenv's known-hosts code splits this as a shell would and expands tokens again:
        # quote each path, and keep a `%` from the expansion a literal one.
        put("userknownhostsfile", " ".join(user_files),
            " ".join(_quote(f.replace("%", "%%")) for f in user_files))
    if wanted("globalknownhostsfile"):
        global_files = values.get("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS)
        put("globalknownhostsfile", " ".join(global_files), " ".join(_quote(f) for f in global_files))
    if wanted("hashknownhosts"):
        hashed = bool(values.get("hashknownhosts", False))
        put("hashknownhosts", "yes" if hashed else "no", hashed)
    if wanted("stricthostkeychecking"):
        strict = values.get("stricthostkeychecking", "ask")
        put("stricthostkeychecking", strict, {"true": "yes", "false": "no"}.get(strict, strict))
    if wanted("controlpersist"):
        persist, persist_for = values.get("controlpersist", (False, 0))
        shown = str(persist_for) if persist and persist_for else ("yes" if persist else "no")
        put("controlpersist", shown, persist_for if persist and persist_for else shown)
    control = values.get("controlpath")
    if control is not None and control.lower() != "none":
        expanded = path(control, where["controlpath"], "ControlPath")
        put("controlpath", expanded, expanded)
    else:
        fields["control_path"] = None
    if wanted("controlmaster"):
        master = values.get("controlmaster", "false")
        put("controlmaster", master, {"true": "yes", "false": "no"}.get(master, master))
    if wanted("addkeystoagent"):
        state, life = values.get("addkeystoagent", ("no", 0))
        if life > 0:
            shown = f"confirm {life}" if state == "confirm" else str(life)
        else:
            shown = {"yes": "true", "no": "false"}.get(state, state)
        put("addkeystoagent", shown, shown if life > 0 else state)
    agent = values.get("identityagent")
    if agent is not None:
        expanded = path(agent, where["identityagent"], "IdentityAgent")
        put("identityagent", expanded, expanded)
    else:
        fields["identity_agent"] = None
    g["canonicalizehostname"] = values.get("canonicalizehostname", "false")
    domains = values.get("canonicaldomains")
    g["canonicaldomains"] = " ".join(domains) if domains else "none"
    return g, fields, configured, origins
