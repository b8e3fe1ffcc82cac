"""The nvidia-smi stand-in (tests/fakes/nvidia-smi) answers as the real tool does (driver 550, A100-SXM4-80GB).

Each test runs the script with a POSIX sh (sh, and /bin/dash and busybox sh when present), a temporary HOME
and a bare PATH, as on a test host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "fakes" / "nvidia-smi"

A100 = "NVIDIA A100-SXM4-80GB"
UUID0 = "GPU-5e2b9b5a-0d4c-4f3e-9a1b-000000000000"
UUID1 = "GPU-5e2b9b5a-0d4c-4f3e-9a1b-000000000001"
BUS0, BUS1 = "00000000:07:00.0", "00000000:0F:00.0"
DRIVER_FAILED = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                 "Make sure that the latest NVIDIA driver is installed and running.")
NEW_FIELDS = ("uuid,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,"
              "power.draw,power.limit,pci.bus_id")
APP_FIELDS = "gpu_uuid,gpu_bus_id,pid,process_name,used_memory"
NO_SUCH_PID = "4999999"  # above Linux's largest pid_max (2**22), so /proc/PID/comm never exists

SHELLS = [pytest.param(["sh"], id="sh")]
if os.path.exists("/bin/dash"):
    SHELLS.append(pytest.param(["/bin/dash"], id="dash"))
if shutil.which("busybox"):
    SHELLS.append(pytest.param([shutil.which("busybox"), "sh"], id="busybox"))


@pytest.fixture(params=SHELLS)
def shell(request) -> list[str]:
    return request.param


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def smi(shell, home):
    """smi(*args, gpus="2", timeout=30, **env) -> CompletedProcess; gpus=None reads ~/.fake-gpus."""

    def run(*args: str, gpus: str | None = "2", timeout: float = 30, **extra: str):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C"}
        if gpus is not None:
            env["FAKE_NVIDIA_SMI_GPUS"] = gpus
        env.update(extra)
        return subprocess.run([*shell, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    return run


def lines(proc) -> list[str]:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout.splitlines()


def state(home: Path, text: str) -> None:
    (home / ".fake-gpu-state").write_text(text)


# --- What it printed before stays the same ---------------------------------------------------------------


def test_known_fields_banner_and_list_unchanged(smi, home):
    probe = smi("--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits")
    assert lines(probe) == [f"0, {A100}, 81920, 550.54.15", f"1, {A100}, 81920, 550.54.15"]
    assert lines(smi("--query-gpu=index,gpu_name,memory.total", "--format=csv"))[:2] == [
        "index, gpu_name, memory.total [MiB]", f"0, {A100}, 81920 MiB"]
    assert lines(smi("-L")) == [f"GPU 0: {A100} (UUID: {UUID0})", f"GPU 1: {A100} (UUID: {UUID1})"]
    banner = lines(smi())
    assert "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |" in banner
    assert "| N/A   32C    P0    62W / 400W |      0MiB / 81920MiB |      0%      Default |" in banner
    assert "|  No running processes found                                                 |" in banner
    assert all(len(line) == 79 for line in banner[1:])
    (home / ".fake-gpus").write_text("3\n")
    assert len(lines(smi("-L", gpus=None))) == 3
    none = smi("--query-gpu=uuid", "--format=csv", gpus="0")
    assert none.returncode == 6 and none.stdout == "No devices were found\n"


# --- New --query-gpu fields -------------------------------------------------------------------------------


def test_new_gpu_fields_idle_with_units_and_headers(smi):
    assert lines(smi(f"--query-gpu={NEW_FIELDS}", "--format=csv")) == [
        "uuid, memory.used [MiB], memory.free [MiB], utilization.gpu [%], utilization.memory [%], "
        "temperature.gpu, power.draw [W], power.limit [W], pci.bus_id",
        f"{UUID0}, 0 MiB, 81920 MiB, 0 %, 0 %, 32, 62.35 W, 400.00 W, {BUS0}",
        f"{UUID1}, 0 MiB, 81920 MiB, 0 %, 0 %, 32, 62.35 W, 400.00 W, {BUS1}",
    ]


def test_new_gpu_fields_nounits_noheader(smi):
    assert lines(smi(f"--query-gpu={NEW_FIELDS}", "--format=csv,noheader,nounits")) == [
        f"{UUID0}, 0, 81920, 0, 0, 32, 62.35, 400.00, {BUS0}",
        f"{UUID1}, 0, 81920, 0, 0, 32, 62.35, 400.00, {BUS1}",
    ]
    # nounits keeps the units in the header, as the real tool does.
    assert lines(smi("--query-gpu=power.draw", "--format=csv,nounits"))[0] == "power.draw [W]"


def test_bus_ids_and_uuids_match_list_and_banner(smi):
    rows = lines(smi("--query-gpu=index,uuid,pci.bus_id", "--format=csv,noheader", gpus="10"))
    assert rows[7] == "7, GPU-5e2b9b5a-0d4c-4f3e-9a1b-000000000007, 00000000:BD:00.0"
    assert rows[9] == "9, GPU-5e2b9b5a-0d4c-4f3e-9a1b-000000000009, 00000000:C9:00.0"
    listed = lines(smi("-L", gpus="10"))
    assert all(row.split(", ")[1] in line for row, line in zip(rows, listed, strict=True))


# --- The state file ---------------------------------------------------------------------------------------


def test_gpu_line_sets_that_gpus_numbers(smi, home):
    state(home, "# busy second board\n\ngpu 1 40000 87 71 312.5   # trailing comment\n")
    assert lines(smi(f"--query-gpu=index,{NEW_FIELDS}", "--format=csv,noheader")) == [
        f"0, {UUID0}, 0 MiB, 81920 MiB, 0 %, 0 %, 32, 62.35 W, 400.00 W, {BUS0}",
        f"1, {UUID1}, 40000 MiB, 41920 MiB, 87 %, 87 %, 71, 312.50 W, 400.00 W, {BUS1}",
    ]


def test_power_is_printed_with_two_decimals(smi, home):
    query = ("--query-gpu=power.draw", "--format=csv,noheader,nounits")
    for given, shown in (("250", "250.00"), ("62.3", "62.30"), ("0062.359", "62.35"), ("0", "0.00")):
        state(home, f"gpu 0 0 0 30 {given}\n")
        assert lines(smi(*query, gpus="1")) == [shown], given


def test_optional_memory_utilization_column(smi, home):
    state(home, "gpu 0 100 90 50 100 12\n")
    assert lines(smi("--query-gpu=utilization.gpu,utilization.memory", "--format=csv,noheader", gpus="1")) == [
        "90 %, 12 %"]


def test_procs_add_to_memory_used_unless_a_gpu_line_sets_it(smi, home):
    state(home, f"proc 0 {NO_SUCH_PID} 1024\nproc 0 4242 2048 trainer\nproc 1 77 512\ngpu 1 30000 50 60 200\n")
    assert lines(smi("--query-gpu=memory.used,memory.free", "--format=csv,noheader,nounits")) == [
        "3072, 78848", "30000, 51920"]


def test_memory_free_never_negative(smi, home):
    state(home, "proc 0 1 50000\nproc 0 2 50000\n")
    assert lines(smi("--query-gpu=memory.used,memory.free", "--format=csv,noheader,nounits", gpus="1")) == [
        "100000, 0"]


def test_state_is_read_at_every_call(smi, home):
    query = ("--query-gpu=utilization.gpu", "--format=csv,noheader,nounits")
    assert lines(smi(*query, gpus="1")) == ["0"]
    state(home, "gpu 0 0 55 40 100\n")
    assert lines(smi(*query, gpus="1")) == ["55"]
    state(home, "gpu 0 0 99 40 100\n")
    assert lines(smi(*query, gpus="1")) == ["99"]
    (home / ".fake-gpu-state").unlink()
    assert lines(smi(*query, gpus="1")) == ["0"]


def test_state_path_from_environment(smi, home, tmp_path):
    other = tmp_path / "elsewhere.state"
    other.write_text("gpu 0 7 8 9 10\n")
    state(home, "gpu 0 1 2 3 4\n")
    query = ("--query-gpu=memory.used,utilization.gpu,temperature.gpu,power.draw", "--format=csv,noheader,nounits")
    assert lines(smi(*query, gpus="1", FAKE_NVIDIA_SMI_STATE=str(other))) == ["7, 8, 9, 10.00"]
    assert lines(smi(*query, gpus="1")) == ["1, 2, 3, 4.00"]
    # A variable naming a missing file means idle, whatever ~/.fake-gpu-state says.
    assert lines(smi(*query, gpus="1", FAKE_NVIDIA_SMI_STATE=str(tmp_path / "absent"))) == ["0, 0, 32, 62.35"]


def test_file_without_final_newline_and_lines_for_missing_gpus(smi, home):
    state(home, "gpu 0 10 20 30 40\ngpu 5 1 1 1 1\nproc 7 1 1\ngpu 1 11 21 31 41")
    assert lines(smi("--query-gpu=memory.used", "--format=csv,noheader,nounits")) == ["10", "11"]
    assert lines(smi("--query-compute-apps=pid", "--format=csv,noheader")) == []


@pytest.mark.parametrize("text", ["gpu 0 1 2\n", "gpu 0 1 2 3 4.5.6\n", "gpu x 1 2 3 4\n", "gpu 0 -1 2 3 4\n",
                                  "proc 0 1\n", "proc 0 abc 1\n", "gpus 0 1 2 3 4\n"])
def test_malformed_state_fails_loudly(smi, home, text):
    state(home, "# fine\n" + text)
    proc = smi("--query-gpu=index", "--format=csv")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "line 2" in proc.stderr and ".fake-gpu-state" in proc.stderr


def test_banner_shows_state(smi, home):
    state(home, f"gpu 1 40000 87 71 312.5\nproc 0 {NO_SUCH_PID} 1024\nproc 1 77 512 my  trainer\n")
    banner = lines(smi())
    assert "| N/A   32C    P0    62W / 400W |   1024MiB / 81920MiB |      0%      Default |" in banner
    assert "| N/A   71C    P0   312W / 400W |  40000MiB / 81920MiB |     87%      Default |" in banner
    assert f"|    0   N/A  N/A   {NO_SUCH_PID}      C   python                           1024MiB |" in banner
    assert "|    1   N/A  N/A        77      C   my trainer                        512MiB |" in banner
    assert not any("No running processes" in line for line in banner)
    assert all(len(line) == 79 for line in banner[1:])


# --- --query-compute-apps ---------------------------------------------------------------------------------


def test_compute_apps_one_line_per_process_by_gpu(smi, home):
    state(home, f"proc 1 77 512\nproc 0 4242 2048 my trainer\nproc 0 {NO_SUCH_PID} 1024\n")
    assert lines(smi(f"--query-compute-apps={APP_FIELDS}", "--format=csv")) == [
        "gpu_uuid, gpu_bus_id, pid, process_name, used_gpu_memory [MiB]",
        f"{UUID0}, {BUS0}, 4242, my trainer, 2048 MiB",
        f"{UUID0}, {BUS0}, {NO_SUCH_PID}, python, 1024 MiB",
        f"{UUID1}, {BUS1}, 77, python, 512 MiB",
    ]
    assert lines(smi("--query-compute-apps=pid,used_gpu_memory", "--format=csv,noheader,nounits")) == [
        "4242, 2048", f"{NO_SUCH_PID}, 1024", "77, 512"]
    assert lines(smi("--query-compute-apps", "used_gpu_memory", "--format", "csv"))[0] == "used_gpu_memory [MiB]"


def test_process_name_from_proc_comm(smi, home):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        state(home, f"proc 0 {sleeper.pid} 100\n")
        assert lines(smi("--query-compute-apps=pid,process_name", "--format=csv,noheader", gpus="1")) == [
            f"{sleeper.pid}, sleep"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_no_processes_prints_only_the_header(smi):
    idle = smi(f"--query-compute-apps={APP_FIELDS}", "--format=csv")
    assert lines(idle) == ["gpu_uuid, gpu_bus_id, pid, process_name, used_gpu_memory [MiB]"]
    quiet = smi("--query-compute-apps=pid", "--format=csv,noheader")
    assert quiet.returncode == 0 and quiet.stdout == ""


# --- Errors as the real tool reports them -----------------------------------------------------------------


@pytest.mark.parametrize("args", [("--query-gpu=index,fan.speed", "--format=csv"),
                                  ("--query-gpu=uuid,pid", "--format=csv"),
                                  ("--query-compute-apps=pid,fan.speed", "--format=csv"),
                                  ("--query-compute-apps=pid,uuid", "--format=csv")])
def test_unknown_fields_fail_with_exit_2(smi, args):
    proc = smi(*args)
    bad = args[0].rsplit(",", 1)[1]
    assert proc.returncode == 2 and proc.stdout == f'Field "{bad}" is not a valid field to query.\n\n'


@pytest.mark.parametrize("args", [("--query-compute-apps=pid",), ("--query-compute-apps=pid", "--format=json"),
                                  ("--query-gpu=index", "--query-compute-apps=pid", "--format=csv")])
def test_bad_options_fail_with_exit_2(smi, args):
    proc = smi(*args)
    assert proc.returncode == 2 and "Invalid combination of input arguments" in proc.stdout


def test_fields_are_not_globbed(smi, home):
    (home / "index").write_text("")
    assert smi("--query-gpu=*", "--format=csv").stdout == 'Field "*" is not a valid field to query.\n\n'


# --- Failure modes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["exit\n", "", "exit now please\n"])
def test_broken_driver(smi, home, content):
    (home / ".fake-gpu-broken").write_text(content)
    for args in [("--query-gpu=index", "--format=csv"), ("-L",), (),
                 ("--query-compute-apps=pid", "--format=csv")]:
        proc = smi(*args)
        assert proc.returncode == 9 and proc.stdout == DRIVER_FAILED + "\n", args


def test_garbage_output(smi, home):
    (home / ".fake-gpu-broken").write_text("garbage\n")
    proc = smi("--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits")
    assert proc.returncode == 0
    rows = proc.stdout.split("\n")
    assert "\x01" in rows[0] and not proc.stdout.endswith("\n")
    pattern = re.compile(r"\d+, [^,]+, \d+, [\d.]+")
    assert not any(pattern.fullmatch(row) for row in rows)
    assert "CUDA Version" not in smi().stdout


def test_hang(smi, home):
    (home / ".fake-gpu-broken").write_text("hang\n")
    with pytest.raises(subprocess.TimeoutExpired):
        smi("--query-gpu=index", "--format=csv", timeout=1)


def test_unknown_broken_mode_fails_loudly(smi, home):
    (home / ".fake-gpu-broken").write_text("explode\n")
    proc = smi("-L")
    assert proc.returncode == 1 and proc.stdout == "" and "explode" in proc.stderr


def test_removing_the_broken_file_heals(smi, home):
    broken = home / ".fake-gpu-broken"
    broken.write_text("exit\n")
    assert smi("-L").returncode == 9
    broken.unlink()
    assert len(lines(smi("-L"))) == 2
