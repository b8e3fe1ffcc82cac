"""`remoteenv demo`: `up` on the embedded sandbox host (a throwaway local sshd with a fresh HOME)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from remoteenv import sandbox
from remoteenv.cli.output import console, err_console
from remoteenv.cli.sandbox import ServerOpt, check_server, start

DEMO_REQUIREMENTS = "jupyterlab\nipykernel\n"


def demo(
    server: ServerOpt = "auto",
    wheelhouse: Annotated[Path | None, typer.Option(
        "--wheelhouse", metavar="DIR", help="Install from these wheels only (machines without a package index).",
        show_default=False)] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open the browser.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Undo the demo: its tunnel, its Jupyter, the sandbox.")] = False,
) -> None:
    """Try remoteenv with no host of your own: `up` on a local sandbox host, JupyterLab in your browser.

    Starts the sandbox (an SSH server on 127.0.0.1, as you, with its own HOME), makes a venv there
    with JupyterLab and ipykernel, starts JupyterLab, tunnels it and prints the URL. The tunnel stays
    in the background; `remoteenv demo --down` undoes it all.

    Examples:
      remoteenv demo
      remoteenv demo --down
    """
    if down:
        _down()
        return
    from remoteenv import paths
    from remoteenv.cli.up import up

    start(check_server(server))
    folder = paths.cache_dir() / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "requirements.txt"
    spec.write_text(DEMO_REQUIREMENTS)
    err_console().print(f"up on the sandbox: a venv with {', '.join(DEMO_REQUIREMENTS.split())}", highlight=False)
    try:
        up(hosts=[sandbox.NAME], file=spec, env="demo", dist="venv", wheelhouse=wheelhouse, no_open=no_open,
           detach=True, group=None, limit=None, mirror=None, accept_anaconda_tos=False, pick_free=False,
           app="lab", socket=False, gpu=None, local_port=None, backend=None, forks=1, as_json=False,
           accept_new_host_key=False)
    except typer.Exit as done:
        if done.exit_code == 0:
            err_console().print("\nOpen the URL above. Next:\n"
                                "  remoteenv jupyter status sandbox    the server, its env and uptime\n"
                                "  remoteenv tunnels                   the tunnel in the background\n"
                                "  remoteenv demo --down               undo it all", highlight=False)
        raise


def _down() -> None:
    from remoteenv import api, jupyter
    from remoteenv.inventory import load_inventory
    from remoteenv.tunnel import records

    for record in records.load_all():
        if record.host == sandbox.NAME:
            records.stop(record)
            console().print(f"closed the tunnel on 127.0.0.1:{', '.join(map(str, record.local_ports()))}")
    if sandbox.status().running:
        with api.open_host(sandbox.NAME, load_inventory()) as conn:
            for name, pid in jupyter.stop(conn):
                console().print(f"stopped jupyter {name}" + (f" (pid {pid})" if pid else ""))
        result = sandbox.down()
        if result.stopped:
            console().print(f"sandbox stopped (pid {result.pid})")
    else:
        console().print("the sandbox is not running")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


__all__ = ["demo", "register"]
