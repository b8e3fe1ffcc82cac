"""What a run tells its watchers as it goes: one Event per thing that happened.

Kinds, in the order a host sees them: run_start, host_start, facts, step_start, step_output (a line
the step printed, or `progress` from 0 to 1 in data), step_end, host_end, run_end. The JSON form
(`to_json`, one object per line with `apply --json`) is a stable schema: keys are added, never
renamed; absent values are left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

RUN_START = "run_start"
HOST_START = "host_start"
FACTS = "facts"
STEP_START = "step_start"
STEP_OUTPUT = "step_output"
STEP_END = "step_end"
HOST_END = "host_end"
RUN_END = "run_end"
KINDS = (RUN_START, HOST_START, FACTS, STEP_START, STEP_OUTPUT, STEP_END, HOST_END, RUN_END)


@dataclass
class Event:
    kind: str
    run_id: str = ""
    host: str | None = None
    step: int | None = None  # index in the playbook, from 0
    description: str | None = None
    status: str | None = None
    elapsed: float | None = None  # seconds since the host (or, for run events, the run) started
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # kind-specific extras (counts, report path)
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "time": round(self.time, 3)}
        if self.run_id:
            out["run_id"] = self.run_id
        for key in ("host", "step", "description", "status", "message"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.elapsed is not None:
            out["elapsed"] = round(self.elapsed, 3)
        out.update(self.data)
        return out
