"""Where a running step's output goes while it runs: the host's log, the run's watchers, the step's result.

Steps that run for minutes (a conda solve, a pip install) must show their latest line as it comes and
leave it in the host's log even if the run is cut off. A step writes what the host prints (`write`,
in chunks as they arrive) and may report how far it is (`progress`); StepIO splits lines (a `\\r`
ends a line too: progress bars redraw with it), appends each to the log at once, and tells the
watcher, at most `every` seconds apart unless it wants every line (`--json`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

# (line, fraction) -> None; line is None for a progress report without text.
Watcher = Callable[[str | None, float | None], None]

# Lines longer than this are cut for watchers (the log keeps them whole).
LINE_LIMIT = 500


class StepIO:
    """The outlet of one step on one host. Not thread-safe: one step writes to it."""

    def __init__(self, log: TextIO | None = None, watcher: Watcher | None = None, every: float = 0.0) -> None:
        self._log = log
        self._watcher = watcher
        self._every = every
        self._partial = ""
        self._captured: list[str] = []
        self._last_told = float("-inf")  # the first line is always told
        self._untold: str | None = None
        self.lines = 0

    # -- what a step calls ------------------------------------------------------------------------
    def write(self, chunk: str) -> None:
        """Output as it arrives, in pieces of any size."""
        if not chunk:
            return
        self._captured.append(chunk)
        text = self._partial + chunk.replace("\r\n", "\n")
        *complete, self._partial = text.replace("\r", "\n").split("\n")
        for line in complete:
            self._line(line)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """How far the step is, 0.0 to 1.0 (shown as a bar), with an optional line of text."""
        fraction = min(1.0, max(0.0, fraction))
        if message and self._log is not None:
            self._log.write(message + "\n")
            self._log.flush()
        if self._watcher is not None:
            self._watcher(message, fraction)

    def output(self) -> str:
        """Everything written so far, as it was written."""
        return "".join(self._captured)

    def flush(self) -> None:
        """End of output: a last line without a newline is a line, and the latest line is told."""
        if self._partial:
            line, self._partial = self._partial, ""
            self._line(line)
        if self._untold is not None and self._watcher is not None:
            self._watcher(self._untold, None)
            self._untold = None

    # -- inside --------------------------------------------------------------------------------------
    def _line(self, line: str) -> None:
        self.lines += 1
        if self._log is not None:
            self._log.write(line + "\n")
            self._log.flush()  # read while the run goes on: `tail -f` on the log works
        if self._watcher is None or not line.strip():
            return
        shown = line if len(line) <= LINE_LIMIT else line[: LINE_LIMIT - 1] + "…"
        now = time.monotonic()
        if now - self._last_told >= self._every:
            self._last_told = now
            self._untold = None
            self._watcher(shown, None)
        else:
            self._untold = shown


def discard() -> StepIO:
    """A StepIO that keeps the output and tells nobody (tests, the Python API without watchers)."""
    return StepIO()
