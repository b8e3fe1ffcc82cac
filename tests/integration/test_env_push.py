"""`remoteenv env push / rollback` on real hosts: the stand-in Miniforge, pip from a wheelhouse, no index."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import wheelhouse
from cli_runner import remoteenv
from conda_share import Share

pytestmark = pytest.mark.integration

SPEC = """
name: work
channels: [conda-forge]
dependencies:
  - python=3.11
  - numpy=1.26
  - pip
  - pip:
      - six
verify: [numpy, six]
"""


def last_report(bed) -> dict:
    return json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())


@pytest.fixture
def forge_host(make_testbed, tmp_path):
    """A host with the stand-in Miniforge installed by remoteenv, pip pointed at a wheelhouse."""
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    share = Share(bed)
    path, sha = share.installer("miniforge")
    wheels = share.wheels(house, "six-*.whl")
    made = remoteenv("conda", "install", host.name, "--dist", "miniforge", "--installer", str(path),
                     "--sha256", sha, "--wheelhouse", str(wheels), env=env)
    assert made.code == 0, made.out + made.err
    return bed, host, env, tmp_path


def write(folder: Path, text: str, name: str = "environment.yml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def push(bed, host, env, spec: Path, *extra: str):
    return remoteenv("env", "push", host.name, "--dist", "miniforge", "-f", str(spec), *extra, env=env)


def test_create_noop_rebuild_swap_and_rollback(forge_host):
    bed, host, env, tmp = forge_host
    spec = write(tmp, SPEC)
    plan = push(bed, host, env, spec, "--plan")
    assert "create env work in ~/miniforge3/envs" in plan.out, plan.out + plan.err
    first = push(bed, host, env, spec)
    assert first.code == 0, first.out + first.err
    work = "~/miniforge3/envs/work"
    assert host.run(f"{work}/bin/python -c 'import numpy, six; print(numpy.__version__)'").stdout == "1.26.4\n"

    # Unchanged (comments and order do not count): nothing to do, decided in the probe's round trip.
    write(tmp, "# same env\n" + SPEC.replace("  - pip\n", "  - pip  # pip itself\n"))
    again = push(bed, host, env, spec, "--json")
    assert again.code == 0 and last_report(bed)["hosts"][0]["status"] == "ok", again.out
    events = [json.loads(line) for line in again.out.splitlines()]
    assert not [e for e in events if e["event"] == "step_start"]

    # A changed spec: built beside the env in use, then swapped; the old build kept for rollback.
    old_target = host.run(f"readlink {work}").stdout.strip()
    write(tmp, SPEC.replace("numpy=1.26", "numpy=2.1"))
    changed = push(bed, host, env, spec)
    assert changed.code == 0, changed.out + changed.err
    assert host.run(f"{work}/bin/python -c 'import numpy; print(numpy.__version__)'").stdout == "2.1.0\n"
    assert host.run(f"readlink {work}").stdout.strip() != old_target

    back = remoteenv("env", "rollback", host.name, "--name", "work", "--dist", "miniforge", env=env)
    assert back.code == 0, back.out + back.err
    assert host.run(f"{work}/bin/python -c 'import numpy; print(numpy.__version__)'").stdout == "1.26.4\n"
    assert host.run(f"readlink {work}").stdout.strip() == old_target


def test_a_pip_failure_mid_rebuild_leaves_the_env_in_use_and_names_the_stage(forge_host):
    bed, host, env, tmp = forge_host
    spec = write(tmp, SPEC)
    assert push(bed, host, env, spec).code == 0
    write(tmp, SPEC.replace("      - six\n", "      - six\n      - no-such-package-anywhere==1.0\n"))
    broken = push(bed, host, env, spec)
    assert broken.code == 1
    message = last_report(bed)["hosts"][0]["message"]
    assert "pip failed" in message and "untouched" in message, message
    assert host.run("~/miniforge3/envs/work/bin/python -c 'import numpy, six'").returncode == 0
    builds = host.run("find ~/miniforge3/envs/.remoteenv -maxdepth 1 -type d -name 'work-*'").stdout.split()
    assert len(builds) == 1  # the failed build was removed; its log is kept beside the env
    assert "no-such-package-anywhere" in host.run("cat ~/miniforge3/envs/.remoteenv/work-*.log").stdout


def test_an_unknown_conda_package_fails_with_the_solvers_message(forge_host):
    bed, host, env, tmp = forge_host
    spec = write(tmp, SPEC.replace("  - numpy=1.26\n", "  - numpyy\n"))
    result = push(bed, host, env, spec)
    assert result.code == 1
    message = last_report(bed)["hosts"][0]["message"]
    assert message.startswith("step 1") and "solve failed" in message and "PackagesNotFoundError" in message, message


def test_a_malformed_spec_names_file_and_line_before_any_host(forge_host):
    bed, host, env, tmp = forge_host
    spec = write(tmp, "name: work\ndependencies:\n  - python=3.11\n  - {numpy: 1}\n")
    result = push(bed, host, env, spec)
    assert result.code == 2 and f"{spec}:4:" in result.err, result.err
    bad_yaml = write(tmp, "name: work\ndependencies: [python\n", "bad.yml")
    result = push(bed, host, env, bad_yaml)
    assert result.code == 2 and str(bad_yaml) in result.err


def test_requirements_into_the_venv_distribution(make_testbed, tmp_path):
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    wheels = Share(bed).wheels(house, "six-*.whl")
    assert remoteenv("conda", "install", host.name, "--dist", "venv", "--wheelhouse", str(wheels), env=env).code == 0
    req = write(tmp_path, "six  # for the test\n", "requirements.txt")
    result = remoteenv("env", "push", host.name, "--dist", "venv", "-f", str(req), "--name", "tools", env=env)
    assert result.code == 0, result.out + result.err
    assert host.run("~/.remoteenv/venv/envs/tools/bin/python -c 'import six'").returncode == 0
    again = remoteenv("env", "push", host.name, "--dist", "venv", "-f", str(req), "--name", "tools", env=env)
    assert again.code == 0 and last_report(bed)["hosts"][0]["status"] == "ok"


def test_an_env_with_ipykernel_is_registered_as_a_kernel_at_its_stable_path(make_testbed, tmp_path):
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    assert remoteenv("conda", "install", host.name, "--dist", "venv", "--wheelhouse", str(house), env=env).code == 0
    req = write(tmp_path, "ipykernel\n", "requirements.txt")
    result = remoteenv("env", "push", host.name, "--dist", "venv", "-f", str(req), "--name", "lab", env=env)
    assert result.code == 0, result.out + result.err
    spec = json.loads(host.run("cat ~/.local/share/jupyter/kernels/lab/kernel.json").stdout)
    assert spec["display_name"] == "Python (lab)"
    assert spec["argv"][0] == f"{host.home}/.remoteenv/venv/envs/lab/bin/python"  # the link, not the build
    assert host.run(f"{spec['argv'][0]} -c 'import ipykernel'").returncode == 0


def test_export_push_elsewhere_diff_and_status_finds_the_drifted_host(make_testbed, tmp_path):
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(5)
    env = bed.client.env()
    share = Share(bed)
    path, sha = share.installer("miniforge")
    wheels = share.wheels(house, "six-*.whl")
    inventory = bed.dir / "hosts.yaml"
    inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{vars: {{conda_dist: miniforge}}}}\n"
                                             for h in bed.hosts))
    inv = ["-i", str(inventory)]
    made = remoteenv(*inv, "conda", "install", "--installer", str(path), "--sha256", sha, "--wheelhouse",
                     str(wheels), env=env)
    assert made.code == 0, made.out + made.err
    spec = write(tmp_path, SPEC)
    h01, h02, h03, h04, h05 = (h.name for h in bed.hosts)
    assert remoteenv(*inv, "env", "push", h01, "-f", str(spec), env=env).code == 0

    # Export from one host, push the export to the others: no difference.
    exported = tmp_path / "exported.yml"
    out = remoteenv(*inv, "env", "export", h01, "--name", "work", "--no-builds", "-o", str(exported), env=env)
    assert out.code == 0, out.err
    text = exported.read_text()
    assert "prefix:" not in text and "six==" in text and "numpy=1.26.4" in text
    pushed = remoteenv(*inv, "env", "push", h02, h03, h04, h05, "-f", str(exported), "--name", "work", env=env)
    assert pushed.code == 0, pushed.out + pushed.err
    same = remoteenv(*inv, "env", "diff", h01, h02, "--name", "work", env=env)
    assert same.code == 0 and "the same" in same.out, same.out

    # conda's explicit spec (exact package URLs, no solve), and a conda-lock file made from it.
    explicit = tmp_path / "work.explicit.txt"
    assert remoteenv(*inv, "env", "export", h01, "--name", "work", "--explicit", "-o", str(explicit),
                     env=env).code == 0
    assert "@EXPLICIT" in explicit.read_text()
    by_url = remoteenv(*inv, "env", "push", h02, "-f", str(explicit), "--name", "work", env=env)
    assert by_url.code == 0, by_url.out + by_url.err
    # An explicit spec holds conda's packages only: what pip installed is the one difference.
    only_pip = remoteenv(*inv, "env", "diff", h01, h02, "--name", "work", "--json", env=env)
    assert only_pip.code == 1 and [p["name"] for p in only_pip.json()["packages"]] == ["six"], only_pip.out
    six = next(p for p in house.glob("six-*.whl")).name.split("-")[1]
    lock = ["version: 1", "metadata: {platforms: [linux-64], channels: [{url: conda-forge}]}", "package:"]
    for url in (ln for ln in explicit.read_text().splitlines() if "://" in ln):
        fn = url.split("#")[0].rsplit("/", 1)[1]
        pname, version = fn.rsplit("-", 2)[0], fn.rsplit("-", 2)[1]
        lock += [f"  - {{name: {pname}, version: '{version}', manager: conda, platform: linux-64,",
                 f"     url: '{url.split('#')[0]}', hash: {{sha256: '{url.split('#')[1].split(':')[-1]}'}}}}"]
    lock.append(f"  - {{name: six, version: '{six}', manager: pip, platform: linux-64, url: x, hash: {{}}}}")
    lockfile = tmp_path / "conda-lock.yml"
    lockfile.write_text("\n".join(lock) + "\n")
    by_lock = remoteenv(*inv, "env", "push", h02, "-f", str(lockfile), "--name", "work", env=env)
    assert by_lock.code == 0, by_lock.out + by_lock.err
    assert remoteenv(*inv, "env", "diff", h01, h02, "--name", "work", env=env).code == 0

    # One host of five drifts: status names it and the package, and exits 1.
    bed.host(h04).run("~/miniforge3/bin/conda install -y -q -p ~/miniforge3/envs/work numpy=2.1")
    status = remoteenv(*inv, "env", "status", "--name", "work", "--json", env=env)
    assert status.code == 1, status.out + status.err
    report = status.json()
    assert report["drifted"] is True and [p["name"] for p in report["packages"]] == ["numpy"]
    versions = report["packages"][0]["versions"]
    assert versions[h04].startswith("2.1.0") and versions[h01].startswith("1.26.4")
    assert {h for h, v in versions.items() if v.startswith("2.1.0")} == {h04}
    pinned = remoteenv(*inv, "env", "status", h01, h02, "--name", "work", "--against", str(spec), env=env)
    assert pinned.code == 0, pinned.out
    off = remoteenv(*inv, "env", "status", "--name", "work", "--against", str(spec), "--json", env=env)
    assert off.code == 1 and set(off.json()["packages"][0]["versions"]) == {"(spec)", h01, h02, h03, h04, h05}


def test_verify_and_list(forge_host):
    bed, host, env, tmp = forge_host
    spec = write(tmp, SPEC)
    assert push(bed, host, env, spec).code == 0
    good = remoteenv("env", "verify", host.name, "--name", "work", "--dist", "miniforge", "--import", "numpy",
                     "--import", "six", "--json", env=env)
    assert good.code == 0, good.out + good.err
    assert good.json()["imports"]["numpy"] == {"ok": True, "version": "1.26.4"}
    bad = remoteenv("env", "verify", host.name, "--name", "work", "--dist", "miniforge", "--import", "torch",
                    "--cuda", env=env)
    assert bad.code == 1
    assert "torch: ModuleNotFoundError" in bad.out and "torch: not installed in this env" in bad.out, bad.out
    listed = remoteenv("env", "list", host.name, "--dist", "miniforge", "--json", env=env)
    assert listed.code == 0, listed.err
    [row] = listed.json()
    assert row["env"] == "work" and row["file"] == "environment.yml" and len(row["hash"]) == 16


def test_remove_moves_the_build_aside_and_takes_the_kernel(make_testbed, tmp_path):
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    assert remoteenv("conda", "install", host.name, "--dist", "venv", "--wheelhouse", str(house), env=env).code == 0
    req = write(tmp_path, "ipykernel\n", "requirements.txt")
    assert remoteenv("env", "push", host.name, "--dist", "venv", "-f", str(req), "--name", "lab", env=env).code == 0
    assert host.run("test -f ~/.local/share/jupyter/kernels/lab/kernel.json").returncode == 0
    gone = remoteenv("env", "remove", host.name, "--dist", "venv", "--name", "lab", env=env)
    assert gone.code == 0, gone.out + gone.err
    assert "removed lab: its build is kept in" in " ".join(gone.out.split())
    assert host.run("test -e ~/.remoteenv/venv/envs/lab", check=False).returncode != 0
    assert host.run("test -e ~/.local/share/jupyter/kernels/lab", check=False).returncode != 0
    kept = host.run("ls -d ~/.remoteenv/venv/envs/.remoteenv/lab.removed-*").stdout.split()
    assert len(kept) == 1 and host.run(f"test -x {kept[0]}/bin/python").returncode == 0


def test_a_link_cut_mid_build_leaves_the_env_and_a_rerun_completes(forge_host):
    from testbed import needs_netns

    bed, host, env, tmp = forge_host
    needs_netns(bed)
    spec = write(tmp, SPEC)
    assert push(bed, host, env, spec).code == 0
    bed.client.ssh_config.write_text("Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"
                                     + bed.client.ssh_config.read_text())
    host.run("printf 'fake_link_delay: 1\\n' > ~/.condarc")  # the stand-in links slowly: room to cut
    write(tmp, SPEC.replace("numpy=1.26", "numpy=2.1"))
    import subprocess
    import sys
    import time

    from cli_runner import REPO

    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "env", "push", host.name, "--dist", "miniforge",
                             "-f", str(spec)], env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while host.run("ls -d ~/miniforge3/envs/.remoteenv/work-*/conda-meta | wc -l").stdout.strip() != "2":
            assert time.monotonic() < deadline and proc.poll() is None, "the rebuild never started"
            time.sleep(0.1)
        host.cut_link()
        proc.communicate(timeout=60)
    finally:
        host.restore_link()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, proc.stderr
    # The env in use never moved.
    assert host.run("~/miniforge3/envs/work/bin/python -c 'import numpy; print(numpy.__version__)'"
                    ).stdout == "1.26.4\n"
    host.run("rm ~/.condarc")
    # At once: the cut-off build may still be writing into its folder; the re-run waits for it.
    again = push(bed, host, env, spec)
    assert again.code == 0, again.out + again.err
    assert host.run("~/miniforge3/envs/work/bin/python -c 'import numpy; print(numpy.__version__)'"
                    ).stdout == "2.1.0\n"


def test_a_push_waits_for_a_run_still_working_in_the_prefix(forge_host):
    """An earlier run cut off from its client goes on on the host until its output pipe breaks; a
    re-run must not delete the files it is still writing, so it waits for the prefix's lock."""
    import time
    from importlib import resources

    bed, host, env, tmp = forge_host
    spec = write(tmp, SPEC)
    holder = host.home / "holder.sh"
    holder.write_text(resources.files("remoteenv.remote").joinpath("lib.sh").read_text()
                      + 'hold_lock "$HOME/miniforge3"; sleep 4; date +%s.%N >"$HOME/holder-done"\n')
    host.run(f"sh {holder} >/dev/null 2>&1 &")
    time.sleep(0.5)
    started = push(bed, host, env, spec, "--json")
    assert started.code == 0, started.out + started.err
    assert "waiting for another remoteenv run on" in started.out
    built = [json.loads(line) for line in started.out.splitlines()]
    assert any("building work" in e.get("message", "") for e in built if e["event"] == "step_output")
    # The holder had finished before the build began (its stamp is older than the env's).
    done = float(host.run("cat ~/holder-done").stdout)
    made = float(host.run("stat -c %Y ~/miniforge3/envs/.remoteenv/work-*/conda-meta | head -n 1").stdout)
    assert made >= int(done)
