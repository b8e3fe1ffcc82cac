"""`remoteenv probe` against real sshd test hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import remoteenv

pytestmark = pytest.mark.integration

FAKE_SMI = Path(__file__).resolve().parents[1] / "fakes" / "nvidia-smi"


def A100(index: int) -> dict:
    """An idle stand-in A100 as probe --json gives it: the first schema's keys, then the GPU view's."""
    return {"index": index, "name": "NVIDIA A100-SXM4-80GB", "memory_mib": 81920, "driver": "550.54.15",
            "uuid": f"GPU-5e2b9b5a-0d4c-4f3e-9a1b-{index:012d}", "memory_used_mib": 0, "utilization_pct": 0,
            "temperature_c": 32, "power_w": 62.35, "power_limit_w": 400.0, "processes": [],
            "memory_free_mib": 81920, "free": True}


FACT_KEYS = {"schema", "hostname", "user", "home", "os", "kernel", "arch", "cpus", "memory_bytes",
             "disk_free_bytes", "python3", "gpus", "cuda_version", "conda", "jupyter"}


def test_probe_gpu_host_json(testbed):
    host = testbed.host("h01")
    result = remoteenv("probe", "h01", "--json", env=testbed.client.env())
    assert result.code == 0, result.err
    facts = result.json()
    assert set(facts) >= FACT_KEYS
    assert facts["user"] == host.user
    assert facts["home"] == str(host.home)
    assert facts["os"]["id"] and facts["os"]["name"]
    assert facts["cpus"] >= 1
    assert facts["memory_bytes"] > 100 * 2**20
    assert facts["disk_free_bytes"] > 0
    assert facts["python3"]["path"] == "/usr/bin/python3"
    assert facts["python3"]["version"].startswith("3.")
    # Exactly what the stand-in tests/fakes/nvidia-smi prints (A100-SXM4-80GB boards, driver 550.54.15).
    assert facts["gpus"] == [A100(0), A100(1)]
    assert facts["cuda_version"] == "12.4"
    assert facts["conda"] == [] and facts["jupyter"] == []


def test_probe_host_without_gpu(testbed):
    result = remoteenv("probe", "h02", "--json", env=testbed.client.env())
    assert result.code == 0, result.err
    facts = result.json()
    assert facts["gpus"] == [] and facts["cuda_version"] is None
    assert facts["user"] == testbed.host("h02").user


def test_probe_table_for_people(testbed):
    result = remoteenv("probe", "h01", env=testbed.client.env())
    assert result.code == 0, result.err
    assert "GPUs" in result.out and "NVIDIA" in result.out and "CUDA 12.4" in result.out
    assert testbed.host("h01").user in result.out


def test_probe_finds_conda_installs(testbed):
    host = testbed.host("h02")
    prefix = host.home / "miniforge3"
    host.run(f"mkdir -p {prefix}/conda-meta {prefix}/envs/torch/conda-meta "
             f"&& touch {prefix}/conda-meta/conda-24.11.3-py311h06a4308_0.json")
    try:
        facts = remoteenv("probe", "h02", "--json", env=testbed.client.env()).json()
        assert facts["conda"] == [{"prefix": str(prefix), "version": "24.11.3", "envs": ["base", "torch"]}]
    finally:
        host.run(f"rm -rf {prefix}")


def test_twenty_hosts_in_one_run(make_testbed, tmp_path):
    bed = make_testbed(20)
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{}}\n" for h in bed.hosts))
    result = remoteenv("-i", str(inventory), "probe", "h*", "--json", env=bed.client.env())
    assert result.code == 0, result.err
    outcomes = result.json()
    assert sorted(o["host"] for o in outcomes) == sorted(h.name for h in bed.hosts)
    users = {o["host"]: o["facts"]["user"] for o in outcomes}
    assert users == {h.name: h.user for h in bed.hosts}
    assert all(o["error"] is None for o in outcomes)


def test_gpu_figures_come_from_the_standin():
    """The figures above are the stand-in's: a change there must show up here, not pass silently."""
    text = FAKE_SMI.read_text()
    assert "MEMORY_MIB=81920\n" in text and 'NAME="NVIDIA A100-SXM4-80GB"' in text
    assert "DRIVER=550.54.15\n" in text and "CUDA=12.4\n" in text


def test_probe_one_gpu_host_table_and_json(testbed):
    facts = remoteenv("probe", "h03", "--json", env=testbed.client.env()).json()
    assert facts["gpus"] == [A100(0)]
    table = remoteenv("probe", "h03", env=testbed.client.env())
    assert "0: NVIDIA A100-SXM4-80GB · 81920 MiB · driver 550.54.15" in table.out


# -- the JSON shape: one named host is an object, any selection a list --------------------------
@pytest.fixture
def lab_inventory(testbed, tmp_path):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("groups:\n  lab: {}\n  solo: {}\nhosts:\n"
                         "  h01: {groups: [lab]}\n  h02: {groups: [lab, solo]}\n  h03: {}\n")
    return inventory


def probe_json(testbed, inventory, *args):
    result = remoteenv("-i", str(inventory), "probe", *args, "--json", env=testbed.client.env())
    assert result.code == 0, result.err
    return result.json()


def test_probe_group_without_names(testbed, lab_inventory):
    """The README's `remoteenv probe --group lab`."""
    outcomes = probe_json(testbed, lab_inventory, "--group", "lab")
    assert [o["host"] for o in outcomes] == ["h01", "h02"]
    assert all(o["error"] is None and o["facts"]["user"] for o in outcomes)
    table = remoteenv("-i", str(lab_inventory), "probe", "-g", "lab", env=testbed.client.env())
    assert table.code == 0, table.err
    assert "h01  (" in table.out and "h02  (" in table.out and "h03  (" not in table.out


@pytest.mark.parametrize("selection", [
    ["--group", "solo"],        # a group of one
    ["h0[2]"],                  # a glob matching one host
    ["solo"],                   # a group named as a pattern
    ["h02", "--limit", "h0*"],  # narrowed by --limit
    ["h02,h02"],                # a comma list
])
def test_a_selection_is_always_a_list(testbed, lab_inventory, selection):
    outcomes = probe_json(testbed, lab_inventory, *selection)
    assert isinstance(outcomes, list) and [o["host"] for o in outcomes] == ["h02"]
    assert set(outcomes[0]) == {"host", "facts", "error"}
    assert outcomes[0]["facts"]["user"] == testbed.host("h02").user


def test_one_named_host_is_an_object_and_several_a_list(testbed, lab_inventory):
    one = probe_json(testbed, lab_inventory, "h02")
    assert isinstance(one, dict) and one["user"] == testbed.host("h02").user
    several = probe_json(testbed, lab_inventory, "h01", "h03")
    assert [o["host"] for o in several] == ["h01", "h03"]


def test_the_json_rule_is_in_the_help():
    text = " ".join(remoteenv("probe", "--help").out.split())
    assert "one named host prints its facts object" in text
    assert 'always prints a list of {"host", "facts", "error"}' in text


def test_no_host_given_is_a_usage_error(tmp_path):
    import os

    result = remoteenv("probe", env={**os.environ, "HOME": str(tmp_path)})
    assert result.code == 2
    assert result.err.splitlines()[0] == "error: no host given"
