"""`remoteenv probe HOST --json` answered through a running keeper without loading the CLI.

Scripts call this in loops, and with a warm keeper the host's answer takes a few milliseconds:
Typer, rich and paramiko would cost ten times that. Only the plainest form takes this path (one
host named outright, no other option than -i); everything else, and any failure here, goes the
ordinary way, so what is printed never depends on the path taken.
"""

from __future__ import annotations

import json
import os
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

    if keeper.reuse_off() or not keeper.socket_path().exists():
        return None
    try:
        from remoteenv.inventory import load_inventory, resolve
        from remoteenv.keeper import client
        from remoteenv.transport.options import ConnectOptions

        inv = load_inventory(plain[0])
        name = plain[1]
        if name in inv.groups:
            return None
        host = resolve(inv, name)
        if not client.wanted(host, ConnectOptions()):
            return None
        sock = client.dial(spawn=False)
        if sock is None:
            return None
        conn = client.connect_on(sock, host, ConnectOptions(prompt=_no_prompt))
        from remoteenv import facts

        with conn:
            found = facts.gather(conn)
        sys.stdout.write(json.dumps(found.to_json(), indent=2, sort_keys=False, default=str) + "\n")
        return 0
    except Exception:  # anything unusual: the ordinary path says it properly
        return None


def _no_prompt(host: str, title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
    from remoteenv.errors import AuthFailed

    raise AuthFailed(host, "asks for a code")  # the ordinary path asks
