"""`remoteenv jupyter start|status|stop|logs`: the Jupyter servers remoteenv runs on hosts."""

from __future__ import annotations

from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.output import console, print_json
from remoteenv.cli.playbook import HostsArg, run_and_exit
from remoteenv.errors import ConfigError

jupyter_app = typer.Typer(
    name="jupyter",
    help="Jupyter servers on hosts: started from an env's own bin/, detached, on the host's loopback.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ForksOpt = Annotated[int, typer.Option("--forks", min=1, help="How many hosts to work on at once.")]
NameOpt = Annotated[str | None, typer.Option(
    "--name", help="The server's name (default: the env's name).", show_default=False)]


@jupyter_app.command("start")
def start(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    env: Annotated[str, typer.Option("--env", "-e", help="The environment it runs from (PREFIX/envs/NAME).")] = "main",
    dist: Annotated[str | None, typer.Option(
        "--dist", "-d", help="The distribution the env is in (default: conda_dist, else miniconda).",
        show_default=False)] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", "-p", help="That install's prefix.",
                                               show_default=False)] = None,
    name: NameOpt = None,
    app: Annotated[str, typer.Option("--app", help="lab or notebook.")] = "lab",
    folder: Annotated[str, typer.Option("--dir", help="The folder it serves, on the host.")] = "~/work",
    socket: Annotated[bool, typer.Option(
        "--socket", help="Listen on a Unix socket in a 0700 folder instead of a loopback port.")] = False,
    gpus: Annotated[str | None, typer.Option(
        "--gpus", metavar="N[,M]", help="CUDA_VISIBLE_DEVICES for the server and its kernels.",
        show_default=False)] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Start it again even when it runs.")] = False,
    plan: Annotated[bool, typer.Option("--plan", help="Show what would be done, changing nothing.")] = False,
    forks: ForksOpt = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Stream events as JSON lines.")] = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Start Jupyter on hosts, or reuse the live one: detached, token-protected, on the host's loopback.

    The token is 256 random bits, in no process's argv and in no file others can read. `remoteenv
    tunnel HOST` brings it to your browser; `remoteenv up HOST` does everything at once.

    Examples:
      remoteenv jupyter start gpu-box --env torch
      remoteenv jupyter start gpu-box --env torch --socket --gpus 0
    """
    from remoteenv.playbook import load_text

    if app not in ("lab", "notebook"):
        raise ConfigError(f"--app must be lab or notebook, not {app!r}")
    params = {"env": env, "dist": dist, "prefix": prefix, "name": name, "app": app, "dir": folder,
              "socket": "true" if socket else None, "gpus": gpus, "restart": "true" if restart else None}
    var = [f"jupyter_{key}={value}" for key, value in params.items() if value not in (None, "")]
    step = "\n".join(f"      {key}: \"{{{{ jupyter_{key} }}}}\"" for key, value in params.items()
                     if value not in (None, ""))
    pb = load_text(f"name: jupyter-start\nsteps:\n  - jupyter:\n{step}\n", "remoteenv jupyter start")
    run_and_exit(pb, "plan" if plan else "apply", hosts, group, limit, var, forks, as_json, accept_new_host_key)


@jupyter_app.command("status")
def status(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    forks: ForksOpt = 32,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """The Jupyter servers remoteenv runs on hosts: env, where, uptime, and whether /api/status answers.

    Examples:
      remoteenv jupyter status gpu-box
      remoteenv jupyter status --group lab --json
    """
    from remoteenv import jupyter

    answers = _on_hosts(hosts, group, limit, lambda conn: jupyter.status(conn), forks, accept_new_host_key)
    if as_json:
        print_json([{"host": a.host, "error": a.error,
                     "servers": [s.to_json() for s in a.value or []]} for a in answers])
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("host", "server", "app", "env", "where", "pid", "up", "answers"):
            table.add_column(column)
        for a in answers:
            if a.error:
                table.add_row(a.host, f"[red]{a.error}[/red]")
            elif not a.value:
                table.add_row(a.host, "[dim]none[/dim]")
            for s in a.value or []:
                state = ("[green]yes[/green]" if s.answers
                         else "[red]no[/red]" if s.alive else "[red]not running[/red]")
                table.add_row(a.host, s.name, s.app, s.env.rstrip("/").rsplit("/", 1)[-1], s.where, str(s.pid),
                              _duration(s.uptime) if s.uptime is not None else "-", state)
        console().print(table)
    raise typer.Exit(api_exit(answers))


@jupyter_app.command("stop")
def stop(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    name: Annotated[list[str] | None, typer.Option(
        "--name", help="Only this server (repeat for more; default: every one remoteenv started).")] = None,
    forks: ForksOpt = 32,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Stop the Jupyter servers remoteenv started (never another user's, nor one it did not start).

    Examples:
      remoteenv jupyter stop gpu-box
      remoteenv jupyter stop gpu-box --name torch
    """
    from remoteenv import jupyter

    answers = _on_hosts(hosts, group, limit, lambda conn: jupyter.stop(conn, name or ()), forks,
                        accept_new_host_key)
    if as_json:
        print_json([{"host": a.host, "error": a.error,
                     "stopped": [{"name": n, "pid": p} for n, p in a.value or []]} for a in answers])
    else:
        for a in answers:
            if a.error:
                console().print(f"{a.host}: [red]{a.error}[/red]")
            elif not a.value:
                console().print(f"{a.host}: no Jupyter server of remoteenv's")
            for server, pid in a.value or []:
                console().print(f"{a.host}: stopped {server} (pid {pid})" if pid
                                else f"{a.host}: {server} was not running; its state is cleared")
    raise typer.Exit(api_exit(answers))


@jupyter_app.command("logs")
def logs(
    host: Annotated[str, typer.Argument(help="The host.")],
    name: Annotated[str | None, typer.Option(
        "--name", help="The server's name (its env's name; default: the only one there).", show_default=False)] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many of the last lines.")] = 100,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """The last lines of a Jupyter server's log on the host (kept 0600 in ~/.remoteenv/jupyter).

    Examples:
      remoteenv jupyter logs gpu-box --name torch -n 50
    """
    from remoteenv import jupyter
    from remoteenv.errors import RemoteenvError

    def read(conn):
        names = [s.name for s in jupyter.status(conn)]
        wanted = name or (names[0] if len(names) == 1 else None)
        if wanted is None or wanted not in names:
            there = ", ".join(names) or "none"
            raise RemoteenvError(f"{conn.host.name}: " + (f"no Jupyter server named {name}" if name
                                                          else "which Jupyter server? give --name"),
                                 f"servers there: {there}")
        return jupyter.logs(conn, wanted, lines)

    answers = _on_hosts([host], None, None, read, 1, accept_new_host_key)
    if answers[0].error:
        raise RemoteenvError(answers[0].error)
    typer.echo(answers[0].value or "", nl=False)


def _on_hosts(hosts, group, limit, job, forks, accept_new_host_key):
    from remoteenv import api

    inv = common.inventory()
    selected = common.select_hosts(inv, hosts, group, limit)
    return api.each_host(selected, inv, job, forks=forks, accept_new_host_key=accept_new_host_key)


def api_exit(answers) -> int:
    """0 when every host answered, 1 when some did not."""
    return 1 if any(a.error for a in answers) else 0


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def register(app: typer.Typer) -> None:
    app.add_typer(jupyter_app)


__all__ = ["jupyter_app", "register"]
