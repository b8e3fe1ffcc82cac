"""The conda stand-in (tests/fakes/conda) behaves as /work/shared/CONDA_FACTS.md documents the real one.

Each test names the fact it checks ("FACT: ..."). Installers and conda run here, as the tests' user, with a
temporary HOME, a bare PATH, no PIP_* variables and /usr/bin/python3: as on a test host, without the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import wheelhouse
from fakes.conda import build_installer, channel
from fakes.conda.serve import serve

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3")

TOS_MAIN = "https://repo.anaconda.com/pkgs/main"
TOS_R = "https://repo.anaconda.com/pkgs/r"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8", "USER": "tester"}
    env.update(extra)
    return env


def run(argv, home: Path, *, input: str | None = None, timeout: float = 120, cwd=None, **extra):
    return subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True, timeout=timeout,
                          env=clean_env(home, **extra), cwd=cwd or home,
                          stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Channels, both installers, and a Miniconda and a Miniforge installed once for the module."""
    root = tmp_path_factory.mktemp("fakeconda")
    channels = channel.build_standard_channels(root / "channels")
    # A mirror of pkgs/main and of conda-forge, for the .condarc mirror settings.
    main_pkgs = channel.base_packages(dist="miniconda", conda_version="25.5.1", channels_root=channels)
    main_pkgs += channel.library_packages(forge=False)
    channel.build_channel(channels, "https://mirror.test/anaconda/pkgs/main", main_pkgs)
    channel.build_channel(channels, "https://mirror.test/anaconda/cloud/conda-forge",
                          channel.library_packages(forge=True) + main_pkgs[:1])
    dl = root / "dl"
    miniconda = build_installer.build(dl, channels_dir=channels, delay=0)
    miniforge = build_installer.build(dl, dist="miniforge", channels_dir=channels, delay=0)
    home = root / "home"
    home.mkdir()
    for path, prefix in ((miniconda, home / "miniconda3"), (miniforge, home / "miniforge3")):
        proc = run(["bash", path, "-b", "-p", prefix], home)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"root": root, "channels": channels, "miniconda": miniconda, "miniforge": miniforge, "home": home,
            "mc": home / "miniconda3", "mf": home / "miniforge3"}


@pytest.fixture
def home(tmp_path) -> Path:
    """A fresh HOME per test: its own ~/.conda (terms of service, environments.txt) and ~/.condarc."""
    h = tmp_path / "home"
    h.mkdir()
    return h


def conda(world, which="mc"):
    return world[which] / "bin" / "conda"


def accept_tos(world, home):
    for url in (TOS_MAIN, TOS_R):
        proc = run([conda(world), "tos", "accept", "--override-channels", "--channel", url], home)
        assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- the installer


def test_installer_is_named_and_laid_out_as_the_real_ones(world):
    # FACT: pinned names Miniconda3-py<XY>_<condaver>-<build>-Linux-<arch>.sh; Miniforge3-<ver>-Linux-<arch>.sh
    # with a .sha256 beside it (sha256sum format); a POSIX sh header, a line @@END_HEADER@@, then the payload.
    assert world["miniconda"].name == "Miniconda3-py311_25.5.1-1-Linux-x86_64.sh"
    assert world["miniforge"].name == "Miniforge3-25.5.1-1-Linux-x86_64.sh"
    data = world["miniconda"].read_bytes()
    assert data.startswith(b"#!/bin/sh\n")
    assert b"\n@@END_HEADER@@\n" in data
    assert build_installer.sha256_file(world["miniconda"]) == hashlib.sha256(data).hexdigest()
    side = world["miniforge"].with_name(world["miniforge"].name + ".sha256").read_text()
    assert side == f"{build_installer.sha256_file(world['miniforge'])}  {world['miniforge'].name}\n"


def test_batch_install_writes_what_the_probe_and_remoteenv_read(world):
    # FACT: `bash FILE.sh -b -p PREFIX`; probe.sh detects PREFIX/conda-meta and conda-<ver>-*.json;
    # remoteenv calls PREFIX/bin/conda and ENV/bin/python by absolute path.
    prefix = world["mc"]
    metas = [p.name for p in (prefix / "conda-meta").glob("conda-[0-9]*.json")]
    assert metas == ["conda-25.5.1-py311h06a4308_0.json"]
    assert re.sub(r"^conda-([^-]*)-.*", r"\1", metas[0]) == "25.5.1"  # probe.sh's sed
    home = world["home"]
    for exe in ("bin/conda", "condabin/conda"):
        proc = run([prefix / exe, "--version"], home)
        assert proc.stdout == "conda 25.5.1\n"
    proc = run([prefix / "bin" / "python", "-m", "pip", "--version"], home)
    assert proc.returncode == 0 and str(prefix) in proc.stdout
    assert not (prefix / "install_tmp").exists() and not (prefix / "_conda").exists()
    assert not list((prefix / "pkgs").glob("*.tar.bz2"))  # no -k: tarballs cleared
    # FACT: batch installs never run conda init.
    assert not (home / ".bashrc").exists()
    # FACT: Miniforge writes a .condarc with only conda-forge; Miniconda none.
    assert (world["mf"] / ".condarc").read_text() == "channels:\n  - conda-forge\n"
    assert not (world["mc"] / ".condarc").exists()


def test_install_prints_progress_like_the_real_one(world, home):
    proc = run(["bash", world["miniforge"], "-b", "-p", home / "mf"], home)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    for expected in (f"PREFIX={home / 'mf'}", "Unpacking payload ...", "installation finished."):
        assert expected in lines
    assert re.search(r"Preparing transaction: .*done", proc.stdout)
    assert re.search(r"Executing transaction: .*done", proc.stdout)


def test_help_exits_2_and_unknown_options_exit_1(world, home):
    # FACT: exit codes: 2 for -h; 1 for an unknown option.
    proc = run(["bash", world["miniconda"], "-h"], home)
    assert proc.returncode == 2
    for flag in ("-b", "-f", "-p PREFIX", "-u", "-k", "-s"):
        assert flag in proc.stdout
    proc = run(["bash", world["miniconda"], "-z"], home)
    assert proc.returncode == 1
    assert "did not recognize option" in proc.stdout


def test_the_file_name_must_end_in_sh(world, home):
    # FACT: the file name must end in .sh (the header checks $0); piping into bash or saving as
    # /tmp/installer fails with exit 1.
    renamed = home / "installer"
    shutil.copy(world["miniconda"], renamed)
    proc = run(["bash", renamed, "-b", "-p", home / "a"], home)
    assert proc.returncode == 1
    proc = run(["bash", "-s", "--", "-b", "-p", home / "b"], home, input=world["miniconda"].read_bytes().decode(
        "latin-1"))
    assert proc.returncode == 1
    assert not (home / "a").exists() and not (home / "b").exists()


def test_an_existing_prefix_needs_u_or_f(world, home):
    # FACT: PREFIX exists and no -u/-f: "ERROR: File or directory already exists: 'PREFIX'", exit 1;
    # -u and -f install over it without wiping it.
    prefix = home / "miniconda3"
    prefix.mkdir()
    (prefix / "mine.txt").write_text("kept")
    proc = run(["bash", world["miniconda"], "-b", "-p", prefix], home)
    assert proc.returncode == 1
    assert f"ERROR: File or directory already exists: '{prefix}'" in proc.stderr
    for flag in ("-u", "-f"):
        proc = run(["bash", world["miniconda"], "-b", flag, "-p", prefix], home)
        assert proc.returncode == 0, proc.stderr
    assert (prefix / "mine.txt").read_text() == "kept"
    assert run([prefix / "bin" / "conda", "--version"], home).stdout == "conda 25.5.1\n"


def test_not_enough_disk_fails_before_installing(tmp_path, home):
    # FACT: exit 1 when there is not enough disk (it checks free space, +50 MB).
    big = build_installer.build(tmp_path / "dl", declared_size_mb=1 << 30, delay=0)
    proc = run(["bash", big, "-b", "-p", home / "miniconda3"], home)
    assert proc.returncode == 1
    assert "Not enough free disk space" in proc.stderr
    assert not (home / "miniconda3").exists()


def test_a_killed_install_leaves_files_that_u_completes(tmp_path, home):
    # FACT (remoteenv's side-by-side rule relies on it): a half-written prefix is just files; a re-run needs -u.
    slow = build_installer.build(tmp_path / "dl", delay=5)
    prefix = home / "miniconda3"
    proc = subprocess.Popen(["bash", str(slow), "-b", "-p", str(prefix)], stdout=subprocess.PIPE, text=True,
                            env=clean_env(home), start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        for line in proc.stdout:
            if line.startswith("Unpacking payload"):
                break
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()
    assert prefix.is_dir() and not (prefix / "bin" / "conda").exists()
    assert run(["bash", slow, "-b", "-p", prefix], home).returncode == 1
    fast = build_installer.build(tmp_path / "dl2", delay=0)
    proc = run(["bash", fast, "-b", "-u", "-p", prefix], home)
    assert proc.returncode == 0, proc.stderr
    assert run([prefix / "bin" / "conda", "--version"], home).stdout == "conda 25.5.1\n"


def test_without_b_it_asks_for_the_licence(world, home):
    # FACT: -b is batch (licence accepted); without it the installer asks on stdin.
    proc = run(["bash", world["miniforge"]], home, input="\nno\n")
    assert proc.returncode == 2
    assert "Do you accept the license terms? [yes|no]" in proc.stdout
    assert not (home / "miniforge3").exists()
    proc = run(["bash", world["miniforge"]], home, input="\nyes\n\nno\n")
    assert proc.returncode == 0, proc.stderr
    assert (home / "miniforge3" / "bin" / "conda").exists()
    assert not (home / ".bashrc").exists()
    # At EOF the real question is asked again and again: it never installs (so always pass -b).
    with pytest.raises(subprocess.TimeoutExpired):
        run(["bash", world["miniforge"], "-p", home / "eof"], home, input="", timeout=2)
    assert not (home / "eof").exists()


# ----------------------------------------------------------------------------- terms of service


def test_miniconda_refuses_until_the_terms_are_accepted(world, home):
    # FACT: the ToS plugin blocks create ... while the defaults channels are configured and not accepted:
    # CondaToSNonInteractiveError, exit 1; accepted by `conda tos accept --override-channels --channel URL`,
    # stored under ~/.conda/tos.
    env = home / "env"
    proc = run([conda(world), "create", "-y", "-p", env, "python=3.11"], home)
    assert proc.returncode == 1
    assert "CondaToSNonInteractiveError: Terms of Service have not been accepted for the following channels" \
        in proc.stderr
    assert TOS_MAIN in proc.stderr and TOS_R in proc.stderr
    assert not env.exists()
    proc = run([conda(world), "create", "-y", "--json", "-p", env, "python=3.11"], home)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["exception_name"] == "CondaToSNonInteractiveError"
    accept_tos(world, home)
    assert list((home / ".conda" / "tos").iterdir())
    proc = run([conda(world), "create", "-y", "-p", env, "python=3.11"], home)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("how", ["env", "condarc"])
def test_terms_accepted_by_setting(world, home, how):
    # FACT: alternatives: .condarc `plugins: {auto_accept_tos: true}` or CONDA_PLUGINS_AUTO_ACCEPT_TOS=yes.
    extra = {}
    if how == "env":
        extra["CONDA_PLUGINS_AUTO_ACCEPT_TOS"] = "yes"
    else:
        (home / ".condarc").write_text("plugins:\n  auto_accept_tos: true\n")
    proc = run([conda(world), "create", "-y", "-p", home / "env", "python=3.11"], home, **extra)
    assert proc.returncode == 0, proc.stderr


def test_ci_true_does_not_accept_the_terms(world, home):
    # FACT: remoteenv must not rely on CI-looking environments auto-accepting: the stand-in never does.
    proc = run([conda(world), "create", "-y", "-p", home / "env", "python=3.11"], home, CI="true")
    assert proc.returncode == 1 and "CondaToSNonInteractiveError" in proc.stderr


def test_no_terms_without_the_defaults_channels(world, home):
    # FACT: the check reads the configured channels; Miniforge has no ToS plugin at all.
    (home / ".condarc").write_text("channels:\n  - conda-forge\n")
    proc = run([conda(world), "create", "-y", "-p", home / "env", "python=3.11"], home)
    assert proc.returncode == 0, proc.stderr
    proc = run([conda(world, "mf"), "create", "-y", "-p", home / "env2", "python=3.11"], home)
    assert proc.returncode == 0, proc.stderr
    assert run([conda(world, "mf"), "tos", "accept", "--channel", TOS_MAIN], home).returncode == 2


# ----------------------------------------------------------------------------- solving and errors


def test_unknown_packages_are_not_found(world, home):
    # FACT: unknown package -> "PackagesNotFoundError: The following packages are not available from current
    # channels:" + list (exit 1); --json errors carry exception_name, message, error, caused_by.
    c = conda(world, "mf")
    proc = run([c, "create", "-y", "-p", home / "env", "python=3.11", "nosuchpkg", "numpy=9"], home)
    assert proc.returncode == 1
    assert "PackagesNotFoundError: The following packages are not available from current channels:" in proc.stderr
    assert "  - nosuchpkg" in proc.stderr and "  - numpy=9" in proc.stderr
    proc = run([c, "create", "-y", "--json", "-q", "-p", home / "env", "nosuchpkg"], home)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)
    assert {"exception_name", "message", "error", "caused_by"} <= set(error)
    assert error["exception_name"] == "PackagesNotFoundError"
    assert not (home / "env").exists()


def test_cuda_needs_the_virtual_package(world, home):
    # FACT: CONDA_OVERRIDE_CUDA=12.8 sets __cuda where the driver is not visible at solve time.
    c = conda(world, "mf")
    proc = run([c, "create", "-y", "-p", home / "env", "pytorch-cuda=12.1"], home)
    assert proc.returncode == 1 and "LibMambaUnsatisfiableError" in proc.stderr and "__cuda" in proc.stderr
    proc = run([c, "create", "-y", "-p", home / "env", "pytorch-cuda=12.1"], home, CONDA_OVERRIDE_CUDA="12.8")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(run([c, "info", "--json"], home, CONDA_OVERRIDE_CUDA="12.8").stdout)
    assert ["__cuda", "12.8", "0"] in info["virtual_pkgs"]


def test_proceed_prompt(world, home):
    # FACT: at "Proceed ([y]/n)?" an empty line or EOF takes the default (yes); "n" exits 0 having done nothing.
    c = conda(world, "mf")
    proc = run([c, "create", "-p", home / "no", "python=3.11"], home, input="n\n")
    assert proc.returncode == 0 and "Proceed ([y]/n)?" in proc.stdout
    assert not (home / "no").exists()
    for name, answer in (("eof", ""), ("empty", "\n")):
        proc = run([c, "create", "-p", home / name, "python=3.11"], home, input=answer)
        assert proc.returncode == 0, proc.stderr
        assert (home / name / "conda-meta").is_dir()


# ----------------------------------------------------------------------------- environments


def test_create_list_and_explicit_round_trip(world, home):
    # FACT: `conda list -p PREFIX --json` keys; `--explicit [--sha256]`: `# platform: linux-64`, @EXPLICIT, one
    # URL per line; `conda create -p P --file spec.txt` installs exactly that.
    c = conda(world, "mf")
    env = home / "env"
    proc = run([c, "create", "-y", "-p", env, "python=3.11", "numpy=1.26", "pandas"], home)
    assert proc.returncode == 0, proc.stderr
    for line in ("Collecting package metadata (repodata.json): done", "Solving environment: done",
                 "Preparing transaction: done", "Verifying transaction: done", "Executing transaction: done"):
        assert line in proc.stdout
    rows = json.loads(run([c, "list", "-p", env, "--json"], home).stdout)
    assert {r["name"] for r in rows} == {"python", "numpy", "pandas"}
    for r in rows:
        assert set(r) == {"base_url", "build_number", "build_string", "channel", "dist_name", "name", "platform",
                          "version"}
    assert {r["name"]: r["version"] for r in rows}["numpy"] == "1.26.4"
    out = run([env / "bin" / "python", "-c", "import numpy, pandas; print(numpy.__version__)"], home)
    assert out.stdout == "1.26.4\n"
    explicit = run([c, "list", "-p", env, "--explicit", "--sha256"], home).stdout
    assert "# platform: linux-64\n" in explicit and "\n@EXPLICIT\n" in explicit
    urls = [ln for ln in explicit.splitlines() if ln.startswith("https://")]
    assert len(urls) == 3 and all(re.search(r"\.tar\.bz2#[0-9a-f]{64}$", u) for u in urls)
    spec = home / "spec.txt"
    spec.write_text(explicit)
    proc = run([c, "create", "-y", "-p", home / "copy", "--file", spec], home)
    assert proc.returncode == 0, proc.stderr
    copy = json.loads(run([c, "list", "-p", home / "copy", "--json"], home).stdout)
    assert copy == rows
    # Same platform only.
    spec.write_text(explicit.replace("linux-64", "osx-arm64"))
    assert run([c, "create", "-y", "-p", home / "other", "--file", spec], home).returncode == 1


def test_env_create_runs_pip_from_the_wheelhouse_with_no_index(world, home):
    # FACT: conda packages are linked first, then the pip: list runs as
    # `PREFIX/bin/python -m pip install -U -r <tmp requirements> --exists-action=b`; -p overrides name:.
    house = wheelhouse.wheelhouse_or_skip()
    pip_conf = home / "pip.conf"
    pip_conf.write_text(wheelhouse.pip_conf_text(house))
    project = home / "project"
    project.mkdir()
    (project / "environment.yml").write_text(
        "name: ignored\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - numpy<2\n"
        "  - pip\n  - pip:\n      - six\n")
    env = home / "env"
    c = conda(world, "mf")
    proc = run([c, "env", "create", "-f", project / "environment.yml", "-p", env], home,
               PIP_CONFIG_FILE=str(pip_conf))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--exists-action=b" in proc.stdout and "-U" in proc.stdout
    assert not list(project.glob("condaenv.*"))  # its temporary requirements file is gone
    assert run([env / "bin" / "python", "-c", "import six, numpy"], home).returncode == 0
    rows = json.loads(run([c, "list", "-p", env, "--json"], home).stdout)
    assert {"name": "six", "channel": "pypi"}.items() <= next(r for r in rows if r["name"] == "six").items()
    # A venv's pip reads ENV/pip.conf as its site config: env update needs no variable.
    (env / "pip.conf").write_text(wheelhouse.pip_conf_text(house))
    (project / "environment.yml").write_text(
        "name: ignored\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n"
        "  - pip:\n      - six\n      - idna\n")
    proc = run([c, "env", "update", "-f", project / "environment.yml", "-p", env, "--prune"], home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run([env / "bin" / "python", "-c", "import idna"], home).returncode == 0
    # FACT: `env update --prune` drops conda packages the file no longer names.
    names = {r["name"] for r in json.loads(run([c, "list", "-p", env, "--json"], home).stdout)}
    assert "numpy" not in names and "idna" in names
    # FACT: env export: name, channels, dependencies with pip nested, an absolute prefix line.
    export = run([c, "env", "export", "-p", env, "--no-builds"], home).stdout
    assert "channels:\n  - conda-forge\n" in export and "  - pip:\n      - idna==" in export
    assert re.search(r"^  - python=3\.11\.\d+$", export, re.M)
    assert f"prefix: {env}" in export
    history = run([c, "env", "export", "-p", env, "--from-history"], home).stdout
    assert "  - python=3.11\n" in history and "==" not in history


def test_a_pip_failure_leaves_a_half_built_env(world, home):
    # FACT: a pip failure prints "Pip subprocess error:" and pip's stderr, raises
    # "CondaEnvException: Pip failed" (exit 1) after the conda packages were linked.
    (home / "pip.conf").write_text("[global]\nno-index = true\n")
    (home / "environment.yml").write_text(
        "name: broken\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - no-such-dist-xyz\n")
    env = home / "env"
    proc = run([conda(world, "mf"), "env", "create", "-f", home / "environment.yml", "-p", env], home,
               PIP_CONFIG_FILE=str(home / "pip.conf"))
    assert proc.returncode == 1
    assert "Pip subprocess error:" in proc.stderr and "no-such-dist-xyz" in proc.stderr
    assert "CondaEnvException: Pip failed" in proc.stderr
    assert list((env / "conda-meta").glob("python-3.11*.json"))  # half-built
    assert (env / "bin" / "python").exists()


def test_env_create_over_an_existing_env_depends_on_the_version(world, home, tmp_path):
    # FACT: if PREFIX already is an env, conda 24.x/25.x fails "CondaValueError: prefix already exists" unless
    # --yes (then deletes and recreates); 26.7 replaces it.
    (home / "environment.yml").write_text("dependencies:\n  - python=3.11\n")
    c = conda(world, "mf")
    env = home / "env"
    argv = [c, "env", "create", "-f", home / "environment.yml", "-p", env]
    assert run(argv, home).returncode == 0
    (env / "marker").write_text("old")
    proc = run(argv, home)
    assert proc.returncode == 1 and f"CondaValueError: prefix already exists: {env}" in proc.stderr
    assert run([*argv, "--yes"], home).returncode == 0
    assert not (env / "marker").exists()
    new = build_installer.build(tmp_path / "dl", dist="miniforge", conda_version="26.7.0", delay=0,
                                channels_dir=world["channels"])
    assert run(["bash", new, "-b", "-p", home / "mf26"], home).returncode == 0
    (env / "marker").write_text("old")
    proc = run([home / "mf26" / "bin" / "conda", *argv[1:]], home)
    assert proc.returncode == 0, proc.stderr
    assert not (env / "marker").exists()


def test_env_list_info_run_remove_and_clean(world, home):
    c = conda(world, "mf")
    env = home / "env"
    assert run([c, "create", "-y", "-p", env, "python=3.11"], home).returncode == 0
    # FACT: `conda env list --json` -> {"envs": [absolute paths]}.
    envs = json.loads(run([c, "env", "list", "--json"], home).stdout)["envs"]
    assert envs[0] == str(world["mf"]) and str(env) in envs
    # FACT: `conda info --json` keys.
    info = json.loads(run([c, "info", "--json"], home).stdout)
    for key in ("conda_version", "platform", "root_prefix", "envs", "pkgs_dirs", "envs_dirs", "channels",
                "virtual_pkgs", "python_version"):
        assert key in info
    assert info["platform"] == "linux-64" and info["root_prefix"] == str(world["mf"])
    # FACT: `conda run -p PREFIX --no-capture-output CMD` streams output and returns CMD's exit code.
    proc = run([c, "run", "-p", env, "--no-capture-output", "python", "-c",
                "import sys; print(sys.prefix); sys.exit(3)"], home)
    assert proc.returncode == 3 and proc.stdout.strip() == str(env)
    # FACT: `conda remove -p P --all -y` removes the env.
    proc = run([c, "remove", "-p", env, "--all", "-y"], home)
    assert proc.returncode == 0, proc.stderr
    assert not env.exists()
    assert str(env) not in json.loads(run([c, "env", "list", "--json"], home).stdout)["envs"]
    # FACT: `conda clean --all -y` removes tarballs.
    proc = run([c, "clean", "--all", "-y"], home)
    assert proc.returncode == 0
    assert not list((world["mf"] / "pkgs").glob("*.tar.bz2"))


def test_condarc_merges_and_mirrors(world, home):
    # FACT: PREFIX/.condarc and ~/.condarc merge; default_channels redirects defaults; custom_channels values are
    # bases to which conda appends the name; channel_alias sends named channels to <alias>/<name>.
    c = conda(world)  # Miniconda: no ToS needed once defaults point at a mirror
    (home / ".condarc").write_text(
        "default_channels:\n  - https://mirror.test/anaconda/pkgs/main\n"
        "custom_channels:\n  conda-forge: https://mirror.test/anaconda/cloud\n")
    proc = run([c, "create", "-y", "-p", home / "env", "python=3.11", "numpy=1.26"], home)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(run([c, "list", "-p", home / "env", "--json"], home).stdout)
    assert {r["base_url"] for r in rows} == {"https://mirror.test/anaconda/pkgs/main"}
    assert {r["channel"] for r in rows} == {"pkgs/main"}
    proc = run([c, "create", "-y", "-p", home / "env2", "-c", "conda-forge", "--override-channels", "numpy<2"],
               home)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(run([c, "list", "-p", home / "env2", "--json"], home).stdout)
    assert {r["base_url"] for r in rows} == {"https://mirror.test/anaconda/cloud/conda-forge"}
    (home / ".condarc").write_text("channels:\n  - conda-forge\nchannel_alias: https://mirror.test/anaconda/cloud\n")
    info = json.loads(run([c, "info", "--json"], home).stdout)
    assert info["channels"][0] == "https://mirror.test/anaconda/cloud/conda-forge/linux-64"


def test_channels_over_http_and_unreachable_ones(world, home):
    # Channels are read over HTTP from a server the tests run; a host without a route gets CondaHTTPError.
    c = conda(world, "mf")
    with serve(world["channels"], "127.0.0.1", lifetime=60) as server:
        url = f"{server.url}/conda.anaconda.org/conda-forge"
        proc = run([c, "create", "-y", "-p", home / "env", "-c", url, "--override-channels", "python=3.11"], home)
        assert proc.returncode == 0, proc.stderr
        assert "/conda.anaconda.org/conda-forge/linux-64/repodata.json" in server.paths
    proc = run([c, "create", "-y", "-p", home / "env2", "-c", "https://nowhere.test/x", "--override-channels",
                "python"], home)
    assert proc.returncode == 1 and "CondaHTTPError: HTTP 000 CONNECTION FAILED" in proc.stderr


def test_serve_binds_only_to_loopback_or_the_test_range(tmp_path):
    for bad in ("0.0.0.0", "10.0.0.1", "192.168.1.1"):
        with pytest.raises(ValueError):
            serve(tmp_path, bad)
    (tmp_path / "f.txt").write_text("hi")
    import urllib.request

    with serve(tmp_path, max_requests=1) as server:
        assert urllib.request.urlopen(f"{server.url}/f.txt", timeout=5).read() == b"hi"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{server.url}/f.txt", timeout=5)


def test_wheels_become_conda_packages_with_their_dependencies(world, home, tmp_path):
    # So that an environment file may name jupyterlab or ipykernel as conda packages (build_standard_channels's
    # wheelhouse=); here with two small wheels, one needing nothing, on a channel of their own.
    house = wheelhouse.wheelhouse_or_skip()
    small = tmp_path / "house"
    small.mkdir()
    for pattern in ("six-*.whl", "idna-*.whl"):
        shutil.copy(next(house.glob(pattern)), small)
    pkgs = channel.wheelhouse_packages(small)
    assert {p.name for p in pkgs} == {"six", "idna"}
    assert all(p.depends[0].startswith("python >=3.") for p in pkgs)
    channel.build_channel(world["channels"], "https://wheels.test/extra", pkgs)
    proc = run([conda(world, "mf"), "create", "-y", "-p", home / "env", "-c", "https://wheels.test/extra",
                "six", "idna"], home)
    assert proc.returncode == 0, proc.stderr
    assert run([home / "env" / "bin" / "python", "-c", "import six, idna"], home).returncode == 0
    rows = json.loads(run([conda(world, "mf"), "list", "-p", home / "env", "--json"], home).stdout)
    channels = {r["name"]: r["channel"] for r in rows}
    assert channels["six"] == "https://wheels.test/extra" and channels["python"] == "conda-forge"
