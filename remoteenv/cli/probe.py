"""`remoteenv probe`: what a host is (OS, CPUs, memory, disk, GPUs, conda, Jupyter), in one round trip."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.errors import report
from remoteenv.cli.output import console, err_console, human_bytes, print_json
from remoteenv.errors import EXIT_OK

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts
    from remoteenv.inventory import Inventory


def probe(
    names: Annotated[list[str] | None, typer.Argument(
        help="Host names or globs (inventory, ~/.ssh/config alias, or hostname); "
             "optional with --group.", show_default=False)] = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    accept_new_host_key: common.AcceptNewOpt = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON: one named host gives its facts object; a selection (a glob, --group, "
                       "--limit or several names) always gives a list of {host, facts, error}.")] = False,
) -> None:
    """Connect to hosts and show their facts.

    JSON: one named host prints its facts object (if it fails: nothing, and the error on stderr).
    A selection (a glob, a group, --limit or several names) always prints a list of {"host", "facts", "error"}.

    Examples:
      remoteenv probe gpu-box
      remoteenv probe gpu-box --json | jq .gpus
      remoteenv probe --group lab
      remoteenv probe 'node*' --json | jq -r '.[] | select(.error) | .host'
    """
    inv = common.inventory()
    hosts = common.select_hosts(inv, names, group, limit)
    from remoteenv import api

    if len(hosts) > 1 and err_console().is_terminal:
        with err_console().status(f"probing {len(hosts)} hosts") as status:
            done: list[str] = []

            def tick(outcome: api.ProbeOutcome) -> None:
                done.append(outcome.host.name)
                status.update(f"probing {len(hosts)} hosts: {len(done)} done (last: {outcome.host.name})")

            outcomes = api.probe_many(hosts, inv, accept_new_host_key, on_done=tick)
    else:
        outcomes = api.probe_many(hosts, inv, accept_new_host_key)
    if as_json:
        if is_selection(inv, names, group, limit):
            print_json([{"host": o.host.name,
                         "facts": o.facts.to_json() if o.facts else None,
                         "error": o.error.one_line() if o.error else None} for o in outcomes])
        elif outcomes[0].facts:
            print_json(outcomes[0].facts.to_json())
    else:
        for o in outcomes:
            if o.facts:
                console().print(render(o.host.name, o.facts))
    failures = [o.error for o in outcomes if o.error]
    for error in failures:
        report(error)
    if failures:
        raise typer.Exit(max(e.exit_code for e in failures))
    raise typer.Exit(EXIT_OK)


def is_selection(inv: Inventory, names: list[str] | None, group: str | None, limit: str | None) -> bool:
    """True unless exactly one host was named outright.

    The JSON shape follows what was asked, not how many hosts matched: `probe 'gpu-*' --json` stays a
    list when the glob matches one host. A name is a selection when it is a glob, a comma list or a
    group (host patterns read as Ansible's do)."""
    if group or limit or not names or len(names) != 1:
        return True
    name = names[0].strip()
    if any(c in name for c in "*?[,"):
        return True
    return (name in inv.groups or name == "all") and name not in inv.entries


def render(name: str, f: HostFacts):  # -> rich renderable
    from rich.table import Table

    table = Table(title=f"{name}  ({f.user}@{f.hostname})", title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # paths fold at a narrow terminal instead of ending in "…"
    table.add_row("OS", f"{f.os_name or f.os_id} · kernel {f.kernel} · {f.arch}")
    table.add_row("CPU / memory", f"{f.cpus} CPUs · {human_bytes(f.memory_bytes)}")
    table.add_row("free in home", f"{human_bytes(f.disk_free_bytes)} ({f.home})")
    table.add_row("python3", f"{f.python3} ({f.python3_path})" if f.python3 else "none")
    if f.gpus:
        gpus = "\n".join(f"{g.index}: {g.name} · {g.memory_mib} MiB · driver {g.driver}" for g in f.gpus)
        table.add_row("GPUs", gpus + (f"\nCUDA {f.cuda_version}" if f.cuda_version else ""))
    else:
        table.add_row("GPUs", "none (no nvidia-smi)")
    if f.conda:
        table.add_row("conda", "\n".join(
            f"{c.prefix} (conda {c.version or '?'}) envs: {', '.join(c.envs)}" for c in f.conda))
    else:
        table.add_row("conda", "none found")
    table.add_row("Jupyter (remoteenv)", "\n".join(
        f"{j.get('name', '?')}: pid {j.get('pid')} · {j.get('env', '?')} · "
        + (f"socket {j['sock']}" if j.get("sock") else f"port {j.get('port')}")
        + ("" if j.get("alive") else " · not running") for j in f.jupyter)
        or "none")
    return table


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)


__all__ = ["is_selection", "probe", "register", "render"]
