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


def probe(
    names: Annotated[list[str], typer.Argument(help="Host names (inventory, ~/.ssh/config alias, or hostname).")],
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    accept_new_host_key: common.AcceptNewOpt = False,
    as_json: common.JsonOpt = False,
) -> None:
    """Connect to hosts and show their facts.

    Examples:
      remoteenv probe gpu-box
      remoteenv probe gpu-box --json | jq .gpus
      remoteenv probe 'node*' --group lab
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
        if len(outcomes) == 1 and outcomes[0].facts:
            print_json(outcomes[0].facts.to_json())
        elif len(outcomes) > 1:
            print_json([{"host": o.host.name,
                         "facts": o.facts.to_json() if o.facts else None,
                         "error": o.error.one_line() if o.error else None} for o in outcomes])
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


def render(name: str, f: HostFacts):  # -> rich renderable
    from rich.table import Table

    table = Table(title=f"{name}  ({f.user}@{f.hostname})", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
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
        f"pid {j.get('pid')} · {j.get('env', '?')} · port {j.get('port') or j.get('sock')}" for j in f.jupyter)
        or "none")
    return table


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)


__all__ = ["probe", "register", "render"]
