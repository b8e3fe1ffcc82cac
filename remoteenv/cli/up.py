"""`remoteenv up HOST`: conda, your environment, its kernel and JupyterLab on the host, a tunnel, the URL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from remoteenv.cli import common, views
from remoteenv.cli.output import err_console, print_json
from remoteenv.cli.playbook import HostsArg
from remoteenv.cli.tunnel import (
    BackendOpt,
    DetachOpt,
    LocalPortOpt,
    Opened,
    Opening,
    hold,
    open_browser,
    open_tunnel,
)

if TYPE_CHECKING:
    from remoteenv.inventory import Host, Inventory
    from remoteenv.workstation import Running


def up(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="environment.yml, requirements.txt, an @EXPLICIT spec or a conda-lock file "
                             "(default: ./environment.yml, else ./requirements.txt, else a minimal env).",
        show_default=False)] = None,
    env: Annotated[str | None, typer.Option(
        "--env", "-e", help="The env's name (default: the file's name:, else main).", show_default=False)] = None,
    dist: Annotated[str | None, typer.Option(
        "--dist", "-d", help="miniforge (default: conda-forge, no terms to accept), miniconda, micromamba or venv.",
        show_default=False)] = None,
    accept_anaconda_tos: Annotated[bool, typer.Option(
        "--accept-anaconda-tos", help="With --dist miniconda: accept Anaconda's terms for its default channels.")
    ] = False,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", metavar="NAME|URL", help="tuna, ustc, bfsu, or a mirror's URL: for conda and pip.",
        show_default=False)] = None,
    wheelhouse: Annotated[Path | None, typer.Option(
        "--wheelhouse", metavar="DIR", help="Upload these wheels; pip then uses only them (air-gapped hosts).",
        show_default=False)] = None,
    app: Annotated[str, typer.Option("--app", help="lab or notebook.")] = "lab",
    socket: Annotated[bool, typer.Option(
        "--socket", help="Jupyter on a Unix socket in a 0700 folder instead of a loopback port.")] = False,
    gpu: Annotated[str | None, typer.Option(
        "--gpu", metavar="auto|N[,M]", help="CUDA_VISIBLE_DEVICES for Jupyter and its kernels; auto: a free GPU.",
        show_default=False)] = None,
    pick_free: Annotated[bool, typer.Option(
        "--pick-free", help="Of the selected hosts, only the one with the most free GPU memory.")] = False,
    local_port: LocalPortOpt = None,
    backend: BackendOpt = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open the browser.")] = False,
    detach: DetachOpt = False,
    forks: Annotated[int, typer.Option("--forks", min=1, help="How many hosts to work on at once.")] = 32,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object at the end (url, local_port, host, env, jupyter_pid, tunnel_pid).")
    ] = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Make hosts ready and bring their JupyterLab to your browser: one command.

    Installs conda if missing, creates or updates your environment (conda packages first, pip last),
    registers its kernel, starts JupyterLab detached on the host's loopback with a fresh token, opens
    an SSH tunnel and prints the URL as the last line. On a ready host it takes one round trip. The
    tunnel stays until Ctrl-C (Jupyter keeps running) unless --detach.

    Examples:
      remoteenv up gpu-box
      remoteenv up gpu-box -f environment.yml --dist miniforge
      remoteenv up gpu-box --dist venv -f requirements.txt --detach
      remoteenv up gpu-box --gpu auto
      remoteenv up --group lab --pick-free --gpu auto
      remoteenv up --group lab --no-open
    """
    from remoteenv.errors import ConfigError
    from remoteenv.playbook import load_playbook
    from remoteenv.runner import run_playbook
    from remoteenv.workstation import PLAYBOOK, choose_env_file, playbook_vars, running

    if app not in ("lab", "notebook"):
        raise ConfigError(f"--app must be lab or notebook, not {app!r}")
    inv = common.inventory()
    selected = common.select_hosts(inv, hosts, group, limit)
    dist_name = dist or str(selected[0].vars.get("conda_dist") or "miniforge")
    choice = choose_env_file(file, dist_name)
    if choice.minimal:
        err_console().print(f"no environment.yml or requirements.txt here: a minimal env (jupyterlab, ipykernel) "
                            f"from {choice.path}", highlight=False)
    from remoteenv import envspec

    server = env or envspec.load(choice.path).name or "main"  # the jupyter server is named for its env
    if pick_free or (gpu or "").lower() == "auto":
        selected = _gpu_choices(selected, inv, pick_free, (gpu or "").lower() == "auto", server, accept_new_host_key)
        gpu = None if (gpu or "").lower() == "auto" else gpu  # chosen per host, in its vars
    pb = load_playbook(PLAYBOOK)
    extra = playbook_vars(choice.path, env_name=env, dist=dist, app=app, socket=socket, gpus=gpu)
    if mirror:
        extra["conda_mirror"] = mirror
    if wheelhouse:
        extra["conda_wheelhouse"] = str(wheelhouse.resolve())
    if accept_anaconda_tos:
        extra["conda_accept_anaconda_tos"] = "true"

    def run(on_event, output_every):
        return run_playbook(pb, selected, inv, forks=forks, accept_new_host_key=accept_new_host_key,
                            extra_vars=extra, cancel=threading.Event(), on_event=on_event,
                            output_every=output_every)

    # Ready hosts answer in one round trip; their tunnels open meanwhile, to where Jupyter was last time.
    early, ports = _open_early(selected, inv, f"jupyter {server}", local_port, backend, detach)
    try:
        report = views.watch(run, title=f"up {', '.join(h.name for h in selected)}", hosts=[h.name for h in selected],
                             total_steps=len(pb.steps), mode="apply", stream_json=False, live=not as_json)
    except BaseException:
        for opening in early.values():
            opening.cancel()
        raise
    if report.cancelled:
        for opening in early.values():
            opening.cancel()
        raise typer.Exit(report.exit_code())
    results = running(report)
    summarised = set()
    if any(r.endpoint() is None for r in results) and not as_json:
        views.print_summary(report, "the same command again (it continues where it stopped)")
        summarised = {r.host for r in results if r.endpoint() is None}
    opened, rows, failed = _tunnels(results, selected, inv, local_port, backend, detach, early, ports)
    _print(rows, as_json, summarised)
    if opened and not no_open and not as_json:
        open_browser(opened[0].url)
    if opened and not detach:
        names = ", ".join(o.host for o in opened)
        hold(opened, f"Jupyter keeps running on {names} (remoteenv jupyter stop {names} ends it)")
    # The run's own code when a host did not get through it (3: none could be reached), else 1 for a tunnel.
    raise typer.Exit(report.exit_code() or (1 if failed else 0))


def _open_early(selected: list[Host], inv: Inventory, service: str, local_port: int | None, backend: str | None,
                detach: bool) -> tuple[dict[str, Opening], dict[str, int]]:
    """Tunnels to where each host's server was the last time (the probe confirms it), opening while the
    playbook runs; the background tunnels of an earlier `up` to it give way, and their ports are reused."""
    from remoteenv.errors import RemoteenvError
    from remoteenv.tunnel import Forward, free_local_port, records

    early: dict[str, Opening] = {}
    ports: dict[str, int] = {}  # the local port each host's tunnel had before
    taken: set[int] = set()
    for i, host in enumerate(selected):
        earlier = _replace_earlier(host.name, service)
        if earlier:
            ports[host.name] = earlier
        last = records.recall(host.name, service)
        if last is None:
            continue
        try:
            port = free_local_port(local_port + i if local_port else earlier or int(last["local_port"]), taken)
            taken.add(port)
            early[host.name] = Opening(host, inv, [Forward(port, str(last["where"]), "jupyter")], backend=backend,
                                       detach=detach, service=service)
        except RemoteenvError:
            continue  # opened after the run instead
    return early, ports


def _tunnels(results: list[Running], selected: list[Host], inv: Inventory, local_port: int | None,
             backend: str | None, detach: bool, early: dict[str, Opening], ports: dict[str, int]
             ) -> tuple[list[Opened], list[dict], bool]:
    from remoteenv.errors import RemoteenvError
    from remoteenv.tunnel import records
    from remoteenv.workstation import jupyter_forward, wait_answers

    by_name = {h.name: h for h in selected}
    opened: list[Opened] = []
    rows: list[dict] = []
    taken: set[int] = {o.forwards[0].local_port for o in early.values()}
    failed = False
    for i, result in enumerate(results):
        endpoint = result.endpoint()
        pending = early.pop(result.host, None)
        if endpoint is None:
            failed = True
            if pending is not None:
                pending.cancel()
            rows.append({"host": result.host, "error": result.message or f"{result.status}"})
            continue
        service = f"jupyter {endpoint.server.name}"
        try:
            one = None
            if pending is not None and pending.forwards[0].remote == endpoint.server.where:
                try:
                    one = pending.finish(endpoint.url(pending.forwards[0].local_port))
                except RemoteenvError:
                    one = None  # opened again below, as if it had not been tried
            elif pending is not None:
                pending.cancel()  # the server moved (restarted, or another port or socket)
                taken.discard(pending.forwards[0].local_port)
            if one is None:
                wanted = (pending.forwards[0].local_port if pending
                          else local_port + i if local_port else ports.get(result.host))
                forward = jupyter_forward(endpoint.server, wanted, taken)
                one = open_tunnel(by_name[result.host], inv, [forward], backend=backend, detach=detach,
                                  url=endpoint.url(forward.local_port), service=service)
            port = one.forwards[0].local_port
            taken.add(port)
            if not wait_answers(port, endpoint.token):
                raise RemoteenvError(f"{result.host}: Jupyter does not answer through the tunnel on 127.0.0.1:{port}",
                                     f"see remoteenv jupyter logs {result.host} --name {endpoint.server.name}")
        except RemoteenvError as exc:
            failed = True
            rows.append({"host": result.host, "error": exc.one_line()})
            continue
        records.remember(result.host, service, endpoint.server.where, port)
        opened.append(one)
        rows.append({"host": result.host, "url": one.url, "local_port": port, "env": endpoint.server.env,
                     "jupyter_pid": endpoint.server.pid, "tunnel_pid": one.pid,
                     "reused": bool(result.status == "ok")})
    for pending in early.values():
        pending.cancel()
    return opened, rows, failed


def _gpu_choices(selected: list[Host], inv: Inventory, pick_free: bool, auto: bool, server: str,
                 accept_new_host_key: bool) -> list[Host]:
    """--pick-free: the host with the most free GPU memory; --gpu auto: a free GPU on each host (its
    `jupyter_gpus` var). One round trip per host, and says why."""
    from remoteenv import api, jupyter
    from remoteenv import gpus as gpus_mod
    from remoteenv.workstation import choose_gpu, pick_host

    def ask(conn):
        servers = jupyter.status(conn, [server]) if auto else []
        return gpus_mod.query(conn), (servers[0] if servers else None)

    with err_console().status("asking the hosts' GPUs"):
        answers = api.each_host(selected, inv, ask, accept_new_host_key=accept_new_host_key)
    found = [a.value[0] if a.value else gpus_mod.HostGPUs(a.host, error=a.error) for a in answers]
    if pick_free:
        name, why = pick_host(found)
        err_console().print(f"picked {name}: {why}", highlight=False)
        keep = [i for i, h in enumerate(selected) if h.name == name]
        selected, answers, found = [selected[i] for i in keep], [answers[i] for i in keep], [found[i] for i in keep]
    if auto:
        for host, answer, gpus in zip(selected, answers, found, strict=True):
            choice = choose_gpu(gpus, answer.value[1] if answer.value else None)
            host.vars["jupyter_gpus"] = choice.gpus
            err_console().print(f"{host.name}: {choice.reason}", highlight=False)
    return selected


def _replace_earlier(host: str, service: str) -> int | None:
    """Close the background tunnels of an earlier `up` to this server; the local port it had."""
    from remoteenv.tunnel import records

    port = None
    for record in records.load_all():
        if record.host == host and record.service == service:
            port = port or (record.local_ports() or [None])[0]
            records.stop(record)
    return port


def _print(rows: list[dict], as_json: bool, summarised: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    if as_json:
        print_json(rows[0] if len(rows) == 1 else {"hosts": rows})
        return
    for row in rows:
        if "error" in row and row["host"] not in summarised:  # the run's summary said it already
            err_console().print(f"{row['host']}: not up: {row['error']}", highlight=False)
    good = [row for row in rows if "url" in row]
    if len(rows) == 1 and good:
        typer.echo(good[0]["url"])  # the last line of stdout: scripts take it from here
    else:
        width = max((len(r["host"]) for r in good), default=0)
        for row in good:
            typer.echo(f"{row['host']:<{width}}  {row['url']}")


def register(app: typer.Typer) -> None:
    app.command("up")(up)


__all__ = ["register", "up"]
