"""`remoteenv up HOST` on a host already up, until its URL answers, over `ssh HOST true`, same host, same run.

    python bench/up_warm.py [--runs N]

The host is made ready first (a venv env of jupyterlab and ipykernel from the tests' wheelhouse, Jupyter
running, no tunnel). Each timed run is `remoteenv up HOST --dist venv --wheelhouse DIR -f requirements.txt
--detach --no-open --json` in a fresh process, then GET /api/status (header `Authorization: token TOKEN`)
on the printed URL until it answers 200, polled every 10 ms on new connections. Then `remoteenv down HOST`
closes the tunnel, untimed, so every run opens its tunnel afresh as a person coming back would.

This is the "I come back to my box" path: it should cost little more than the one SSH round trip it
needs. The baseline is `ssh HOST true` with the same ssh options (a fresh connection each time, no
connection sharing), interleaved with the runs above so drift hits both alike. Goal: ratio at most 3.0.
"""

from __future__ import annotations

import argparse
import time

from _common import (
    cli_env,
    jupyter_host,
    median,
    remoteenv_argv,
    report,
    run_json,
    run_ok,
    ssh_options,
    url_port_token,
    wait_status,
    wall,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from testbed import make_testbed

    with make_testbed(1) as bed:
        host = bed.hosts[0]
        env = bed.client.env()
        penv = cli_env(env)
        up = jupyter_host(bed)
        down = remoteenv_argv("down", host.name)
        ssh = ["ssh", *ssh_options(bed), host.name, "true"]
        run_ok(ssh, env)  # warm the page cache for both

        ssh_times, up_times, printed_times = [], [], []
        for _ in range(args.runs):
            ssh_times += wall(lambda: run_ok(ssh, env), 1)
            start = time.perf_counter()
            row = run_json(up, penv)
            printed = time.perf_counter()
            wait_status(*url_port_token(row["url"]))
            up_times.append(time.perf_counter() - start)
            printed_times.append(printed - start)
            if not row.get("reused"):
                raise SystemExit(f"up did not reuse the running Jupyter: {row}")
            run_ok(down, penv)

        ratio = report("warm up until the URL answers", median(up_times), median(ssh_times), "`ssh HOST true`",
                       "<= 3.0")
        print(f"runs: {args.runs}; up min {min(up_times) * 1000:.0f} ms, up until its JSON was printed "
              f"(median) {median(printed_times) * 1000:.0f} ms, ssh min {min(ssh_times) * 1000:.0f} ms")
        raise SystemExit(0 if ratio <= 3.0 else 1)


if __name__ == "__main__":
    main()
