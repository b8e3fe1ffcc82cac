"""A playbook on many hosts at once: bounded concurrency, one host's trouble stays its own.

Each host: connect, learn its facts with every step's questions in one round trip, then for each
step `check`; in plan mode the Change is recorded, in apply mode the step is applied when its
check asks for it. A step whose check saw nothing to do is still applied when an earlier step
changed the host since the facts were gathered and the step re-evaluates its guards on the host
(`rechecks_after_change`). After a failed step the host stops; its later steps are skipped.

Cancelling (the `cancel` event; in the main thread also Ctrl-C, SIGTERM or SIGHUP) signals the
running commands and closes every connection; the report says what ran. Hosts not yet started are
not started. Hosts still busy a few seconds later (a connect to a dead address), or at a second
signal, are reported cancelled and left behind: a run always ends, and always writes its report.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from remoteenv import events as ev
from remoteenv import facts as facts_mod
from remoteenv import report as rp
from remoteenv.errors import CommandTimeout, ConnectError, HostUnreachable, RemoteenvError
from remoteenv.fleet import Cancelled, Fleet
from remoteenv.inventory import Host, Inventory
from remoteenv.playbook import Playbook
from remoteenv.status import Status
from remoteenv.steps import CHANGED, FAILED, OK, SKIPPED, Result, Step
from remoteenv.steps.io import StepIO
from remoteenv.transport import ConnectOptions

if TYPE_CHECKING:
    from remoteenv.prefetch import Prefetch
    from remoteenv.transport import Connection

MODES = ("apply", "plan")
PROBE_TIMEOUT = 60.0


class _Cancelled(Exception):
    pass


def run_playbook(
    playbook: Playbook,
    hosts: list[Host],
    inventory: Inventory | None = None,
    *,
    mode: str = "apply",
    forks: int = 32,
    accept_new_host_key: bool = False,
    extra_vars: Mapping[str, Any] | None = None,
    step_timeout: float | None = None,
    on_event: Callable[[ev.Event], None] | None = None,
    cancel: threading.Event | None = None,
    connect_timeout: float | None = None,
    record: bool = True,
    output_every: float = 0.0,
) -> rp.RunReport:
    """Plan or apply `playbook` on `hosts`; returns the report (also saved when `record`).

    `on_event` is called with each Event, one call at a time (it need not be thread-safe). Each line
    a step prints is a step_output event, at most one per `output_every` seconds per host (0: all;
    the host's log always has every line, written as it comes when `record`).
    `step_timeout` is the timeout of steps that do not set their own. Playbook errors (an
    undefined variable, a missing local file) raise ConfigError before any host is touched.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    from remoteenv import api

    # Render every host's steps first: a playbook error is nobody's host's fault.
    work = [(host, playbook.build_for(host, extra_vars)) for host in hosts]
    options = api.connect_options(inventory or Inventory(), accept_new_host_key=accept_new_host_key,
                                  connect_timeout=connect_timeout)
    run = _Run(playbook, mode, options, step_timeout, on_event, cancel or threading.Event())
    run.output_every, run.record = output_every, record
    from remoteenv.prefetch import Prefetch

    run.prefetch = Prefetch.start([(host, [q for step in steps for q in step.queries()]) for host, steps in work],
                                  options, PROBE_TIMEOUT)
    run.report.hosts = [_pending(host, steps) for host, steps in work]
    run.emit(ev.Event(ev.RUN_START, message=f"{mode} {playbook.name} on {len(hosts)} host(s)",
                      data={"mode": mode, "playbook": playbook.name, "hosts": [h.name for h in hosts]}))
    started = time.monotonic()
    pruning = rp.start_pruning(run.report.run_id) if record else None  # old runs go while this one runs
    try:
        run.work(work, forks)
    finally:
        if run.prefetch is not None:
            run.prefetch.close()
    run.ended = True
    report = run.report
    report.duration = time.monotonic() - started
    report.cancelled = run.cancel.is_set()
    if report.cancelled:
        report.cancel_exit = run.fleet.exit_code
    if record:
        if pruning is not None:
            pruning.join()
        rp.save(report)
    run.emit(ev.Event(ev.RUN_END, status=Status.CANCELLED if report.cancelled else None,
                      elapsed=report.duration,
                      data={"counts": report.counts(), "exit_code": report.exit_code(),
                            "report": str(report.path) if report.path else None}))
    return report


def _log(log: TextIO | None, line: str, flush: bool = True) -> None:
    if log is not None:
        log.write(line + "\n")
        if flush:
            log.flush()


def _close_log(log: TextIO, hr: rp.HostReport) -> None:
    try:
        _log(log, f"# {hr.host}: {hr.status}" + (f": {hr.message}" if hr.message else ""))
        log.close()
    except (OSError, ValueError):  # a full disk on this side must not cost the host its result
        pass


def _abandoned(hr: rp.HostReport) -> rp.HostReport:
    """A copy of a host's report as it stands, marked cancelled; its worker may still write to hr."""
    out = copy.deepcopy(hr)
    if out.status in (rp.HOST_FAILED, rp.HOST_UNREACHABLE, rp.HOST_OK, rp.HOST_CHANGED, rp.HOST_CHANGE):
        return out
    out.status, out.message = rp.HOST_CANCELLED, out.message or "cancelled"
    for step in out.steps:
        if step.status == Status.PENDING:
            step.status, step.message = SKIPPED, step.message or "cancelled"
    return out


def _pending(host: Host, steps: list[Step]) -> rp.HostReport:
    return rp.HostReport(host.name, steps=[rp.StepReport(i, s.type_name, s.describe())
                                           for i, s in enumerate(steps)])


class _Run:
    def __init__(self, playbook: Playbook, mode: str, options: ConnectOptions, step_timeout: float | None,
                 on_event: Callable[[ev.Event], None] | None, cancel: threading.Event) -> None:
        self.mode = mode
        self.options = options
        self.step_timeout = step_timeout
        self.on_event = on_event
        self.cancel = cancel
        self.report = rp.RunReport(rp.new_run_id(), playbook.name,
                                   str(playbook.path.resolve()) if playbook.path else None, mode)
        self._emit_lock = threading.Lock()
        self.fleet: Fleet = Fleet(options, cancel)
        self._conns: dict[str, Connection] = {}  # each host's connection, released when the host ends
        self.output_every = 0.0
        self.record = True
        self.ended = False  # past this, late hosts' events are not told: the run has ended for its watchers
        self.prefetch: Prefetch | None = None

    # -- the pool -------------------------------------------------------------------------------
    def work(self, work: list[tuple[Host, list[Step]]], forks: int) -> None:
        """Run every host through the fleet; hosts it left behind are reported cancelled."""
        self.fleet.forks = max(1, forks)
        items = [(i, host, steps) for i, (host, steps) in enumerate(work)]
        left = self.fleet.run(items, lambda item: self.host(item[1], item[2], self.report.hosts[item[0]]))
        for i, _host, _steps in left:
            self.report.hosts[i] = _abandoned(self.report.hosts[i])

    def emit(self, event: ev.Event) -> None:
        if self.on_event is None or (self.ended and event.kind != ev.RUN_END):
            return
        event.run_id = self.report.run_id
        with self._emit_lock:
            self.on_event(event)

    # -- one host ---------------------------------------------------------------------------
    def host(self, host: Host, steps: list[Step], hr: rp.HostReport) -> None:
        started = time.monotonic()
        log: TextIO | None = None
        try:
            if self.record and self.mode == "apply":
                log = rp.open_host_log(self.report, host.name)
            self._host(host, steps, hr, started, log)
        except (_Cancelled, Cancelled):
            hr.status = rp.HOST_CANCELLED
            hr.message = hr.message or "cancelled"
        except Exception as exc:  # a bug must cost this host only
            hr.status = rp.HOST_FAILED
            hr.message = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            if log is not None:
                _close_log(log, hr)
            self.fleet.release(self._conns.pop(host.name, None))
            for s in hr.steps:
                if s.status == Status.PENDING:
                    s.status = SKIPPED
                    s.message = s.message or ("cancelled" if hr.status == rp.HOST_CANCELLED else "not run")
            hr.duration = time.monotonic() - started
            self.emit(ev.Event(ev.HOST_END, host=host.name, status=hr.status, elapsed=hr.duration,
                               message=hr.message or None, data={"counts": hr.counts()}))

    def _connect(self, host: Host, hr: rp.HostReport) -> Connection | None:
        """The host's connection, opened on first need; None: unreachable (said in `hr`)."""
        conn = self._conns.get(host.name)
        if conn is not None:
            return conn
        try:
            conn = self.fleet.connect(host)
        except ConnectError as exc:
            if self.cancel.is_set():
                raise _Cancelled from None
            hr.status, hr.message = rp.HOST_UNREACHABLE, exc.one_line()
            return None
        self._conns[host.name] = conn
        return conn

    def _host(self, host: Host, steps: list[Step], hr: rp.HostReport, started: float,
              log: TextIO | None) -> None:
        name = host.name
        if self.cancel.is_set():
            raise _Cancelled
        self.emit(ev.Event(ev.HOST_START, host=name))
        # Facts the keeper already brought (one request for the whole fleet): no connection of
        # this host's own until a step has something to do.
        facts = self.prefetch.take(name, self.cancel) if self.prefetch is not None else None
        if self.cancel.is_set():
            raise _Cancelled
        if facts is None:
            facts = self._gather(host, steps, hr)
            if facts is None:
                return
        self.emit(ev.Event(ev.FACTS, host=name, elapsed=time.monotonic() - started,
                           data={"os": facts.os_id, "arch": facts.arch, "gpus": len(facts.gpus)}))
        if self.mode == "plan":
            self._plan(name, steps, hr, facts, started)
        else:
            self._apply(host, steps, hr, facts, started, log)

    def _gather(self, host: Host, steps: list[Step], hr: rp.HostReport) -> facts_mod.HostFacts | None:
        conn = self._connect(host, hr)
        if conn is None:
            return None
        try:
            queries = [q for step in steps for q in step.queries()]
            return facts_mod.gather(conn, queries, timeout=PROBE_TIMEOUT, brief=True)
        except HostUnreachable as exc:
            if self.cancel.is_set():
                raise _Cancelled from None
            hr.status, hr.message = rp.HOST_UNREACHABLE, exc.one_line()
            return None
        except RemoteenvError as exc:
            if self.cancel.is_set():
                raise _Cancelled from None
            hr.status, hr.message = rp.HOST_FAILED, f"could not learn the host's facts: {exc.one_line()}"
            return None

    def _plan(self, name: str, steps: list[Step], hr: rp.HostReport, facts: facts_mod.HostFacts,
              started: float) -> None:
        for i, step in enumerate(steps):
            sr = hr.steps[i]
            change = step.check(facts)
            sr.change = change
            sr.status = Status.CHANGE if change else OK
            sr.message = change.reason if change else step.noop_reason(facts)
            self.emit(ev.Event(ev.STEP_END, host=name, step=i, description=sr.description, status=sr.status,
                               elapsed=time.monotonic() - started, message=sr.message,
                               data={"change": change.to_json()} if change else {}))
        hr.status = rp.HOST_CHANGE if any(s.change for s in hr.steps) else rp.HOST_OK

    def _io(self, name: str, index: int, log: TextIO | None, started: float) -> StepIO:
        def watcher(line: str | None, fraction: float | None) -> None:
            self.emit(ev.Event(ev.STEP_OUTPUT, host=name, step=index, message=line,
                               elapsed=time.monotonic() - started,
                               data={"progress": round(fraction, 4)} if fraction is not None else {}))

        return StepIO(log, watcher, self.output_every)

    def _apply(self, host: Host, steps: list[Step], hr: rp.HostReport,
               facts: facts_mod.HostFacts, started: float, log: TextIO | None) -> None:
        name = host.name
        dirty = False  # the host changed since `facts` were gathered
        for i, step in enumerate(steps):
            if self.cancel.is_set():
                raise _Cancelled
            sr = hr.steps[i]
            change = step.check(facts)
            if change is None and not (dirty and step.rechecks_after_change):
                noop = step.noop_result(facts)
                sr.status, sr.message = OK, noop.message
                sr.data, sr.secrets = dict(noop.data), dict(noop.secrets)
                # A step with nothing to do: its line goes out with the next that matters (a fleet's
                # no-op run would otherwise pay a write per step per host).
                _log(log, f"== step {i + 1} {sr.description}: ok ({sr.message})", flush=False)
                self.emit(ev.Event(ev.STEP_END, host=name, step=i, description=sr.description, status=OK,
                                   elapsed=time.monotonic() - started, message=sr.message,
                                   data={"data": dict(noop.data)} if noop.data else {}))
                continue
            sr.change = change
            self.emit(ev.Event(ev.STEP_START, host=name, step=i, description=sr.description,
                               elapsed=time.monotonic() - started,
                               message=change.summary if change else "re-checking on the host"))
            if step.timeout is None and self.step_timeout:
                step.timeout = self.step_timeout
            conn = self._connect(host, hr)
            if conn is None:
                sr.status, sr.message = FAILED, hr.message
                self.emit(ev.Event(ev.STEP_END, host=name, step=i, description=sr.description, status=FAILED,
                                   elapsed=time.monotonic() - started, message=hr.message))
                return
            if facts.home:
                conn.home = facts.home  # uploads resolve `~` without asking SFTP
            t0 = time.monotonic()
            lost: HostUnreachable | None = None
            _log(log, f"== step {i + 1} {sr.description}: " + (change.summary if change else "re-check on the host"))
            io = self._io(name, i, log, started)
            try:
                result = step.apply(conn, facts, io)
            except CommandTimeout:
                result = Result(FAILED, message=f"timed out after {step.timeout:g}s")
            except HostUnreachable as exc:
                if self.cancel.is_set():
                    sr.status, sr.message = FAILED, "cancelled while running"
                    sr.duration = time.monotonic() - t0
                    raise _Cancelled from None
                lost = exc
                result = Result(FAILED, message=exc.one_line())
            except RemoteenvError as exc:
                result = Result(FAILED, message=exc.one_line())
            io.flush()
            result.output = result.output or io.output()
            _log(log, f"-- {result.status} ({time.monotonic() - t0:.2f}s)"
                 + (f" {result.message}" if result.message else ""))
            if self.cancel.is_set() and result.status == FAILED:
                sr.status, sr.message = FAILED, "cancelled while running"
                sr.output = result.output
                raise _Cancelled
            sr.status, sr.message, sr.output = result.status, result.message, result.output
            sr.data, sr.secrets = dict(result.data), dict(result.secrets)
            sr.duration = time.monotonic() - t0
            if result.facts is not None:
                facts, dirty = result.facts, False
            elif result.status == CHANGED:
                dirty = True
            data = {"output_tail": sr.tail(10)} if result.status == FAILED else {}
            if result.data:
                data["data"] = dict(result.data)
            self.emit(ev.Event(ev.STEP_END, host=name, step=i, description=sr.description,
                               status=result.status, elapsed=time.monotonic() - started,
                               message=result.message or None, data=data))
            if result.status == FAILED:
                hr.status = rp.HOST_UNREACHABLE if lost else rp.HOST_FAILED
                hr.message = f"step {i + 1} ({sr.description}) failed: {result.message}"
                return
        hr.status = rp.HOST_CHANGED if any(s.status == CHANGED for s in hr.steps) else rp.HOST_OK
