"""`remoteenv probe` against real sshd test hosts."""

from __future__ import annotations

import pytest
from cli_runner import remoteenv

pytestmark = pytest.mark.integration

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
    assert [g["index"] for g in facts["gpus"]] == [0, 1]
    for gpu in facts["gpus"]:
        assert set(gpu) == {"index", "name", "memory_mib", "driver"}
        assert gpu["name"].startswith("NVIDIA") and gpu["memory_mib"] > 0 and gpu["driver"]
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
