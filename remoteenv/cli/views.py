"""How runs look to people and scripts: the live table, JSON lines, plans and summaries.

Every command that runs steps on hosts (plan, apply, and the commands built on them) shows its run
through `watch`, so they all look and behave the same: a live table at a terminal (each host's step,
its latest output line or progress bar, elapsed time), one line per host in logs and pipes, or one
JSON object per event with `--json`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from remoteenv.cli.output import console
from remoteenv.status import RUNNING, Status

if TYPE_CHECKING:
    from remoteenv import report as rp
    from remoteenv.events import Event

# (on_event, output_every) -> the run's report
Runner = Callable[[Callable[["Event"], None] | None, float], "rp.RunReport"]


def watch(run: Runner, *, title: str, hosts: list[str], total_steps: int, mode: str, stream_json: bool,
          live: bool) -> rp.RunReport:
    """Run with the right view: JSON lines, a live table at a terminal, lines in a log, or nothing."""
    if stream_json:
        return run(print_event, 0.0)  # scripts get every line a step prints
    if not live:
        return run(None, 1.0)
    view = LiveView(title, hosts, total_steps)
    if not console().is_terminal:
        # Logs and pipes get one line per finished host (apply only: a plan prints its result).
        return run(view.print_line if mode == "apply" else None, 1.0)
    from rich.live import Live

    with Live(view, console=console(), refresh_per_second=4, transient=True, redirect_stdout=False,
              redirect_stderr=False):
        return run(view.update, 0.1)


def print_event(event: Event) -> None:
    try:
        sys.stdout.write(json.dumps(event.to_json(), default=str) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head -1`): the run goes on to its end and its report, quietly.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# Hosts that finished well: the live table stops showing their step.
DONE = (Status.OK, Status.CHANGED, Status.CHANGE)
STATUS_STYLE = {Status.OK: "green", Status.CHANGED: "yellow", Status.CHANGE: "yellow", Status.FAILED: "bold red",
                Status.UNREACHABLE: "bold red", Status.CANCELLED: "magenta", Status.SKIPPED: "dim",
                Status.PENDING: "dim", RUNNING: "cyan", "waiting": "dim", "connecting": "cyan"}


class LiveView:
    """One row per host, rebuilt a few times a second from the latest event of each host."""

    def __init__(self, title: str, hosts: list[str], total_steps: int) -> None:
        self.title = title
        self.total_steps = total_steps
        self.rows: dict[str, dict[str, Any]] = {
            name: {"status": "waiting", "step": "", "line": "", "progress": None, "started": None, "ended": None}
            for name in hosts}
        self.started = time.monotonic()

    def update(self, event: Event) -> None:
        row = self.rows.get(event.host or "")
        if row is None:
            return
        now = time.monotonic()
        if event.kind == "host_start":
            row.update(status="connecting", started=now)
        elif event.kind == "facts":
            row.update(status=RUNNING, step="facts gathered")
        elif event.kind == "step_start":
            row.update(step=f"{event.step + 1}/{self.total_steps} {event.description}", line="", progress=None)
        elif event.kind == "step_output":
            if event.message:
                row["line"] = event.message
            if "progress" in event.data:
                row["progress"] = event.data["progress"]
        elif event.kind == "step_end" and event.status == Status.FAILED:
            row["step"] = f"{event.step + 1}/{self.total_steps} {event.description}: {event.message or ''}"
        elif event.kind == "step_end":
            row.update(line="", progress=None)
        elif event.kind == "host_end":
            row.update(status=event.status, ended=now, line="", progress=None)
            if event.status in DONE:
                row["step"] = ""
            elif event.message:
                row["step"] = event.message

    def print_line(self, event: Event) -> None:
        """Without a terminal: one line per finished host."""
        if event.kind == "host_end":
            host = event.host or ""
            message = _without_host(event.message or "", [host])
            console().print(_hanging(
                f"{_esc(host)}:", f"[{STATUS_STYLE.get(event.status or '', '')}]{event.status}[/]"
                f" ({event.elapsed or 0:.1f}s)" + (f" {_esc(message)}" if message else "")))

    def __rich__(self) -> Any:
        from rich.table import Table

        now = time.monotonic()
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        summary = " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        table = Table(title=f"{self.title} · {now - self.started:.0f}s · {summary}", title_justify="left",
                      expand=False)
        # The step column gives way first: names, statuses and times stay whole.
        host_width = min(max(4, max((len(name) for name in self.rows), default=4)), 30)
        step_width = max(10, min(70, console().width - host_width - 11 - 7 - 13))  # 13: borders, padding
        table.add_column("host", no_wrap=True, min_width=host_width)
        table.add_column("status", no_wrap=True, min_width=11)
        table.add_column("step", overflow="ellipsis", no_wrap=True, max_width=step_width)
        table.add_column("elapsed", justify="right", no_wrap=True, min_width=7)
        rows = list(self.rows.items())
        room = max(5, console().height - 6)
        if len(rows) > room:
            # Too many to show: the hosts still working or in trouble matter most.
            busy = [(n, r) for n, r in rows if r["status"] not in (*DONE, "waiting")]
            rows = busy[:room]
        for name, row in rows:
            start = row["started"]
            elapsed = "" if start is None else f"{(row['ended'] or now) - start:.1f}s"
            style = STATUS_STYLE.get(row["status"], "")
            table.add_row(name, f"[{style}]{row['status']}[/]", _step_cell(row, step_width), elapsed)
        return table


def _step_cell(row: dict[str, Any], width: int) -> str:
    """The step, then what it does now: a progress bar, else the latest line it printed."""
    text = _esc(row["step"])
    if row["progress"] is not None:
        bar_width = max(5, min(20, width - len(row["step"]) - 8))
        done = round(row["progress"] * bar_width)
        text += f" [cyan]{'━' * done}[/][dim]{'━' * (bar_width - done)}[/] {row['progress'] * 100:3.0f}%"
    if row["line"]:
        text += f" [dim]· {_esc(row['line'])}[/]"
    return text


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# -- after the run ----------------------------------------------------------------------------
# Both views fit the terminal (80 columns included): host names and statuses are never cut; long
# text wraps under its own indent instead of back at column 0; paths are shortened with ~.
def print_plan(report: rp.RunReport) -> None:
    from remoteenv import report as rp

    out = console()
    groups: dict[tuple, list[str]] = {}
    for h in report.hosts:
        if h.status in (rp.HOST_OK, rp.HOST_CHANGE):
            key = tuple((s.description, s.change.summary, s.change.reason, s.change.diff or "")
                        for s in h.steps if s.change)
        else:
            key = ("error", h.status, h.message)
        groups.setdefault(key, []).append(h.host)
    out.print(f"[bold]Plan: {_esc(report.playbook)}[/] on {len(report.hosts)} host(s)")
    for key, names in groups.items():
        who = _esc(_names(names))
        if key and key[0] == "error":
            out.print(f"[{STATUS_STYLE.get(key[1], '')}]{who}: {key[1]}[/]")
            if key[2]:
                out.print(_hanging("   ", _esc(_without_host(key[2], names))))
            continue
        if not key:
            out.print(f"[green]{who}: nothing to change[/]")
            continue
        out.print(f"[yellow]{who}: {len(key)} step(s) would change[/]")
        for description, summary, reason, diff in key:
            out.print(_hanging("  [yellow]+[/]", f"{_esc(description)}: {_esc(summary)}"
                               + (f" [dim]({_esc(reason)})[/]" if reason else "")))
            for line in diff.splitlines():
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
                out.print(_hanging("    ", f"[{style}]{_esc(line)}[/]"))
    if report.cancelled:
        out.print("[magenta]cancelled[/]: the plan is incomplete")


def _names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", … ({len(names)} hosts)" if len(names) > limit else "")


def _without_host(message: str, names: list[str]) -> str:
    """Messages often start with the host's name, which the line above already shows."""
    prefix = f"{names[0]}: "
    return message[len(prefix):] if len(names) == 1 and message.startswith(prefix) else message


def _hanging(marker: str, text: str) -> Any:
    """`marker text`, with text's wrapped lines indented under its first character (rich markup)."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text.from_markup(marker), Text.from_markup(text))
    return grid


SUMMARY_COUNTS = ((Status.OK, "ok"), (Status.CHANGED, "chg"), (Status.FAILED, "fail"), (Status.SKIPPED, "skip"))


def print_summary(report: rp.RunReport, retry: str | None = None, last_lines: bool = False) -> None:
    """The table, each failure with its output's tail, where the report is and how to retry.

    `retry`: the command that retries the failed hosts (default: `remoteenv apply PLAYBOOK --retry-failed`).
    `last_lines`: under the table, each host's last output line (commands whose result is a line).
    """
    from rich import box
    from rich.table import Table

    out = console()
    table = Table(title=f"apply {_esc(report.playbook)} · {report.duration:.1f}s", title_justify="left",
                  box=box.SIMPLE_HEAD, caption="steps: ok, changed, failed, skipped", caption_justify="left",
                  caption_style="dim")
    # Host names fold (never cut) if one is wider than the terminal allows; the rest never wraps.
    table.add_column("host", overflow="fold", min_width=min(30, max((len(h.host) for h in report.hosts),
                                                                    default=4)))
    table.add_column("status", no_wrap=True, min_width=max((len(h.status) for h in report.hosts), default=6))
    for _, header in SUMMARY_COUNTS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for h in report.hosts:
        c = h.counts()
        style = STATUS_STYLE.get(h.status, "")
        table.add_row(_esc(h.host), f"[{style}]{h.status}[/]", *(str(c.get(k, 0)) for k, _ in SUMMARY_COUNTS),
                      f"{h.duration:.1f}s")
    out.print(table)
    # What went wrong, host by host, under the table: messages are too long for a column.
    for h in report.hosts:
        step = h.failed_step
        if not h.message and step is None:
            continue
        style = STATUS_STYLE.get(h.status, "")
        out.print(_hanging(f"[{style}]{_esc(h.host)}[/]",
                           f"[{style}]{h.status}[/]: {_esc(_without_host(h.message, [h.host]))}"))
        if step is None or not step.output.strip():
            continue
        for line in step.tail(10):
            out.print(_hanging("  [dim]│[/]", _esc(line)))
    if last_lines:
        for h in report.hosts:
            said = [line for s in h.steps for line in s.tail(1)]
            if said and h.status not in (Status.FAILED, Status.UNREACHABLE):
                out.print(_hanging(_esc(h.host) + ":", _esc(said[-1])))
    counts = report.counts()
    out.print(" · ".join(f"[{STATUS_STYLE.get(s, '')}]{n} {s}[/]" for s, n in sorted(counts.items()))
              + (" · [magenta]cancelled: later steps did not run[/]" if report.cancelled else ""))
    if report.path:
        _print_labelled(out, "report:", _short_path(str(report.path)))
        _print_labelled(out, "logs:", _short_path(str(report.path.with_suffix(""))) + "/")
    if report.failures:
        _print_labelled(out, "retry the failed hosts:",
                        retry or f"remoteenv apply {_short_path(report.playbook_path or report.playbook)} "
                                  "--retry-failed")


def _print_labelled(out: Any, label: str, value: str) -> None:
    """`label value` on one line when it fits, else the value alone on the next line, whole."""
    from rich.markup import escape

    if len(label) + 1 + len(value) <= out.width:
        out.print(f"[dim]{label} {escape(value)}[/]", soft_wrap=True)
    else:
        out.print(f"[dim]{label}[/]")
        out.print(f"  [dim]{escape(value)}[/]", soft_wrap=True)


def playbook_ref(ref: str) -> str:
    """A playbook as a person would type it again: a file's path shortened, a shipped name as is."""
    import os

    return _short_path(os.path.abspath(ref)) if os.path.isfile(ref) else ref


def _short_path(path: str) -> str:
    """Relative to the current folder when inside it, else with ~ for the home folder."""
    import os

    cwd = os.getcwd()
    if os.path.dirname(cwd) != cwd:  # from / every path is "inside": absolute reads better there
        try:
            rel = os.path.relpath(path, cwd)
            if not rel.startswith(os.pardir):
                return rel
        except ValueError:  # another drive (Windows)
            pass
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path == home or path.startswith(home + os.sep) else path
