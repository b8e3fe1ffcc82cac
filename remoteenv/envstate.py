"""What is installed in an environment on a host, and how hosts differ: export, status and diff.

Packages are read with the environment's own tools (`conda list --json`, or pip's `list --format
json` in a pip-only env) in one command per host, and compared by name: version and where it came
from (a conda channel, or pypi for what pip installed).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from remoteenv import envspec
from remoteenv.errors import CommandFailed, ConfigError
from remoteenv.remotepath import sh_word

if TYPE_CHECKING:
    from remoteenv.transport import Connection


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    source: str  # a conda channel, or "pypi"


@dataclass
class EnvPackages:
    host: str
    packages: dict[str, Package] = field(default_factory=dict)
    error: str | None = None


def env_path(prefix: str, name: str) -> str:
    return posixpath.join(prefix, "envs", envspec.check_name(name, "the env name"))


def list_command(prefix: str, name: str) -> str:
    """One command that prints the env's packages as JSON (conda's list, else pip's)."""
    env = sh_word(env_path(prefix, name))
    conda = sh_word(posixpath.join(prefix, "bin", "conda"))
    return (f"if [ ! -d {env} ]; then echo 'remoteenv: no such env' >&2; exit 3; fi; "
            f"if [ -x {conda} ] && [ -d {env}/conda-meta ]; then {conda} list -p {env} --json; "
            f"else {env}/bin/python -m pip list --format json --disable-pip-version-check; fi")


def parse_list(text: str) -> dict[str, Package]:
    try:
        rows = json.loads(text)
    except ValueError:
        raise ConfigError("the package list is not JSON", "check the env with: conda list -p ENV") from None
    out: dict[str, Package] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or "name" not in row:
            continue
        name = str(row["name"]).lower().replace("_", "-")
        source = str(row.get("channel") or "pypi")
        out[name] = Package(name, str(row.get("version", "")), "pypi" if source == "pypi" else source)
    return out


def installed(conn: Connection, prefix: str, name: str) -> dict[str, Package]:
    result = conn.run(list_command(prefix, name), timeout=120)
    if result.exited == 3:
        raise CommandFailed(conn.host.name, f"env {name}", 3, f"no env {name} in {prefix}/envs")
    if not result.ok:
        raise CommandFailed(conn.host.name, f"list the packages of {name}", result.exited, result.stderr)
    return parse_list(result.stdout)


def export_command(prefix: str, name: str, *, no_builds: bool = False, from_history: bool = False,
                   explicit: bool = False) -> str:
    env = sh_word(env_path(prefix, name))
    conda = sh_word(posixpath.join(prefix, "bin", "conda"))
    if explicit:
        return f"{conda} list -p {env} --explicit --sha256"
    flags = " --no-builds" * no_builds + " --from-history" * from_history
    return (f"if [ -x {conda} ] && [ -d {env}/conda-meta ]; then {conda} env export -p {env}{flags}; "
            f"else {env}/bin/python -m pip freeze --disable-pip-version-check; fi")


def portable(text: str) -> str:
    """An exported environment.yml without its absolute `prefix:` line (it names one host's folder)."""
    return "".join(line for line in text.splitlines(True) if not line.startswith("prefix:"))


@dataclass
class Drift:
    """Packages whose name, version or source differ between hosts (or from a spec)."""

    hosts: list[str]
    rows: list[tuple[str, dict[str, str]]]  # package -> host -> "version (source)" or "-" when missing

    @property
    def drifted(self) -> bool:
        return bool(self.rows)


def compare(envs: list[EnvPackages]) -> Drift:
    hosts = [e.host for e in envs if e.error is None]
    names = sorted({n for e in envs if e.error is None for n in e.packages})
    rows = []
    for name in names:
        seen = {}
        for e in envs:
            if e.error is None:
                p = e.packages.get(name)
                seen[e.host] = f"{p.version} ({p.source})" if p else "-"
        if len({v.split(" (")[0] if v != "-" else v for v in seen.values()}) > 1:
            rows.append((name, seen))
    return Drift(hosts, rows)


def against(spec: envspec.EnvSpec, envs: list[EnvPackages]) -> Drift:
    """Each package the spec pins to a version (`numpy=1.26`, `six==1.17.0`) against what hosts have."""
    pins: dict[str, str] = {}
    for dep in (*spec.conda, *spec.pip):
        name = envspec.package_name(dep)
        for sep in ("==", "="):
            if sep in dep:
                pins[name.replace("_", "-")] = dep.split(sep, 1)[1].strip().split()[0].rstrip("*").rstrip(".")
                break
    hosts = [e.host for e in envs if e.error is None]
    rows = []
    for name, want in sorted(pins.items()):
        seen = {"(spec)": want}
        bad = False
        for e in envs:
            if e.error is None:
                p = e.packages.get(name)
                seen[e.host] = p.version if p else "-"
                bad = bad or p is None or not (p.version == want or p.version.startswith(want + "."))
        if bad:
            rows.append((name, seen))
    return Drift(["(spec)", *hosts], rows)
