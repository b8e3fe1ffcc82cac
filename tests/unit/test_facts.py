"""The probe script, run by the local /bin/sh, and its parser: the facts every later step decides on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from remoteenv import facts, gpus

FAKES = Path(__file__).resolve().parents[1] / "fakes"


def run_probe(home: Path, queries=(), extra_path: str = "", brief: bool = False, **env: str) -> facts.HostFacts:
    script = facts.probe_script(list(queries), brief=brief)
    full_env = {"HOME": str(home), "USER": "tester", "PATH": f"{extra_path}/usr/local/bin:/usr/bin:/bin", **env}
    proc = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, text=True, env=full_env,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("end\t1")
    return facts.parse(proc.stdout)


def test_probe_reads_the_machine(tmp_path):
    f = run_probe(tmp_path)
    assert f.user == "tester" and f.home == str(tmp_path)
    assert f.kernel == os.uname().release
    assert f.arch == os.uname().machine
    assert f.cpus == len(os.sched_getaffinity(0))
    assert f.memory_bytes and f.memory_bytes > 2**20
    assert f.disk_free_bytes and f.disk_free_bytes > 0
    assert f.hostname == Path("/proc/sys/kernel/hostname").read_text().strip()
    assert f.python3_path and os.path.isabs(f.python3_path) and f.python3 and f.python3.startswith("3.")
    assert "timeout" in f.tools
    assert f.gpus == [] and f.cuda_version is None and f.conda == []


def test_a_runs_brief_probe_leaves_out_only_what_people_read(tmp_path):
    full, brief = run_probe(tmp_path), run_probe(tmp_path, brief=True)
    assert brief.disk_free_bytes is None and brief.glibc is None and brief.python3 is None
    assert brief.cpus is None and brief.memory_bytes is None
    assert full.glibc and full.python3 and full.cpus and full.memory_bytes
    skipped = {"disk_free_bytes", "glibc", "python3", "cpus", "memory_bytes"}
    assert {k: v for k, v in brief.to_json().items() if k not in skipped} == \
        {k: v for k, v in full.to_json().items() if k not in skipped}
    assert facts.probe_script(brief=True) == facts.probe_script(brief=True)  # one text for every host


def test_gpus_and_cuda_from_nvidia_smi(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKES / "nvidia-smi", bin_dir / "nvidia-smi")
    f = run_probe(tmp_path, extra_path=f"{bin_dir}:", FAKE_NVIDIA_SMI_GPUS="3")
    assert [g.index for g in f.gpus] == [0, 1, 2]
    assert all(g.name.startswith("NVIDIA") and g.memory_mib and g.driver for g in f.gpus)
    assert f.cuda_version == "12.4"


def test_conda_installs_and_envs(tmp_path):
    base = tmp_path / "miniconda3"
    for folder in ("conda-meta", "envs/torch/conda-meta", "envs/jax/conda-meta", "envs/not-an-env"):
        (base / folder).mkdir(parents=True)
    (base / "conda-meta" / "conda-25.5.1-py311h06a4308_0.json").write_text("{}")
    f = run_probe(tmp_path)
    assert len(f.conda) == 1
    install = f.conda[0]
    assert install.prefix == str(base) and install.version == "25.5.1"
    assert install.envs == ["base", "jax", "torch"]
    assert install.env_prefixes["torch"] == str(base / "envs" / "torch")


def test_remoteenv_jupyter_state_files_are_reported(tmp_path):
    state = tmp_path / ".remoteenv" / "jupyter"
    state.mkdir(parents=True)
    (state / "a.json").write_text('{\n "pid": 42,\n "port": 8123,\n "env": "torch"\n}\n')
    assert run_probe(tmp_path).jupyter == [{"pid": 42, "port": 8123, "env": "torch", "alive": False}]


def test_queries_are_answered_in_the_same_run(tmp_path):
    (tmp_path / "present").write_text("hello\n")
    os.chmod(tmp_path / "present", 0o640)
    qs = [facts.Query("exists", "~/present"), facts.Query("exists", "~/absent"),
          facts.Query("file", "~/present"), facts.Query("file", str(tmp_path / "absent")),
          facts.Query("cmd", "test -f ~/present"), facts.Query("cmd", "exit 3"),
          facts.Query("cmd", "echo 'quotes \" and $HOME'; true"), facts.Query("exists", "~"),
          facts.Query("exists", "~present")]  # only "~" and "~/" are the home folder
    f = run_probe(tmp_path, qs)
    answers = [f.answer(q) for q in qs]
    digest = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert answers == [True, False, facts.FileState(digest, 0o640), None, 0, 3, 0, True, False]
    assert f.answer(facts.Query("exists", "~/never-asked")) is None


def test_read_questions_bring_small_files_back_whole(tmp_path):
    stamp = "spec: sha256:abc\ttab\nü and 中文\n"
    (tmp_path / "stamp").write_text(stamp)
    (tmp_path / "big").write_bytes(b"x" * (facts.READ_LIMIT + 10))
    qs = [facts.Query("read", "~/stamp"), facts.Query("read", "~/big"), facts.Query("read", "~/missing"),
          facts.Query("read", "~/.")]
    f = run_probe(tmp_path, qs)
    assert f.answer(qs[0]) == facts.FileText(stamp)
    big = f.answer(qs[1])
    assert big.truncated and big.text == "x" * facts.READ_LIMIT
    assert f.answer(qs[2]) is None and f.answer(qs[3]) is None


def test_unknown_query_kind_is_refused():
    with pytest.raises(ValueError, match="unknown query kind"):
        facts.Query("stat", "~/x")


A100 = "0, GPU-aa, NVIDIA A100-SXM4-80GB, 1024, 81920, 37, 45, 250.50, 400.00, 550.54.15"


@pytest.mark.parametrize("line, expected", [
    (A100, facts.GPU(0, "NVIDIA A100-SXM4-80GB", 81920, "550.54.15", uuid="GPU-aa", memory_used_mib=1024,
                     utilization_pct=37, temperature_c=45, power_w=250.5, power_limit_w=400.0)),
    ("1, GPU-bb, Tesla T4, [N/A], [N/A], [Not Supported], 40, [N/A], [N/A], 535.1",
     facts.GPU(1, "Tesla T4", None, "535.1", uuid="GPU-bb", temperature_c=40)),
    ("No devices were found", None),
    ("0, NVIDIA A100-SXM4-80GB, 81920, 550.54.15", None),  # not the fields asked for
])
def test_gpu_lines(line, expected):
    parsed = facts.parse(f"gpu\t{line}\n").gpus
    assert parsed == ([expected] if expected else [])


def test_gpu_processes_are_joined_with_their_users_and_free_is_decided():
    parsed = facts.parse(
        f"gpu\t{A100}\n"
        "gpu\t1, GPU-bb, NVIDIA A100-SXM4-80GB, 300, 81920, 0, 30, 60.00, 400.00, 550.54.15\n"
        "app\tGPU-aa, 4242, 1020\napp\tGPU-zz, 7, 10\napp\tgarbage\n"
        "ps\t4242 alice python train.py --epochs 3\n")
    busy, idle = parsed.gpus
    assert busy.processes == [gpus.GPUProcess(4242, "alice", 1020, "python train.py --epochs 3")]
    assert not busy.free and idle.free and idle.memory_free_mib == 81620
    assert busy.to_json()["processes"][0]["user"] == "alice" and busy.to_json()["free"] is False


def test_a_failing_nvidia_smi_is_an_error_not_a_crash():
    parsed = facts.parse("gpuerr\t9\tNVIDIA-SMI has failed because it couldn't communicate with the driver\n")
    assert parsed.gpus == [] and "exit 9" in parsed.gpu_error and "couldn't communicate" in parsed.gpu_error
    garbage = gpus.parse("nvidia-smi\t1\ngpu\t??? not,csv,,,\ngpu\t0, trunc\n", "h")
    assert garbage.gpus == [] and "cannot read" in garbage.error


def test_json_schema_keys_are_stable():
    assert set(facts.HostFacts().to_json()) == {
        "schema", "hostname", "user", "home", "os", "kernel", "arch", "cpus", "memory_bytes",
        "disk_free_bytes", "glibc", "python3", "gpus", "gpu_error", "cuda_version", "conda", "jupyter", "processes"}


def test_detached_processes_are_parsed():
    parsed = facts.parse("proc\tjupyter-lab\t4242\t1\nproc\told\t17\t0\nproc\tbroken\tx\t1\n")
    assert parsed.processes == [facts.Process("jupyter-lab", 4242, True), facts.Process("old", 17, False)]
