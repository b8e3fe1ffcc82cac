"""`remoteenv env push | rollback`: environments on hosts, as one-step playbooks run the way `apply` runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.conda import DistOpt, JsonEventsOpt, PlanOpt, PrefixOpt
from remoteenv.cli.playbook import HostsArg, run_and_exit, shell_playbook
from remoteenv.errors import ConfigError, RemoteenvError
from remoteenv.remotepath import sh_word

env_app = typer.Typer(
    name="env",
    help="Environments on hosts from environment.yml or requirements.txt: built side by side, swapped on success.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# -f is the file here, as in conda's `env create -f`; forks are only --forks.
ForksOpt = Annotated[int, typer.Option("--forks", min=1, help="How many hosts to work on at once.")]

ROLLBACK = r"""
prefix=$(home_path {{ conda_prefix | quote }})
hold_lock "$prefix"  # not while a push builds here
envs=$prefix/envs
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

    check_name(name, "--name")
    # The prefix: --prefix or --dist here, else the hosts' conda_prefix, else Miniconda's.
    pb = shell_playbook("env-rollback", f"roll {name} back", ROLLBACK, defaults={"conda_prefix": "~/miniconda3"})
    run_and_exit(pb, "apply", hosts, group, limit, [*_vars(dist, prefix), f"env_name={name}"], forks, as_json,
                 accept_new_host_key, last_lines=True)


NameArg = Annotated[str, typer.Option("--name", "-n", help="The env's name.")]


@env_app.command("export")
def export(
    host: Annotated[str, typer.Argument(help="The host whose env to export.")],
    name: NameArg = "main",
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    no_builds: Annotated[bool, typer.Option("--no-builds", help="Versions without build strings.")] = False,
    from_history: Annotated[bool, typer.Option(
        "--from-history", help="Only what was asked for, not what the solver added.")] = False,
    explicit: Annotated[bool, typer.Option(
        "--explicit", help="conda's explicit spec (exact URLs): the same platform only.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write here, not stdout.")
                      ] = None,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Write an env as a portable environment.yml, or a requirements.txt for a pip-only env.

    No prefix: line (it names one host's folder); what pip installed is in the pip: list, with versions.

    Examples:
      remoteenv env export gpu-box --name work -o environment.yml
      remoteenv env export gpu-box --name work --explicit -o work.lock.txt
    """
    from remoteenv import api, envstate
    from remoteenv.cli.output import console

    selected = common.select_hosts(common.inventory(), [host])
    where = _prefix_of(selected[0], dist, prefix)
    with api.open_host(selected[0], common.inventory(), accept_new_host_key) as conn:
        result = conn.run(envstate.export_command(where, name, no_builds=no_builds, from_history=from_history,
                                                  explicit=explicit), timeout=300, check=True)
    text = result.stdout if explicit else envstate.portable(result.stdout)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console().print(f"wrote {output}", highlight=False)


@env_app.command("status")
def status(
    hosts: HostsArg = None,
    name: NameArg = "main",
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    against: Annotated[Path | None, typer.Option(
        "--against", metavar="FILE", help="Compare with the versions an environment.yml or requirements.txt pins.")
    ] = None,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Which hosts' env differs: packages whose version differs between hosts (or from --against).

    Exit codes: 0 no drift, 1 drift (or a host could not be read), 3 no host could be reached.

    Examples:
      remoteenv env status --group lab --name work
      remoteenv env status --group lab --name work --against environment.yml --json
    """
    _drift(hosts, group, limit, name, dist, prefix, against, as_json, accept_new_host_key)


@env_app.command("diff")
def diff(
    host_a: Annotated[str, typer.Argument(help="One host.")],
    host_b: Annotated[str, typer.Argument(help="The other.")],
    name: NameArg = "main",
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """The packages an env has differently on two hosts (exit 1 when they differ).

    Examples:
      remoteenv env diff gpu-a gpu-b --name work
    """
    _drift([host_a, host_b], None, None, name, dist, prefix, None, as_json, accept_new_host_key)


REMOVE = r"""
prefix=$(home_path {{ conda_prefix | quote }})
hold_lock "$prefix"  # not while a push builds here
envs=$prefix/envs
name={{ env_name | quote }}
store="$envs/.remoteenv"
[ -L "$envs/$name" ] || { echo "no env $name made by remoteenv in $envs"; exit 1; }
current=$(readlink "$envs/$name")
aside="$store/$name.removed-$(date +%Y%m%d-%H%M%S)"
mv "$envs/${current}" "$aside"
rm -f "$envs/$name"
previous=$(readlink "$store/$name.previous" 2>/dev/null || true)
if [ {{ env_purge | quote }} = 1 ] && [ -n "$previous" ]; then rm -rf "${store:?}/$previous"; fi
rm -f "$store/$name.previous"
# Its kernel goes with it: only a kernelspec that runs this env's python.
kernel="$HOME/.local/share/jupyter/kernels/$name"
if [ -f "$kernel/kernel.json" ] && grep -q "$envs/$name/bin/python" "$kernel/kernel.json"; then rm -rf "$kernel"; fi
echo "removed $name: its build is kept in $aside (rm -rf it when sure)"
"""


@env_app.command("remove")
def remove(
    hosts: HostsArg = None,
    name: NameArg = "main",
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the previous build kept for rollback.")
                     ] = False,
    forks: ForksOpt = 32,
    as_json: JsonEventsOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Take an env away: its build is moved aside (kept), its Jupyter kernel removed.

    Examples:
      remoteenv env remove gpu-box --name old
      remoteenv env remove --group lab --name old --purge
    """
    from remoteenv.envspec import check_name

    check_name(name, "--name")
    pb = shell_playbook("env-remove", f"remove {name}", REMOVE, defaults={"conda_prefix": "~/miniconda3"})
    run_and_exit(pb, "apply", hosts, group, limit,
                 [*_vars(dist, prefix), f"env_name={name}", f"env_purge={1 if purge else 0}"], forks, as_json,
                 accept_new_host_key, last_lines=True)


@env_app.command("verify")
def verify(
    host: Annotated[str, typer.Argument(help="The host.")],
    name: NameArg = "main",
    module: Annotated[list[str] | None, typer.Option(
        "--import", metavar="MODULE", help="A module to import in the env (repeat for more).")] = None,
    cuda: Annotated[bool, typer.Option("--cuda", help="Also what torch sees: CUDA available, devices, versions.")
                    ] = False,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Import modules in an env on a host; with --cuda, say whether torch sees the GPUs.

    Exit codes: 0 every import worked (and with --cuda, torch sees a GPU), 1 otherwise.

    Examples:
      remoteenv env verify gpu-box --name torch --import numpy --import torch --cuda
    """
    import shlex
    from importlib import resources

    from remoteenv import api, envstate, facts
    from remoteenv.cli.output import console, print_json
    from remoteenv.errors import EXIT_FAILED, EXIT_OK

    inv = common.inventory()
    [target] = common.select_hosts(inv, [host])
    python = envstate.env_path(_prefix_of(target, dist, prefix), name) + "/bin/python"
    probe = resources.files("remoteenv.remote").joinpath("env_verify.py").read_text(encoding="utf-8")
    args = " ".join(shlex.quote(m) for m in [*(module or []), *(["--cuda"] if cuda else [])])
    with api.open_host(target, inv, accept_new_host_key) as conn:
        driver = facts.gather(conn).cuda_version if cuda else None
        result = conn.run(f"{sh_word(python)} - {args}", stdin=probe, timeout=300)
    if not result.ok or not result.stdout.strip():
        raise ConfigError(f"{host}: env {name} could not run python ({result.stderr.strip().splitlines()[-1:]})",
                          f"remoteenv env push {host} --name {name} makes it")
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["driver_cuda"] = driver
    failed = [m for m, r in report["imports"].items() if not r["ok"]]
    torch = report.get("torch")
    cuda_ok = not cuda or bool(torch and torch["available"])
    if as_json:
        print_json({"host": host, "env": name, **report, "ok": not failed and cuda_ok})
    else:
        from rich.text import Text

        for mod, r in report["imports"].items():
            console().print(Text(f"{mod}: " + (f"ok {r['version']}".rstrip() if r["ok"] else r["error"])))
        if cuda:
            if torch is None:
                console().print("torch: not installed in this env, so nothing can use the GPUs through it")
            else:
                seen = "available" if torch["available"] else "NOT available"
                console().print(Text(f"torch {torch['version']}: CUDA {seen}, {torch['devices']} device(s); "
                                     f"built for CUDA {torch['cuda']}, driver supports "
                                     f"{driver or 'no CUDA (no nvidia-smi)'}"))
    raise typer.Exit(EXIT_OK if not failed and cuda_ok else EXIT_FAILED)


@env_app.command("list")
def list_envs(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """The envs remoteenv made on each host: name, the file they came from, their stamp, a previous build.

    Examples:
      remoteenv env list gpu-box
      remoteenv env list --group lab --json
    """
    from remoteenv import api
    from remoteenv.cli.output import console, print_json

    inv = common.inventory()
    selected = common.select_hosts(inv, hosts, group, limit, default_all=True)
    rows = []
    for target in selected:
        envs_dir = _prefix_of(target, dist, prefix) + "/envs"
        command = (f"cd {sh_word(envs_dir)} 2>/dev/null || exit 0; for l in *; do [ -L \"$l\" ] || continue; "
                   "printf '%s\\t%s\\t%s\\n' \"$l\" \"$(cat \"$l/.remoteenv/env.json\" 2>/dev/null)\" "
                   "\"$(readlink \".remoteenv/$l.previous\" 2>/dev/null)\"; done")
        try:
            with api.open_host(target, inv, accept_new_host_key) as conn:
                out = conn.run(command, timeout=60, check=True).stdout
        except RemoteenvError as exc:
            rows.append({"host": target.name, "error": exc.one_line()})
            continue
        for line in out.splitlines():
            env_name, stamp, previous = ([*line.split("\t"), "", ""])[:3]
            try:
                info = json.loads(stamp) if stamp else {}
            except ValueError:
                info = {}
            rows.append({"host": target.name, "env": env_name, "path": f"{envs_dir}/{env_name}",
                         "file": info.get("file"), "hash": info.get("hash"), "previous": previous or None})
    if as_json:
        print_json(rows)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title="environments", title_justify="left")
    for column in ("host", "env", "from", "stamp", "previous build"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(*(Text(str(v or "")) for v in (r["host"], r.get("env") or r.get("error"), r.get("file"),
                                                    r.get("hash"), r.get("previous"))))
    console().print(table)


def _drift(names: list[str] | None, group: str | None, limit: str | None, name: str, dist: str | None,
           prefix: str | None, against: Path | None, as_json: bool, accept_new_host_key: bool) -> None:
    from remoteenv import api, envspec, envstate
    from remoteenv.cli.output import console, print_json
    from remoteenv.errors import EXIT_CONNECT, EXIT_FAILED, EXIT_OK

    envspec.check_name(name, "--name")
    spec = envspec.load(against.expanduser()) if against is not None else None
    inv = common.inventory()
    hosts = common.select_hosts(inv, names, group, limit, default_all=True)
    wheres = {_prefix_of(h, dist, prefix) for h in hosts}
    if len(wheres) > 1:
        raise ConfigError("the hosts keep their installs in different prefixes",
                          "compare them with one --prefix, or group hosts by conda_prefix")
    envs = api.env_packages(hosts, inv, name, wheres.pop(), accept_new_host_key=accept_new_host_key)
    drift = envstate.against(spec, envs) if spec is not None else envstate.compare(envs)
    errors = {e.host: e.error for e in envs if e.error}
    if as_json:
        print_json({"env": name, "drifted": drift.drifted, "hosts": drift.hosts, "errors": errors,
                    "packages": [{"name": pkg, "versions": seen} for pkg, seen in drift.rows]})
    else:
        from rich.table import Table
        from rich.text import Text

        if drift.rows:
            table = Table(title=f"env {name}: {len(drift.rows)} package(s) differ", title_justify="left")
            table.add_column("package", no_wrap=True)
            for host in drift.hosts:
                table.add_column(host, overflow="fold")
            for pkg, seen in drift.rows:
                table.add_row(Text(pkg), *(Text(seen.get(h, "")) for h in drift.hosts))
            console().print(table)
        else:
            console().print(f"env {name}: the same on {', '.join(drift.hosts) or 'no host'}", highlight=False)
        for host, error in errors.items():
            console().print(Text(f"{host}: {error}"))
    if errors and len(errors) == len(envs):
        raise typer.Exit(EXIT_CONNECT)
    raise typer.Exit(EXIT_FAILED if drift.drifted or errors else EXIT_OK)


def _prefix_of(host, dist: str | None, prefix: str | None) -> str:  # host: inventory Host
    from remoteenv.distributions import get
    from remoteenv.remotepath import under_home

    chosen = prefix or (get(dist).default_prefix if dist else None) or host.vars.get("conda_prefix")
    if not chosen:
        chosen = get(str(host.vars.get("conda_dist") or "miniconda")).default_prefix
    return under_home(str(chosen))


def _vars(dist: str | None, prefix: str | None) -> list[str]:
    from remoteenv.distributions import get

    out = [f"conda_dist={dist}"] if dist else []
    if prefix or dist:
        out.append(f"conda_prefix={prefix or get(dist or 'miniconda').default_prefix}")
    return out


def register(app: typer.Typer) -> None:
    app.add_typer(env_app)


__all__ = ["env_app", "register"]
