"""`remoteenv keys setup|check|harden`: key-based access from the first login."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.errors import report
from remoteenv.cli.output import console, err_console, print_json
from remoteenv.errors import EXIT_FAILED, EXIT_OK, RemoteenvError

if TYPE_CHECKING:
    from remoteenv.inventory import Host, Inventory
    from remoteenv.keys.check import CheckResult

keys_app = typer.Typer(
    name="keys",
    help="SSH keys on hosts: from a password to key-only logins (setup), how sound they are (check), "
         "passwords off (harden).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

HostArg = Annotated[str, typer.Argument(help="The host (inventory name, ~/.ssh/config alias, or hostname).",
                                        show_default=False)]


def _one_host(name: str) -> tuple[Host, Inventory]:
    from remoteenv.inventory import SSHConfigFile, resolve

    inv = common.inventory()
    return resolve(inv, name, SSHConfigFile()), inv


def _options(inv: Inventory, accept_new_host_key: bool = False):
    from remoteenv import api

    return api.connect_options(inv, accept_new_host_key=accept_new_host_key)


@keys_app.command("setup")
def setup(
    host: HostArg,
    key: Annotated[str | None, typer.Option(
        "--key", metavar="PATH", help="The private key to install (made, ed25519, if the file does not exist). "
        "Default: the host's IdentityFile, else ~/.ssh/id_ed25519.", show_default=False)] = None,
    add_to_agent: Annotated[bool, typer.Option(
        "--add-to-agent", help="Also load the key into the running ssh-agent (ssh-add).")] = False,
    accept_new_host_key: common.AcceptNewOpt = False,
    as_json: common.JsonOpt = False,
) -> None:
    """Sign in once with a password or codes, install your key, and prove a key-only login.

    Your public key is appended to the host's ~/.ssh/authorized_keys (created 0600 in a 0700 ~/.ssh)
    only if absent, other lines untouched; then a new login with that key alone must work. Without
    --key and with no key file yet, an ed25519 pair is made (you choose its passphrase, empty allowed).

    The password and codes are asked on the terminal, never taken as arguments, never logged.
    Scripts without a terminal set REMOTEENV_ASKPASS to a program that prints the answer to the
    prompt it gets as its argument (as SSH_ASKPASS). A key that already logs in needs no sign-in:
    nothing changes.

    Examples:
      remoteenv keys setup gpu-box
      remoteenv keys setup new-vm --accept-new-host-key --key ~/.ssh/lab_ed25519
      remoteenv keys setup gpu-box --add-to-agent --json
    """
    from pathlib import Path

    from remoteenv.keys import setup as setup_mod

    target, inv = _one_host(host)
    result = setup_mod.setup(target, _options(inv, accept_new_host_key), Path(key) if key else None,
                             add_to_agent=add_to_agent)
    if as_json:
        print_json(result.to_json())
        raise typer.Exit(EXIT_OK)
    out = console()
    if result.generated:
        out.print(f"made a new ed25519 key {result.key} ({result.fingerprint})", markup=False, highlight=False)
    if result.agent_added:
        out.print(f"added {result.key} to the ssh-agent", markup=False)
    if result.already_worked:
        out.print(f"{result.host}: the key {result.key} logs in already; nothing changed", markup=False)
    else:
        where = "added to" if result.added else "already in"
        out.print(f"{result.host}: key {result.fingerprint} {where} {result.target}'s ~/.ssh/authorized_keys",
                  markup=False)
        out.print(f"{result.host}: a login with that key alone works ({result.proven_by})", markup=False)
    if result.encrypted and not result.agent_added and result.proven_by != "agent":
        from remoteenv.cli.output import warn

        warn(f"{result.key} has a passphrase: other commands need it in your ssh-agent",
             f"ssh-add {result.key}  (or run keys setup with --add-to-agent)")
    out.print("\nFor ~/.ssh/config (or identity_file in the inventory):", markup=False)
    out.print(result.ssh_config.rstrip("\n"), markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK)


@keys_app.command("check")
def check(
    names: Annotated[list[str] | None, typer.Argument(
        help="Host names or globs; optional with --group.", show_default=False)] = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 1).")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON list, one object per host (host, key_login, identity, remote_modes, "
                       "password_login, findings, error).")] = False,
) -> None:
    """Is key-only access sound: the key, file modes, and whether sshd still takes passwords.

    Per host: key login works, with which key or agent identity, the key's type and size (warns on
    RSA < 3072 and DSA), the local key file's mode, the remote ~/.ssh and authorized_keys modes, and
    whether sshd still accepts passwords (sshd -T where sudo allows, else the methods the server
    offers before any credential; no password is ever sent).

    Exit codes: 0 all sound; 1 a problem on some host (--strict: or a warning); 3 a host not reached.

    Examples:
      remoteenv keys check gpu-box
      remoteenv keys check --group lab
      remoteenv keys check '*' --json | jq '.[] | select(.findings != [])'
    """
    from remoteenv.keys.check import check as check_one

    inv = common.inventory()
    hosts = common.select_hosts(inv, names, group, limit)
    options = _options(inv)
    answers = _each(hosts, options, lambda h: check_one(h, options))
    if as_json:
        print_json([r.to_json() for r in answers])
    else:
        for r in answers:
            _render_check(r)
    code = EXIT_OK
    for r in answers:
        if r.error is not None:
            report(r.error)
            code = max(code, r.error.exit_code)
        elif r.problems or (strict and r.findings):
            code = max(code, EXIT_FAILED)
    raise typer.Exit(code)


def _each(hosts: list[Host], options, job) -> list[CheckResult]:
    """`job(host)` for every host at once, in the fleet pool every multi-host command shares (Ctrl-C,
    SIGTERM and SIGHUP stop it within seconds); results in the hosts' order."""
    from remoteenv.errors import Cancelled
    from remoteenv.fleet import Fleet
    from remoteenv.keys.check import CheckResult

    fleet: Fleet[int] = Fleet(options)
    out = [CheckResult(h.name, error=Cancelled(h.name)) for h in hosts]

    def one(index: int) -> None:
        try:
            out[index] = job(hosts[index])
        except RemoteenvError as exc:
            out[index] = CheckResult(hosts[index].name, error=exc)

    fleet.run(list(range(len(hosts))), one)
    if fleet.cancel.is_set():
        raise Cancelled("the check", fleet.exit_code)
    return out


def _render_check(r: CheckResult) -> None:
    from rich.text import Text

    out = console()
    if r.error is not None:
        out.print(Text.assemble((r.host, "bold"), ": not checked"))
        return
    title = Text.assemble((r.host, "bold"), f"  ({r.target})")
    out.print(title)
    if r.key_login and r.identity is not None:
        ident = r.identity
        where = "agent" if ident.source == "agent" else (ident.file or "a key file")
        size = f" {ident.key.bits} bits" if ident.key.bits else ""
        mode = f", file mode {ident.file_mode}" if ident.file_mode else ""
        out.print(Text(f"  key login   works: {ident.key.type}{size} {ident.key.fingerprint} ({where}{mode})"))
    else:
        out.print(Text("  key login   " + ("works" if r.key_login else "FAILS")))
    if r.remote_modes:
        shown = {"home": "~", "ssh_dir": "~/.ssh", "authorized_keys": "~/.ssh/authorized_keys"}
        modes = ", ".join(f"{shown.get(k, k)} {v or 'missing'}" for k, v in r.remote_modes.items())
        out.print(Text(f"  modes       {modes}"))
    if r.password_login is not None:
        verdict = ("accepted (" + ", ".join(r.password_methods) + ")") if r.password_login else "refused"
        out.print(Text(f"  passwords   {verdict}, by {r.password_checked_by}"))
    for f in r.findings:
        style = "red" if f.level == "problem" else "yellow"
        out.print(Text.assemble("  ", (f"{f.level}:", style), " ", f.text))
    if not r.findings:
        out.print(Text.assemble("  ", ("sound", "green")))


@keys_app.command("harden")
def harden(
    host: HostArg,
    as_json: common.JsonOpt = False,
) -> None:
    """Turn password and keyboard-interactive logins off, without locking you out.

    Needs a working key login (keys setup first) and sudo without a password on the host. Writes
    00-remoteenv-harden.conf into the drop-in folder sshd's config Includes (the main file is never
    edited), checks it with sshd -t, reloads sshd, and proves that a NEW key login still works and that
    passwords are refused; on any failure the previous state is put back and sshd reloaded. Without
    sudo it says what to ask the host's admin for (exit 1).

    Examples:
      remoteenv keys harden gpu-box
      remoteenv keys check gpu-box      (passwords: refused)
    """
    from remoteenv.keys import harden as harden_mod

    target, inv = _one_host(host)
    if not as_json and err_console().is_terminal:
        with err_console().status(f"hardening {target.name}"):
            result = harden_mod.harden(target, _options(inv))
    else:
        result = harden_mod.harden(target, _options(inv))
    if as_json:
        print_json(result.to_json())
    else:
        out = console()
        out.print(f"{result.host}: wrote {result.dropin} ({result.reloaded})", markup=False)
        out.print(f"{result.host}: a new key login works; the server now offers only "
                  f"{', '.join(result.methods_after)}", markup=False)
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app)


__all__ = ["keys_app", "register"]
