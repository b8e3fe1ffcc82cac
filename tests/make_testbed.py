"""Make throwaway SSH hosts to try things by hand; Enter or Ctrl-C removes them.

    python tests/make_testbed.py -n 3 --gpus 2
    python tests/make_testbed.py -n 2 --down h02=nosshd

Namespace mode (the default when run as root) needs root; otherwise the hosts
are local sshd processes on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

# Run as a plain script: the library sits next to it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import testbed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--hosts", type=int, default=3, help="how many hosts (default 3)")
    parser.add_argument("--gpus", type=int, default=0, help="stand-in GPUs on every host (default 0)")
    parser.add_argument("--down", action="append", default=[], metavar="HOST=MODE",
                        help="make HOST unreachable: MODE is nosshd or cut (repeatable)")
    parser.add_argument("--unknown", action="store_true", help="leave the client's known_hosts empty")
    parser.add_argument("--prefix", default="h", help="host names are PREFIX01, PREFIX02, ...")
    parser.add_argument("--mode", choices=("auto", "netns", "local"), default="auto")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.down):
        parser.error("--down takes HOST=MODE, e.g. h03=nosshd")
    args.down = dict(item.split("=", 1) for item in args.down)
    return args


def describe(bed: testbed.Testbed) -> str:
    lines = [f"client HOME: {bed.client.home}", ""]
    for host in bed.hosts:
        command = shlex.join(bed.ssh_argv(host, "")[:-1])
        notes = [f"{host.user}@{host.address}:{host.port}", f"{host.gpus} GPUs"]
        if host.down:
            notes.append(f"down: {host.down}")
        lines.append(f"  HOME={shlex.quote(str(bed.client.home))} {command}    # {', '.join(notes)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        bed = testbed.make_testbed(args.hosts, gpus=args.gpus, down=args.down, known=not args.unknown,
                                   prefix=args.prefix, mode=args.mode)
    except testbed.TestbedUnavailable as error:
        print(f"cannot make hosts here: {error}", file=sys.stderr)
        return 2
    with bed:
        print(f"{len(bed.hosts)} hosts ({bed.mode} mode) made in {time.monotonic() - started:.2f}s")
        print(describe(bed))
        try:
            input("\nPress Enter or Ctrl-C to remove everything... ")
        except (KeyboardInterrupt, EOFError):
            print()
        started = time.monotonic()
    print(f"removed in {time.monotonic() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
