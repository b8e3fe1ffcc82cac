"""GPUs on hosts: what each one holds (memory, load, temperature, power) and who runs on it.

One round trip per host: remote/lib.sh's gpu_report asks nvidia-smi for the GPUs (`--query-gpu`) and
their compute processes (`--query-compute-apps`) and joins them with `ps` (user, command). The probe
asks the same, so `probe --json` carries the same data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from remoteenv.transport import Connection

# nvidia-smi's fields, in the order gpu_report asks for them.
GPU_FIELDS = ("index", "uuid", "name", "memory.used", "memory.total", "utilization.gpu", "temperature.gpu",
              "power.draw", "power.limit", "driver_version")
# A GPU with no compute process and at most this much memory in use counts as free (a display or an
# idle context holds a little).
FREE_MIB = 1024
FREE_FRACTION = 0.05


@dataclass
class GPUProcess:
    pid: int
    user: str = ""
    memory_mib: int | None = None
    command: str = ""


@dataclass
class GPU:
    """One GPU. The first four fields are the probe's since its first schema; the rest came later."""

    index: int
    name: str
    memory_mib: int | None  # total
    driver: str
    uuid: str = ""
    memory_used_mib: int | None = None
    utilization_pct: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    processes: list[GPUProcess] = field(default_factory=list)

    @property
    def memory_free_mib(self) -> int | None:
        if self.memory_mib is None or self.memory_used_mib is None:
            return None
        return max(0, self.memory_mib - self.memory_used_mib)

    @property
    def free(self) -> bool:
        """No compute process, and little memory in use."""
        if self.processes or self.memory_used_mib is None:
            return False
        return self.memory_used_mib <= max(FREE_MIB, (self.memory_mib or 0) * FREE_FRACTION)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "memory_free_mib": self.memory_free_mib, "free": self.free}


@dataclass
class HostGPUs:
    """One host's GPUs, or why they could not be read."""

    host: str
    gpus: list[GPU] = field(default_factory=list)
    error: str | None = None
    nvidia_smi: bool = True  # False: the host has no nvidia-smi (no NVIDIA GPU, or no driver)

    @property
    def free_gpus(self) -> list[GPU]:
        """Free GPUs, most free memory first."""
        return sorted((g for g in self.gpus if g.free), key=lambda g: (-(g.memory_free_mib or 0), g.index))

    @property
    def memory_free_mib(self) -> int:
        return sum(g.memory_free_mib or 0 for g in self.gpus)

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "error": self.error, "nvidia_smi": self.nvidia_smi,
                "gpus": [g.to_json() for g in self.gpus]}


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class Report:
    """Collects gpu_report's lines: `gpu`, `app`, `ps`, `gpuerr` (see remote/lib.sh)."""

    def __init__(self) -> None:
        self.gpus: list[GPU] = []
        self.apps: list[tuple[str, int, int | None]] = []  # (gpu uuid, pid, memory)
        self.users: dict[int, tuple[str, str]] = {}
        self.error: str | None = None
        self.bad_lines = 0

    def add(self, key: str, value: str) -> None:
        if key == "gpu":
            parts = [p.strip() for p in value.split(",")]
            index = _int(parts[0]) if parts else None
            if len(parts) != len(GPU_FIELDS) or index is None:
                self.bad_lines += 1
                return
            self.gpus.append(GPU(index, parts[2], _int(parts[4]), parts[9], uuid=parts[1],
                                 memory_used_mib=_int(parts[3]), utilization_pct=_int(parts[5]),
                                 temperature_c=_int(parts[6]), power_w=_float(parts[7]),
                                 power_limit_w=_float(parts[8])))
        elif key == "app":
            parts = [p.strip() for p in value.split(",")]
            pid = _int(parts[1]) if len(parts) >= 3 else None
            if pid is None:
                self.bad_lines += 1
                return
            self.apps.append((parts[0], pid, _int(parts[2])))
        elif key == "ps":
            words = value.split(None, 2)
            if len(words) >= 2 and words[0].isdigit():
                self.users[int(words[0])] = (words[1], words[2] if len(words) > 2 else "")
        elif key == "gpuerr":
            code, _, message = value.partition("\t")
            self.error = f"nvidia-smi failed (exit {code})" + (f": {message.strip()}" if message.strip() else "")

    def finish(self) -> tuple[list[GPU], str | None]:
        by_uuid = {g.uuid: g for g in self.gpus}
        for uuid, pid, memory in self.apps:
            user, command = self.users.get(pid, ("", ""))
            if uuid in by_uuid:
                by_uuid[uuid].processes.append(GPUProcess(pid, user, memory, command))
        error = self.error
        if error is None and self.bad_lines and not self.gpus:
            error = "nvidia-smi printed what remoteenv cannot read"
        return self.gpus, error


def parse(text: str, host: str = "") -> HostGPUs:
    """gpus.sh's output."""
    report = Report()
    has_smi = False
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key == "nvidia-smi":
            has_smi = value.strip() == "1"
        else:
            report.add(key, value)
    gpus, error = report.finish()
    return HostGPUs(host, gpus, error, has_smi)


def query(conn: Connection, timeout: float = 30) -> HostGPUs:
    """One host's GPUs, in one round trip."""
    from remoteenv.errors import CommandFailed
    from remoteenv.scripts import script

    result = conn.run_script(script("gpus.sh"), timeout=timeout)
    if "nvidia-smi\t" not in result.stdout:
        raise CommandFailed(conn.host.name, "gpus", result.exited, result.stderr or result.stdout)
    return parse(result.stdout, conn.host.name)
