"""remote/lib.sh's hold_lock, with flock(1) and with the mkdir fallback for hosts without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path

import pytest

LIB = resources.files("remoteenv.remote").joinpath("lib.sh").read_text(encoding="utf-8")
TOOLS = ("mkdir", "cat", "tr", "sleep", "rm", "date", "flock")


def bin_dir(tmp: Path, with_flock: bool) -> str:
    """A PATH holding only the tools hold_lock and these tests use."""
    folder = tmp / ("bin-flock" if with_flock else "bin")
    folder.mkdir()
    for tool in TOOLS:
        if tool == "flock" and not with_flock:
            continue
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    return str(folder)


def start(tmp: Path, path: str, tag: str, hold: float) -> subprocess.Popen:
    body = LIB + (f'hold_lock "/some/prefix"; echo "{tag} in $(date +%s.%N)"; sleep {hold}; '
                  f'echo "{tag} out $(date +%s.%N)"\n')
    return subprocess.Popen(["/bin/sh", "-c", body], env={"HOME": str(tmp), "PATH": path},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def times(out: str, tag: str) -> tuple[float, float]:
    lines = dict(line.rsplit(" ", 1) for line in out.splitlines() if line.startswith(tag))
    return float(lines[f"{tag} in"]), float(lines[f"{tag} out"])


@pytest.mark.parametrize("with_flock", [True, False], ids=["flock", "mkdir"])
def test_a_second_run_waits_for_the_first_and_says_so(tmp_path, with_flock):
    path = bin_dir(tmp_path, with_flock)
    first = start(tmp_path, path, "first", 1.5)
    time.sleep(0.4)
    second = start(tmp_path, path, "second", 0)
    out1, out2 = first.communicate(timeout=20)[0], second.communicate(timeout=20)[0]
    assert first.returncode == 0 and second.returncode == 0, out1 + out2
    assert "waiting for another remoteenv run on /some/prefix to end (pid " in out2
    assert times(out2, "second")[0] >= times(out1, "first")[1]
    locks = tmp_path / ".remoteenv/locks"
    assert oct(locks.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("with_flock", [True, False], ids=["flock", "mkdir"])
def test_a_lock_whose_holder_died_is_taken(tmp_path, with_flock):
    path = bin_dir(tmp_path, with_flock)
    first = start(tmp_path, path, "first", 30)
    time.sleep(0.4)
    os.killpg(first.pid, 9)  # the run and what it started; no trap runs, as under the OOM killer
    first.wait()
    second = start(tmp_path, path, "second", 0)
    out = second.communicate(timeout=10)[0]
    assert second.returncode == 0 and "second out" in out, out


def test_lock_names_keep_distinct_prefixes_apart(tmp_path):
    path = bin_dir(tmp_path, True)
    first = start(tmp_path, path, "first", 2)
    time.sleep(0.3)
    body = LIB + 'hold_lock "/other/prefix"; echo got'
    other = subprocess.run(["/bin/sh", "-c", body], env={"HOME": str(tmp_path), "PATH": path},
                           capture_output=True, text=True, timeout=1.5)
    os.killpg(first.pid, 9)
    first.wait()
    assert other.stdout == "got\n" and "waiting" not in other.stdout
    assert os.listdir(tmp_path / ".remoteenv/locks")
