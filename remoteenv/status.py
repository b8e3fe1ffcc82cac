"""The statuses a run reports, one vocabulary for runner, report, events and CLI.

A str enum: each member equals its text ("ok" == Status.OK), so JSON reports and events keep the
documented strings while code names them once.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    # steps (apply) and hosts
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"
    # plans: something would change
    CHANGE = "change"
    # hosts only
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"
    # not decided yet
    PENDING = "pending"

    def __str__(self) -> str:
        return self.value


# A run's view of hosts that are still busy (the live table; never in a report).
RUNNING = "running"
