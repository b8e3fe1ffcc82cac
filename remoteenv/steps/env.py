"""The `env` step: an environment on the host built from an environment.yml or a requirements.txt.

The env carries a stamp (a hash of the normalised spec, the distribution and the install's managed
settings) that the probe reads, so an unchanged spec costs nothing beyond the probe. A changed spec
is built beside the env in use, tested, and swapped in only when it works (remote/env_build.sh).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remoteenv import __version__, distributions, envspec
from remoteenv.errors import ConfigError
from remoteenv.facts import Query
from remoteenv.scripts import script
from remoteenv.steps.base import (
    CHANGED,
    FAILED,
    Change,
    Param,
    Result,
    Step,
    json_answer,
    register,
    remote_path,
    script_error,
    sh_path,
)

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts
    from remoteenv.steps.io import StepIO
    from remoteenv.transport import Connection

SPECS = "~/.remoteenv/specs"  # where spec files are kept on hosts


@register("env")
class Env(Step):
    """Create or update an environment on the host from a spec file, side by side, swapped on success.

    The install it goes into is the `conda` step's: `conda_dist` and `conda_prefix` variables (or the
    parameters below) say which. The env's stable path is PREFIX/envs/NAME.

    Parameters:
      file      environment.yml (conda packages first, then its pip: list) or requirements.txt (pip
                only), relative to the playbook (default: environment.yml)
      name      the env's name (default: the file's name:, else "main")
      dist      the distribution it goes into (default: conda_dist, else miniconda)
      prefix    that install's prefix (default: conda_prefix, else the distribution's)
      kernel    true/false: register a Jupyter kernel (default: when the env has ipykernel)
      timeout   seconds before the build is stopped

    Example:

        steps:
          - conda: {dist: miniforge}
          - env:
              file: environment.yml
              name: torch
    """

    PARAMS = (
        Param("file", default="environment.yml", doc="environment.yml or requirements.txt"),
        Param("name", doc="the env's name"),
        Param("dist", doc="miniconda, miniforge, micromamba or venv"),
        Param("prefix", doc="the install's prefix"),
        Param("kernel", kind=bool, doc="register a Jupyter kernel"),
        Param("timeout", kind=float, doc="seconds before the build is stopped"),
    )

    def __init__(self, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        variables = self.ctx.variables or {}
        p = self.params
        self.file = self.ctx.base_dir / Path(str(p["file"])).expanduser()
        self.dist = distributions.get(str(p["dist"] or variables.get("conda_dist") or "miniconda"))
        self.prefix = remote_path(str(p["prefix"] or variables.get("conda_prefix") or self.dist.default_prefix))
        self._name = p["name"]
        self._kernel = p["kernel"]
        if p["timeout"] is not None:
            self.timeout = float(p["timeout"])
        self.spec: envspec.EnvSpec | None = None

    # -- local side ---------------------------------------------------------------------------
    def prepare(self) -> None:
        self.spec = envspec.load(self.file)
        if self.spec.kind != "pip" and not self.dist.conda:
            raise ConfigError(f"{self.file}: an environment.yml needs conda, and the distribution is {self.dist.name}",
                              "use a requirements.txt with the venv distribution, or --dist miniforge")
        if self._kernel is not None:
            self.spec.kernel = bool(self._kernel)

    def see_later_steps(self, later: list[Step]) -> None:
        for step in later:
            step.use_env(self)

    @property
    def env_name(self) -> str:
        spec = self._spec()
        return envspec.check_name(str(self._name or spec.name or "main"), self.ctx.where)

    def _spec(self) -> envspec.EnvSpec:
        if self.spec is None:
            self.prepare()
        assert self.spec is not None
        return self.spec

    @property
    def path(self) -> str:
        return posixpath.join(self.prefix, "envs", self.env_name)

    # -- what the host has --------------------------------------------------------------------------
    def _stamp_query(self) -> Query:
        return Query("read", posixpath.join(self.path, ".remoteenv", "env.json"))

    def _settings_query(self) -> Query:
        return Query("file", posixpath.join(self.prefix, ".condarc"))

    def _pipconf_query(self) -> Query:
        return Query("file", posixpath.join(self.prefix, "pip.conf"))

    def queries(self) -> list[Query]:
        return [self._stamp_query(), self._settings_query(), self._pipconf_query()]

    def wanted_hash(self, facts: HostFacts) -> str:
        settings = [facts.answer(self._settings_query()), facts.answer(self._pipconf_query())]
        return self._spec().digest(self.dist.name, *(s.sha256 if s else "" for s in settings))

    def _settings_now(self, conn: Connection) -> tuple[str, str]:
        """The install's .condarc and pip.conf SHA-256 as they are now (an earlier step of this run,
        the conda step, may have written them since the probe), read while making the specs folder."""
        files = " ".join(sh_path(posixpath.join(self.prefix, f)) for f in (".condarc", "pip.conf"))
        out = conn.run(f"mkdir -p {sh_path(SPECS)} && for f in {files}; do "
                       f"if [ -f \"$f\" ]; then sha256sum \"$f\" | cut -d' ' -f1; else echo; fi; done",
                       check=True, timeout=60).stdout
        lines = [*out.splitlines(), "", ""][:2]
        return lines[0].strip(), lines[1].strip()

    def _stamp(self, facts: HostFacts) -> dict[str, Any] | None:
        return json_answer(facts, self._stamp_query())

    def check(self, facts: HostFacts) -> Change | None:
        stamp = self._stamp(facts)
        wanted = self.wanted_hash(facts)
        spec = self._spec()
        what = f"{len(spec.conda)} conda and {len(spec.pip)} pip package(s) from {self.file.name}"
        if stamp is None:
            return Change(f"create env {self.env_name} in {self.prefix}/envs", f"{what}; it does not exist")
        if stamp.get("hash") != wanted:
            return Change(f"rebuild env {self.env_name} beside the one in use, swap when it works",
                          f"the spec or the install's settings changed since {stamp.get('file', 'the last push')}")
        return None

    def noop_reason(self, facts: HostFacts) -> str:
        return f"env {self.env_name} is as {self.file.name} says"

    def describe(self) -> str:
        return self.name or f"env: {self.env_name} from {self.file.name}"

    # -- doing it -----------------------------------------------------------------------------------
    def apply(self, conn: Connection, facts: HostFacts, io: StepIO) -> Result:
        spec = self._spec()
        digest = spec.digest(self.dist.name, *self._settings_now(conn))
        conda_text, pip_text = spec.for_platform(facts.arch or "x86_64")
        suffix = {"pip": ".txt", "conda": ".yml"}.get(spec.kind, ".explicit.txt")
        remote_spec = posixpath.join(SPECS, f"{self.env_name}-{digest}{suffix}")
        remote_pip = posixpath.join(SPECS, f"{self.env_name}-{digest}.pip.txt") if pip_text else ""
        conn.put(conda_text.encode(), remote_spec, mode=0o644)
        if pip_text:
            conn.put(pip_text.encode(), remote_pip, mode=0o644)
        stamp = {"hash": digest, "file": self.file.name, "kind": spec.kind, "dist": self.dist.name,
                 "remoteenv": __version__}
        kind = "explicit" if spec.kind in ("explicit", "lock") else spec.kind
        args = [self.dist.name, self.prefix, self.env_name, digest, remote_spec, kind, " ".join(spec.verify),
                "1" if spec.wants_kernel else "0", json.dumps(stamp, sort_keys=True), remote_pip]
        result = conn.run_script(script("env_build.sh"), args, timeout=self.timeout, on_output=io.write)
        output = result.stdout + result.stderr
        if not result.ok:
            stage, why = script_error(output)
            message = f"{stage or 'build'} failed: {why}" if why else f"the build script exited {result.exited}"
            return Result(FAILED, message=message + "; the env in use is untouched",
                          data={"stage": stage} if stage else {})
        return Result(CHANGED, message=f"env {self.env_name} ready at {self.path}",
                      data={"env": self.env_name, "path": self.path, "hash": digest})

    def to_ansible(self, index: int = 0) -> list[dict[str, Any]]:
        raise ConfigError("the env step has no Ansible equivalent yet", "run remoteenv env push")
