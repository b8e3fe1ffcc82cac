"""`remoteenv conda install | clean | uninstall`: one-step playbooks run as `apply` runs them.

Options become `conda_*` variables with the command line's precedence, so an option not given
falls back to the inventory's host and group vars (`conda_dist: miniforge` on a group), then to
the step's defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.playbook import ForksOpt, HostsArg, run_and_exit, shell_playbook
from remoteenv.errors import ConfigError

conda_app = typer.Typer(
    name="conda",
    help="Install Miniconda, Miniforge, micromamba or a venv on hosts, and keep them tidy.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonEventsOpt = Annotated[bool, typer.Option(
    "--json", help="Stream events as JSON lines (one object per line) instead of the live table.")]
PlanOpt = Annotated[bool, typer.Option("--plan", help="Show what would be done, changing nothing.")]
DistOpt = Annotated[str | None, typer.Option(
    "--dist", "-d", help="miniconda (default), miniforge, micromamba or venv.", show_default=False)]
PrefixOpt = Annotated[str | None, typer.Option(
    "--prefix", "-p", help="Install folder on the host (default ~/miniconda3, ~/miniforge3, ~/micromamba, "
                           "~/.remoteenv/venv).", show_default=False)]


@conda_app.command("install")
def install(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    dist: DistOpt = None,
    version: Annotated[str | None, typer.Option(
        "--version", help="latest (default) or a pinned release such as 25.5.1-1.", show_default=False)] = None,
    prefix: PrefixOpt = None,
    installer: Annotated[Path | None, typer.Option(
        "--installer", metavar="FILE", help="Upload this local installer as is (give --sha256).")] = None,
    sha256: Annotated[str | None, typer.Option(
        "--sha256", metavar="HEX", help="The installer's SHA-256, checked before it runs.")] = None,
    via: Annotated[str | None, typer.Option(
        "--via", help="auto (default: the host downloads, else remoteenv uploads), host or upload.",
        show_default=False)] = None,
    installer_url: Annotated[str | None, typer.Option(
        "--installer-url", metavar="URL", help="Download the installer from here (a mirror of installers).")
    ] = None,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", metavar="NAME|URL", help="tuna, ustc, bfsu, or the URL of a mirror's anaconda folder: "
                                            "used by conda and pip.")] = None,
    pip_index: Annotated[str | None, typer.Option(
        "--pip-index", metavar="URL", help="pip's index (overrides the mirror's).")] = None,
    wheelhouse: Annotated[Path | None, typer.Option(
        "--wheelhouse", metavar="DIR", help="Upload these wheels; pip then uses only them (air-gapped hosts).")
    ] = None,
    accept_anaconda_tos: Annotated[bool, typer.Option(
        "--accept-anaconda-tos", help="Accept Anaconda's terms of service for Miniconda's default channels.")
    ] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Move a prefix that is not a remoteenv install aside (PREFIX.old-TIME); never deletes.")
    ] = False,
    init_shell: Annotated[bool, typer.Option(
        "--init-shell", help="Run `conda init` for your login shell on the host (it edits that shell's rc file).")
    ] = False,
    forks: ForksOpt = 32,
    plan: PlanOpt = False,
    as_json: JsonEventsOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Only the hosts that failed in the last conda install.")] = False,
) -> None:
    """Install a Python distribution on hosts, unless it is there, with remoteenv's managed settings.

    The installer is checked against its SHA-256 before it runs.
    A host without internet gets it uploaded (downloaded once here and cached).
    Settings go in PREFIX/.condarc and PREFIX/pip.conf; your own ~/.condarc is left alone.
    Re-running finishes an install that was cut short; on a ready host it does nothing.

    Examples:
      remoteenv conda install gpu-box --dist miniforge
      remoteenv conda install --group lab --mirror tuna --plan
      remoteenv conda install gpu-box --installer Miniforge3-Linux-x86_64.sh --sha256 HEX
      remoteenv conda install gpu-box --accept-anaconda-tos        # Miniconda: you agree to Anaconda's terms
      remoteenv conda install hpc-login --via upload --wheelhouse ./wheels
    """
    from remoteenv.playbook import load_text

    settings = {"dist": dist, "version": version, "prefix": prefix, "installer": _path(installer),
                "sha256": sha256, "via": via, "installer_url": installer_url, "mirror": mirror,
                "pip_index": pip_index, "wheelhouse": _path(wheelhouse),
                "accept_anaconda_tos": "true" if accept_anaconda_tos else None, "force": "true" if force else None,
                "init_shell": "true" if init_shell else None}
    if installer is not None and not sha256:
        raise ConfigError("--installer needs --sha256", "sha256sum FILE prints it; it is checked before the run")
    pb = load_text("name: conda-install\nsteps:\n  - conda: {}\n", "remoteenv conda install")
    run_and_exit(pb, "plan" if plan else "apply", hosts, group, limit, _vars(settings), forks, as_json,
                 accept_new_host_key, retry_failed)


CLEAN = r"""
p=$(home_path {{ conda_prefix | quote }})
size() { du -sk "$p" "$HOME/.cache/pip" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
before=$(size)
if [ -x "$p/bin/conda" ]; then "$p/bin/conda" clean --all -y -q; fi
if [ -x "$p/bin/micromamba" ]; then "$p/bin/micromamba" clean --all -y -q -r "$p"; fi
"$p/bin/python" -m pip cache purge >/dev/null 2>&1 || true
after=$(size)
echo "freed $(( (before - after) / 1024 )) MiB in $p and pip's cache"
"""

UNINSTALL = r"""
p=$(home_path {{ conda_prefix | quote }})
aside="$p.old-$(date +%Y%m%d-%H%M%S)"
mv "$p" "$aside"
echo "moved $p to $aside (delete it yourself when sure: rm -rf $aside)"
"""


@conda_app.command("clean")
def clean(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    forks: ForksOpt = 32,
    as_json: JsonEventsOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Free disk: `conda clean --all` (package caches, tarballs) and `pip cache purge`; says how much.

    Examples:
      remoteenv conda clean gpu-box
      remoteenv conda clean --group lab --json
    """
    pb = shell_playbook("conda-clean", "free disk space", CLEAN, guard='removes: "{{ conda_prefix }}"')
    run_and_exit(pb, "apply", hosts, group, limit, _vars({"prefix": _prefix(dist, prefix)}), forks, as_json,
                 accept_new_host_key, last_lines=True)


@conda_app.command("uninstall")
def uninstall(
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    dist: DistOpt = None,
    prefix: PrefixOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    forks: ForksOpt = 32,
    as_json: JsonEventsOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Move an install aside (PREFIX.old-TIME): nothing is deleted, so it can be moved back.

    Examples:
      remoteenv conda uninstall gpu-box --dist miniforge --yes
    """
    where = _prefix(dist, prefix)
    if not yes:
        if as_json or not typer.get_text_stream("stdin").isatty():
            raise ConfigError("uninstall asks for confirmation", "pass --yes to confirm without a prompt")
        names = [h.name for h in common.select_hosts(common.inventory(), hosts, group, limit, default_all=True)]
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        typer.confirm(f"Move {where} aside on {shown}?", abort=True)
    pb = shell_playbook("conda-uninstall", "move the install aside", UNINSTALL,
                        guard='removes: "{{ conda_prefix }}"')
    run_and_exit(pb, "apply", hosts, group, limit, _vars({"prefix": where}), forks, as_json, accept_new_host_key,
                 last_lines=True)


def _prefix(dist: str | None, prefix: str | None) -> str:
    from remoteenv import distributions

    return prefix or distributions.get(dist or "miniconda").default_prefix


def _path(value: Path | None) -> str | None:
    return str(value.expanduser().resolve()) if value is not None else None


def _vars(settings: dict[str, str | None]) -> list[str]:
    return [f"conda_{key}={value}" for key, value in settings.items() if value not in (None, "")]


def register(app: typer.Typer) -> None:
    app.add_typer(conda_app)


__all__ = ["conda_app", "register"]
