"""The parts of `up` that need no host: env file choice, the jupyter step's questions and results, tunnel
ports and the ssh command line a tunnel runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib import resources

import pytest

from remoteenv import jupyter, workstation
from remoteenv.facts import HostFacts
from remoteenv.inventory import Host
from remoteenv.steps.base import StepContext
from remoteenv.steps.jupyter import Jupyter
from remoteenv.transport import ConnectOptions
from remoteenv.tunnel import Forward, TunnelError, free_local_port
from remoteenv.tunnel.openssh import OpenSSHBackend


def test_env_file_given_found_or_minimal(tmp_path, monkeypatch):
    monkeypatch.setenv("REMOTEENV_CACHE_DIR", str(tmp_path / "cache"))
    given = tmp_path / "mine.yml"
    given.write_text("dependencies: [python]\n")
    assert workstation.choose_env_file(given, "miniconda") == workstation.EnvChoice(given.resolve(), False)
    with pytest.raises(Exception, match="no such file"):
        workstation.choose_env_file(tmp_path / "missing.yml", "miniconda")

    project = tmp_path / "project"
    project.mkdir()
    (project / "environment.yml").write_text("dependencies: [python]\n")
    (project / "requirements.txt").write_text("six\n")
    assert workstation.choose_env_file(None, "miniforge", project).path.name == "environment.yml"
    # A venv has no conda: its file is requirements.txt, never environment.yml.
    assert workstation.choose_env_file(None, "venv", project).path.name == "requirements.txt"

    empty = tmp_path / "empty"
    empty.mkdir()
    conda = workstation.choose_env_file(None, "miniconda", empty)
    assert conda.minimal and conda.path.read_text() == workstation.MINIMAL_CONDA
    pip = workstation.choose_env_file(None, "venv", empty)
    assert pip.minimal and pip.path.read_text() == "jupyterlab\nipykernel\n"


def step(variables=None, **params) -> Jupyter:
    return Jupyter(params, ctx=StepContext(variables=variables or {}))


def test_jupyter_step_finds_its_env_from_an_earlier_env_step_or_the_vars():
    s = step({"conda_dist": "venv"})
    assert s.settings.env == "~/.remoteenv/venv/envs/main" and s.settings.name == "main"
    earlier = type("EnvStep", (), {"env_name": "torch", "path": "~/miniforge3/envs/torch"})()
    s.use_env(earlier)
    assert s.settings.env == "~/miniforge3/envs/torch" and s.settings.name == "torch"
    named = step({"conda_dist": "miniforge", "env_name": "lab"}, env="work")
    named.use_env(earlier)  # an explicit env wins over the earlier step's
    assert named.settings.env == "~/miniforge3/envs/work"


def test_jupyter_step_is_a_noop_only_when_ready_answers_zero_and_never_reports_the_token():
    s = step({"conda_dist": "venv"}, socket=True, gpus="1")
    ready, state, token = s.queries()
    assert ready.kind == "cmd" and "ready.py check main" in ready.arg.replace("'", "")
    assert ready.arg.endswith('check main "$HOME"/.remoteenv/venv/envs/main lab 1 "$HOME"/work 1')
    facts = HostFacts()
    facts.answers = {ready.id: "4", state.id: "-", token.id: "-"}
    change = s.check(facts)
    assert change is not None and "settings changed" in change.reason and "socket" in change.summary
    secret = "ab" * 32
    import base64

    facts.answers = {ready.id: "0", token.id: "b64:" + base64.b64encode(secret.encode()).decode(),
                     state.id: "b64:" + base64.b64encode(b'{"name": "main", "pid": 42, "port": 0, '
                                                         b'"sock": "/h/.remoteenv/jupyter/main.sock"}').decode()}
    assert s.check(facts) is None
    result = s.noop_result(facts)
    assert result.secrets == {"token": secret}
    assert result.data["pid"] == 42 and result.data["sock"].endswith("main.sock")
    assert secret not in repr(result) and secret not in str(result.data)
    assert step({}, restart=True).check(facts) is not None  # restart: always


def test_ready_py_key_is_the_envs_real_path_and_the_settings(tmp_path):
    real = tmp_path / "envs" / ".remoteenv" / "main-0123"
    real.mkdir(parents=True)
    (tmp_path / "envs" / "main").symlink_to(".remoteenv/main-0123")
    ready = resources.files("remoteenv.remote").joinpath("jupyter_ready.py")
    out = subprocess.run([sys.executable, str(ready), "key", "main", "~/envs/main", "lab", "0", "~/work", "-"],
                         env={**os.environ, "HOME": str(tmp_path)}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{real}|lab|0|{tmp_path}/work|-"
    # No server: `check` says so with its own exit code (2), never a traceback.
    gone = subprocess.run([sys.executable, str(ready), "check", "main", "~/envs/main", "lab", "0", "~/work", "-"],
                          env={**os.environ, "HOME": str(tmp_path)}, capture_output=True, text=True)
    assert gone.returncode == 2 and gone.stderr == ""


def test_urls_and_forwards():
    server = jupyter.Server(name="main", pid=1, app="lab", env="/e", dir="/d", port=40000)
    assert jupyter.Endpoint(server, "t0k").url(8888) == "http://127.0.0.1:8888/lab?token=t0k"
    notebook = jupyter.Server(name="nb", pid=1, app="notebook", env="/e", dir="/d", sock="/s/nb.sock")
    assert jupyter.Endpoint(notebook, "t").url(9000) == "http://127.0.0.1:9000/tree?token=t"
    assert "t0k" not in repr(jupyter.Endpoint(server, "t0k"))
    assert Forward(9000, notebook.where).spec() == "127.0.0.1:9000:/s/nb.sock"
    assert Forward(8888, server.where).spec() == "127.0.0.1:8888:127.0.0.1:40000"
    with pytest.raises(Exception, match="one of lab, notebook"):
        jupyter.Settings(name="x", env="/e", app="vscode")


def test_a_busy_local_port_moves_to_the_next_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert free_local_port(port) > port
        assert free_local_port(port, taken={port + 1}) not in (port, port + 1)
    with pytest.raises(TunnelError, match="no free local port"):
        free_local_port(65535, taken={65535})


def test_the_ssh_command_line_checks_host_keys_strictly_and_carries_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("REMOTEENV_KNOWN_HOSTS", raising=False)
    monkeypatch.delenv("REMOTEENV_SSH_CONFIG", raising=False)
    hop = Host(name="bastion", hostname="10.0.0.1", user="jump", port=2222)
    host = Host(name="gpu", hostname="10.0.0.2", user="alice", port=22, identity_files=["~/.ssh/id_gpu"],
                identities_only=True, proxy_jump="bastion", server_alive_interval=5)
    options = ConnectOptions(resolve_jump=lambda name: hop)
    argv = OpenSSHBackend(host, [Forward(8888, "127.0.0.1:41000")], options).argv()
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert "StrictHostKeyChecking=yes" in pairs and "BatchMode=yes" in pairs
    assert "PasswordAuthentication=no" in pairs and "ExitOnForwardFailure=yes" in pairs
    assert f"UserKnownHostsFile={tmp_path}/.ssh/known_hosts {tmp_path}/.ssh/known_hosts2" in pairs
    assert any(p.startswith("GlobalKnownHostsFile=") and p.endswith(f"{tmp_path}/state/known_hosts") for p in pairs)
    assert f"IdentityFile={tmp_path}/.ssh/id_gpu" in pairs  # ~ through HOME, as remoteenv reads it
    assert "ProxyJump=jump@10.0.0.1:2222" in pairs  # a hop only the inventory knows
    assert "ServerAliveInterval=5" in pairs and "ServerAliveCountMax=3" in pairs
    assert argv[argv.index("-F") + 1] == os.devnull  # no ssh config here: none, not /root's
    assert argv[-2:] == ["--", "gpu"] and "-L" in argv and "127.0.0.1:8888:127.0.0.1:41000" in argv


def _gpu(index: int, used: int, procs: int = 0, total: int = 81920):
    from remoteenv.gpus import GPU, GPUProcess

    return GPU(index, "NVIDIA A100", total, "550", uuid=f"GPU-{index}", memory_used_mib=used,
               processes=[GPUProcess(1000 + i) for i in range(procs)])


def test_gpu_auto_keeps_the_running_servers_gpu_else_takes_the_freest():
    from remoteenv.gpus import HostGPUs

    answer = HostGPUs("h", [_gpu(0, 30000, 1), _gpu(1, 500), _gpu(2, 100)])
    choice = workstation.choose_gpu(answer)
    assert choice.gpus == "2" and "GPU 2 is free" in choice.reason
    running = jupyter.Server(name="main", pid=1, app="lab", env="/e", dir="/d", gpus="0", alive=True)
    assert workstation.choose_gpu(answer, running).gpus == "0"  # its kernels are what hold GPU 0
    with pytest.raises(Exception, match="no free GPU"):
        workstation.choose_gpu(HostGPUs("h", [_gpu(0, 900, 1)]))
    with pytest.raises(Exception, match="no GPU"):
        workstation.choose_gpu(HostGPUs("h", [], nvidia_smi=False))


def test_pick_free_takes_the_host_with_the_most_free_gpu_memory_and_says_why():
    from remoteenv.gpus import HostGPUs

    answers = [HostGPUs("a", [_gpu(0, 100), _gpu(1, 70000, 1)]), HostGPUs("b", [_gpu(0, 100), _gpu(1, 100)]),
               HostGPUs("c", error="unreachable"), HostGPUs("d", [], nvidia_smi=False)]
    host, why = workstation.pick_host(answers)
    assert host == "b" and "2 free GPU(s)" in why and "a 80 GiB" in why
    with pytest.raises(Exception, match="no host has a free GPU"):
        workstation.pick_host(answers[2:])
