"""The recorded installer sums: well formed, named as installer() names files, and used by the conda step
when no published sum can be read (no network: every fetcher is replaced)."""

from __future__ import annotations

import json
import re

import pytest

from remoteenv import distributions, downloads
from remoteenv.facts import HostFacts
from remoteenv.steps import StepContext
from remoteenv.steps.conda import Conda

ENTRIES = sorted(distributions.KNOWN_SHA256.items())
# What a recorded file name says: distribution, pinned version and architecture.
NAME = re.compile(r"(?:Miniconda3-(?P<py>py\d+)_(?P<conda>[0-9][0-9A-Za-z._-]*)"
                  r"|Miniforge3-(?P<forge>[0-9][0-9A-Za-z._-]*))-Linux-(?P<arch>x86_64|aarch64)\.sh")


def parse(filename: str) -> tuple[str, str, str]:
    """(distribution, version, machine) that should make installer() build `filename`."""
    found = NAME.fullmatch(filename)
    assert found, f"{filename} is not a pinned Miniconda or Miniforge installer name"
    if found["forge"]:
        return "miniforge", found["forge"], found["arch"]
    assert found["py"] == distributions.MINICONDA_PYTHON, "installer() builds no other Python's names"
    return "miniconda", found["conda"], found["arch"]


def test_the_table_covers_both_installers_and_both_arches():
    kinds = {parse(name)[0::2] for name, _ in ENTRIES}
    assert kinds == {(d, a) for d in ("miniconda", "miniforge") for a in ("x86_64", "aarch64")}


@pytest.mark.parametrize(("filename", "entry"), ENTRIES, ids=[name for name, _ in ENTRIES])
def test_entry_is_a_sum_with_a_source_under_the_name_installer_builds(filename, entry):
    digest, source = entry
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert distributions.check_sha256(digest) == digest
    assert source.strip()
    dist, version, machine = parse(filename)
    assert distributions.installer(distributions.get(dist), version, machine).filename == filename
    # The same version asked for by the other spelling of the machine names the same file.
    alias = {"x86_64": "amd64", "aarch64": "arm64"}[machine]
    assert distributions.installer(distributions.get(dist), version, alias).filename == filename


def test_no_sum_is_recorded_twice_or_for_a_moving_name():
    digests = [digest for _, (digest, _) in ENTRIES]
    assert len(set(digests)) == len(digests)
    for name, _ in ENTRIES:
        # "latest" names change content with every release; micromamba's names carry no version.
        assert "latest" not in name and not name.startswith("micromamba")
        assert name not in ("Miniforge3-Linux-x86_64.sh", "Miniforge3-Linux-aarch64.sh")


# -- the conda step uses a recorded sum and fetches nothing ------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    """Every published-sum read fails (and is counted); a real download would be a test bug."""
    reads: list[str] = []

    def read_text(url, *args, **kwargs):
        reads.append(url)
        raise downloads.DownloadFailed(f"cannot read {url}: offline", "the tests have no network")

    def urlopen(*args, **kwargs):
        raise AssertionError("the test reached the network")

    monkeypatch.setattr(downloads, "read_text", read_text)
    monkeypatch.setattr(downloads.urllib.request, "urlopen", urlopen)
    return reads


def conda_step(dist: str, version: str) -> Conda:
    return Conda({"dist": dist, "version": version, "accept_anaconda_tos": True}, ctx=StepContext(variables={}))


def facts(step: Conda, machine: str) -> HostFacts:
    return HostFacts(home="/home/a", arch=machine, answers={q.id: "-" for q in step.queries()})


@pytest.mark.parametrize(("filename", "entry"), ENTRIES, ids=[name for name, _ in ENTRIES])
def test_the_install_step_checks_against_the_recorded_sum(offline, filename, entry):
    dist, version, machine = parse(filename)
    step = conda_step(dist, version)
    args = step._args(facts(step, machine))
    assert args[2].endswith("/" + filename)
    assert args[4] == entry[0]  # the sum the host checks the installer against
    assert args[5] == ""  # so the host does not fetch the published one either
    assert json.loads(args[9])["sha256"] == entry[0]  # and the stamp remembers it
    assert offline == []


def test_uploading_uses_the_recorded_sum_without_reading_a_published_one(offline, monkeypatch):
    filename, (digest, _) = next((n, e) for n, e in ENTRIES if n.startswith("Miniconda3-"))
    dist, version, machine = parse(filename)
    step = conda_step(dist, version)
    host = facts(step, machine)
    args = step._args(host)
    asked: list[tuple[str, str, str | None]] = []

    class Stop(Exception):
        pass

    def fetch(url, name, sha256=None, **kwargs):
        asked.append((url, name, sha256))
        raise Stop

    monkeypatch.setattr(downloads, "fetch", fetch)

    class Quiet:
        def write(self, text):
            pass

        def progress(self, fraction):
            pass

    with pytest.raises(Stop):
        step._upload_installer(conn=None, facts=host, io=Quiet(), args=args)
    assert asked == [(distributions.installer(distributions.get(dist), version, machine).url, filename, digest)]
    assert offline == []


def test_an_unrecorded_pin_still_asks_for_the_published_sum(offline):
    step = conda_step("miniforge", "1.0.0-0")
    args = step._args(facts(step, "x86_64"))
    assert args[4] == "" and args[5].endswith("/Miniforge3-1.0.0-0-Linux-x86_64.sh.sha256")
    inst = distributions.installer(distributions.get("miniforge"), "1.0.0-0", "x86_64")
    with pytest.raises(downloads.DownloadFailed):
        step._published_sha256(inst)
    assert offline == [inst.sha256_url]
