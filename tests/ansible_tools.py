"""ansible-core, as the tests and benchmarks run it against testbed hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """Path of an ansible-core command; a missing one skips the test (fails it when CI=true)."""
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not os.path.exists(found):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is missing (ansible-core is in the test extras)")
        pytest.skip("ansible-core is not installed")
    return found


@contextmanager
def ansible_env(bed, work: Path) -> Iterator[dict[str, str]]:
    """Environment for ansible-playbook against `bed`'s hosts, with host key checking on.

    Ansible's ssh reads ~/.ssh through the passwd entry, not $HOME, so the testbed's ssh config and
    known_hosts are handed over in ANSIBLE_SSH_ARGS. Each use gets fresh ssh control sockets (a
    short path: unix socket paths are limited), and the masters ControlPersist leaves are ended after.
    """
    control = tempfile.mkdtemp(prefix="rtb-cp-", dir="/tmp")
    env = bed.client.env()
    env.update({
        "ANSIBLE_SSH_ARGS": f"-F {bed.client.ssh_config} -o UserKnownHostsFile={bed.client.known_hosts} "
                            "-o ControlMaster=auto -o ControlPersist=60s",
        "ANSIBLE_CONTROL_PATH_DIR": control,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": "~/.ansible/tmp",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    })
    try:
        yield env
    finally:
        for sock in Path(control).iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=30)
        shutil.rmtree(control, ignore_errors=True)
