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
    from rich.text import Text

    if not selected:
        _print_no_hosts()
        return
    table = Table(title=Text(f"Hosts ({_tilde(str(inv.path)) if inv.path else 'no inventory file'})"),
                  title_justify="left")
    # At 80 columns the address must stay whole: long words fold onto the next line, never "…".
    table.add_column("name", no_wrap=True)
    table.add_column("connects to", overflow="fold")
    table.add_column("groups", overflow="fold")
    table.add_column("from", overflow="fold")
    for h in selected:
        lines = [h.target]
        lines += [f"key {_tilde(k)}" for k in h.identity_files]
        if h.proxy_jump:
            lines.append(f"via {h.proxy_jump}")
        sources = dict.fromkeys(_short_source(s) for s in h.sources.values() if s != "default")
        # Names and paths come from files people wrote: plain text, never rich markup or emoji codes.
        table.add_row(*(Text(cell) for cell in (h.name, "\n".join(lines), ", ".join(h.groups),
                                                 "\n".join(sources) or "defaults")))
    console().print(table)


def _print_no_hosts() -> None:
    """What to write, in full: the hint must work from a pip install, which has no configs/ folder."""
    from rich.markup import escape

    from remoteenv.api import example_inventory
    from remoteenv.paths import config_dir

    out = console()
    out.print("No hosts. Name them in ./hosts.yaml (or pass -i PATH), for example:")
    out.print(escape(NO_HOSTS_EXAMPLE), soft_wrap=True)
    out.print(f"(or in {escape(_tilde(str(config_dir() / 'hosts.yaml')))}; Ansible inventories, ssh config "
              "files and plain host lists work too). Every field, documented:")
    out.print(f"  {escape(str(example_inventory()))}", soft_wrap=True)


NO_HOSTS_EXAMPLE = """\
  hosts:
    gpu-box: {hostname: 10.1.2.3, user: alice}
    node1: {}                  # a ~/.ssh/config alias works as is"""


def _tilde(path: str) -> str:
    import os

    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path == home or path.startswith(home + os.sep) else path


def _short_source(source: str) -> str:
    """`group lab (/long/path/hosts.yaml:12)` -> `group lab`; a bare path:line keeps its file name."""
    import os

    if " (" in source:
        return source.split(" (", 1)[0]
    path, _, line = source.rpartition(":")
    if path and line.isdigit():
        return f"{os.path.basename(path)}:{line}"
    return _tilde(source)


def register(app: typer.Typer) -> None:
    app.command("hosts")(hosts)
