"""A large inventory: remoteenv's line-numbered YAML loading over PyYAML's C loader on the same file.

    .venv/bin/python bench/inventory_scale.py [HOSTS]      (default 200,000 hosts; no testbed needed)

Prints the ratio of `yamlio.load_file` (values that know their lines, every limit checked) to
`yaml.load(..., Loader=yaml.CSafeLoader)` (plain dicts, no lines), both measured in this run
(goal: <= 3.0), then the whole `remoteenv -i FILE hosts --json` command's time and peak memory.
"""

from __future__ import annotations

import gc
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import cli_env, median, remoteenv_argv, report, wall

from remoteenv import yamlio


def write_inventory(path: Path, hosts: int) -> None:
    """remoteenv's YAML with groups, defaults and a few settings and variables per host."""
    lines = ["defaults:", "  user: ubuntu", "  vars: {python: '3.11'}", "groups:",
             "  gpu: {identity_file: ~/.ssh/lab_ed25519, vars: {cuda: '12.4'}}", "  cpu: {}", "hosts:"]
    for n in range(hosts):
        lines += [f"  node{n:06d}:",
                  f"    hostname: 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                  f"    port: {2200 + n % 100}",
                  f"    groups: [{'gpu' if n % 4 == 0 else 'cpu'}]",
                  f"    vars: {{rack: r{n % 40}, slot: {n % 16}}}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hosts.yaml"
        write_inventory(path, hosts)
        print(f"{hosts:,} hosts, {path.stat().st_size / 1e6:.1f} MB of YAML")

        def c_loader() -> None:
            yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)

        def ours() -> None:
            yamlio.load_file(path, "inventory")

        # Alternate the two so neither gets a warmer machine; collect garbage between runs.
        c_times: list[float] = []
        our_times: list[float] = []
        runs = 3 if hosts <= 50_000 else 1  # the C loader alone takes over a minute at 200,000
        for _ in range(runs):
            gc.collect()
            c_times += wall(c_loader, 1)
            gc.collect()
            our_times += wall(ours, 1)
        ratio = report("line-numbered load", median(our_times), median(c_times), "PyYAML C loader", "<= 3.0")

        env = cli_env({"PATH": "/usr/bin:/bin", "HOME": tmp, "REMOTEENV_CONFIG_DIR": tmp})
        start = time.perf_counter()
        proc = subprocess.run(remoteenv_argv("-i", str(path), "hosts", "--json"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"remoteenv hosts failed ({proc.returncode}): {proc.stderr}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        print(f"remoteenv -i FILE hosts --json: {took:.1f} s, peak memory {peak:.0f} MiB")
    sys.exit(0 if ratio <= 3.0 else 1)


if __name__ == "__main__":
    main()
