"""The Typer application and its global options. Commands live in one module each."""

from __future__ import annotations

from typing import Annotated

import typer

from remoteenv import __version__
from remoteenv.cli.output import GLOBALS


def _new_app() -> typer.Typer:
    return typer.Typer(
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
    no_reuse: Annotated[bool, typer.Option(
        "--no-reuse", envvar="REMOTEENV_NO_REUSE",
        help="Sign in afresh instead of reusing the keeper's connections (see `remoteenv connections`).")] = False,
) -> None:
    GLOBALS.inventory = inventory
    if no_reuse:
        import os

        os.environ["REMOTEENV_NO_REUSE"] = "1"  # for this process and the tunnels it starts
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
COMMAND_MODULES = ("up", "probe", "hosts", "gpus", "jupyter", "tunnel", "keys", "playbook", "conda", "env", "export",
                   "connections", "sandbox", "demo")


# Each top-level command -> the module that registers it. A run registers only the module of the
# command it runs: Typer reads the signature of every registered command at start-up, which costs
# more than a kept connection's whole round trip. Help, a bare `remoteenv` and anything unknown
# register them all.
COMMANDS = {
    "up": "up", "probe": "probe", "hosts": "hosts", "gpus": "gpus", "jupyter": "jupyter", "tunnel": "tunnel",
    "tunnels": "tunnel", "down": "tunnel", "keys": "keys", "plan": "playbook", "apply": "playbook",
    "conda": "conda", "env": "env", "export": "export", "connections": "connections",
    "disconnect": "connections", "sandbox": "sandbox", "demo": "demo",
}
_GLOBAL_WITH_VALUE = ("-i", "--inventory")


def command_of(argv: list[str]) -> str | None:
    """The command a command line runs (after the global options), if it is a known one."""
    args = iter(argv)
    for arg in args:
        if arg in _GLOBAL_WITH_VALUE:
            next(args, None)
        elif arg.startswith("-"):
            if arg in ("-h", "--help", "--version"):
                return None
        else:
            return arg if arg in COMMANDS else None
    return None


def make_app(argv: list[str] | None = None) -> typer.Typer:
    """The Typer app with every command, or with only what `argv` runs."""
    from importlib import import_module

    built = _new_app()
    built.callback()(_globals)
    only = command_of(argv) if argv is not None else None
    for name in [COMMANDS[only]] if only else COMMAND_MODULES:
        import_module(f"remoteenv.cli.{name}").register(built)
    from remoteenv.cli.helptext import reflow_app

    reflow_app(built)
    return built


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole app, for tests and tools that want every command
        built = make_app()
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
