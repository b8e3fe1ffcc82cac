"""Ctrl-C, SIGTERM and SIGHUP during a run: noted, never a traceback or an unwritten report.

A run traps them while it works so that every way out (a first Ctrl-C, a second one, a `kill`, a
closed terminal) goes through the same path: signal the remote commands, write the report, exit
with 128 + the signal's number (130 for Ctrl-C), as shells report a process a signal ended.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGINT = int(signal.SIGINT)
CAUGHT = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def exit_code(signum: int) -> int:
    return 128 + int(signum)


@contextmanager
def trapped(on_signal: Callable[[int], None]) -> Iterator[bool]:
    """Call `on_signal(signum)` for each caught signal while inside; yields whether it could trap.

    Only the main thread may set handlers: a library caller in another thread keeps its own
    (and cancels through the run's `cancel` event).
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {}
    try:
        for signum in CAUGHT:
            previous[signum] = signal.signal(signum, lambda num, _frame: on_signal(num))
        yield True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
