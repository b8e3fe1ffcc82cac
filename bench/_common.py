"""Shared bits of the benchmarks: a testbed, timing, and the ratio line they all print."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO)]


_plain: list[str] = []


def installed_python() -> str:
    """A Python that runs remoteenv as an installed copy does: this checkout on the path (cli_env's
    PYTHONPATH), the dependencies from this environment, and not the editable install's import hook.

    That hook (setuptools' finder, loaded by a .pth at every start) imports pathlib, re and urllib:
    30-45 ms a start here, paid by a development checkout only. A venv with no packages of its own
    and a .pth naming this environment's site-packages is what a `pip install remoteenv` looks like
    to the import system (a .pth is read in a site folder only, so the hook's own .pth is not).
    """
    if not _plain:
        import atexit
        import shutil
        import sysconfig
        import tempfile
        import venv

        folder = Path(tempfile.mkdtemp(prefix="remoteenv-bench-python-"))
        atexit.register(shutil.rmtree, folder, True)
        venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
        purelib = Path(sysconfig.get_paths(vars={"base": str(folder), "platbase": str(folder)})["purelib"])
        (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        _plain.append(str(folder / "bin" / "python"))
    return _plain[0]


def remoteenv_argv(*args: str) -> list[str]:
    return [installed_python(), "-m", "remoteenv", *args]


def cli_env(base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wall(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_ok(argv: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")


def machine_cpu() -> tuple[float, float]:
    """(CPU seconds the whole machine spent busy, CPU seconds of this process's finished children)."""
    import resource

    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, children.ru_utime + children.ru_stime


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(name: str, ours: float, baseline: float, baseline_name: str, goal: str) -> float:
    ratio = ours / baseline
    print(f"{name}: {ours * 1000:.0f} ms vs {baseline_name} {baseline * 1000:.0f} ms -> ratio {ratio:.2f} "
          f"(goal: {goal})")
    return ratio


def ssh_options(bed) -> list[str]:
    """OpenSSH's options for a testbed's hosts, with no connection sharing (each run connects afresh)."""
    return ["-F", str(bed.client.ssh_config), "-o", f"UserKnownHostsFile={bed.client.known_hosts}",
            "-o", "ControlMaster=no", "-o", "ControlPath=none"]


def parallel_ssh_true(bed, hosts, env: dict[str, str]) -> None:
    """`ssh HOST true` to every host at once (a process per host, as `parallel` would run them)."""
    procs = [subprocess.Popen(["ssh", *ssh_options(bed), h.name, "true"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for h in hosts]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("ssh HOST true failed")


# -- Jupyter on a testbed host (up_warm, up_cold, tunnel) -----------------------------------------

def free_local_port() -> int:
    """A TCP port nothing listens on here right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_answers(port: int, token: str, timeout: float = 2.0) -> bool:
    """Does Jupyter answer GET /api/status with 200 on 127.0.0.1:port, with this token (a new connection)?"""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/api/status", headers={"Authorization": f"token {token}"})
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_status(port: int, token: str, timeout: float = 60.0) -> None:
    """Poll /api/status every 10 ms until it answers 200; SystemExit after `timeout`."""
    deadline = time.monotonic() + timeout
    while not status_answers(port, token):
        if time.monotonic() > deadline:
            raise SystemExit(f"Jupyter did not answer on 127.0.0.1:{port} within {timeout:g}s")
        time.sleep(0.01)


def url_port_token(url: str) -> tuple[int, str]:
    """(local port, token) of a Jupyter URL such as http://127.0.0.1:8889/lab?token=abc."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    return int(parts.port or 80), parse_qs(parts.query)["token"][0]


def run_json(argv: list[str], env: dict[str, str]) -> dict:
    """Run a command that prints one JSON object; that object (SystemExit when it fails)."""
    import json

    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
    return json.loads(proc.stdout)


def jupyter_host(bed) -> list[str]:
    """Make the testbed's first host ready with one `remoteenv up` (a venv env of jupyterlab and ipykernel
    from the tests' wheelhouse, Jupyter running), close its tunnel, and return that `up` argv
    (--detach --no-open --json): run again, it finds everything in place."""
    import wheelhouse
    from conda_share import Share

    house = wheelhouse.ensure_wheelhouse()
    wheels = Share(bed).wheels(house)
    spec = bed.dir / "requirements.txt"
    spec.write_text("jupyterlab\nipykernel\n")
    host = bed.hosts[0]
    up = remoteenv_argv("up", host.name, "--dist", "venv", "--wheelhouse", str(wheels), "-f", str(spec),
                        "--detach", "--no-open", "--json")
    penv = cli_env(bed.client.env())
    run_json(up, penv)
    run_ok(remoteenv_argv("down", host.name), penv)
    return up
