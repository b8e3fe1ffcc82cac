"""`remoteenv sandbox up|down|status` and `remoteenv demo`: a throwaway local SSH host to try remoteenv on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from remoteenv import sandbox
from remoteenv.cli import common
from remoteenv.cli.output import console, err_console, print_json

sandbox_app = typer.Typer(
    name="sandbox",
    help="A throwaway SSH host on 127.0.0.1 (as you, no root needed), known to remoteenv as `sandbox`.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

ServerOpt = Annotated[str, typer.Option(
    "--server", metavar="auto|openssh|asyncssh",
    help="Which SSH server runs the sandbox: OpenSSH's sshd, the built-in asyncssh server, "
         "or auto (sshd when installed, else asyncssh).")]


@contextmanager
def _progress(first: str) -> Iterator[sandbox.Progress]:
    """A spinner on stderr whose text follows the library's progress messages."""
    with err_console().status(first) as spinner:
        def say(message: str) -> None:
            spinner.update(message)
            if _verbose():
                err_console().log(message, highlight=False)

        yield say


def _verbose() -> bool:
    from remoteenv.cli.output import GLOBALS

    return GLOBALS.verbose > 0


def check_server(server: str) -> str:
    if server not in sandbox.SERVER_CHOICES:
        raise typer.BadParameter(f"{server!r} is not one of {', '.join(sandbox.SERVER_CHOICES)}",
                                 param_hint="--server")
    return server


def start(server: str) -> sandbox.UpResult:
    with _progress("starting the sandbox") as say:
        result = sandbox.up(server, progress=say)
    s = result.status
    where = f"{_flavour_text(s.flavour)} on {s.hostname}:{s.port} as {s.user} (pid {s.pid}"
    if result.started:
        line = f"[green]sandbox up[/]: {where}, {result.seconds:.2f}s) · {result.reason}"
    else:
        line = f"sandbox already running: {where}) · {result.reason}"
    err_console().print(line, highlight=False, soft_wrap=True)
    return result


def _flavour_text(flavour: str | None) -> str:
    return {"openssh": "OpenSSH sshd", "asyncssh": "asyncssh server"}.get(flavour or "", "none")


def up(
    server: ServerOpt = "auto",
    as_json: common.JsonOpt = False,
) -> None:
    """Start the sandbox (or confirm it runs). It lives until `remoteenv sandbox down`.

    Keys, log and the sandbox's own HOME live in remoteenv's state dir; your ~/.ssh is not touched.

    Examples:
      remoteenv sandbox up
      remoteenv probe sandbox
      remoteenv sandbox up --server asyncssh      (no sshd needed)
    """
    result = start(check_server(server))
    if as_json:
        print_json({**result.status.to_json(), "started": result.started, "reason": result.reason})


def down(
    purge: Annotated[bool, typer.Option("--purge", help="Also delete its keys, log and home.")] = False,
) -> None:
    """Stop the sandbox and its open sessions. Keys are kept for next time unless --purge.

    Examples:
      remoteenv sandbox down
      remoteenv sandbox down --purge
    """
    with _progress("stopping the sandbox") as say:
        result = sandbox.down(purge, progress=say)
    if result.stopped:
        console().print(f"sandbox stopped (pid {result.pid})" + ("; its files were removed" if purge else ""))
    else:
        console().print("sandbox was not running" + ("; its files were removed" if purge else ""))


def status(as_json: common.JsonOpt = False) -> None:
    """Show whether the sandbox runs, and how to reach it.

    Examples:
      remoteenv sandbox status
      remoteenv sandbox status --json | jq .port
    """
    s = sandbox.status()
    if as_json:
        print_json(s.to_json())
        return
    from rich.markup import escape
    from rich.table import Table

    state = ("[green]running[/]" if s.answering else "[yellow]running, not answering[/]") if s.running \
        else "[dim]stopped[/]"
    table = Table(title="sandbox", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", state)
    table.add_row("server", _flavour_text(s.flavour) if s.flavour else "never started")
    if s.running:
        table.add_row("pid", str(s.pid))
        table.add_row("address", f"{s.user}@{s.hostname}:{s.port}")
        table.add_row("up since", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.started_at or 0)))
    table.add_row("host key", s.host_key_fingerprint or "-")
    table.add_row("state dir", escape(str(s.dir)))
    table.add_row("log", escape(str(s.log)))
    console().print(table)
    if not s.running:
        console().print("start it with: remoteenv sandbox up")


def register(app: typer.Typer) -> None:
    sandbox_app.command("up")(up)
    sandbox_app.command("down")(down)
    sandbox_app.command("status")(status)
    app.add_typer(sandbox_app, name="sandbox")
