"""Run reports: what happened on each host, kept as local state (files mode 0600).

    <state dir>/runs/<run-id>.json        the report (schema below, `RunReport.to_json`)
    <state dir>/runs/last.json            a copy of the latest report
    <state dir>/runs/<run-id>/<host>.log  every step's full output on that host

Only the newest KEEP_RUNS runs are kept: saving a report removes older reports and their logs.

Host status: ok, changed (apply changed something), change (plan: something would change),
failed, unreachable (could not connect or authenticate, or the connection was lost), cancelled.
Step status: ok, changed, failed, skipped (apply); ok, change (plan).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from remoteenv import paths
from remoteenv.errors import EXIT_CONNECT, EXIT_FAILED, EXIT_OK
from remoteenv.status import Status
from remoteenv.steps.base import Change, output_tail

SCHEMA = 1
TAIL_LINES = 20
# Reports pile up otherwise (a fleet run writes a log per host); 50 covers any --retry-failed chain.
KEEP_RUNS = 50
# What new_run_id makes; nothing else in runs/ is ever removed.
RUN_ID_RE = re.compile(r"\d{8}-\d{6}\.\d{3}-[0-9a-f]{6}")

HOST_OK = Status.OK
HOST_CHANGED = Status.CHANGED
HOST_CHANGE = Status.CHANGE
HOST_FAILED = Status.FAILED
HOST_UNREACHABLE = Status.UNREACHABLE
HOST_CANCELLED = Status.CANCELLED
HOST_PENDING = Status.PENDING
RETRY_STATUSES = (HOST_FAILED, HOST_UNREACHABLE, HOST_CANCELLED)


@dataclass
class StepReport:
    index: int
    type: str
    description: str
    status: str = Status.PENDING
    duration: float = 0.0
    message: str = ""
    output: str = ""  # full; the JSON report keeps the tail, the host log keeps all of it
    change: Change | None = None
    data: dict[str, Any] = field(default_factory=dict)  # the step's typed results (Result.data)
    # Result.secrets: for the caller in this process only; never in to_json, events or logs.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        return output_tail(self.output, lines)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index, "type": self.type, "description": self.description,
            "status": self.status, "duration": round(self.duration, 3), "message": self.message,
            "output_tail": self.tail(),
        }
        if self.change is not None:
            out["change"] = self.change.to_json()
        if self.data:
            out["data"] = self.data
        return out


@dataclass
class HostReport:
    host: str
    status: str = HOST_PENDING
    message: str = ""
    duration: float = 0.0
    steps: list[StepReport] = field(default_factory=list)

    @property
    def failed_step(self) -> StepReport | None:
        return next((s for s in self.steps if s.status == Status.FAILED), None)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "message": self.message,
                "duration": round(self.duration, 3), "counts": self.counts(),
                "steps": [s.to_json() for s in self.steps]}


@dataclass
class RunReport:
    run_id: str
    playbook: str
    playbook_path: str | None
    mode: str
    started: float = field(default_factory=time.time)
    duration: float = 0.0
    hosts: list[HostReport] = field(default_factory=list)
    cancelled: bool = False
    cancel_exit: int = 130  # the exit code of a cancelled run: 128 + the signal that stopped it
    path: Path | None = None  # where it was saved
    streamed: set[str] = field(default_factory=set)  # hosts whose log was written as the run went

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.hosts:
            out[h.status] = out.get(h.status, 0) + 1
        return out

    @property
    def failures(self) -> list[HostReport]:
        return [h for h in self.hosts if h.status in (HOST_FAILED, HOST_UNREACHABLE)]

    def exit_code(self) -> int:
        """0 when no host failed; 3 when every failure was reaching the host; else 1.

        A cancelled run's is 128 + the signal's number (130 for Ctrl-C), as a shell reports it.
        """
        if self.cancelled:
            return self.cancel_exit
        failures = self.failures
        if not failures:
            return EXIT_OK
        if all(h.status == HOST_UNREACHABLE for h in failures):
            return EXIT_CONNECT
        return EXIT_FAILED

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "run_id": self.run_id, "playbook": self.playbook,
            "playbook_path": self.playbook_path, "mode": self.mode,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration": round(self.duration, 3), "cancelled": self.cancelled,
            "counts": self.counts(), "exit_code": self.exit_code(),
            "hosts": [h.to_json() for h in self.hosts],
        }


def new_run_id() -> str:
    """Sortable by time (to the millisecond), unique by its random tail."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}.{int(now % 1 * 1000):03d}-{os.urandom(3).hex()}"


def runs_dir() -> Path:
    return paths.ensure_private_dir(paths.state_dir() / "runs")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.@-]", "_", name) or "_"


def start_pruning(run_id: str) -> threading.Thread:
    """Prune the old runs in the background while run `run_id` goes (join it before `save`)."""
    def prune_quietly() -> None:
        try:
            prune(runs_dir(), keep=KEEP_RUNS, current=run_id)
        except OSError:
            pass  # retention is tidiness: `save` prunes again

    thread = threading.Thread(target=prune_quietly, name="remoteenv-prune", daemon=True)
    thread.start()
    return thread


def save(report: RunReport) -> Path:
    """Write the report, last.json and the per-host logs; returns the report's path."""
    folder = runs_dir()
    text = json.dumps(report.to_json(), indent=2) + "\n"
    path = folder / f"{report.run_id}.json"
    paths.write_private(path, text)
    paths.write_private(folder / "last.json", text)
    logs = paths.ensure_private_dir(folder / report.run_id)
    for host in report.hosts:
        if host.host not in report.streamed:
            paths.write_private(logs / f"{_safe(host.host)}.log", host_log(report, host))
    report.path = path
    prune(folder, keep=KEEP_RUNS, current=report.run_id)
    return path


def prune(folder: Path, keep: int = KEEP_RUNS, current: str | None = None) -> list[str]:
    """Remove all but the newest `keep` runs (report and log folder); returns the run ids removed.

    Run ids sort by time, so the order of names is the order of runs. The run just saved is never
    removed, whatever its id. Another process may prune at the same time: whatever is already gone
    is fine.
    """
    import shutil

    runs = sorted({p.name.removesuffix(".json") for p in folder.iterdir() if RUN_ID_RE.fullmatch(
        p.name.removesuffix(".json"))})
    if current is not None:
        # `current` counts as kept whether or not it is written yet (a run prunes as it starts).
        runs = [r for r in runs if r != current]
        keep -= 1
    old = runs[:max(0, len(runs) - keep)]
    for run_id in old:
        try:
            (folder / f"{run_id}.json").unlink(missing_ok=True)
        except OSError:
            continue
        shutil.rmtree(folder / run_id, ignore_errors=True)
    return old


def log_path(report: RunReport, host: str) -> Path:
    return runs_dir() / report.run_id / f"{_safe(host)}.log"


_log_dirs: dict[str, Path] = {}  # run id -> its logs' folder, made once (every host of a fleet asks at once)
_log_dirs_lock = threading.Lock()


def open_host_log(report: RunReport, host: str) -> TextIO:
    """The host's log, opened (0600) to be written as the run goes: it outlives a run cut short."""
    with _log_dirs_lock:
        folder = _log_dirs.get(report.run_id)
        if folder is None:
            folder = _log_dirs[report.run_id] = paths.ensure_private_dir(runs_dir() / report.run_id)
    fd = os.open(folder / f"{_safe(host)}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    log = os.fdopen(fd, "w", encoding="utf-8", errors="replace")
    log.write(f"# remoteenv {report.mode} {report.playbook} on {host} (run {report.run_id})\n")
    log.flush()
    report.streamed.add(host)
    return log


def host_log(report: RunReport, host: HostReport) -> str:
    lines = [f"# remoteenv {report.mode} {report.playbook} on {host.host} (run {report.run_id}): "
             f"{host.status}" + (f": {host.message}" if host.message else "")]
    for s in host.steps:
        lines.append(f"== step {s.index + 1} {s.description}: {s.status} ({s.duration:.2f}s)"
                     + (f" {s.message}" if s.message else ""))
        if s.output:
            lines.append(s.output.rstrip("\n"))
    return "\n".join(lines) + "\n"


def load(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def last_run(playbook_path: str | None = None, playbook: str | None = None,
             mode: str | None = "apply") -> dict[str, Any] | None:
    """The newest saved report of this playbook (matched by path, else by name) and mode."""
    folder = runs_dir()
    for path in sorted(folder.glob("*.json"), reverse=True):
        if path.name == "last.json":
            continue
        try:
            data = load(path)
        except (OSError, ValueError):
            continue
        if mode and data.get("mode") != mode:
            continue
        if playbook_path and data.get("playbook_path") == playbook_path:
            return data
        if not playbook_path and playbook and data.get("playbook") == playbook:
            return data
    return None


def hosts_to_retry(data: dict[str, Any]) -> list[str]:
    return [h["host"] for h in data.get("hosts", []) if h.get("status") in RETRY_STATUSES]
