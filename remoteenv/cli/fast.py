"""`remoteenv probe HOST --json` without loading the command line's machinery.

Scripts call this in loops. With the connection held by the keeper, the host's answer takes a few
milliseconds, and Python's own start a few tens: Typer, rich, the inventory readers and paramiko
would cost many times that. So first this path imports only the C layers of sockets and JSON:
the keeper, which has everything loaded, resolves HOST as this command would (same working
directory, inventory and environment), probes over the held connection and sends back the text to
print. On a miss (no keeper, no connection held, another environment) the probe runs here, still
without Typer. Only the plainest form takes this path (one host named outright, no option but -i);
it prints what the ordinary path prints, errors and exit codes included.
"""

from __future__ import annotations

import os
import sys

# Not the json and socket modules: their Python layers (re, enum, selectors) would be a fifth of a
# kept probe's time. Their C layers hold all this path needs.
from _json import encode_basestring_ascii
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as unix_socket


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

    found: list[str] = []

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
            found.append(facts.json_text(facts.gather(conn)))
        return 0

    code = exit_code_of(probe)
    if code == 0:
        sys.stdout.write(found[0])
    return code


def to_json(value: object) -> str:
    """json.dumps(value, separators=(",", ":")) for what a request holds: str, None, bool and dicts
    of them, with the same C string encoder."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not in a fast request: {type(value).__name__}")


def _from_keeper(plain: tuple[str | None, str]) -> int | None:
    from remoteenv import keeper
    from remoteenv.keeper import wire

    request = {"op": "probe", "name": plain[1], "inventory": plain[0], "cwd": os.getcwd(),
               "env": keeper.resolution_env()}
    sock = unix_socket(AF_UNIX, SOCK_STREAM)
    try:
        # A ping first, in the same write: a keeper that does not answer it at once is stuck, and the
        # ordinary path says so and goes on without it (keeper.client.dial).
        sock.settimeout(5)
        sock.connect(keeper.socket_file())
        sock.sendall(b"".join(wire.frame(wire.JSON, to_json(r).encode("ascii")) for r in ({"op": "ping"}, request)))
        if wire.receive(sock)[0] != wire.JSON:
            return None
        sock.settimeout(60)
        kind, text = wire.receive(sock)  # the facts as text, else a reply saying why not
    except (OSError, wire.WireClosed):
        return None
    finally:
        sock.close()
    if kind != wire.OUTPUT:
        return None  # a miss or an error: the ordinary path says it properly
    sys.stdout.write(text.decode())
    return 0
