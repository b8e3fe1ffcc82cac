"""Wall time of `remoteenv probe HOST` over the wall time of `ssh HOST true`, same testbed host, same run.

    python bench/probe.py [--runs N]

Both sides start a fresh process and a fresh SSH connection every time (no connection sharing), as a
person typing the command would. Goal: ratio at most 2.0.
"""

from __future__ import annotations

import argparse

from _common import cli_env, median, remoteenv_argv, report, run_ok, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    from testbed import make_testbed

    with make_testbed(1, gpus=2) as bed:
        host = bed.hosts[0]
        env = bed.client.env()
        ssh = ["ssh", "-F", str(bed.client.ssh_config), "-o", f"UserKnownHostsFile={bed.client.known_hosts}",
               "-o", "ControlMaster=no", "-o", "ControlPath=none", host.name, "true"]
        probe = remoteenv_argv("probe", host.name, "--json")
        penv = cli_env(env)
        run_ok(ssh, env)  # warm the page cache for both, then interleave so drift hits both alike
        run_ok(probe, penv)
        ssh_times, probe_times = [], []
        for _ in range(args.runs):
            ssh_times += wall(lambda: run_ok(ssh, env), 1)
            probe_times += wall(lambda: run_ok(probe, penv), 1)
        ratio = report("probe", median(probe_times), median(ssh_times), "`ssh HOST true`", "<= 2.0")
        print(f"runs: {args.runs}; probe min {min(probe_times) * 1000:.0f} ms, ssh min {min(ssh_times) * 1000:.0f} ms")
        raise SystemExit(0 if ratio <= 2.0 else 1)


if __name__ == "__main__":
    main()
