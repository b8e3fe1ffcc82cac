"""`remoteenv gpus`: which GPUs are free across a fleet, and who runs on the others; live with --watch."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.output import console, print_json
from remoteenv.cli.playbook import HostsArg

if TYPE_CHECKING:
    from remoteenv.gpus import HostGPUs

COMMAND_WIDTH = 40


def gpus(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    free: Annotated[bool, typer.Option("--free", help="Only GPUs with no process and little memory in use.")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh a live table until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", "-n", min=0.2, metavar="SECONDS", help="Seconds between refreshes with --watch.")] = 2.0,
    forks: Annotated[int, typer.Option("--forks", min=1, help="How many hosts to ask at once.")] = 64,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Every GPU of the selected hosts: memory, load, temperature, power, and the processes on it.

    One round trip per host (nvidia-smi's GPU and compute-app queries, joined with ps). Hosts that
    are down or have no GPU get a line saying so and never hold the table up. With --watch the
    connections stay open between refreshes.

    Examples:
      remoteenv gpus --group lab
      remoteenv gpus --group lab --free
      remoteenv gpus gpu-a gpu-b --watch -n 5
      remoteenv gpus '*' --json | jq '.[].gpus[] | select(.free)'
    """
    from remoteenv import api

    inv = common.inventory()
    if not hosts and not group and not inv.entries:
        from remoteenv.errors import ConfigError

        raise ConfigError("no host given and no inventory to take them from",
                          "name hosts (remoteenv gpus gpu-a gpu-b), or list them in hosts.yaml (see remoteenv hosts)")
    selected = common.select_hosts(inv, hosts, group, limit, default_all=True)
    poller = api.GPUPoller(selected, inv, forks=forks, accept_new_host_key=accept_new_host_key)
    try:
        if not watch:
            answers = poller.poll(timeout=60)
            if as_json:
                print_json([_filtered(a, free).to_json() for a in answers])
            else:
                console().print(table(answers, free))
            raise typer.Exit(1 if any(a.error for a in answers) else 0)
        _watch(poller, free, interval, as_json)
    finally:
        poller.close()


def _filtered(answer: HostGPUs, free: bool) -> HostGPUs:
    from remoteenv.gpus import HostGPUs

    if not free:
        return answer
    return HostGPUs(answer.host, [g for g in answer.gpus if g.free], answer.error, answer.nvidia_smi)


def _watch(poller, free: bool, interval: float, as_json: bool) -> None:
    from rich.live import Live

    stop = threading.Event()
    import signal

    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if as_json:
            while not stop.is_set():
                started = time.monotonic()
                for answer in poller.poll(timeout=max(interval, 1.0)):
                    print_json(_filtered(answer, free).to_json(), compact=True)
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
            return
        with Live(table(poller.poll(timeout=max(interval, 1.0)), free), console=console(), auto_refresh=False,
                  transient=False) as live:
            while not stop.wait(interval):
                live.update(table(poller.poll(timeout=max(interval, 1.0)), free), refresh=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def table(answers: list[HostGPUs], free: bool = False):  # -> rich Table
    from rich.table import Table

    out = Table(box=None, pad_edge=False, title=time.strftime("GPUs at %H:%M:%S"), title_justify="left")
    for column, justify in (("host", "left"), ("gpu", "right"), ("name", "left"), ("memory", "right"),
                            ("util", "right"), ("temp", "right"), ("power", "right"), ("processes", "left")):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    for answer in answers:
        if answer.error:
            out.add_row(answer.host, "", f"[red]{answer.error}[/red]")
            continue
        if not answer.nvidia_smi:
            out.add_row(answer.host, "", "[dim]no GPU (no nvidia-smi)[/dim]")
            continue
        shown = [g for g in answer.gpus if g.free or not free]
        if not shown:
            out.add_row(answer.host, "", "[dim]no free GPU[/dim]" if free else "[dim]no GPU[/dim]")
        for i, g in enumerate(shown):
            used = "?" if g.memory_used_mib is None else f"{g.memory_used_mib / 1024:.1f}"
            total = "?" if g.memory_mib is None else f"{g.memory_mib / 1024:.0f}"
            procs = "\n".join(f"{p.user or '?'} {p.pid} {_mib(p.memory_mib)} {_short(p.command)}" for p in g.processes)
            out.add_row(answer.host if i == 0 else "", str(g.index), _short(g.name.removeprefix("NVIDIA "), 22),
                        f"{used}/{total} GiB", _pct(g.utilization_pct), _unit(g.temperature_c, "°C"),
                        _unit(round(g.power_w) if g.power_w is not None else None, " W"),
                        procs or ("[green]free[/green]" if g.free else ""))
    return out


def _pct(value: int | None) -> str:
    return "-" if value is None else f"{value}%"


def _unit(value: object, unit: str) -> str:
    return "-" if value is None else f"{value}{unit}"


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value} MiB"


def _short(text: str, width: int = COMMAND_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    app.command("gpus")(gpus)


__all__ = ["gpus", "register", "table"]
