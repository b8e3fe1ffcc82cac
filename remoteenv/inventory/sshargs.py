"""ssh command-line arguments (`-o ProxyJump=j -p 2222 -l bob`), read the way `ssh` reads them.

Ansible hands `ansible_ssh_args`, `ansible_ssh_common_args` and `ansible_ssh_extra_args` to `ssh`
as they are, so an inventory can say where and as whom to connect there. This module turns such
arguments into remoteenv's connection settings with OpenSSH's rules (checked against `ssh -G`):

- options are read like getopt does (`-p2222`, `-oUser=x`, `-4Cq`), `-o` values like ssh_config lines
  (`Key=value` or `Key value`, keys in any case, quotes removed);
- for every setting the first value given wins (`-p 1 -o Port=2` is port 1), except identity files,
  which add up in order;
- ProxyJump and ProxyCommand: the first one set wins (a ProxyJump of `none` still lets a later
  ProxyCommand in); `-J` once either is given, or a second `-J`, is an error in ssh and here;
- an option remoteenv cannot honour and that changes where, as whom or how the connection is made
  (`-F`, `-b`, `-L`, `-o HostKeyAlias=...`) is refused: it is never dropped in silence. Options that only
  tune ssh's own session (`-C`, `-q`, `-v`, ControlMaster/ControlPersist/ControlPath, algorithm lists,
  logging) are accepted and have no effect.

One difference from `ssh`: ssh drops an `-i FILE` whose file does not exist (with a warning); it is
kept here, so the connection fails on the missing key rather than trying others.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from remoteenv.errors import ConfigError

# getopt letters of OpenSSH 9 (ssh.c): those that take a value, and those that do not.
_WITH_VALUE = set("bceilmopBDEFIJLOPQRSwW")
_FLAGS = set("1246afgknqstvxACGKMNTVXYy")
# Flags that only tune ssh's own session, or turn off what remoteenv never does.
_HARMLESS_FLAGS = set("46Cqvaxkyt") | {"T"}
# Flags with a value that do the same (-c/-m: algorithm lists; -E: ssh's log file; -S/-O: control socket).
_HARMLESS_VALUE_FLAGS = set("cmESe")

# -o keywords (lowercase) mapped to remoteenv's settings.
_MAPPED = {
    "user": "user", "port": "port", "hostname": "hostname", "identityfile": "identity_files",
    "proxyjump": "proxy_jump", "proxycommand": "proxy_command", "identitiesonly": "identities_only",
    "connecttimeout": "connect_timeout", "serveraliveinterval": "server_alive_interval",
    "serveralivecountmax": "server_alive_count_max", "userknownhostsfile": "user_known_hosts_file",
    "globalknownhostsfile": "global_known_hosts_file", "hashknownhosts": "hash_known_hosts",
    "stricthostkeychecking": "strict_host_key_checking", "certificatefile": "certificate_files",
}
# -o keywords that change nothing about where or as whom remoteenv connects.
_HARMLESS_OPTIONS = {
    "controlmaster", "controlpath", "controlpersist", "compression", "loglevel", "tcpkeepalive",
    "connectionattempts", "batchmode", "checkhostip", "updatehostkeys",
    "visualhostkey", "preferredauthentications", "passwordauthentication", "kbdinteractiveauthentication",
    "challengeresponseauthentication", "pubkeyauthentication", "gssapiauthentication",
    "gssapidelegatecredentials", "hostbasedauthentication", "numberofpasswordprompts",
    "ciphers", "macs", "kexalgorithms", "hostkeyalgorithms", "pubkeyacceptedkeytypes",
    "pubkeyacceptedalgorithms", "casignaturealgorithms", "hostbasedacceptedalgorithms",
    "rekeylimit", "ipqos", "addressfamily", "addkeystoagent", "escapechar", "requesttty",
    "forwardx11", "forwardx11trusted", "clearallforwardings", "exitonforwardfailure",
    "verifyhostkeydns", "nohostauthenticationforlocalhost", "enableescapecommandline",
}
_SPECIAL = re.compile(r"[\s'\"\\#]")
_YES = {"yes": True, "true": True, "no": False, "false": False}
# StrictHostKeyChecking's spellings, as ssh reads them
_STRICT = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no", "ask": "ask",
           "accept-new": "accept-new"}


@dataclass
class SSHArgs:
    """What a list of ssh arguments sets; None / empty where it sets nothing."""

    settings: dict[str, object] = field(default_factory=dict)  # remoteenv field -> value
    identity_files: list[str] = field(default_factory=list)
    certificate_files: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # field -> where the word that set it came from
    # ssh's own bookkeeping: a ProxyJump (`none` too) or a ProxyCommand (`none` too) was given
    jump_given: bool = False
    command_given: bool = False


def split(text: str, where: str) -> list[str]:
    """Ansible's split of an ssh-arguments variable (shlex, empty words dropped)."""
    try:
        return [w.strip() for w in shlex.split(text) if w.strip()]
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot split ssh arguments {text[:80]!r}: {exc}",
                          "balance the quotes in the ssh arguments") from None


def parse(words: list[str], where: str | list[str]) -> SSHArgs:
    """Read ssh arguments (without `ssh` and the destination), first value winning.

    `where` names the source of every word (for messages and `sources`), or of each word apart.
    """
    out = SSHArgs()
    wheres = where if isinstance(where, list) else [where] * len(words)
    i = 0
    while i < len(words):
        word, at = words[i], wheres[i]
        if not word.startswith("-") or word in ("-", "--"):
            raise ConfigError(f"{at}: ssh argument {word[:60]!r} is not an option",
                              "ssh arguments in an inventory are options only (-o Key=value, -p PORT, ...)")
        j = 1
        while j < len(word):
            letter = word[j]
            if letter in _WITH_VALUE:
                value = word[j + 1:]
                if not value:
                    i += 1
                    if i >= len(words):
                        raise ConfigError(f"{at}: ssh option -{letter} needs a value")
                    value = words[i]
                _value_flag(out, letter, value, at)
                break
            if letter not in _FLAGS:
                raise ConfigError(f"{at}: unknown ssh option -{letter} in {word[:60]!r}")
            if letter not in _HARMLESS_FLAGS:
                raise ConfigError(f"{at}: ssh option -{letter} is not supported by remoteenv",
                                  "remove it from the ssh arguments, or connect with ssh itself")
            j += 1
        i += 1
    return out


def _value_flag(out: SSHArgs, letter: str, value: str, where: str) -> None:
    if letter == "o":
        option(out, value, where)
    elif letter == "p":
        _set(out, "port", _port(value, f"-p {value}", where), where)
    elif letter == "l":
        _set(out, "user", value, where)
    elif letter == "i":
        _identity(out, value, where)
    elif letter == "J":
        if out.jump_given or out.command_given:
            raise ConfigError(f"{where}: ssh arguments give -J after a ProxyJump or ProxyCommand, "
                              "which ssh refuses", "give one -J (hops separated by commas) and no ProxyCommand")
        _proxy(out, "proxy_jump", value, where)
    elif letter not in _HARMLESS_VALUE_FLAGS:
        raise ConfigError(f"{where}: ssh option -{letter} {value[:40]} is not supported by remoteenv",
                          "remove it from the ssh arguments, or connect with ssh itself")


def option(out: SSHArgs, text: str, where: str) -> None:
    """One `-o` value, read as ssh reads a config line: `Key=value` or `Key value`."""
    match = re.match(r"\s*([A-Za-z0-9]+)(?:\s*=\s*|\s+)(.*)$", text, re.S)
    if not match or not match[2].strip():
        raise ConfigError(f"{where}: ssh option -o {text[:60]!r} is not Key=value")
    key, raw = match[1].lower(), match[2].strip()
    if key == "proxycommand":  # the rest of the line, as written (ssh runs it through a shell)
        _proxy(out, "proxy_command", raw, where)
        return
    if key in _HARMLESS_OPTIONS:
        return
    field_name = _MAPPED.get(key)
    if field_name is None:
        raise ConfigError(f"{where}: ssh option -o {match[1]} is not supported by remoteenv",
                          "remove it from the ssh arguments, or connect with ssh itself")
    value = _one_word(match[1], raw, where)
    if field_name == "identity_files":
        _identity(out, value, where)
    elif field_name == "certificate_files":
        out.certificate_files.append(value)
        out.sources.setdefault("certificate_files", where)
    elif field_name == "strict_host_key_checking":
        if value.lower() not in _STRICT:
            raise ConfigError(f"{where}: ssh option -o {match[1]} must be yes, no, ask or accept-new, not {value!r}")
        _set(out, field_name, _STRICT[value.lower()], where)
    elif field_name == "proxy_jump":
        _proxy(out, "proxy_jump", value, where)
    elif field_name == "port":
        _set(out, "port", _port(value, text, where), where)
    elif field_name in ("identities_only", "hash_known_hosts"):
        if value.lower() not in _YES:
            raise ConfigError(f"{where}: ssh option -o {match[1]} must be yes or no, not {value!r}")
        _set(out, field_name, _YES[value.lower()], where)
    elif field_name in ("connect_timeout", "server_alive_interval", "server_alive_count_max"):
        if not re.fullmatch(r"[0-9]{1,9}", value):
            raise ConfigError(f"{where}: ssh option -o {match[1]} must be a whole number, not {value!r}")
        _set(out, field_name, int(value) if field_name == "server_alive_count_max" else float(value), where)
    else:
        _set(out, field_name, value, where)


def _one_word(key: str, raw: str, where: str) -> str:
    # ssh takes one word, quotes removed (`User="al ice"` is `al ice`); more is an error there
    if not _SPECIAL.search(raw):
        return raw  # the usual case, without shlex's cost (a fleet has thousands of hosts)
    try:
        words = shlex.split(raw)
    except ValueError:
        raise ConfigError(f"{where}: unbalanced quotes in ssh option -o {key} {raw[:60]!r}") from None
    if len(words) != 1:
        raise ConfigError(f"{where}: ssh option -o {key} takes one value, not {raw[:60]!r}",
                          "quote a value with spaces: -o 'User=\"a b\"'")
    return words[0]


def _set(out: SSHArgs, field_name: str, value: object, where: str) -> None:
    if field_name not in out.settings:
        out.settings[field_name] = value
        out.sources[field_name] = where


def _identity(out: SSHArgs, value: str, where: str) -> None:
    out.identity_files.append(value)
    out.sources.setdefault("identity_files", where)


def _proxy(out: SSHArgs, field_name: str, value: str, where: str) -> None:
    # ssh: a ProxyJump (even `none`) stops later ProxyJumps, a ProxyCommand (even `none`) stops both,
    # and a ProxyJump other than `none` stops later ProxyCommands
    if field_name == "proxy_jump":
        if out.jump_given or out.command_given:
            return
        out.jump_given = True
    else:
        if out.command_given or "proxy_jump" in out.settings:
            return
        out.command_given = True
    if value.lower() != "none":
        _set(out, field_name, value, where)


def _port(value: str, text: str, where: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 0 < int(value) < 65536:
        raise ConfigError(f"{where}: port in ssh option {text[:60]!r} is not a number from 1 to 65535")
    return int(value)


# ---------------------------------------------------------------- ProxyCommand tokens

_TOKEN = re.compile(r"%(.)")


def expand_proxy_command(command: str, *, hostname: str, port: int, user: str | None, name: str,
                         where: str) -> str:
    """ssh's tokens in a ProxyCommand: %h (HostName), %p, %r (remote user), %n (name as given), %%."""
    import getpass

    def one(match: re.Match) -> str:
        token = match[1]
        values = {"%": "%", "h": hostname, "p": str(port), "n": name}
        if token == "r":
            return user or getpass.getuser()
        if token in values:
            return values[token]
        raise ConfigError(f"{where}: token %{token} in ProxyCommand is not one ssh expands there",
                          "ssh takes %h %p %r %n and %% in a ProxyCommand")

    return _TOKEN.sub(one, command)
