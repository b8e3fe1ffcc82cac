"""`remoteenv hosts`: the inventory, each host's resolved connection, and where each value came from."""

from __future__ import annotations

from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.output import console, print_json
from remoteenv.errors import HostRefused


def hosts(
    names: Annotated[list[str] | None, typer.Argument(help="Host names or globs (default: all).")] = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    as_json: common.JsonOpt = False,
) -> None:
    """List the inventory's hosts with their resolved connection settings (with no inventory
    file: the `Host` aliases of your ssh config, resolved as ssh resolves them).

    Examples:
      remoteenv hosts
      remoteenv -i ~/lab/hosts.yaml hosts --group gpu --json
      remoteenv hosts gpu-box        (also resolves a bare ~/.ssh/config alias)
    """
    inv = common.inventory()
    ssh_config = None
    refused: list[tuple[str, HostRefused]] = []
    if inv.entries or names or group is not None:
        selected, refused = _resolve_each(inv, common.select_names(inv, names, group, limit, default_all=True))
    else:
        # No inventory: the person's ssh config aliases are the hosts they already reach by name.
        selected, ssh_config = _ssh_config_hosts(inv, limit)
    if as_json:
        print_json({"inventory": str(inv.path) if inv.path else None, "format": inv.format,
                    "ssh_config": str(ssh_config.path) if ssh_config is not None else None,
                    "hosts": [h.to_dict() for h in selected],
                    "refused": [{"name": name, "error": exc.one_line()} for name, exc in refused]})
        return
    from rich.table import Table
    from rich.text import Text

    if not selected and not refused:
        _print_no_hosts()
        return
    if inv.path:
        title = f"Hosts ({_tilde(str(inv.path))})"
    elif ssh_config is not None:
        title = f"Hosts: no inventory file; the aliases of your ssh config ({_tilde(str(ssh_config.path))})"
    else:
        title = "Hosts (no inventory file)"
    table = Table(title=Text(title), title_justify="left")
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
        if h.proxy_command:
            lines.append(f"through `{h.proxy_command}`")
        sources = _compact(_short_source(s) for s in h.sources.values() if s != "default")
        # Names and paths come from files people wrote: plain text, never rich markup or emoji codes.
        table.add_row(*(Text(cell) for cell in (h.name, "\n".join(lines), ", ".join(h.groups),
                                                 "\n".join(sources) or "defaults")))
    for name, exc in refused:
        # Listed, not fatal: one host remoteenv cannot reach as written leaves the rest usable.
        table.add_row(Text(name), Text(f"refused: {exc.message}", style="red"), Text(""), Text(exc.hint or ""))
    console().print(table)


def _resolve_each(inv, names: list[str]) -> tuple[list, list[tuple[str, HostRefused]]]:
    """Each name resolved; a host the inventory writes in a way remoteenv refuses (an Ansible local
    connection, an ssh option it cannot honour) is set apart with its reason."""
    from remoteenv.inventory import SSHConfigFile, resolve

    config = SSHConfigFile()
    resolved, refused = [], []
    for name in names:
        try:
            resolved.append(resolve(inv, name, config))
        except HostRefused as exc:
            refused.append((name, exc))
    return resolved, refused


def _ssh_config_hosts(inv, limit: str | None):
    """The concrete `Host` aliases of the person's ssh config, resolved as `ssh ALIAS` would be,
    each value's source the `file:line` that set it."""
    from remoteenv.inventory import SSHConfigFile, resolve

    config = SSHConfigFile()
    names = config.host_names()
    if limit:
        import fnmatch

        globs = [g.strip() for g in limit.split(",") if g.strip()]
        names = [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]
    hosts = []
    whole = str(config.path)
    for name in names:
        host = resolve(inv, name, config)
        origins = config.resolution(name).origins
        for field_name, source in host.sources.items():
            if source == whole and field_name in origins:
                host.sources[field_name] = origins[field_name]
        hosts.append(host)
    return hosts, config


def _print_no_hosts() -> None:
    """What to write, in full: the hint must work from a pip install, which has no configs/ folder."""
    from rich.markup import escape

    from remoteenv.api import example_inventory
    from remoteenv.paths import config_dir

    out = console()
    out.print("No hosts: no inventory file, and no `Host` aliases in your ssh config. Name them in "
              "./hosts.yaml (or pass -i PATH), for example:")
    out.print(escape(NO_HOSTS_EXAMPLE), soft_wrap=True)
    out.print(f"(or in {escape(_tilde(str(config_dir() / 'hosts.yaml')))}; Ansible inventories, ssh config "
              "files and plain host lists work too). Every field, documented:")
    out.print(f"  {escape(str(example_inventory()))}", soft_wrap=True)


NO_HOSTS_EXAMPLE = """\
  hosts:
    gpu-box: {hostname: 10.1.2.3, user: alice}
    node1: {}                  # a ~/.ssh/config alias works as is"""


def _compact(sources) -> list[str]:
    """`config:4`, `config:5`, `config:9` -> `config:4-5,9`: one entry per file, lines as ranges."""
    lines: dict[str, list[int]] = {}
    out: dict[str, None] = {}
    for source in sources:
        path, _, line = source.rpartition(":")
        if path and line.isdigit() and " " not in source:
            if path not in lines:
                lines[path] = []
                out[path] = None
            lines[path].append(int(line))
        else:
            out[source] = None
    shown = []
    for key in out:
        if key not in lines:
            shown.append(key)
            continue
        numbers = sorted(set(lines[key]))
        ranges: list[str] = []
        start = prev = numbers[0]
        for n in [*numbers[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            ranges.append(str(start) if start == prev else f"{start}-{prev}")
            if n is not None:
                start = prev = n
        shown.append(f"{key}:{','.join(ranges)}")
    return shown


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
