"""A no-op `remoteenv env push` of an unchanged env on a fleet, over `ssh HOST true` to each host at once.

    python bench/env.py [--hosts 10] [--runs 5]

The hosts first get a venv install with a wheelhouse and the env; then every timed push finds the env's
stamp unchanged in the probe's round trip and does nothing more. Goal: ratio at most 1.5.
"""

from __future__ import annotations

import argparse
import os

from _common import cli_env, median, parallel_ssh_true, remoteenv_argv, report, run_ok, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import wheelhouse
    from testbed import make_testbed

    house = wheelhouse.ensure_wheelhouse()
    with make_testbed(args.hosts) as bed:
        env = bed.client.env()
        penv = cli_env(env)
        inventory = bed.dir / "bench-hosts.yaml"
        inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{vars: {{conda_dist: venv}}}}\n" for h in bed.hosts))
        wheels = bed.dir / "bench-wheels"
        wheels.mkdir(mode=0o755)
        os.chmod(wheels, 0o755)
        for found in house.glob("six-*.whl"):
            (wheels / found.name).write_bytes(found.read_bytes())
        spec = bed.dir / "requirements.txt"
        spec.write_text("six\n")
        run_ok(remoteenv_argv("-i", str(inventory), "conda", "install", "--wheelhouse", str(wheels), "--json"), penv)
        push = remoteenv_argv("-i", str(inventory), "env", "push", "-f", str(spec), "--name", "bench", "--json")
        run_ok(push, penv)  # the env exists: every run below is a no-op

        ours, base = [], []
        for _ in range(args.runs):
            base += wall(lambda: parallel_ssh_true(bed, bed.hosts, env), 1)
            ours += wall(lambda: run_ok(push, penv), 1)
        ratio = report(f"no-op env push on {args.hosts} hosts", median(ours), median(base),
                       f"{args.hosts} parallel `ssh HOST true`", "<= 1.5")
        raise SystemExit(0 if ratio <= 1.5 else 1)


if __name__ == "__main__":
    main()
