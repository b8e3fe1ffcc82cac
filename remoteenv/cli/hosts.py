"""`remoteenv hosts`: the inventory, each host's resolved connection, and where each value came from."""

from __future__ import annotations

from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.output import console, print_json


def hosts(
    names: Annotated[list[str] | None, typer.Argument(help="Host names or globs (default: all).")] = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    as_json: common.JsonOpt = False,
) -> None:
    """List the inventory's hosts with their resolved connection settings.

    Examples:
      remoteenv hosts
      remoteenv -i ~/lab/hosts.yaml hosts --group gpu --json
      remoteenv hosts gpu-box        (also resolves a bare ~/.ssh/config alias)
    """
    inv = common.inventory()
    selected = common.select_hosts(inv, names, group, limit, default_all=True) if (inv.entries or names) else []
    if as_json:
        print_json({"inventory": str(inv.path) if inv.path else None, "format": inv.format,
                    "hosts": [h.to_dict() for h in selected]})
        return
    from rich.table import Table

    if not selected:
        console().print("No hosts. Add some to hosts.yaml (see configs/hosts.example.yaml) or pass -i PATH.")
        return
    table = Table(title=f"Hosts ({inv.path or 'no inventory file'})", title_justify="left")
    for column in ("name", "connects to", "key", "proxy jump", "groups", "from"):
        table.add_column(column)
    for h in selected:
        sources = sorted({s for s in h.sources.values() if s != "default"})
        table.add_row(h.name, h.target, "\n".join(h.identity_files) or "(agent/default)",
                      h.proxy_jump or "", ", ".join(h.groups), "\n".join(sources) or "default")
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command("hosts")(hosts)
