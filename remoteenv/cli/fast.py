"""`remoteenv probe HOST --json` without loading the command line's machinery.

Scripts call this in loops. With the connection held by the keeper, the host's answer takes a few
milliseconds, and Python's own start a few tens: Typer, rich, the inventory readers and paramiko
would cost many times that. So first this path imports only the standard library's socket and json:
the keeper, which has everything loaded, resolves HOST as this command would (same working
directory, inventory and environment) and probes over the held connection. On a miss (no keeper,
no connection held, another environment) the probe runs here, still without Typer. Only the
plainest form takes this path (one host named outright, no option but -i); it prints what the
ordinary path prints, errors and exit codes included.
"""

from __future__ import annotations

import json
import os
import socket
import sys


def _plain_probe(argv: list[str]) -> tuple[str | None, str] | None:
    """(inventory or None, host) for `[-i INV] probe HOST --json`, else None."""
    inventory = None
    if len(argv) >= 2 and argv[0] in ("-i", "--inventory"):
        inventory, argv = argv[1], argv[2:]
    if len(argv) != 3 or argv[0] != "probe" or argv[2] != "--json":
        return None
    name = argv[1]
    if not name or name.startswith("-") or any(c in name for c in "*?[],!&:") or name == "all":
        return None
    return inventory or os.environ.get("REMOTEENV_INVENTORY") or None, name


def try_fast(argv: list[str]) -> int | None:
    """The exit code when this path answered, None to take the ordinary one."""
    plain = _plain_probe(argv)
    if plain is None:
        return None
    from remoteenv import keeper

    if not keeper.reuse_off():
        code = _from_keeper(plain)
        if code is not None:
            return code
    return _here(plain)


def _here(plain: tuple[str | None, str]) -> int | None:
    from remoteenv.cli.errors import exit_code_of

    found: list[dict] = []

    def probe() -> int | None:
        from remoteenv import api, facts
        from remoteenv.inventory import SSHConfigFile, load_inventory, resolve
        from remoteenv.transport import connect

        inv = load_inventory(plain[0])
        if plain[1] in inv.groups:
            return None  # a selection: the ordinary path prints a list
        config = SSHConfigFile()
        host = resolve(inv, plain[1], config)
        with connect(host, api.connect_options(inv, ssh_config=config)) as conn:
            found.append(facts.gather(conn).to_json())
        return 0

    code = exit_code_of(probe)
    if code == 0:
        sys.stdout.write(json.dumps(found[0], indent=2, sort_keys=False, default=str) + "\n")
    return code


def _from_keeper(plain: tuple[str | None, str]) -> int | None:
    from remoteenv import keeper
    from remoteenv.keeper import wire

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(60)
        sock.connect(str(keeper.socket_path()))
        wire.send_json(sock, {"op": "probe", "name": plain[1], "inventory": plain[0], "cwd": os.getcwd(),
                              "env": keeper.resolution_env()})
        reply = wire.receive_json(sock)
    except (OSError, ValueError, wire.WireClosed):
        return None
    finally:
        sock.close()
    if not reply.get("ok") or "facts" not in reply:
        return None  # a miss or an error: the ordinary path says it properly
    sys.stdout.write(json.dumps(reply["facts"], indent=2, sort_keys=False, default=str) + "\n")
    return 0
