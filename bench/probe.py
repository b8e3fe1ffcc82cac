"""Wall time of `remoteenv probe HOST --json` over the wall time of `ssh HOST true`, same testbed host, same run.

    python bench/probe.py [--runs N]

Two ways, each interleaved with `ssh HOST true` (a fresh process and a fresh SSH connection every time):
- fresh: remoteenv signs in every time too (REMOTEENV_NO_REUSE=1), as a person's first command does.
  Goal: ratio at most 2.0.
- kept: the connection keeper already holds the connection (an earlier command signed in), as every
  later command within its idle time finds it. Goal: ratio at most 0.5.
remoteenv runs as an installed copy does, without the editable install's import hook (_common.py).
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
        ok = True
        for mode, goal in (("fresh", 2.0), ("kept", 0.5)):
            penv = cli_env(env)
            if mode == "fresh":
                penv["REMOTEENV_NO_REUSE"] = "1"
            else:
                penv.pop("REMOTEENV_NO_REUSE", None)
            run_ok(ssh, env)  # warm the page cache (and the keeper) first, then interleave so drift hits both
            run_ok(probe, penv)
            ssh_times, probe_times = [], []
            for _ in range(args.runs):
                ssh_times += wall(lambda: run_ok(ssh, env), 1)
                probe_times += wall(lambda penv=penv: run_ok(probe, penv), 1)
            ratio = report(f"probe ({mode})", median(probe_times), median(ssh_times), "`ssh HOST true`",
                           f"<= {goal}")
            print(f"runs: {args.runs}; probe min {min(probe_times) * 1000:.0f} ms, "
                  f"ssh min {min(ssh_times) * 1000:.0f} ms")
            ok = ok and ratio <= goal
        run_ok(remoteenv_argv("disconnect"), cli_env(env))
        raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
