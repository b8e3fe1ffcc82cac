"""The conda stand-in on a real test host: fetched by curl from the machine, installed and used over SSH, offline.

Each step names the CONDA_FACTS.md fact it relies on ("FACT: ...").
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import wheelhouse
from fakes.conda import build_installer, channel
from fakes.conda.serve import serve

from remoteenv.facts import probe_script

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ssh(bed, host, command: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(bed.ssh_argv(host, command), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=bed.client.env())


def shared_dir(bed) -> Path:
    """A folder the host users can read: inside the testbed's own directory (0711), itself 0755."""
    path = bed.dir / "fake-conda"
    path.mkdir(mode=0o755, exist_ok=True)
    os.chmod(path, 0o755)
    return path


def test_miniconda_installs_and_builds_an_env_offline_on_a_host(make_testbed):
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(1)
    host = bed.hosts[0]
    share = shared_dir(bed)
    channels = channel.build_standard_channels(share / "channels")
    installer = build_installer.build(share / "dl", channels_dir=channels)
    name = installer.name

    with serve(share / "dl", host=bed.gateway, lifetime=120) as server:
        # Fetched by curl from the machine's side of the test bridge.
        host.run(f"curl -fsS -o {name} {server.url}/{name}")
        assert f"/{name}" in server.paths
        # FACT: the file name must end in .sh: piping into bash fails with exit 1.
        piped = host.run(f"curl -fsS {server.url}/{name} | bash -s -- -b", check=False)
        assert piped.returncode == 1
        assert host.run("test -e ~/miniconda3", check=False).returncode != 0
    # FACT: verify SHA256 yourself before running it.
    sha = host.run(f"sha256sum {name}").stdout.split()[0]
    assert sha == build_installer.sha256_file(installer)

    # FACT: run it as `bash FILE.sh -b -p PREFIX`, over ssh with no TTY.
    proc = ssh(bed, host, f"LC_ALL=C.UTF-8 bash {name} -b -p ~/miniconda3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installation finished." in proc.stdout
    conda = f"{host.home}/miniconda3/bin/conda"

    # FACT: a plain `ssh host 'conda create -y ...'` hits the ToS check until the terms are accepted.
    env_file = ("name: work\nchannels:\n  - defaults\ndependencies:\n  - python=3.11\n  - numpy=1.26\n"
                "  - pip\n  - pip:\n      - jupyter-server\n")
    host.run(f"mkdir -p ~/project ~/.config/pip && cat > ~/project/environment.yml <<'EOF'\n{env_file}EOF\n"
             f"cat > ~/.config/pip/pip.conf <<'EOF'\n{wheelhouse.pip_conf_text(house)}EOF\n")
    proc = ssh(bed, host, f"{conda} env create -f ~/project/environment.yml -n work")
    assert proc.returncode == 1 and "CondaToSNonInteractiveError" in proc.stderr
    for url in ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r"):
        assert ssh(bed, host, f"{conda} tos accept --override-channels --channel {url}").returncode == 0

    # FACT: conda packages first, then pip (from the wheelhouse: no-index, find-links), in one env create.
    proc = ssh(bed, host, f"LC_ALL=C.UTF-8 {conda} env create -f ~/project/environment.yml -n work")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = f"{host.home}/miniconda3/envs/work"
    out = host.run(f"{env}/bin/python -c 'import jupyter_server, numpy; print(numpy.__version__)'")
    assert out.stdout == "1.26.4\n"

    # remoteenv's probe finds the install, its version and the env (FACT: detect by PREFIX/conda-meta).
    facts = host.run(probe_script()).stdout.splitlines()  # the script remoteenv sends
    assert f"conda\t{host.home}/miniconda3\t25.5.1" in facts
    assert f"conda_env\t{host.home}/miniconda3\twork\t{env}" in facts
