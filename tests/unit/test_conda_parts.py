"""Distributions, installer names and URLs, managed settings, and the conda step's decisions."""

from __future__ import annotations

import json

import pytest
import yaml

from remoteenv import condarc, distributions
from remoteenv.errors import ConfigError
from remoteenv.facts import HostFacts
from remoteenv.steps import StepContext
from remoteenv.steps.conda import Conda


# -- installers, as CONDA_FACTS.md names them ----------------------------------------------------------
@pytest.mark.parametrize(("dist", "version", "machine", "filename", "url_end", "sha_url"), [
    ("miniconda", "latest", "x86_64", "Miniconda3-latest-Linux-x86_64.sh",
     "miniconda/Miniconda3-latest-Linux-x86_64.sh", None),
    ("miniconda", "25.5.1-1", "aarch64", "Miniconda3-py311_25.5.1-1-Linux-aarch64.sh",
     "miniconda/Miniconda3-py311_25.5.1-1-Linux-aarch64.sh", None),
    ("miniconda", "25.5.1", "x86_64", "Miniconda3-py311_25.5.1-1-Linux-x86_64.sh",
     "miniconda/Miniconda3-py311_25.5.1-1-Linux-x86_64.sh", None),
    ("miniforge", "latest", "x86_64", "Miniforge3-Linux-x86_64.sh",
     "releases/latest/download/Miniforge3-Linux-x86_64.sh", True),
    ("miniforge", "26.3.2-3", "arm64", "Miniforge3-26.3.2-3-Linux-aarch64.sh",
     "releases/download/26.3.2-3/Miniforge3-26.3.2-3-Linux-aarch64.sh", True),
    ("micromamba", "latest", "x86_64", "micromamba-linux-64", "releases/latest/download/micromamba-linux-64", True),
])
def test_installer_names_and_urls(dist, version, machine, filename, url_end, sha_url):
    inst = distributions.installer(distributions.get(dist), version, machine)
    assert inst.filename == filename and inst.url.endswith(url_end)
    assert (inst.sha256_url == inst.url + ".sha256") if sha_url else inst.sha256_url is None
    if dist != "micromamba":
        assert inst.filename.endswith(".sh")  # the installer checks its own name


def test_unknown_arch_dist_and_bad_version_are_usage_errors():
    with pytest.raises(ConfigError, match="architecture"):
        distributions.installer(distributions.get("miniforge"), "latest", "ppc64le")
    with pytest.raises(ConfigError, match="unknown distribution"):
        distributions.get("anaconda")
    with pytest.raises(ConfigError, match="not a version"):
        distributions.installer(distributions.get("miniforge"), "1.0; rm -rf ~", "x86_64")


def test_published_sums_in_both_formats():
    digest = "a" * 64
    assert distributions.parse_sha256(digest + "\n") == digest
    assert distributions.parse_sha256(f"{'b' * 64}  other.sh\n{digest}  Miniforge3-Linux-x86_64.sh\n",
                                      "Miniforge3-Linux-x86_64.sh") == digest
    assert distributions.parse_sha256("<html>not found</html>") is None
    with pytest.raises(ConfigError):
        distributions.check_sha256("xyz")


# -- managed settings --------------------------------------------------------------------------------------
def test_condarc_per_distribution_and_mirror():
    plain = yaml.safe_load(condarc.condarc(distributions.get("miniforge")))
    assert plain["channels"] == ["conda-forge"] and plain["channel_priority"] == "strict"
    assert plain["auto_activate_base"] is False and plain["show_channel_urls"] is True
    assert "default_channels" not in plain
    tuna = yaml.safe_load(condarc.condarc(distributions.get("miniconda"), condarc.mirror("tuna")))
    base = "https://mirrors.tuna.tsinghua.edu.cn/anaconda"
    assert tuna["channels"] == ["defaults"]
    assert tuna["default_channels"] == [f"{base}/pkgs/main", f"{base}/pkgs/r"]
    assert tuna["channel_alias"] == f"{base}/cloud" and tuna["custom_channels"] == {"conda-forge": f"{base}/cloud"}


def test_pip_conf_mirror_wheelhouse_or_none():
    assert "index-url = https://mirrors.ustc.edu.cn/pypi/simple" in condarc.pip_conf(condarc.mirror("ustc"))
    wheels = condarc.pip_conf(condarc.mirror("ustc"), "/home/a/.remoteenv/wheelhouse")
    assert "no-index = true" in wheels and "find-links = /home/a/.remoteenv/wheelhouse" in wheels
    assert "index-url" not in wheels
    assert condarc.pip_conf(None) is None
    assert condarc.mirror("https://m.example/anaconda/").conda_base == "https://m.example/anaconda"
    with pytest.raises(ConfigError, match="unknown mirror"):
        condarc.mirror("nowhere")


# -- the step's decisions, from the probe's answers alone --------------------------------------------------
def step(**params) -> Conda:
    variables = params.pop("variables", {})
    return Conda(params, ctx=StepContext(variables=variables))


def facts_for(s: Conda, *, stamp: dict | None = None, prefix: bool = False, marker: bool = False,
              condarc_text: str | None = None) -> HostFacts:
    answers = {}
    for q in s.queries():
        if q.kind == "read" and q.arg.endswith("install.json") and stamp is not None:
            import base64

            answers[q.id] = "b64:" + base64.b64encode(json.dumps(stamp).encode()).decode()
        elif q.kind == "exists":
            answers[q.id] = "1" if (marker if q.arg.endswith("remoteenv-installing") else prefix) else "0"
        elif q.kind == "read" and q.arg.endswith(".condarc") and condarc_text is not None:
            import base64

            answers[q.id] = "b64:" + base64.b64encode(condarc_text.encode()).decode()
        else:
            answers[q.id] = "-"
    return HostFacts(home="/home/a", arch="x86_64", answers=answers)


def test_absent_install_is_planned_with_how_it_gets_there():
    s = step(dist="miniforge")
    change = s.check(facts_for(s))
    assert change.summary == "install miniforge latest into ~/miniforge3, downloaded by the host (else uploaded)"


def test_ready_install_is_a_no_op_and_a_changed_setting_is_planned():
    s = step(dist="miniforge")
    wanted = condarc.condarc(distributions.get("miniforge"))
    ready = facts_for(s, stamp={"dist": "miniforge", "version": "latest"}, prefix=True,
                      condarc_text=wanted.rstrip("\n") + "\n")
    assert s.check(ready) is None
    edited = facts_for(s, stamp={"dist": "miniforge", "version": "latest"}, prefix=True,
                       condarc_text=wanted.replace("strict", "flexible"))
    change = s.check(edited)
    assert change.summary == "update .condarc in ~/miniforge3"
    assert "-channel_priority: flexible\n+channel_priority: strict\n" in change.diff


def test_foreign_prefix_is_refused_unless_forced_and_a_cut_install_resumes():
    s = step(dist="miniforge")
    assert s.check(facts_for(s, prefix=True)).summary.startswith("refuse: ~/miniforge3 exists")
    forced = step(dist="miniforge", force=True)
    assert forced.check(facts_for(forced, prefix=True)).summary.startswith("move ~/miniforge3 aside")
    assert s.check(facts_for(s, prefix=True, marker=True)).summary.startswith("finish installing")
    other = facts_for(s, stamp={"dist": "miniconda", "version": "latest"}, prefix=True)
    assert s.check(other).summary.startswith("refuse: ~/miniforge3 holds miniconda")


def test_settings_come_from_variables_unless_given():
    s = step(variables={"conda_dist": "venv", "conda_prefix": "/scratch/v", "conda_mirror": "bfsu"})
    assert s.dist.name == "venv" and s.prefix == "/scratch/v" and s.mirror.name == "bfsu"
    assert step(dist="miniforge", variables={"conda_dist": "venv"}).dist.name == "miniforge"


def test_miniconda_without_consent_stops_before_any_host():
    with pytest.raises(ConfigError, match="terms of service") as caught:
        step().prepare()
    assert "--accept-anaconda-tos" in caught.value.hint and "miniforge" in caught.value.hint
    step(accept_anaconda_tos=True).prepare()
    step(mirror="tuna").prepare()  # a mirror's default channels are not Anaconda's


def test_sums_from_anacondas_index_page():
    digest, other = "c" * 64, "d" * 64
    page = f"""<table>
<tr><th>Filename</th><th>Size</th><th>Last Modified</th><th>SHA256</th></tr>
<tr>
  <td><a href="Miniconda3-latest-Linux-aarch64.sh">Miniconda3-latest-Linux-aarch64.sh</a></td>
  <td class="s">112.3M</td><td>2025-06-24 13:39:47</td><td>{other}</td>
</tr>
<tr>
  <td><a href="Miniconda3-latest-Linux-x86_64.sh">Miniconda3-latest-Linux-x86_64.sh</a></td>
  <td class="s">155.0M</td><td>2025-06-24 13:39:47</td><td>{digest}</td>
</tr></table>"""
    inst = distributions.installer(distributions.get("miniconda"), "latest", "x86_64")
    assert inst.sums_page == "https://repo.anaconda.com/miniconda/"
    assert distributions.sha256_from_index(page, inst.filename) == digest
    assert distributions.sha256_from_index(page, "Miniconda3-py39_4.9.2-Linux-x86_64.sh") is None
