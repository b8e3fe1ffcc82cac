"""Ctrl-C while the command line is still starting ends it as an interrupt (130), without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys
import remoteenv.cli.fast as fast
from remoteenv.cli import main

def interrupted(argv):
    raise KeyboardInterrupt  # as Ctrl-C lands while the fast path loads
fast.try_fast = interrupted
sys.argv = ["remoteenv", "probe", "gpu-box", "--json"]
main()
"""


def test_ctrl_c_while_starting_exits_130_quietly():
    proc = subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
