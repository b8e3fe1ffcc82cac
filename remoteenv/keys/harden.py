"""`remoteenv keys harden`: turn password and keyboard-interactive logins off, and never lock anyone out.

The order is what makes it safe:
1. a key login works now (else stop: run `keys setup` first), and that connection stays open;
2. the sshd serving it is found (its listener and the config file it was started with), and the
   config must Include a drop-in folder: the main file is never edited;
3. as root (`sudo -n`), remote/keys_harden.sh keeps the drop-in's old state, writes
   00-remoteenv-harden.conf, checks the result with `sshd -t` and `sshd -T`, and reloads sshd;
4. a NEW key login must work and the server must no longer offer password sign-in; else the old
   state is put back over the connection kept open in 1 (reloads keep open sessions) and reloaded.
Without sudo it says what to ask the host's admin for.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from remoteenv.errors import EXIT_FAILED, AuthFailed, ConnectError, RemoteenvError
from remoteenv.inventory.model import Host
from remoteenv.keys import hostside, signin
from remoteenv.scripts import script
from remoteenv.transport import ConnectOptions

# Connections of its own, never a keeper's: the proof after the reload must be a NEW login.
from remoteenv.transport.connection import Connection, connect

log = logging.getLogger("remoteenv.keys")

# How long a reloaded sshd may take to listen again (it re-executes itself on SIGHUP).
RELOAD_WAIT = 15.0


class HardenError(RemoteenvError):
    """The host was left as it was (or put back); the message says why."""

    exit_code = EXIT_FAILED


@dataclass
class HardenResult:
    host: str
    dropin: str  # the file written
    config: str  # the sshd config that Includes it
    reloaded: str  # how sshd was told
    changed: bool
    methods_after: list[str]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def admin_request(side: hostside.HostSide, user: str) -> str:
    """What to ask a host's admin for, when remoteenv may not do it itself."""
    folder = side.dropin_dir() or "/etc/ssh/sshd_config.d"
    return (f"a drop-in {folder}/{hostside.DROPIN_NAME} with `PasswordAuthentication no` and "
            f"`KbdInteractiveAuthentication no` (checked with sshd -t, then sshd reloaded), "
            f"or passwordless sudo for {user} (sudo -n)")


def harden(host: Host, options: ConnectOptions,
           connect_fn: Callable[[Host, ConnectOptions], Connection] = connect,
           methods_fn: Callable[[Host, ConnectOptions], list[str] | None] | None = None) -> HardenResult:
    """`connect_fn` and `methods_fn` (the methods the server offers before any credential) are how
    new logins are made and how password sign-in is asked about; tests may stand in for them."""
    methods_fn = methods_fn or _offered_methods
    try:
        conn = connect_fn(host, options)
    except AuthFailed as exc:
        raise HardenError(f"{host.name}: no key login works yet ({exc.message}); turning passwords off now "
                          "would lock you out", f"remoteenv keys setup {host.name}, then harden") from None
    with conn:
        side = hostside.inspect(conn)
        if not side.sudo:
            raise HardenError(f"{host.name}: {side.user or 'you'} cannot run sudo without a password there, "
                              "so remoteenv may not change sshd", "ask the host's admin for "
                              + admin_request(side, side.user or "you"))
        if not side.config_read:
            raise HardenError(f"{host.name}: cannot read sshd's config {side.config}",
                              "check that the path is right (sshd -f) and readable with sudo")
        folder = side.dropin_dir()
        if folder is None:
            raise HardenError(
                f"{host.name}: {side.config} has no Include of a drop-in folder, and remoteenv does not "
                "edit the main file", f"add `Include /etc/ssh/sshd_config.d/*.conf` at the top of {side.config} "
                "(as Debian and Ubuntu ship it), then run keys harden again")
        if side.listener is None:
            raise HardenError(f"{host.name}: could not find the sshd serving this session",
                              "ask the host's admin: " + admin_request(side, side.user))
        args = [folder, hostside.DROPIN_NAME, side.program, str(side.listener), side.conn_spec]
        applied = _root(conn, "apply", side.config, args)
        if "failed" in applied:
            raise HardenError(f"{host.name}: {applied['failed']}; nothing was changed",
                              "sshd's config still needs what the drop-in turns off: change that on the host "
                              "first, then run keys harden again")
        try:
            methods = _new_login(host, options, connect_fn, methods_fn)
        except RemoteenvError as exc:
            undone = _root(conn, "rollback", side.config, args)
            if "failed" in undone:
                raise HardenError(f"{host.name}: after the change {exc.message}, and putting the old config "
                                  f"back failed: {undone['failed']}",
                                  "keep this terminal's other sessions open and fix sshd by hand") from None
            raise HardenError(f"{host.name}: after the change {exc.message}; the previous config is back "
                              f"({undone.get('reloaded', 'reloaded')})",
                              "run remoteenv keys check to see why the key login fails") from None
        _root(conn, "commit", side.config, args)
    return HardenResult(host.name, f"{folder}/{hostside.DROPIN_NAME}", side.config,
                        applied.get("reloaded", ""), True, methods)


def _root(conn: Connection, action: str, config: str, args: list[str]) -> dict[str, str]:
    """Run remote/keys_harden.sh ACTION as root; its `key<TAB>value` lines as a dict."""
    words = [action, config, *args]
    prelude = "set --" + "".join(" " + shlex.quote(w) for w in words) + "\n"
    result = conn.run("sudo -n /bin/sh -s", stdin=prelude + script("keys_harden.sh"), timeout=120)
    out = dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)
    if not result.ok and "failed" not in out:
        why = (result.stderr.strip().splitlines() or [f"exit {result.exited}"])[-1]
        out["failed"] = f"the root part stopped: {why}"
    log.debug("%s: harden %s: %s", conn.host.name, action, out)
    return out


def _new_login(host: Host, options: ConnectOptions, connect_fn, methods_fn) -> list[str]:
    """A new key login works and a password is no longer offered; the methods offered, or an error."""
    deadline = time.monotonic() + RELOAD_WAIT
    while True:
        try:
            connect_fn(host, options).close()
            break
        except AuthFailed as exc:
            raise RemoteenvError(f"a new key login fails ({exc.message})") from None
        except ConnectError as exc:
            # A reloaded sshd re-executes itself: a moment without a listener is expected.
            if time.monotonic() > deadline:
                raise RemoteenvError(f"no new login within {RELOAD_WAIT:g}s ({exc.message})") from None
            time.sleep(0.2)
    methods = methods_fn(host, options)
    if methods is None:
        raise RemoteenvError("sshd lets this user in with no authentication at all")
    typed = [m for m in signin.TYPED_METHODS if m in methods]
    if typed:
        raise RemoteenvError(f"sshd still offers {', '.join(typed)} (the reload did not take)")
    return methods


def _offered_methods(host: Host, options: ConnectOptions) -> list[str] | None:
    session = signin.open_unauthenticated(host, options)
    try:
        return session.methods()
    finally:
        session.close()
