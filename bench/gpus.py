"""One refresh of `remoteenv gpus --watch` on a fleet, over `ssh HOST true` to every host at once.

    python bench/gpus.py [--hosts 50] [--runs 5]

Every host has two stand-in GPUs with a process on one. `gpus --watch` keeps its connections open, so
a refresh is one command per host on a connection that exists; the baseline opens a connection per
host each time (a fresh `ssh HOST true` process per host, all at once), as a loop over `ssh HOST
nvidia-smi` would. The refresh is timed in process (api.GPUPoller, what the command runs), after a
first poll that connects. Goal: ratio at most 0.5.
"""

from __future__ import annotations

import argparse
import os
import sys

from _common import median, parallel_ssh_true, report, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from testbed import make_testbed

    with make_testbed(args.hosts, gpus=2) as bed:
        env = bed.client.env()
        for host in bed.hosts:
            host.run("printf 'gpu 0 20000 60 55 250\\nproc 0 1 20000 python\\n' > ~/.fake-gpu-state")
        # In process, as the command runs: the client's HOME decides ssh config and known_hosts.
        os.environ.update(env)
        from remoteenv import api
        from remoteenv.inventory import load_inventory

        inventory = load_inventory(None)
        hosts = [api.resolve(inventory, h.name) for h in bed.hosts]
        poller = api.GPUPoller(hosts, inventory, forks=args.hosts)
        try:
            first = poller.poll(timeout=120)
            failed = [a for a in first if a.error or len(a.gpus) != 2]
            if failed:
                sys.exit(f"gpus failed on {len(failed)} host(s): {failed[0]}")
            refresh = median(wall(lambda: poller.poll(timeout=120), args.runs))
        finally:
            poller.close()
        baseline = median(wall(lambda: parallel_ssh_true(bed, bed.hosts, env), args.runs))
        report(f"gpus refresh on {args.hosts} hosts", refresh, baseline, f"{args.hosts} parallel ssh true",
               "<= 0.5")


if __name__ == "__main__":
    main()
