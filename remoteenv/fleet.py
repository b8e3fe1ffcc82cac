"""The one pool every multi-host command runs in: bounded concurrency, cancel, signals, isolation.

`Fleet.run(items, job)` calls `job(item)` for every item, at most `forks` at once, in daemon
threads: an executor would join its threads at exit, so one host stuck in a connect would hold the
whole process after a cancel. Jobs open their connections through `connect`, which registers them,
so that a cancel (the `cancel` event; in the main thread also Ctrl-C, SIGTERM or SIGHUP) can signal
every running remote command and close every connection from here. Jobs still busy CANCEL_GRACE
seconds after a cancel, or at a second signal, are left behind and reported by the caller as
cancelled: a run always ends, and ends within seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from remoteenv import signals
from remoteenv.inventory import Host
from remoteenv.transport import ConnectOptions, connect

if TYPE_CHECKING:
    from remoteenv.transport import Connection

T = TypeVar("T")

# After a cancel, how long jobs get to stop by themselves before they are left behind.
CANCEL_GRACE = 3.0
# After a second signal, how long the live hosts' interrupts may still take to leave.
INTERRUPT_GRACE = 1.0


class Cancelled(Exception):
    """Raised inside a job that notices the fleet was cancelled."""


class Fleet(Generic[T]):
    def __init__(self, options: ConnectOptions, cancel: threading.Event | None = None, forks: int = 32) -> None:
        self.options = options
        self.cancel = cancel or threading.Event()
        self.forks = max(1, forks)
        self.signum: int | None = None  # the first signal that cancelled the run
        self._signals = 0
        self._stopping: list[threading.Thread] = []  # close_all's, one a connection
        self._conns_lock = threading.Lock()
        self._conns: dict[int, Connection] = {}
        self._closed = False

    @property
    def exit_code(self) -> int:
        """128 + the signal that cancelled the run (130: Ctrl-C or a cancel from the caller)."""
        return signals.exit_code(self.signum or signals.SIGINT)

    # -- the pool -------------------------------------------------------------------------------------
    def run(self, items: Sequence[T], job: Callable[[T], None]) -> list[T]:
        """Run `job` on every item until all are done or the run is cancelled; returns the items
        whose job did not finish (never started, or left behind after a cancel)."""
        if not items:
            return []
        todo = iter(list(enumerate(items)))
        todo_lock = threading.Lock()
        finished: set[int] = set()
        changed = threading.Condition()
        # Workers wait until all are started: a started worker holding the GIL would make each further
        # start wait for it, and a fleet's last host would begin long after its first.
        go = threading.Event()

        def worker() -> None:
            go.wait()
            while True:
                with todo_lock:
                    item = next(todo, None)
                if item is None or self.cancel.is_set():
                    return
                index, value = item
                try:
                    job(value)
                finally:
                    with changed:
                        finished.add(index)
                        changed.notify_all()

        threads = [threading.Thread(target=worker, name=f"remoteenv-host-{i}", daemon=True)
                   for i in range(min(self.forks, len(items)))]
        self._wait(threads, go, finished, items, changed)
        with changed:
            return [value for index, value in enumerate(items) if index not in finished]

    def _wait(self, threads: list[threading.Thread], go: threading.Event, finished: set[int],
              items: Sequence[T], changed: threading.Condition) -> None:
        with signals.trapped(self._on_signal):
            for thread in threads:
                thread.start()
            go.set()
            deadline: float | None = None
            while True:
                try:
                    with changed:
                        # Hosts may all have ended while the threads were still being started: their
                        # notices came before this wait, so look first.
                        done = len(finished) == len(items)
                        if not done:
                            changed.wait(0.2)
                            done = len(finished) == len(items) or not any(t.is_alive() for t in threads)
                except KeyboardInterrupt:  # not trapped (a run outside the main thread): still a cancel
                    self._on_signal(signals.SIGINT)
                    continue
                if done:
                    break
                if self.cancel.is_set() and deadline is None:
                    self.close_all()
                    deadline = time.monotonic() + CANCEL_GRACE
                if deadline is not None and (self._signals >= 2 or time.monotonic() >= deadline):
                    # Even in a hurry, the live hosts' interrupts get a moment to leave: what runs there
                    # must stop with the run.
                    until = time.monotonic() + INTERRUPT_GRACE
                    for thread in list(self._stopping):
                        thread.join(max(0.0, until - time.monotonic()))
                    break

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        self.signum = self.signum or signum
        self.cancel.set()

    # -- connections, so that a cancel can reach them from the calling thread -------------------------
    def connect(self, host: Host) -> Connection:
        """Open a connection the fleet can interrupt; release it with `release`."""
        if self.cancel.is_set():
            raise Cancelled
        conn = connect(host, self.options)
        with self._conns_lock:
            self._conns[id(conn)] = conn
            closed = self._closed
        if closed:
            conn.close()
            raise Cancelled
        return conn

    def release(self, conn: Connection | None) -> None:
        if conn is None:
            return
        with self._conns_lock:
            self._conns.pop(id(conn), None)
        try:
            conn.close()
        except Exception:  # closing a broken connection may fail in many ways; it is closed all the same
            pass

    def close_all(self) -> None:
        """Stop what runs on every host: signal the commands, then close the connections. Returns at
        once: each connection is stopped in a thread of its own (a dead link blocks its own, no other)."""
        with self._conns_lock:
            self._closed = True
            conns = list(self._conns.values())
        threads = [threading.Thread(target=_stop, args=(conn,), name="remoteenv-cancel", daemon=True)
                   for conn in conns]
        self._stopping.extend(threads)
        for thread in threads:
            thread.start()


def _stop(conn: Connection) -> None:
    conn.interrupt()
    time.sleep(0.3)  # lets the signal requests reach the host before the connection goes
    try:
        conn.close()
    except Exception:  # as in release
        pass
