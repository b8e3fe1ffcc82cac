"""`remoteenv conda install` on real hosts with the stand-in installers (tests/fakes/conda).

The product code runs exactly as against the real Miniconda: installers fetched by the host with curl from
an HTTP server on the test network, or uploaded from here; checked by SHA-256; run in batch mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import wheelhouse
from cli_runner import REPO, remoteenv
from conda_share import Share
from fakes.conda import build_installer, channel
from fakes.conda.serve import serve
from testbed import needs_netns

pytestmark = pytest.mark.integration


def last_report(bed) -> dict:
    return json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_host_downloads_checks_and_installs_then_nothing_to_do(make_testbed):
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed)
    path, sha = share.installer("miniforge")
    with serve(share.downloads, host=bed.gateway, lifetime=300) as server:
        args = ["conda", "install", host.name, "--dist", "miniforge", "--via", "host",
                "--installer-url", f"{server.url}/{path.name}", "--sha256", sha]
        plan = remoteenv(*args, "--plan", env=env)
        assert "install miniforge latest into ~/miniforge3, downloaded by the host" in plan.out, plan.out + plan.err
        first = remoteenv(*args, "--json", env=env)
        assert first.code == 0, first.out + first.err
        assert server.paths == [f"/{path.name}"]  # the host fetched it, once
        lines = [e.get("message") for e in events(first.out) if e["event"] == "step_output"]
        assert any("installation finished." in (m or "") for m in lines)  # the installer's own output streamed
        again = remoteenv(*args, env=env)
        assert again.code == 0 and last_report(bed)["hosts"][0]["status"] == "ok"
        assert server.paths == [f"/{path.name}"]  # a ready host fetches nothing
    # The install works, with remoteenv's settings in the prefix and the person's ~/.condarc untouched.
    condarc = host.run("cat ~/miniforge3/.condarc").stdout
    assert "channel_priority: strict" in condarc and "- conda-forge" in condarc
    assert host.run("test -e ~/.condarc", check=False).returncode != 0
    made = host.run("~/miniforge3/bin/conda create -y -q -p ~/envs/t python=3.11 && ~/envs/t/bin/python -V")
    assert made.stdout.strip().endswith(("Python 3.11.2", "3.11")) or "Python 3" in made.stdout
    # probe sees it
    facts = remoteenv("probe", host.name, "--json", env=env).json()
    assert [c["prefix"] for c in facts["conda"]] == [f"{host.home}/miniforge3"]


def test_upload_of_a_local_installer_with_terms_accepted_on_consent(make_testbed):
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed)
    path, sha = share.installer("miniconda")
    refused = remoteenv("conda", "install", host.name, "--installer", str(path), "--sha256", sha, env=env)
    assert refused.code == 2 and "terms of service" in refused.err and "--dist miniforge" in refused.err
    assert host.run("test -e ~/miniconda3", check=False).returncode != 0  # nothing was touched
    ok = remoteenv("conda", "install", host.name, "--installer", str(path), "--sha256", sha,
                   "--accept-anaconda-tos", env=env)
    assert ok.code == 0, ok.out + ok.err
    assert host.run(f"sha256sum ~/.cache/remoteenv/installers/{path.name}").stdout.split()[0] == sha
    # The defaults channels now work without a prompt (the stand-in refuses them until accepted).
    made = host.run("~/miniconda3/bin/conda create -y -q -p ~/envs/t python=3.11", check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    stamp = json.loads(host.run("cat ~/miniconda3/.remoteenv/install.json").stdout)
    assert stamp["dist"] == "miniconda" and stamp["tos"] is True and stamp["sha256"] == sha


def test_a_wrong_checksum_installs_nothing_and_leaves_no_file(make_testbed):
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed)
    path, _ = share.installer("miniforge")
    with serve(share.downloads, host=bed.gateway, lifetime=120) as server:
        bad = remoteenv("conda", "install", host.name, "--dist", "miniforge", "--via", "host",
                        "--installer-url", f"{server.url}/{path.name}", "--sha256", "0" * 64, env=env)
    assert bad.code == 1
    message = last_report(bed)["hosts"][0]["message"]
    assert "SHA-256" in message and "nothing was installed" in message, message
    assert host.run("ls -A ~/.cache/remoteenv/installers/").stdout == ""
    assert host.run("test -e ~/miniforge3", check=False).returncode != 0


def test_an_install_killed_half_way_is_finished_by_running_again(make_testbed):
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed, delay=4.0)  # the stand-in pauses while it unpacks: room to kill it
    path, sha = share.installer("miniforge")
    args = [sys.executable, "-m", "remoteenv", "conda", "install", host.name, "--dist", "miniforge",
            "--installer", str(path), "--sha256", sha]
    proc = subprocess.Popen(args, env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while host.run("test -d ~/miniforge3 && test -e ~/miniforge3.remoteenv-installing",
                       check=False).returncode != 0:
            assert time.monotonic() < deadline and proc.poll() is None, "the install never started"
            time.sleep(0.1)
        host.run("pkill -KILL -u $(id -u) -f 'Miniforge3-' || true", check=False)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert host.run("test -e ~/miniforge3/.remoteenv/install.json", check=False).returncode != 0
    plan = remoteenv("conda", "install", host.name, "--dist", "miniforge", "--installer", str(path),
                     "--sha256", sha, "--plan", env=env)
    assert "finish installing miniforge" in plan.out, plan.out
    again = remoteenv("conda", "install", host.name, "--dist", "miniforge", "--installer", str(path),
                      "--sha256", sha, "--json", env=env)
    assert again.code == 0, again.out + again.err
    said = [e.get("message") or "" for e in events(again.out) if e["event"] == "step_output"]
    assert any("already holds" in m for m in said), said  # not uploaded a second time
    assert host.run("~/miniforge3/bin/conda --version").returncode == 0
    assert host.run("test -e ~/miniforge3.remoteenv-installing", check=False).returncode != 0


def test_a_link_cut_mid_install_fails_that_host_and_a_rerun_completes(make_testbed):
    bed = make_testbed(1)
    needs_netns(bed)
    host, env = bed.hosts[0], bed.client.env()
    bed.client.ssh_config.write_text("Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"
                                     + bed.client.ssh_config.read_text())
    share = Share(bed, delay=4.0)
    path, sha = share.installer("miniforge")
    args = ["conda", "install", host.name, "--dist", "miniforge", "--installer", str(path), "--sha256", sha]
    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", *args], env={**env, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while host.run("test -e ~/miniforge3.remoteenv-installing", check=False).returncode != 0:
            assert time.monotonic() < deadline and proc.poll() is None, "the install never started"
            time.sleep(0.1)
        host.cut_link()
        proc.communicate(timeout=60)
    finally:
        host.restore_link()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, proc.stderr  # unreachable: declared dead by keepalives
    # The host's side may still be installing, or may have been stopped with the session: either way a
    # re-run finishes the job.
    time.sleep(1)
    again = remoteenv(*args, env=env)
    assert again.code == 0, again.out + again.err
    assert host.run("~/miniforge3/bin/conda --version").returncode == 0


def test_full_disk_is_a_clear_error_before_anything_is_sent(make_testbed, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("mounting a small filesystem needs root") if os.environ.get("CI") == "true" else pytest.skip()
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed)
    path, sha = share.installer("miniforge")
    small = host.home / "small"
    small.mkdir()
    uid = int(host.run("id -u").stdout)
    ns = ["nsenter", "-t", str(host._proc.pid), "-m"] if host.netns and host._proc else []
    subprocess.run([*ns, "mount", "-t", "tmpfs", "-o", f"size=2m,uid={uid},gid={uid}", "tmpfs", str(small)],
                   check=True)
    try:
        args = ["conda", "install", host.name, "--dist", "miniforge", "--prefix", "~/small/miniforge3",
                "--installer", str(path), "--sha256", sha]
        plan = remoteenv(*args, "--plan", env=env)
        assert "refuse: not enough free space" in plan.out, plan.out
        result = remoteenv(*args, env=env)
        assert result.code == 1
        message = last_report(bed)["hosts"][0]["message"]
        assert "not enough free space" in message and "MiB free" in message and "MiB needed" in message, message
        assert host.run("ls -A ~/.cache/remoteenv/installers 2>/dev/null || true").stdout == ""  # nothing sent
    finally:
        subprocess.run([*ns, "umount", "-l", str(small)], check=False)


def test_mirror_settings_reach_conda_and_pip_and_a_wheelhouse_works_offline(make_testbed):
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed)
    path, sha = share.installer("miniforge")
    # A mirror of conda-forge, where .condarc's custom_channels send conda.
    mirror = "https://mirror.test/anaconda"
    channel.build_channel(share.channels, f"{mirror}/cloud/conda-forge", channel.library_packages(forge=True)
                          + channel.base_packages(dist="miniforge", conda_version="25.5.1",
                                                  channels_root=str(share.channels)))
    wheels = share.wheels(house, "six-*.whl")
    args = ["conda", "install", host.name, "--dist", "miniforge", "--installer", str(path), "--sha256", sha,
            "--mirror", mirror, "--wheelhouse", str(wheels)]
    result = remoteenv(*args, env=env)
    assert result.code == 0, result.out + result.err
    condarc = host.run("cat ~/miniforge3/.condarc").stdout
    assert f"conda-forge: {mirror}/cloud" in condarc
    pipconf = host.run("cat ~/miniforge3/pip.conf").stdout
    assert "no-index = true" in pipconf and f"find-links = {host.home}/.remoteenv/wheelhouse" in pipconf
    # conda reads the mirror: a package from mirror.test's conda-forge, not the real one.
    made = host.run("~/miniforge3/bin/conda create -y -q -p ~/envs/m python=3.11 numpy pip 2>&1", check=False)
    assert made.returncode == 0, made.stdout
    # pip, with no route to any index, installs from the uploaded wheelhouse through PREFIX/pip.conf.
    pip = host.run("PIP_CONFIG_FILE=~/miniforge3/pip.conf ~/envs/m/bin/python -m pip install six 2>&1 "
                   "&& ~/envs/m/bin/python -c 'import six'", check=False)
    assert pip.returncode == 0, pip.stdout
    # The wheels went up once: a second run sends nothing and changes nothing.
    again = remoteenv(*args, env=env)
    assert again.code == 0 and last_report(bed)["hosts"][0]["status"] == "ok", again.out


def test_ten_hosts_in_one_run_each_gets_the_installer_once(make_testbed):
    bed = make_testbed(10)
    env = bed.client.env()
    share = Share(bed)
    path, sha = share.installer("miniforge")
    inventory = bed.dir / "hosts.yaml"
    inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{}}\n" for h in bed.hosts))
    result = remoteenv("-i", str(inventory), "conda", "install", "--dist", "miniforge", "--installer", str(path),
                       "--sha256", sha, "--json", env=env)
    assert result.code == 0, result.err
    ends = {e["host"]: e["status"] for e in events(result.out) if e["event"] == "host_end"}
    assert ends == {h.name: "changed" for h in bed.hosts}
    for host in bed.hosts:
        assert host.run("ls ~/.cache/remoteenv/installers").stdout.split() == [path.name]
        assert host.run("~/miniforge3/bin/conda --version").returncode == 0


def test_auto_falls_back_to_one_download_here_and_an_upload_per_host(make_testbed, monkeypatch, tmp_path):
    bed = make_testbed(2)
    needs_netns(bed)  # a host's 127.0.0.1 is its own: this machine's server is out of its reach
    env = {**bed.client.env(), "REMOTEENV_CACHE_DIR": str(tmp_path / "cache")}
    share = Share(bed)
    path, sha = share.installer("miniforge")
    inventory = bed.dir / "hosts.yaml"
    inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{}}\n" for h in bed.hosts))
    with serve(share.downloads, host="127.0.0.1", lifetime=120) as server:
        result = remoteenv("-i", str(inventory), "conda", "install", "--dist", "miniforge", "--forks", "1",
                           "--installer-url", f"{server.url}/{path.name}", "--sha256", sha, "--json", env=env)
        assert result.code == 0, result.out + result.err
        assert server.paths == [f"/{path.name}"]  # downloaded here once, for both hosts
    said = [e.get("message") or "" for e in events(result.out) if e["event"] == "step_output"]
    assert sum("could not download" in m for m in said) == 2, said
    assert sum(m.startswith("remoteenv: uploading ") for m in said) == 2, said
    assert (tmp_path / "cache" / "installers" / "Miniforge3-Linux-x86_64.sh").is_file()  # the name it has upstream
    for host in bed.hosts:
        assert host.run("~/miniforge3/bin/conda --version").returncode == 0


def test_micromamba_and_init_shell_only_on_request_and_the_python_api(make_testbed, monkeypatch):
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed)
    # micromamba is one static binary: a stand-in executable under its real name is all the install uses.
    binary = share.downloads / "micromamba-linux-64"
    share.downloads.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\necho 2.0.5\n")
    sha = build_installer.sha256_file(binary)
    made = remoteenv("conda", "install", host.name, "--dist", "micromamba", "--installer", str(binary),
                     "--sha256", sha, env=env)
    assert made.code == 0, made.out + made.err
    assert host.run("~/micromamba/bin/micromamba").stdout == "2.0.5\n"
    assert "- conda-forge" in host.run("cat ~/micromamba/.condarc").stdout
    assert host.run("test -e ~/.bashrc && grep -c 'conda initialize' ~/.bashrc", check=False).stdout in ("", "0\n")

    # Through the Python API, with --init-shell's setting: conda init for the login shell only.
    path, fsha = share.installer("miniforge")
    monkeypatch.setenv("HOME", str(bed.client.home))
    from remoteenv import api
    from remoteenv.inventory import Inventory

    report = api.conda_install([host.name], Inventory(), dist="miniforge", installer=str(path), sha256=fsha,
                               init_shell=True)
    assert report.exit_code() == 0, [h.message for h in report.hosts]
    assert report.hosts[0].steps[0].data == {"prefix": "~/miniforge3", "dist": "miniforge"}
    assert host.run("grep -c '>>> conda initialize >>>' ~/.bashrc").stdout == "1\n"
    again = api.conda_install([host.name], Inventory(), dist="miniforge", installer=str(path), sha256=fsha,
                              init_shell=True, plan=True)
    assert again.hosts[0].status == "ok"  # done once, not again
