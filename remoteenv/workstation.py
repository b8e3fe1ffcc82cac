"""`up`'s parts that are not the CLI: which env file, the workstation playbook's variables, what a run
left running (a Jupyter server and its token), tunnels to it and the check that its URL answers.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remoteenv import distributions, jupyter, paths
from remoteenv import gpus as gpus_mod
from remoteenv.errors import ConfigError
from remoteenv.tunnel import Forward, free_local_port

if TYPE_CHECKING:
    from remoteenv.report import RunReport

PLAYBOOK = "workstation"
SPEC_NAMES = ("environment.yml", "environment.yaml", "requirements.txt")
DEFAULT_LOCAL_PORT = 8888
# `up` with no env file anywhere: the least that runs JupyterLab with a kernel.
MINIMAL_CONDA = "name: main\ndependencies:\n  - python=3.11\n  - jupyterlab\n  - ipykernel\n"
MINIMAL_PIP = "jupyterlab\nipykernel\n"


@dataclass(frozen=True)
class EnvChoice:
    path: Path
    minimal: bool  # no file was given or found: remoteenv's minimal env


def choose_env_file(given: Path | None, dist: str, folder: Path | None = None) -> EnvChoice:
    """The env file `up` pushes: the one given, else ./environment.yml (or .yaml, or ./requirements.txt
    where the distribution has no conda), else a minimal env (jupyterlab, ipykernel)."""
    if given is not None:
        if not given.is_file():
            raise ConfigError(f"{given}: no such file", "give an environment.yml or a requirements.txt with -f")
        return EnvChoice(given.resolve(), False)
    folder = folder or Path.cwd()
    conda = distributions.get(dist).conda
    for name in SPEC_NAMES:
        candidate = folder / name
        if candidate.is_file() and (conda or name == "requirements.txt"):
            return EnvChoice(candidate.resolve(), False)
    target = paths.cache_dir() / "up"
    target.mkdir(parents=True, exist_ok=True)
    path = target / ("environment.yml" if conda else "requirements.txt")
    text = MINIMAL_CONDA if conda else MINIMAL_PIP
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return EnvChoice(path, True)


def playbook_vars(env_file: Path, *, env_name: str | None = None, dist: str | None = None, app: str = "lab",
                  socket: bool = False, gpus: str | None = None, work_dir: str | None = None) -> dict[str, str]:
    """The workstation playbook's variables for these options (unset ones keep the playbook's)."""
    out = {"env_file": str(env_file), "jupyter_app": app, "jupyter_socket": "true" if socket else "false"}
    if env_name:
        out["env_name"] = env_name
    if dist:
        out["conda_dist"] = dist
    if gpus:
        out["jupyter_gpus"] = gpus
    if work_dir:
        out["work_dir"] = work_dir
    return out


@dataclass
class Running:
    """What an `up` run left running on one host (or why nothing)."""

    host: str
    status: str
    server: jupyter.Server | None = None
    token: str = field(default="", repr=False)
    message: str = ""

    def endpoint(self) -> jupyter.Endpoint | None:
        if self.server is None or not self.token:
            return None
        return jupyter.Endpoint(self.server, self.token)


def running(report: RunReport) -> list[Running]:
    """Each host's Jupyter server from a workstation run: the jupyter step's data and its secret token."""
    out = []
    for hr in report.hosts:
        step = next((s for s in hr.steps if s.type == "jupyter"), None)
        if step is None or not step.data.get("pid") or not step.secrets.get("token"):
            failed = next((s for s in hr.steps if s.status == "failed"), None)
            why = hr.message or (f"step {failed.index + 1} ({failed.description}): {failed.message}" if failed else "")
            out.append(Running(hr.host, hr.status, message=why or "no Jupyter server was started"))
            continue
        data: dict[str, Any] = step.data
        server = jupyter.Server(name=str(data.get("name", "")), pid=int(data["pid"]), app=str(data.get("app", "lab")),
                                env=str(data.get("env", "")), dir="", port=int(data.get("port") or 0),
                                sock=str(data.get("sock") or ""), alive=True, answers=True)
        out.append(Running(hr.host, hr.status, server, step.secrets["token"]))
    return out


def jupyter_forward(server: jupyter.Server, local_port: int | None = None, taken: set[int] | None = None) -> Forward:
    """The forward to `server`: the first free local port from `local_port` (default 8888) up."""
    port = free_local_port(local_port or DEFAULT_LOCAL_PORT, taken or set())
    return Forward(port, server.where, "jupyter")


def answers(local_port: int, token: str, timeout: float = 10.0) -> bool:
    """Does Jupyter answer /api/status through the tunnel, with this token?"""
    request = urllib.request.Request(f"http://127.0.0.1:{local_port}/api/status",
                                     headers={"Authorization": f"token {token}"})
    # No proxy: the tunnel's end is this machine's loopback, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_answers(local_port: int, token: str, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while True:
        if answers(local_port, token, timeout=min(10.0, max(1.0, deadline - time.monotonic()))):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


@dataclass(frozen=True)
class GPUChoice:
    host: str
    gpus: str  # CUDA_VISIBLE_DEVICES
    reason: str


def choose_gpu(answer: gpus_mod.HostGPUs, running: jupyter.Server | None = None) -> GPUChoice:
    """`up --gpu auto` on one host: the GPU its running Jupyter has, else the free one with most memory."""
    if answer.error:
        raise ConfigError(f"{answer.host}: cannot choose a GPU: {answer.error}", "give one with --gpu N")
    if not answer.nvidia_smi or not answer.gpus:
        raise ConfigError(f"{answer.host}: no GPU (no nvidia-smi)", "drop --gpu, or choose a host with GPUs")
    if running is not None and running.alive and running.gpus not in ("", "-"):
        return GPUChoice(answer.host, running.gpus, f"GPU {running.gpus}: its Jupyter runs there already")
    free = answer.free_gpus
    if not free:
        busy = ", ".join(f"{g.index} ({len(g.processes)} process(es))" for g in answer.gpus)
        raise ConfigError(f"{answer.host}: no free GPU: {busy}", "share one with --gpu N, or see remoteenv gpus")
    best = free[0]
    return GPUChoice(answer.host, str(best.index),
                     f"GPU {best.index} is free ({best.name}, {(best.memory_free_mib or 0) / 1024:.0f} GiB free)")


def pick_host(answers: list[gpus_mod.HostGPUs]) -> tuple[str, str]:
    """`up --pick-free`: the host with the most free GPU memory on free GPUs; (host, why)."""
    scored = [(sum(g.memory_free_mib or 0 for g in a.free_gpus), len(a.free_gpus), a) for a in answers
              if not a.error and a.free_gpus]
    if not scored:
        reasons = "; ".join(f"{a.host}: {a.error or 'no free GPU'}" for a in answers)
        raise ConfigError(f"no host has a free GPU ({reasons})", "see remoteenv gpus")
    memory, count, best = max(scored, key=lambda s: (s[0], s[1]))  # a tie: the first in inventory order
    others = ", ".join(f"{a.host} {m / 1024:.0f} GiB" for m, _, a in scored if a is not best)
    why = f"{count} free GPU(s), {memory / 1024:.0f} GiB free" + (f" (next: {others})" if others else "")
    return best.host, why
