"""`remoteenv env push | rollback`: environments on hosts, as one-step playbooks run the way `apply` runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.conda import DistOpt, JsonEventsOpt, PlanOpt, PrefixOpt
from remoteenv.cli.playbook import HostsArg, run_and_exit

env_app = typer.Typer(
    name="env",
    help="Environments on hosts from environment.yml or requirements.txt: built side by side, swapped on success.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# -f is the file here, as in conda's `env create -f`; forks are only --forks.
ForksOpt = Annotated[int, typer.Option("--forks", min=1, help="How many hosts to work on at once.")]

ROLLBACK = r"""
envs=$(home_path {{ conda_prefix | quote }})/envs
name={{ env_name | quote }}
store="$envs/.remoteenv"
previous=$(readlink "$store/$name.previous" 2>/dev/null) || { echo "no earlier build of $name to go back to"; exit 1; }
current=$(readlink "$envs/$name")
ln -sfn ".remoteenv/$previous" "$envs/.$name.swap"
mv -Tf "$envs/.$name.swap" "$envs/$name"
ln -sfn "${current#.remoteenv/}" "$store/$name.previous"
echo "$name is back on ${previous#"$name-"}; ${current#.remoteenv/"$name"-} is kept as the previous build"
"""


@env_app.command("push")
def push(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    file: Annotated[Path, typer.Option(
        "--file", "-f", metavar="FILE", help="environment.yml (conda, then its pip: list) or requirements.txt (pip).")
    ] = Path("environment.yml"),
    name: Annotated[str | None, typer.Option(
        "--name", "-n", help="The env's name (default: the file's name:, else main).", show_default=False)] = None,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    kernel: Annotated[bool | None, typer.Option(
        "--kernel/--no-kernel", help="Register a Jupyter kernel (default: when the env has ipykernel).",
        show_default=False)] = None,
    forks: ForksOpt = 32,
    plan: PlanOpt = False,
    as_json: JsonEventsOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Only the hosts that failed in the last env push.")] = False,
) -> None:
    """Create or update an environment on hosts; an unchanged spec does nothing.

    A changed spec is built beside the env in use, tested (python starts, pip check, the spec's verify:
    imports) and swapped in only when it works; the env before stays for `remoteenv env rollback`.
    The env goes into the install `remoteenv conda install` made (its mirror or wheelhouse included).

    Examples:
      remoteenv env push gpu-box -f environment.yml
      remoteenv env push --group lab -f environment.yml --plan
      remoteenv env push gpu-box --dist venv -f requirements.txt --name tools
    """
    from remoteenv.playbook import load_text

    step = {"file": str(file.expanduser().resolve())}
    if name:
        step["name"] = name
    if kernel is not None:
        step["kernel"] = kernel
    pb = load_text(f"name: env-push\nsteps:\n  - env: {json.dumps(step)}\n", "remoteenv env push")
    run_and_exit(pb, "plan" if plan else "apply", hosts, group, limit, _vars(dist, prefix), forks, as_json,
                 accept_new_host_key, retry_failed)


@env_app.command("rollback")
def rollback(
    hosts: HostsArg = None,
    name: Annotated[str, typer.Option("--name", "-n", help="The env to take back to its previous build.")] = "main",
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    forks: ForksOpt = 32,
    as_json: JsonEventsOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Swap an env back to the build it had before the last push (and the last push becomes the previous).

    Examples:
      remoteenv env rollback gpu-box --name torch
    """
    from remoteenv.envspec import check_name
    from remoteenv.playbook import load_text

    check_name(name, "--name")
    # The prefix: --prefix or --dist here, else the hosts' conda_prefix, else Miniconda's.
    text = (f"name: env-rollback\nvars: {{conda_prefix: '~/miniconda3'}}\nsteps:\n  - name: roll {name} back\n"
            f"    shell:\n      command: {json.dumps(ROLLBACK.strip())}\n")
    pb = load_text(text, "remoteenv env rollback")
    run_and_exit(pb, "apply", hosts, group, limit, [*_vars(dist, prefix), f"env_name={name}"], forks, as_json,
                 accept_new_host_key, last_lines=True)


def _vars(dist: str | None, prefix: str | None) -> list[str]:
    from remoteenv.distributions import get

    out = [f"conda_dist={dist}"] if dist else []
    if prefix or dist:
        out.append(f"conda_prefix={prefix or get(dist or 'miniconda').default_prefix}")
    return out


def register(app: typer.Typer) -> None:
    app.add_typer(env_app)


__all__ = ["env_app", "register"]
