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


def remoteenv_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "remoteenv", *args]


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
