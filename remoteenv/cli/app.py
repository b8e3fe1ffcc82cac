"""The Typer application and its global options. Commands live in one module each."""

from __future__ import annotations

from typing import Annotated

import typer

from remoteenv import __version__
from remoteenv.cli.output import GLOBALS

app = typer.Typer(
    name="remoteenv",
    help=(
        "Turn a bare Linux GPU host reachable over SSH into a ready, reproducible workstation.\n\n"
        "Exit codes: 0 ok, 1 failed on a host, 2 bad usage or config, 3 unreachable / auth / host key, "
        "130 interrupted (Ctrl-C)."
    ),
    epilog="Examples:  remoteenv demo  ·  remoteenv probe gpu-box  ·  remoteenv hosts --json",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"remoteenv {__version__}")
        raise typer.Exit()


@app.callback()
def _globals(
    inventory: Annotated[str | None, typer.Option(
        "--inventory", "-i", envvar="REMOTEENV_INVENTORY", metavar="PATH",
        help="Inventory file (remoteenv YAML, Ansible INI/YAML, ssh config, or a plain host list). "
             "Default: ./hosts.yaml, then hosts.yaml in the user config dir.")] = None,
    # A counted flag, not a number. Typer shows the type (INTEGER) for an empty metavar, so a blank one.
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True, metavar=" ", show_default=False,
        help="Log each connection and probe with timings; -vv adds the SSH protocol log.")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    GLOBALS.inventory = inventory
    GLOBALS.verbose = verbose
    if verbose:
        import logging

        # -v: what remoteenv does and how long each part takes; -vv: paramiko's SSH protocol log too.
        logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                            level=logging.WARNING)
        logging.getLogger("remoteenv").setLevel(logging.DEBUG)
        if verbose > 1:
            logging.getLogger("paramiko").setLevel(logging.DEBUG)


# The command modules, in help order: each has register(app). A module listed here and missing is
# an error at start-up (a broken install), never a command silently gone.
COMMAND_MODULES = ("up", "probe", "hosts", "gpus", "jupyter", "tunnel", "playbook", "conda", "env", "export",
                   "sandbox", "demo")


def _register() -> None:
    from importlib import import_module

    for name in COMMAND_MODULES:
        import_module(f"remoteenv.cli.{name}").register(app)


_register()
