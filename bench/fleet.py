"""Fleet speed: a no-op `remoteenv apply` over 1, 10 and 50 testbed hosts, and Ansible and pyinfra doing the same job.

    python bench/fleet.py [--hosts 50] [--runs 5] [--no-ansible] [--no-pyinfra]

Every host is first brought to the playbook's state; then each timed run has nothing to change, so it
measures what a ready fleet costs: connect, learn the host, decide. Two ways:
- fresh: every run signs in to every host (REMOTEENV_NO_REUSE=1). Ansible runs the playbook that
  `remoteenv export ansible` writes (same steps, same guards) with forks equal to the host count.
  Goals: wall(50) / wall(1) <= 3.0; remoteenv(50) / ansible-playbook(50) <= 0.1.
- kept: the connection keeper holds every host's connection (an earlier command signed in). pyinfra
  runs the same three guarded commands (its own venv, made on first use: pyinfra pins an older
  paramiko than remoteenv's). Goals: wall(50) / wall(1) <= 2.0; remoteenv(50) / pyinfra(50) <= 0.5.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import cli_env, machine_cpu, median, remoteenv_argv, report, run_ok, wall

PLAYBOOK = "examples/hello"


def time_ansible(bed, out: Path, work: Path, forks: int) -> float:
    import pytest
    from ansible_tools import ansible_env, tool

    try:
        ansible = tool("ansible-playbook")
    except (pytest.skip.Exception, pytest.fail.Exception):
        raise SystemExit("ansible-playbook not found: pip install ansible-core (or pass --no-ansible)") from None
    argv = [ansible, "-i", str(out / "inventory.yml"), str(out / "playbook.yml"), "-f", str(forks)]
    with ansible_env(bed, work) as env:  # fresh control sockets: no ssh master from an earlier run
        return wall(lambda: run_ok(argv, env), 1)[0]


PYINFRA_DEPLOY = """\
from pyinfra.operations import server

server.shell(name="greeting folder", commands=["test -e ~/.remoteenv-hello || mkdir -p ~/.remoteenv-hello"])
server.shell(name="write the greeting", commands=[
    "cd ~/.remoteenv-hello && { test -e greeting || printf '%s from %s\\\\n' hello \\"$(hostname)\\" > greeting; }"])
server.shell(name="greeting is there", commands=[
    "grep -q hello ~/.remoteenv-hello/greeting || cat ~/.remoteenv-hello/greeting"])
"""


def pyinfra_binary() -> str:
    venv = Path(os.environ.get("REMOTEENV_BENCH_PYINFRA") or Path.home() / ".cache/remoteenv-bench/pyinfra")
    binary = venv / "bin" / "pyinfra"
    if not binary.exists():
        print(f"making a venv for pyinfra in {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "pyinfra"], check=True)
    return str(binary)


def time_pyinfra(bed, work: Path, forks: int) -> float:
    pyinfra = pyinfra_binary()
    (work / "deploy.py").write_text(PYINFRA_DEPLOY)
    data = {"ssh_config_file": str(bed.client.ssh_config), "ssh_known_hosts_file": str(bed.client.known_hosts),
            "ssh_strict_host_key_checking": "yes", "ssh_key": str(bed.client.key)}
    (work / "inventory.py").write_text(f"hosts = [(name, {data!r}) for name in {[h.name for h in bed.hosts]!r}]\n")
    argv = [pyinfra, "-y", "--parallel", str(forks), str(work / "inventory.py"), str(work / "deploy.py")]
    return wall(lambda: run_ok(argv, bed.client.env()), 1)[0]


def timed(sizes, names: list[str], apply, env: dict[str, str], runs: int) -> dict[int, float]:
    """Median wall time of a no-op apply on the first `size` hosts, for each size. The sizes take turns
    run by run, so that a machine that slows down or speeds up during the benchmark weighs on all alike."""
    walls: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(runs):
        for size in sizes:
            limit = ",".join(names[:size])
            walls[size] += wall(lambda limit=limit: run_ok(apply(limit), env), 1)
    return {size: median(values) for size, values in walls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument("--no-pyinfra", action="store_true")
    args = parser.parse_args()

    from testbed import make_testbed

    work = Path(tempfile.mkdtemp(prefix="remoteenv-bench-"))
    try:
        with make_testbed(args.hosts) as bed:
            inventory = work / "hosts.yaml"
            inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{}}\n" for h in bed.hosts))
            env = cli_env(bed.client.env())
            env["REMOTEENV_STATE_DIR"] = str(work / "state")
            env["REMOTEENV_NO_REUSE"] = "1"

            def apply(limit: str) -> list[str]:
                return remoteenv_argv("-i", str(inventory), "apply", PLAYBOOK, "--limit", limit,
                                      "--forks", str(args.hosts), "--json")

            run_ok(apply("*"), env)  # bring every host to the playbook's state
            names = [h.name for h in bed.hosts]
            sizes = sorted({1, min(10, args.hosts), args.hosts})
            times = timed(sizes, names, apply, env, args.runs)
            for size in sizes:
                print(f"no-op apply on {size:>3} hosts: {times[size] * 1000:.0f} ms (median of {args.runs})")
            # Where the time goes: the test hosts share this machine's cores with remoteenv.
            before_machine, before_self = machine_cpu()
            run_ok(apply("*"), env)
            after_machine, after_self = machine_cpu()
            client = after_self - before_self
            print(f"CPU of one no-op apply on {args.hosts} hosts: remoteenv {client:.2f} s "
                  f"({client / args.hosts * 1000:.1f} ms a host, start-up included), test hosts' sshd and "
                  f"scripts {after_machine - before_machine - client:.2f} s, on {os.cpu_count()} cores")
            scale = report(f"scaling {args.hosts}/1", times[args.hosts], times[1], "1 host", "<= 3.0")
            ok = scale <= 3.0
            if not args.no_ansible:
                out = work / "ansible"
                run_ok(remoteenv_argv("-i", str(inventory), "export", "ansible", PLAYBOOK, "-o", str(out)), env)
                ansible_times = [time_ansible(bed, out, work, args.hosts) for _ in range(args.runs)]
                vs = report(f"vs ansible on {args.hosts} hosts", times[args.hosts], median(ansible_times),
                            "ansible-playbook", "<= 0.1")
                ok = ok and vs <= 0.1

            # The same with the keeper holding every connection.
            kept_env = {k: v for k, v in env.items() if k != "REMOTEENV_NO_REUSE"}
            run_ok(apply("*"), kept_env)  # signs in to every host once
            kept = timed((1, args.hosts), names, apply, kept_env, args.runs)
            for size in (1, args.hosts):
                print(f"no-op apply on {size:>3} hosts, kept connections: {kept[size] * 1000:.0f} ms")
            scale_kept = report(f"scaling {args.hosts}/1, kept", kept[args.hosts], kept[1], "1 host", "<= 2.0")
            ok = ok and scale_kept <= 2.0
            if not args.no_pyinfra:
                time_pyinfra(bed, work, args.hosts)  # its first run brings nothing new; warm its caches
                pyinfra_times = [time_pyinfra(bed, work, args.hosts) for _ in range(args.runs)]
                vs_py = report(f"vs pyinfra on {args.hosts} hosts, kept", kept[args.hosts], median(pyinfra_times),
                               "pyinfra", "<= 0.5")
                ok = ok and vs_py <= 0.5
            run_ok(remoteenv_argv("disconnect"), kept_env)
            raise SystemExit(0 if ok else 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
