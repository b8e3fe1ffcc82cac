"""`remoteenv export ansible`: a playbook and its hosts as an Ansible playbook and inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.output import console, print_json, warn
from remoteenv.cli.playbook import HostsArg, PlaybookArg, VarOpt, _parse_vars
from remoteenv.errors import ConfigError

export_app = typer.Typer(
    name="export",
    help="Write a playbook in another tool's format.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@export_app.command("ansible")
def ansible(
    playbook: PlaybookArg,
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    var: VarOpt = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="DIR",
        help="Folder to write playbook.yml and inventory.yml into (default: ./<playbook name>-ansible).")
    ] = None,
    as_json: common.JsonOpt = False,
) -> None:
    """Write a playbook as an Ansible playbook plus an inventory of the selected hosts.

    Each step becomes its ansible.builtin task(s); each host gets its address, user, port, key and jump host.
    Nothing is sent to any host; run the printed ansible-playbook line to apply it.

    Examples:
      remoteenv export ansible workstation gpu-box -o site
      remoteenv -i hosts.yaml export ansible examples/hello --group lab --var greeting=hi
      remoteenv export ansible ./site.yaml --json | jq -r '.command | join(" ")'
    """
    from remoteenv.export import export_ansible
    from remoteenv.playbook import load_playbook

    pb = load_playbook(playbook)
    for warning in pb.warnings:
        warn(str(warning), warning.hint or None)
    inv = common.inventory()
    if not hosts and not group and not inv.entries:
        raise ConfigError("no host given and the inventory is empty",
                          "name hosts after the playbook, or pass -i INVENTORY (remoteenv hosts lists it)")
    selected = common.select_hosts(inv, hosts, group, limit, default_all=True)
    folder = output if output is not None else Path(f"{pb.name}-ansible")
    result = export_ansible(pb, selected, folder, inv, _parse_vars(var))
    if as_json:
        print_json(result.to_json())
        return
    out = console()
    out.print(f"Wrote {result.playbook} ({_count(result.tasks, 'task')}) and {result.inventory} "
              f"({_count(len(result.hosts), 'host')}).", soft_wrap=True)
    if result.files:
        out.print(f"Copied {len(result.files)} local file(s) into {result.directory / 'files'}.", soft_wrap=True)
    out.print("Run it with:")
    out.print(f"  {' '.join(result.command)}", soft_wrap=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
