"""ssh config files read into lines once, checked the way OpenSSH's readconf.c checks them.

A file becomes a list of `Line`s: the keyword, its words, the value already parsed for the
keywords remoteenv uses, and any error OpenSSH would report for that line. `Include` lines carry
the files they name, read the same way. Nothing here depends on the host being looked up, so a
config is read once however many hosts are resolved; ssh_resolve.py walks the lines per host.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteenv.errors import ConfigError
from remoteenv.inventory.ssh_words import WHITESPACE, WordError, argv_split, match_pattern, strdelim, tilde_expand
from remoteenv.paths import read_regular_file, text_lines

# readconf.c READCONF_MAX_DEPTH
MAX_INCLUDE_DEPTH = 16
# An ssh config is a few KiB; these bound what a wrong path or a hostile Include tree can cost.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_INCLUDED = 4096  # file inclusions in one config, counting repeats
MAX_LINES = 1_000_000  # lines over every inclusion

SYSTEM_CONFIG = "/etc/ssh/ssh_config"
SYSTEM_DIR = "/etc/ssh"

# Every keyword OpenSSH 9.2 (as Debian builds it) knows. Anything else is "Bad configuration
# option" unless IgnoreUnknown names it.
_KNOWN = frozenset({
    "addkeystoagent", "addressfamily", "batchmode", "bindaddress", "bindinterface", "canonicaldomains",
    "canonicalizefallbacklocal", "canonicalizehostname", "canonicalizemaxdots", "canonicalizepermittedcnames",
    "casignaturealgorithms", "certificatefile", "challengeresponseauthentication", "checkhostip", "ciphers",
    "clearallforwardings", "compression", "connectionattempts", "connecttimeout", "controlmaster", "controlpath",
    "controlpersist", "dsaauthentication", "dynamicforward", "enableescapecommandline", "enablesshkeysign",
    "escapechar", "exitonforwardfailure", "fingerprinthash", "forkafterauthentication", "forwardagent",
    "forwardx11", "forwardx11timeout", "forwardx11trusted", "gatewayports", "globalknownhostsfile",
    "gssapiauthentication", "gssapiclientidentity", "gssapidelegatecredentials", "gssapikexalgorithms",
    "gssapikeyexchange", "gssapirenewalforcesrekey", "gssapiserveridentity", "gssapitrustdns", "hashknownhosts",
    "host", "hostbasedacceptedalgorithms", "hostbasedauthentication", "hostbasedkeytypes", "hostkeyalgorithms",
    "hostkeyalias", "hostname", "identitiesonly", "identityagent", "identityfile", "identityfile2", "ignoreunknown",
    "include", "ipqos", "kbdinteractiveauthentication", "kbdinteractivedevices", "keepalive", "kexalgorithms",
    "knownhostscommand", "localcommand", "localforward", "loglevel", "logverbose", "macs", "match",
    "nohostauthenticationforlocalhost", "numberofpasswordprompts", "passwordauthentication", "permitlocalcommand",
    "permitremoteopen", "pkcs11provider", "port", "preferredauthentications", "proxycommand", "proxyjump",
    "proxyusefdpass", "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes", "pubkeyauthentication", "rekeylimit",
    "remotecommand", "remoteforward", "requesttty", "requiredrsasize", "revokedhostkeys", "securitykeyprovider",
    "sendenv", "serveralivecountmax", "serveraliveinterval", "sessiontype", "setenv", "smartcarddevice",
    "stdinnull", "streamlocalbindmask", "streamlocalbindunlink", "stricthostkeychecking", "syslogfacility",
    "tcpkeepalive", "tunnel", "tunneldevice", "updatehostkeys", "user", "userknownhostsfile", "verifyhostkeydns",
    "visualhostkey", "xauthlocation"
})
# Accepted and ignored (deprecated, unsupported or Debian-only), whatever their arguments.
_IGNORED = frozenset({
    "afstokenpassing", "cipher", "compressionlevel", "fallbacktorsh", "globalknownhostsfile2",
    "kerberosauthentication", "kerberostgtpassing", "protocol", "rhostsauthentication", "rhostsrsaauthentication",
    "rsaauthentication", "useblacklistedkeys", "useprivilegedport", "userknownhostsfile2", "useroaming", "usersh"
})
# Client keywords of OpenSSH releases after 9.2, which a person's newer ssh accepts: read and
# ignored (9.2 itself refuses them; README: ssh config, differences).
NEWER = frozenset({"tag", "channeltimeout", "obscurekeystroketiming"})
# Other spellings of a keyword: they set the same option.
_ALIASES = {"identityfile2": "identityfile", "dsaauthentication": "pubkeyauthentication",
            "challengeresponseauthentication": "kbdinteractiveauthentication",
            "skeyauthentication": "kbdinteractiveauthentication", "tisauthentication": "kbdinteractiveauthentication",
            "keepalive": "tcpkeepalive", "hostbasedkeytypes": "hostbasedacceptedalgorithms",
            "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms", "smartcarddevice": "pkcs11provider"}
# Keywords whose value is the rest of the line as written (readconf.c parse_command).
_COMMANDS = {"proxycommand", "localcommand", "remotecommand", "knownhostscommand"}
# Keywords that take a list of words (no arity check here).
_LISTS = {"host", "match", "include", "globalknownhostsfile", "userknownhostsfile", "sendenv", "setenv",
          "canonicaldomains", "canonicalizepermittedcnames", "logverbose", "permitremoteopen",
          "localforward", "remoteforward", "ipqos", "rekeylimit", "addkeystoagent", "proxyjump"}
_FLAG = {"true": True, "false": False, "yes": True, "no": False}
_FLAGS = frozenset({
    "batchmode", "canonicalizefallbacklocal", "challengeresponseauthentication", "checkhostip",
    "clearallforwardings", "enableescapecommandline", "enablesshkeysign", "exitonforwardfailure",
    "forkafterauthentication", "forwardx11", "forwardx11trusted", "gatewayports", "gssapiauthentication",
    "gssapidelegatecredentials", "gssapikeyexchange", "gssapirenewalforcesrekey", "gssapitrustdns",
    "hashknownhosts", "hostbasedauthentication", "identitiesonly", "kbdinteractiveauthentication", "keepalive",
    "nohostauthenticationforlocalhost", "passwordauthentication", "permitlocalcommand", "proxyusefdpass",
    "skeyauthentication", "stdinnull", "streamlocalbindunlink", "tcpkeepalive", "visualhostkey"
})
# readconf.c's multistate tables: spelling -> the name ssh -G prints for it.
MULTISTATE: dict[str, dict[str, str]] = {
    "stricthostkeychecking": {"true": "true", "yes": "true", "false": "false", "no": "false", "off": "false",
                              "ask": "ask", "accept-new": "accept-new"},
    "controlmaster": {"true": "true", "yes": "true", "false": "false", "no": "false", "auto": "auto",
                      "ask": "ask", "autoask": "autoask"},
    "canonicalizehostname": {"true": "true", "yes": "true", "false": "false", "no": "false",
                             "always": "always"},
    "addressfamily": {"inet": "inet", "inet6": "inet6", "any": "any"},
    "requesttty": {"true": "yes", "yes": "yes", "false": "no", "no": "no", "force": "force", "auto": "auto"},
    "sessiontype": {"none": "none", "subsystem": "subsystem", "default": "default"},
    "tunnel": {"ethernet": "ethernet", "point-to-point": "point-to-point", "true": "true", "yes": "true",
               "false": "no", "no": "no"},
    "verifyhostkeydns": {"true": "true", "yes": "true", "false": "false", "no": "false", "ask": "ask"},
    "updatehostkeys": {"true": "true", "yes": "true", "false": "false", "no": "false", "ask": "ask"},
    "pubkeyauthentication": {"true": "true", "yes": "true", "false": "false", "no": "false",
                             "unbound": "unbound", "host-bound": "host-bound"},
    "compression": {"yes": "yes", "no": "no"},
}
_TIMES = {"connecttimeout", "serveraliveinterval", "forwardx11timeout"}
_INTS = {"serveralivecountmax", "connectionattempts", "numberofpasswordprompts", "canonicalizemaxdots",
         "requiredrsasize"}
_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_TIME_PART = re.compile(r"[ \t\n\v\f\r]*\+?([0-9]+)([sSmMhHdDwW]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INT_MAX = 2**31 - 1


def convtime(text: str) -> int:
    """misc.c convtime(): `90`, `1h30m`, `5M` as seconds; -1 when it is not a time."""
    if not text:
        return -1
    total, at = 0, 0
    while at < len(text):
        part = _TIME_PART.match(text, at)
        if part is None:
            return -1
        secs = int(part.group(1)) * _UNITS[part.group(2).lower()]
        if secs > _INT_MAX or total > _INT_MAX - secs:
            return -1
        total += secs
        at = part.end()
    return total


def a2port(text: str) -> int:
    """misc.c a2port(): a number from 0 to 65535 or a service name (`https`); -1 if neither."""
    if _INT.fullmatch(text):
        value = int(text)
        return value if 0 <= value <= 65535 else -1
    try:
        return socket.getservbyname(text, "tcp")
    except (OSError, UnicodeError):
        return -1


@dataclass(frozen=True)
class HostPatterns:
    """A `Host` line's patterns, sorted once so a lookup tests a literal name by a set look-up."""

    literals: frozenset[str]
    wildcards: tuple[str, ...]
    negated: tuple[str, ...]

    @classmethod
    def of(cls, argv: list[str]) -> HostPatterns:
        negated = tuple(a[1:] for a in argv if a.startswith("!"))
        positive = [a for a in argv if not a.startswith("!")]
        return cls(frozenset(p for p in positive if "*" not in p and "?" not in p),
                   tuple(p for p in positive if "*" in p or "?" in p), negated)

    def matches(self, host: str) -> bool:
        """readconf.c oHost: any positive pattern matches and no negated one does."""
        if not (host in self.literals or any(match_pattern(host, p) for p in self.wildcards)):
            return False
        return not any(match_pattern(host, p) for p in self.negated)


@dataclass
class Line:
    """One config line, split and checked."""

    path: str
    number: int
    keyword: str  # lowercased, an alias replaced by the keyword it stands for
    rest: str  # the text after the keyword, as ssh's parse_command sees it
    argv: list[str]
    value: Any = None  # the parsed value of a keyword remoteenv uses
    error: str | None = None  # what ssh says about this line, if it refuses it
    unknown: bool = False  # not a keyword: an error unless IgnoreUnknown names it
    includes: list[ConfigFile] = field(default_factory=list)
    spelled: str = ""  # the keyword as written

    @property
    def where(self) -> str:
        return f"{self.path}:{self.number}"

    def refused(self) -> str:
        """`file:line: Keyword: why` for an error ssh reports on this line."""
        return f"{self.where}: {self.spelled}: {self.error}"


@dataclass
class ConfigFile:
    path: str
    lines: list[Line]
    user_config: bool  # the person's file or one it includes (not the system-wide file)
    _segments: list[Line | list[Line]] | None = None

    @property
    def segments(self) -> list[Line | list[Line]]:
        """The lines with each run of plain settings grouped, so a lookup skips a whole block that
        does not apply in one step. `Host`, `Match`, `Include`, unknown keywords and lines with
        errors stand alone."""
        if self._segments is None:
            segments: list[Line | list[Line]] = []
            for line in self.lines:
                if line.keyword in ("host", "match", "include") or line.unknown or line.error is not None:
                    segments.append(line)
                elif segments and isinstance(segments[-1], list):
                    segments[-1].append(line)
                else:
                    segments.append([line])
            self._segments = segments
        return self._segments


class Reader:
    """Reads a config file and everything it includes; each file once, however often included."""

    def __init__(self) -> None:
        self._texts: dict[str, list[str] | None] = {}
        self.included = 0
        self.line_count = 0

    def read(self, path: str, *, user_config: bool, check_perm: bool, depth: int = 0,
             origin: str | None = None) -> ConfigFile | None:
        """The parsed file, or None when it does not exist (ssh skips a missing file)."""
        if depth > MAX_INCLUDE_DEPTH:
            raise ConfigError(f"{origin}: Too many recursive configuration includes",
                              f"OpenSSH refuses Includes nested more than {MAX_INCLUDE_DEPTH} deep")
        texts = self._text(path, check_perm, origin)
        if texts is None:
            return None
        lines: list[Line] = []
        for number, text in enumerate(texts, start=1):
            line = parse_line(text, path, number)
            if line is None:
                continue
            self.line_count += 1
            if self.line_count > MAX_LINES:
                raise ConfigError(f"{line.where}: with its Includes, the ssh config is more than {MAX_LINES:,} lines",
                                  "include each file once")
            if line.keyword == "include" and line.error is None:
                line.includes = self._include(line, user_config, depth)
            lines.append(line)
        return ConfigFile(path, lines, user_config)

    def _include(self, line: Line, user_config: bool, depth: int) -> list[ConfigFile]:
        files: list[ConfigFile] = []
        for arg in line.argv:
            if arg.startswith("~") and not user_config:
                raise ConfigError(f"{line.where}: bad include path {arg}.",
                                  "the system-wide ssh config may not Include paths under ~")
            if not os.path.isabs(arg) and not arg.startswith("~"):
                arg = f"{'~/.ssh' if user_config else SYSTEM_DIR}/{arg}"
            try:
                pattern = tilde_expand(arg) if arg.startswith("~") else arg
                matches = sorted(glob.glob(pattern))
            except (OSError, ValueError, WordError):
                raise ConfigError(f"{line.where}: glob failed for {arg}.", "check the Include path") from None
            for match in matches:
                self.included += 1
                if self.included > MAX_INCLUDED:
                    raise ConfigError(f"{line.where}: Includes name more than {MAX_INCLUDED} files in all",
                                      "include each file once")
                found = self.read(match, user_config=user_config, check_perm=True, depth=depth + 1,
                                  origin=line.where)
                if found is not None:
                    files.append(found)
        return files

    def _text(self, path: str, check_perm: bool, origin: str | None) -> list[str] | None:
        if path in self._texts:
            return self._texts[path]
        try:
            texts = self._read_text(path, check_perm)
        except ConfigError as exc:
            if origin is None:  # the config file itself: the message names it already
                raise
            raise ConfigError(f"{origin}: Include: {path}: {exc.message}", exc.hint) from None
        self._texts[path] = texts
        return texts

    @staticmethod
    def _read_text(path: str, check_perm: bool) -> list[str] | None:
        texts: list[str] | None
        try:
            info = os.stat(path)
        except FileNotFoundError:
            texts = None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Can't open user config file {path}: {exc}") from None
        else:
            if stat.S_ISDIR(info.st_mode):
                texts = []  # ssh opens a folder a glob matched and reads no line from it
            else:
                # Owned by someone else or world-writable: ssh refuses it. Group-writable is let
                # through: Debian's ssh accepts it when the group is the owner's alone (the usual
                # private group); upstream OpenSSH refuses it (README: ssh config, differences).
                if check_perm and hasattr(os, "getuid") and (
                        (info.st_uid not in (0, os.getuid())) or info.st_mode & 0o002):
                    raise ConfigError(f"Bad owner or permissions on {path}",
                                      f"ssh refuses it too: chmod go-w {path} (and own it yourself)")
                data = read_regular_file(path, MAX_FILE_BYTES, "ssh config file")
                texts = text_lines(data.decode("utf-8", errors="replace"))
        return texts


def parse_line(text: str, path: str, number: int) -> Line | None:
    """readconf.c process_config_line_depth(), up to where the host starts to matter."""
    text = text.split("\0", 1)[0].rstrip(WHITESPACE + "\f")
    keyword, rest = strdelim(text)
    if keyword == "":
        keyword, rest = strdelim(rest)
    if not keyword or keyword.startswith("#"):
        return None
    spelled, keyword = keyword, keyword.lower()
    rest = (rest or "").lstrip(WHITESPACE)
    line = Line(path, number, keyword, rest, [], spelled=spelled)
    if not rest:
        line.error = f'no argument after keyword "{keyword}"'
        return line
    try:
        line.argv = argv_split(rest)
    except WordError:
        line.error = "invalid quotes"
        return line
    if keyword not in _KNOWN and keyword not in _IGNORED and keyword not in _ALIASES and keyword not in NEWER:
        line.unknown = True
        return line
    line.keyword = _ALIASES.get(keyword, keyword)
    try:
        line.value = _parse_value(line)
    except WordError as exc:
        line.error = str(exc)
    return line


def _one(line: Line, what: str = "Missing argument.") -> str:
    if not line.argv or line.argv[0] == "":
        raise WordError(what)
    if len(line.argv) > 1:
        raise WordError(f"keyword {line.keyword} extra arguments at end of line")
    return line.argv[0]


def _parse_value(line: Line) -> Any:
    """The keyword's value as ssh stores it; a WordError when ssh would refuse the line."""
    kw, argv = line.keyword, line.argv
    if kw in _IGNORED or kw in NEWER:
        return None
    if kw in _COMMANDS:
        return line.rest.lstrip(WHITESPACE + "=")
    if kw == "proxyjump":
        return parse_jump(line.rest.lstrip(WHITESPACE + "="))
    if kw == "match":
        from remoteenv.inventory.ssh_resolve import check_match  # the one Match parser, used twice

        check_match(line.rest)
        return None
    if kw == "host":
        if any(a == "" for a in argv):
            raise WordError(f"keyword {kw} empty argument")
        return HostPatterns.of(argv)
    if kw == "include":
        if any(a == "" for a in argv):
            raise WordError(f"keyword {kw} empty argument")
        return None
    if kw in _FLAGS:
        word = _one(line, f'unsupported option "{argv[0] if argv else ""}".')
        if word.lower() not in _FLAG:
            raise WordError(f'unsupported option "{word}".')
        return _FLAG[word.lower()]
    if kw in MULTISTATE:
        word = _one(line, "missing argument.")
        if word.lower() not in MULTISTATE[kw]:
            raise WordError(f'unsupported option "{word}".')
        return MULTISTATE[kw][word.lower()]
    if kw in _TIMES:
        word = _one(line, "missing time value.")
        if word == "none":
            return -1
        value = convtime(word)
        if value < 0:
            raise WordError("invalid time value.")
        return value
    if kw in _INTS:
        word = _one(line, "integer value invalid.")
        if not _INT.fullmatch(word):
            raise WordError("integer value invalid.")
        value = int(word)
        if not 0 <= value <= _INT_MAX:
            raise WordError(f"integer value too {'small' if value < 0 else 'large'}.")
        return value
    if kw == "port":
        word = _one(line)
        value = a2port(word)
        if value <= 0:
            raise WordError(f"Bad port '{word}'.")
        return value
    if kw == "controlpersist":
        word = _one(line, "Missing ControlPersist argument.")
        if word in ("no", "false"):
            return (False, 0)
        if word in ("yes", "true"):
            return (True, 0)
        value = convtime(word)
        if value < 0:
            raise WordError("Bad ControlPersist argument.")
        return (True, value)
    if kw == "addkeystoagent":
        return _parse_add_keys(argv)
    if kw in ("userknownhostsfile", "globalknownhostsfile", "canonicaldomains"):
        for i, arg in enumerate(argv):
            if arg == "":
                raise WordError(f"keyword {kw} empty argument")
            if arg.lower() == "none" and (i > 0 or len(argv) > 1):
                raise WordError(f'keyword {kw} "none" argument must appear alone.')
        return list(argv)
    if kw in _LISTS:
        return list(argv)
    if kw == "identityagent":
        word = _one(line)
        if "${" in word and "}" not in word.split("${", 1)[1]:
            raise WordError(f"Invalid environment expansion {word}.")
        if word.startswith("$") and not word.startswith("${") and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*",
                                                                                    word[1:]):
            raise WordError(f"Invalid environment name {word}.")
        return word
    # every other keyword: one word (HostName, User, IdentityFile, ControlPath, ...)
    return _one(line)


def _parse_add_keys(argv: list[str]) -> tuple[str, int]:
    """readconf.c oAddKeysToAgent: (yes|no|ask|confirm, lifespan seconds)."""
    names = {"true": "yes", "yes": "yes", "false": "no", "no": "no", "ask": "ask", "confirm": "confirm"}
    if not argv or argv[0] == "":
        raise WordError("missing argument.")
    if len(argv) > 2:
        raise WordError("keyword addkeystoagent extra arguments at end of line")
    state = names.get(argv[0].lower())
    second = argv[1] if len(argv) > 1 else None
    if state == "confirm" and second is not None:
        life = convtime(second)
        if life < 0:
            raise WordError("invalid time value.")
        return state, life
    if state is None and second is None:
        life = convtime(argv[0])
        if life < 0:
            raise WordError("unsupported option")
        return "yes", life
    if state is None or second is not None:
        raise WordError("unsupported option")
    return state, 0


@dataclass(frozen=True)
class Jump:
    """ProxyJump as ssh stores it: `none`, or the last hop parsed and the hops before it as written."""

    none: bool = False
    user: str | None = None
    host: str = ""
    port: int = -1
    extra: str | None = None  # the earlier hops, as written

    def ssh_g(self) -> str:
        """The `proxyjump` line ssh -G prints."""
        numeric = ":" in self.host or all(c in "1234567890." for c in self.host)
        host = f"[{self.host}]" if numeric else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port > 0 else ""
        extra = f"{self.extra}," if self.extra else ""
        return f"{extra}{user}{host}{port}"

    def hops(self) -> str:
        """Every hop as `[user@]host[:port]` (IPv6 in brackets), for remoteenv's own connections."""
        parts = [parse_hop(h) for h in self.extra.split(",")] if self.extra else []
        parts.append((self.user, self.host, self.port))
        out = []
        for user, host, port in parts:
            host = f"[{host}]" if ":" in host else host
            out.append(f"{user + '@' if user else ''}{host}{':' + str(port) if port > 0 else ''}")
        return ",".join(out)


def parse_jump(text: str) -> Jump:
    """readconf.c parse_jump(): every hop checked, the last one kept apart."""
    if text.lower() == "none":  # compared before the comment is cut, as ssh does
        return Jump(none=True)
    if "#" in text:
        text = text[:text.index("#")]
    text = text.rstrip(WHITESPACE)
    for hop in text.split(","):
        parse_hop(hop)
    head, _, last = text.rpartition(",")
    user, host, port = parse_hop(last)
    return Jump(user=user, host=host, port=port, extra=head or None)


def parse_hop(hop: str) -> tuple[str | None, str, int]:
    """misc.c parse_ssh_uri() / parse_user_host_port(): (user, host, port or -1)."""
    bad = WordError(f'Invalid ProxyJump "{hop}"')
    if hop.lower().startswith("ssh://"):
        rest = hop[6:]
        if "/" in rest:
            raise bad
        user = None
        if "@" in rest:
            user, rest = rest.rsplit("@", 1)
            if not user:
                raise bad
        host, port = _host_port(rest, bad)
        if host.startswith("[") or ":" in host or not host:
            raise bad
        return user, host, port
    user = None
    rest = hop
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
    host, port = _host_port(rest, bad)
    if not host:
        raise bad
    return user or None, host, port


def _host_port(text: str, bad: WordError) -> tuple[str, int]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise bad
        host, tail = text[1:end], text[end + 1:]
        if tail and not tail.startswith(":"):
            raise bad
        port_text = tail[1:] if tail else None
    elif ":" in text:
        host, _, port_text = text.partition(":")
        if ":" in port_text:
            raise bad
    else:
        host, port_text = text, None
    if port_text is None:
        return host, -1
    port = a2port(port_text)
    if port <= 0:
        raise bad
    return host, port


def system_config_path() -> str | None:
    """The system-wide file ssh reads after the user's; none on a machine without one (Windows)."""
    return SYSTEM_CONFIG if Path(SYSTEM_CONFIG).exists() else None
