"""`remoteenv connections` and `remoteenv disconnect`: the SSH connections the keeper holds."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.output import console, print_json


def connections(as_json: common.JsonOpt = False) -> None:
    """List the signed-in connections the keeper holds, and how long each has been idle.

    Every command reuses these: a host that asks for a one-time code asks once per connection.
    A connection idle for its persist time (ssh config's ControlPersist, else 10 minutes) closes.

    Examples:
      remoteenv connections
      remoteenv connections --json
    """
    from remoteenv.keeper import client

    reply = client.request("list")
    rows = reply["connections"] if reply else []
    tunnels = reply.get("tunnels", []) if reply else []
    if as_json:
        print_json({"keeper_pid": reply["pid"] if reply else None, "connections": rows, "tunnels": tunnels})
        return
    if not rows:
        console().print("No kept connections" + ("" if reply else " (no keeper runs)") + ".")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"Kept connections (keeper pid {reply['pid']})"), title_justify="left")  # type: ignore[index]
    for column in ("host", "connects to", "in use", "idle", "closes after idle", "tunnels"):
        table.add_column(column, overflow="fold")
    for row in rows:
        persist = row["persist_seconds"]
        ports = [str(p) for t in tunnels if t["host"] == row["name"] for p in t["local_ports"]]
        table.add_row(Text(row["name"]), Text(row["target"]), str(row["users"]), f"{row['idle_seconds']:.0f}s",
                      "never (disconnect ends it)" if not persist else f"{persist:.0f}s",
                      ", ".join(f"127.0.0.1:{p}" for p in ports) or "-")
    console().print(table)


def disconnect(
    names: Annotated[list[str] | None, typer.Argument(help="Host names (default: every connection, "
                                                            "and the keeper ends).", show_default=False)] = None,
    as_json: common.JsonOpt = False,
) -> None:
    """Close kept connections now: the next command to those hosts signs in again.

    Examples:
      remoteenv disconnect gpu-box
      remoteenv disconnect            (all of them; the keeper ends)
    """
    from remoteenv.keeper import client
    from remoteenv.tunnel import records

    started = time.monotonic()
    reply = client.request("disconnect", names=names or None)
    closed = reply["closed"] if reply else []
    tunnels = sorted(reply.get("tunnels") or []) if reply else []
    for record in records.load_all(prune=False):  # the detached tunnels the keeper hosted for them
        if record.hosted and record.id in tunnels:
            records.remove(record)
    if as_json:
        print_json({"closed": closed, "tunnels": tunnels, "keeper_running": bool(reply) and bool(names)})
        return
    if not closed:
        console().print("No kept connection to close" + ("" if reply else " (no keeper runs)") + ".")
    else:
        ended = f"; detached tunnels ended with them: {', '.join(tunnels)}" if tunnels else ""
        console().print(f"Closed {', '.join(closed)} ({time.monotonic() - started:.2f}s){ended}.")


def register(app: typer.Typer) -> None:
    app.command("connections")(connections)
    app.command("disconnect")(disconnect)
