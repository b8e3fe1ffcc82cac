"""`remoteenv plan` and `remoteenv apply`: a playbook on hosts, shown as it happens, then a summary."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from remoteenv.cli import common, output, views
from remoteenv.cli.output import console, print_json
from remoteenv.errors import ConfigError

if TYPE_CHECKING:  # the engine loads when a command runs, not when the CLI starts
    from remoteenv import report as rp
    from remoteenv.events import Event
    from remoteenv.inventory import Host, Inventory
    from remoteenv.playbook import Playbook


PlaybookArg = Annotated[str, typer.Argument(
    help="A playbook file, or a shipped name (workstation, examples/hello).")]
HostsArg = Annotated[list[str] | None, typer.Argument(
    help="Host names or globs (default: every inventory host).")]
VarOpt = Annotated[list[str] | None, typer.Option(
    "--var", "-e", metavar="NAME=VALUE", help="Set a playbook variable (overrides the playbook and inventory).")]
ForksOpt = Annotated[int, typer.Option("--forks", "-f", min=1, help="How many hosts to work on at once.")]


def plan(
    playbook: PlaybookArg,
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    var: VarOpt = None,
    forks: ForksOpt = 32,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Show what a playbook would change on each host, changing nothing.

    Each host's facts are gathered in one round trip; each step compares them with what it wants.

    Examples:
      remoteenv plan workstation gpu-box
      remoteenv plan examples/hello --group lab --var greeting=hi
      remoteenv -i hosts.yaml plan ./site.yaml --json | jq '.hosts[].status'
    """
    from remoteenv.playbook import load_playbook

    run_and_exit(load_playbook(playbook), "plan", hosts, group, limit, var, forks, as_json, accept_new_host_key)


def apply(
    playbook: PlaybookArg,
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    var: VarOpt = None,
    forks: ForksOpt = 32,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Stream events as JSON lines (one object per line) instead of the live table.")] = False,
    accept_new_host_key: common.AcceptNewOpt = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Only the hosts that failed (or were unreachable) in this playbook's last apply.")
    ] = False,
    step_timeout: Annotated[float | None, typer.Option(
        "--step-timeout", metavar="SECONDS", min=0.001,
        help="Stop a step that runs longer (for steps without their own timeout:).")] = None,
) -> None:
    """Make hosts as a playbook wants them: every host at once, each step only where needed.

    Shows a live table (one row per host), then a summary and where the report is.
    Ctrl-C stops cleanly and reports what ran.

    Exit codes: 0 every host fine, 1 a host failed, 3 every failure was an unreachable host
    or a refused login, 130 interrupted.

    Examples:
      remoteenv apply workstation gpu-box
      remoteenv -i hosts.yaml apply examples/hello --forks 64
      remoteenv apply ./site.yaml --group lab --step-timeout 600
      remoteenv apply ./site.yaml --retry-failed
      remoteenv apply workstation gpu-box --json | jq -c 'select(.event=="host_end")'
    """
    from remoteenv.playbook import load_playbook

    run_and_exit(load_playbook(playbook), "apply", hosts, group, limit, var, forks, as_json, accept_new_host_key,
                 retry_failed, step_timeout, retry=f"remoteenv apply {views.playbook_ref(playbook)} --retry-failed")


def shell_playbook(name: str, title: str, command: str, *, guard: str = "",
                   defaults: dict[str, str] | None = None) -> Playbook:
    """A one-step playbook running `command` (a shell step): what commands like `conda clean` run.

    `guard` is the shell step's guard line (e.g. `removes: "{{ conda_prefix }}"`); `defaults` are
    playbook vars, the lowest precedence: the hosts' vars and --var options win over them.
    """
    import json

    from remoteenv.playbook import load_text

    lines = [f"name: {name}", f"vars: {json.dumps(defaults or {})}", "steps:", f"  - name: {json.dumps(title)}",
             "    shell:", f"      command: {json.dumps(command.strip())}"]
    if guard:
        lines.append(f"      {guard}")
    return load_text("\n".join(lines) + "\n", f"remoteenv {name.replace('-', ' ')}")


def run_and_exit(pb: Playbook, mode: str, hosts: list[str] | None, group: str | None, limit: str | None,
                 var: list[str] | None, forks: int, as_json: bool, accept_new_host_key: bool,
                 retry_failed: bool = False, step_timeout: float | None = None, *, retry: str | None = None,
                 last_lines: bool = False) -> None:
    """Plan or apply `pb` on the selected hosts as `plan`/`apply` do (views, report, exit code).

    Commands built on steps (conda install, ...) are one-step playbooks run through here.
    """
    for warning in pb.warnings:
        output.warn(str(warning), warning.hint or None)
    inv = common.inventory()
    if retry_failed:
        selected = _select_failed(pb, inv, hosts, group, limit)
        if not selected:
            raise typer.Exit(0)
    else:
        selected = _select(inv, hosts, group, limit)
    report = _run(pb, selected, inv, mode, var, forks, accept_new_host_key, step_timeout,
                  stream_json=as_json and mode == "apply", live=not as_json)
    if mode == "plan":
        if as_json:
            print_json({**report.to_json(), "report": str(report.path) if report.path else None})
        else:
            views.print_plan(report)
    elif not as_json:
        views.print_summary(report, retry or "the same command with --retry-failed", last_lines)
    raise typer.Exit(report.exit_code())


# -- selection --------------------------------------------------------------------------------
def _select(inv: Inventory, names: list[str] | None, group: str | None, limit: str | None) -> list[Host]:
    if not names and not group and not inv.entries:
        raise ConfigError("no host given and the inventory is empty",
                          "name hosts after the playbook, or pass -i INVENTORY (remoteenv hosts lists it)")
    return common.select_hosts(inv, names, group, limit, default_all=True)


def _select_failed(pb: Playbook, inv: Inventory, names: list[str] | None, group: str | None,
                   limit: str | None) -> list[Host]:
    from remoteenv import report as rp

    last = rp.last_run(playbook_path=str(pb.path.resolve()) if pb.path else None, playbook=pb.name)
    if last is None:
        raise ConfigError(f"no earlier apply of {pb.source} to retry", "run it without --retry-failed first")
    failed = rp.hosts_to_retry(last)
    if not failed:
        console().print(f"Nothing to retry: no host failed in the last apply ({last.get('run_id')}).")
        return []
    if names or group or limit:
        narrowed = {h.name for h in common.select_hosts(inv, names, group, limit, default_all=True)}
        failed = [n for n in failed if n in narrowed]
        if not failed:
            console().print("Nothing to retry among the selected hosts.")
            return []
    return common.select_hosts(inv, failed)


def _parse_vars(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--var {pair!r} is not NAME=VALUE", "e.g. --var greeting=hi")
        out[key.strip()] = value
    return out


# -- running ----------------------------------------------------------------------------------
def _run(pb: Playbook, hosts: list[Host], inv: Inventory, mode: str, var: list[str] | None, forks: int,
         accept_new_host_key: bool, step_timeout: float | None, *, stream_json: bool, live: bool
         ) -> rp.RunReport:
    from remoteenv.runner import run_playbook

    extra_vars = _parse_vars(var)

    def run(on_event: Callable[[Event], None] | None, output_every: float) -> rp.RunReport:
        return run_playbook(pb, hosts, inv, mode=mode, forks=forks, accept_new_host_key=accept_new_host_key,
                            extra_vars=extra_vars, step_timeout=step_timeout, cancel=threading.Event(),
                            on_event=on_event, output_every=output_every)

    return views.watch(run, title=f"{mode} {pb.name}", hosts=[h.name for h in hosts], total_steps=len(pb.steps),
                       mode=mode, stream_json=stream_json, live=live)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("apply")(apply)


__all__ = ["apply", "plan", "register"]
