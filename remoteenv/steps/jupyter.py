"""The `jupyter` step: a Jupyter server running from an environment, detached, on the host's loopback.

Whether the wanted server already runs (alive, same env build and settings, answering with its
token) is one question in the probe's round trip, so a ready host costs nothing more; the step's
result carries where it listens, and its token as a secret (never in reports, events or logs).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from remoteenv import distributions, jupyter
from remoteenv.errors import ConfigError
from remoteenv.steps.base import CHANGED, OK, Change, Param, Result, Step, json_answer, register, remote_path

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts, Query
    from remoteenv.steps.io import StepIO
    from remoteenv.transport import Connection


@register("jupyter")
class Jupyter(Step):
    """Run JupyterLab (or the classic notebook) from an environment's own bin/, reusing a live one.

    The server is detached (it outlives the SSH session), listens on the host's 127.0.0.1 on a port
    the host picks, or on a Unix socket in a 0700 folder, and needs a fresh 256-bit token that is in
    no argv and no file others can read. `remoteenv up` and `remoteenv tunnel` bring it to a browser.

    Parameters:
      env       the environment's name (default: the env of an earlier env step, else env_name, else main)
      env_path  the environment's path on the host, instead of a name
      dist      the distribution the env is in (default: conda_dist, else miniconda)
      prefix    that install's prefix (default: conda_prefix, else the distribution's)
      name      the server's name (default: the env's name)
      app       lab or notebook (default: lab)
      dir       the folder it serves (default: ~/work)
      socket    true: a Unix socket instead of a TCP port
      gpus      CUDA_VISIBLE_DEVICES for the server and its kernels, e.g. "0" or "0,1"
      restart   true: start it again even when it runs
      wait      seconds a new server has to answer (default: 120)

    Example:

        steps:
          - env: {file: environment.yml}
          - jupyter: {app: lab, dir: ~/work}
    """

    PARAMS = (
        Param("env", doc="the environment's name"),
        Param("env_path", doc="the environment's path on the host"),
        Param("dist", doc="miniconda, miniforge, micromamba or venv"),
        Param("prefix", doc="the install's prefix"),
        Param("name", doc="the server's name"),
        Param("app", default="lab", doc="lab or notebook"),
        Param("dir", default="~/work", doc="the folder it serves"),
        Param("socket", kind=bool, default=False, doc="a Unix socket instead of a port"),
        Param("gpus", doc="CUDA_VISIBLE_DEVICES"),
        Param("restart", kind=bool, default=False, doc="start it again even when it runs"),
        Param("wait", kind=float, doc="seconds a new server has to answer"),
    )
    # After an env rebuild in the same run the probe's answer is old: the host decides (reuse or restart).
    rechecks_after_change = True

    def __init__(self, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        variables = self.ctx.variables or {}
        p = self.params
        self._variables = variables
        self._env_name = str(p["env"] or variables.get("env_name") or "") or None
        self._env_path = remote_path(str(p["env_path"])) if p["env_path"] else None
        self.wait = float(p["wait"]) if p["wait"] is not None else jupyter.DEFAULT_WAIT
        self._env_step: Any = None  # an earlier env step, whose env this serves (use_env)

    @classmethod
    def validate(cls, params: dict[str, Any], where: str) -> None:
        app = params.get("app")
        if isinstance(app, str) and "{{" not in app and app not in jupyter.APPS:  # a template is checked rendered
            raise ConfigError(f"{where}: jupyter app must be one of {', '.join(jupyter.APPS)}, not {app!r}")

    def use_env(self, env: Any) -> None:
        if not self.params["env"] and not self.params["env_path"]:
            self._env_step = env

    @property
    def settings(self) -> jupyter.Settings:
        p, variables = self.params, self._variables
        if self._env_step is not None:
            env_name, env_path = self._env_step.env_name, self._env_step.path
        else:
            env_name, env_path = self._env_name or "main", self._env_path
        if env_path:
            path = env_path
        else:
            dist = distributions.get(str(p["dist"] or variables.get("conda_dist") or "miniconda"))
            prefix = remote_path(str(p["prefix"] or variables.get("conda_prefix") or dist.default_prefix))
            path = posixpath.join(prefix, "envs", env_name)
        name = str(p["name"] or posixpath.basename(path.rstrip("/")) or env_name)
        return jupyter.Settings(name=name, env=path, app=str(p["app"] or "lab"), dir=remote_path(str(p["dir"])),
                                socket=bool(p["socket"]), gpus=str(p["gpus"]) if p["gpus"] not in (None, "") else None)

    # -- what the host has --------------------------------------------------------------------------
    def queries(self) -> list[Query]:
        s = self.settings
        return [s.ready_query(), s.state_query(), s.token_query()]

    def check(self, facts: HostFacts) -> Change | None:
        s = self.settings
        code = facts.answer(s.ready_query())
        if code == 0 and not self.params["restart"]:
            return None
        where = f"a socket in {jupyter.FOLDER}" if s.socket else "the host's 127.0.0.1"
        why = "asked to restart" if code == 0 else jupyter.NOT_READY.get(code, f"the check exited {code}")
        return Change(f"start jupyter {s.app} from {s.env} on {where}", why)

    def noop_reason(self, facts: HostFacts) -> str:
        return f"jupyter {self.settings.name} runs and answers"

    def noop_result(self, facts: HostFacts) -> Result:
        s = self.settings
        state = json_answer(facts, s.state_query())
        token = facts.answer(s.token_query())
        server = jupyter.Server.from_state(state or {}, alive=True, answers=True)
        return Result(OK, message=self.noop_reason(facts), data=self._data(server, reused=True),
                      secrets={"token": token.text.strip()} if token is not None else {})

    def describe(self) -> str:
        return self.name or f"jupyter {self.settings.app}: {self.settings.name}"

    # -- doing it -----------------------------------------------------------------------------------
    def apply(self, conn: Connection, facts: HostFacts, io: StepIO) -> Result:
        endpoint = jupyter.start(conn, self.settings, restart=bool(self.params["restart"]), wait=self.wait,
                                 on_output=io.write)
        server = endpoint.server
        status = OK if endpoint.reused else CHANGED
        how = "runs and answers" if endpoint.reused else f"started (pid {server.pid})"
        return Result(status, message=f"jupyter {server.name} {how} on {server.where}",
                      data=self._data(server, reused=endpoint.reused), secrets={"token": endpoint.token})

    @staticmethod
    def _data(server: jupyter.Server, *, reused: bool) -> dict[str, Any]:
        return {"name": server.name, "pid": server.pid, "app": server.app, "env": server.env,
                "port": server.port or None, "sock": server.sock or None, "reused": reused}

    def to_ansible(self, index: int = 0) -> list[dict[str, Any]]:
        raise ConfigError("the jupyter step has no Ansible equivalent", "run remoteenv up or remoteenv jupyter start")
