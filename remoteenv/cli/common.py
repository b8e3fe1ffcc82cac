"""Options and helpers shared by the commands that reach hosts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from remoteenv.cli.output import GLOBALS
from remoteenv.errors import ConfigError

if TYPE_CHECKING:
    from remoteenv.inventory import Host, Inventory

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (a documented, stable schema).")]
AcceptNewOpt = Annotated[bool, typer.Option(
    "--accept-new-host-key",
    help="Trust a host seen for the first time and record its key in ~/.ssh/known_hosts "
         "(a changed key is still refused).")]
GroupOpt = Annotated[str | None, typer.Option("--group", "-g", help="Only hosts of this inventory group.")]
LimitOpt = Annotated[str | None, typer.Option(
    "--limit", "-l", help="Only hosts whose name matches this glob (comma-separated globs allowed).")]


def inventory() -> Inventory:
    from remoteenv.inventory import load_inventory

    return load_inventory(GLOBALS.inventory)


def select_names(inv: Inventory, names: list[str] | None, group: str | None = None,
                 limit: str | None = None, *, default_all: bool = False) -> list[str]:
    """Host names from the command line (globs allowed), narrowed by --group and --limit."""
    if not names and not group and not default_all:
        raise ConfigError("no host given", "name a host or a glob ('*': every inventory host), or --group G")
    chosen = inv.select(names or None, group)
    if limit:
        import fnmatch

        globs = [g.strip() for g in limit.split(",") if g.strip()]
        chosen = [n for n in chosen if any(fnmatch.fnmatchcase(n, g) for g in globs)]
    if not chosen:
        where = inv.path or "the inventory"
        raise ConfigError(f"no host in {where} matches the selection", "remoteenv hosts lists them")
    return chosen


def select_hosts(inv: Inventory, names: list[str] | None, group: str | None = None,
                 limit: str | None = None, *, default_all: bool = False) -> list[Host]:
    """Hosts named on the command line (globs allowed), narrowed by --group and --limit."""
    chosen = select_names(inv, names, group, limit, default_all=default_all)
    from remoteenv.inventory import resolve_many

    return resolve_many(inv, chosen)
