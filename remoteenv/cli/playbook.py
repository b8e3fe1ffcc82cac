"""`remoteenv plan` and `remoteenv apply`: a playbook on hosts, shown as it happens, then a summary."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from remoteenv.cli import common
from remoteenv.cli.output import console, print_json
from remoteenv.errors import ConfigError

if TYPE_CHECKING:  # the engine loads when a command runs, not when the CLI starts
    from remoteenv import report as rp
    from remoteenv.events import Event
    from remoteenv.inventory import Host, Inventory
    from remoteenv.playbook import Playbook

EXIT_CANCELLED = 130

PlaybookArg = Annotated[str, typer.Argument(
    help="A playbook file, or a shipped name (workstation, examples/hello).")]
HostsArg = Annotated[list[str] | None, typer.Argument(
    help="Host names or globs (default: every inventory host).")]
VarOpt = Annotated[list[str] | None, typer.Option(
    "--var", "-e", metavar="NAME=VALUE", help="Set a playbook variable (overrides the playbook and inventory).")]
ForksOpt = Annotated[int, typer.Option("--forks", "-f", min=1, help="How many hosts to work on at once.")]


def plan(
    playbook: PlaybookArg,
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    var: VarOpt = None,
    forks: ForksOpt = 32,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Show what a playbook would change on each host, changing nothing.

    Each host's facts are gathered in one round trip; each step compares them with what it wants.

    Examples:
      remoteenv plan workstation gpu-box
      remoteenv plan examples/hello --group lab --var greeting=hi
      remoteenv -i hosts.yaml plan ./site.yaml --json | jq '.hosts[].status'
    """
    from remoteenv.playbook import load_playbook

    pb = load_playbook(playbook)
    inv = common.inventory()
    selected = _select(inv, hosts, group, limit)
    report = _run(pb, selected, inv, "plan", var, forks, accept_new_host_key, None, stream_json=False,
                  live=not as_json)
    if as_json:
        print_json({**report.to_json(), "report": str(report.path) if report.path else None})
    else:
        _print_plan(report)
    raise typer.Exit(report.exit_code())


def apply(
    playbook: PlaybookArg,
    hosts: HostsArg = None,
    group: common.GroupOpt = None,
    limit: common.LimitOpt = None,
    var: VarOpt = None,
    forks: ForksOpt = 32,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Stream events as JSON lines (one object per line) instead of the live table.")] = False,
    accept_new_host_key: common.AcceptNewOpt = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Only the hosts that failed (or were unreachable) in this playbook's last apply.")
    ] = False,
    step_timeout: Annotated[float | None, typer.Option(
        "--step-timeout", metavar="SECONDS", min=0.001,
        help="Stop a step that runs longer (for steps without their own timeout:).")] = None,
) -> None:
    """Make hosts as a playbook wants them: every host at once, each step only where needed.

    Shows a live table (one row per host), then a summary and where the report is.
    Ctrl-C stops cleanly and reports what ran.

    Exit codes: 0 every host fine, 1 a host failed, 3 every failure was an unreachable host
    or a refused login, 130 interrupted.

    Examples:
      remoteenv apply workstation gpu-box
      remoteenv -i hosts.yaml apply examples/hello --forks 64
      remoteenv apply ./site.yaml --group lab --step-timeout 600
      remoteenv apply ./site.yaml --retry-failed
      remoteenv apply workstation gpu-box --json | jq -c 'select(.event=="host_end")'
    """
    from remoteenv.playbook import load_playbook

    pb = load_playbook(playbook)
    inv = common.inventory()
    if retry_failed:
        selected = _select_failed(pb, inv, hosts, group, limit)
        if not selected:
            raise typer.Exit(0)
    else:
        selected = _select(inv, hosts, group, limit)
    report = _run(pb, selected, inv, "apply", var, forks, accept_new_host_key, step_timeout,
                  stream_json=as_json, live=not as_json)
    if not as_json:
        _print_summary(report)
    raise typer.Exit(report.exit_code())


# -- selection --------------------------------------------------------------------------------
def _select(inv: Inventory, names: list[str] | None, group: str | None, limit: str | None) -> list[Host]:
    if not names and not group and not inv.entries:
        raise ConfigError("no host given and the inventory is empty",
                          "name hosts after the playbook, or pass -i INVENTORY (remoteenv hosts lists it)")
    return common.select_hosts(inv, names, group, limit, default_all=True)


def _select_failed(pb: Playbook, inv: Inventory, names: list[str] | None, group: str | None,
                   limit: str | None) -> list[Host]:
    from remoteenv import report as rp

    last = rp.last_run(playbook_path=str(pb.path.resolve()) if pb.path else None, playbook=pb.name)
    if last is None:
        raise ConfigError(f"no earlier apply of {pb.source} to retry", "run it without --retry-failed first")
    failed = rp.hosts_to_retry(last)
    if not failed:
        console().print(f"Nothing to retry: no host failed in the last apply ({last.get('run_id')}).")
        return []
    if names or group or limit:
        narrowed = {h.name for h in common.select_hosts(inv, names, group, limit, default_all=True)}
        failed = [n for n in failed if n in narrowed]
        if not failed:
            console().print("Nothing to retry among the selected hosts.")
            return []
    return common.select_hosts(inv, failed)


def _parse_vars(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--var {pair!r} is not NAME=VALUE", "e.g. --var greeting=hi")
        out[key.strip()] = value
    return out


# -- running ----------------------------------------------------------------------------------
def _run(pb: Playbook, hosts: list[Host], inv: Inventory, mode: str, var: list[str] | None, forks: int,
         accept_new_host_key: bool, step_timeout: float | None, *, stream_json: bool, live: bool
         ) -> rp.RunReport:
    from remoteenv.runner import run_playbook

    extra_vars = _parse_vars(var)
    kwargs: dict[str, Any] = {"mode": mode, "forks": forks, "accept_new_host_key": accept_new_host_key,
                              "extra_vars": extra_vars, "step_timeout": step_timeout,
                              "cancel": threading.Event()}
    if stream_json:
        return run_playbook(pb, hosts, inv, on_event=_print_event, **kwargs)
    if not live:
        return run_playbook(pb, hosts, inv, **kwargs)
    view = LiveView(pb, hosts, mode)
    if not console().is_terminal:
        # Logs and pipes get one line per finished host (apply only: a plan prints its result).
        return run_playbook(pb, hosts, inv, on_event=view.print_line if mode == "apply" else None, **kwargs)
    from rich.live import Live

    with Live(view, console=console(), refresh_per_second=4, transient=True, redirect_stdout=False,
              redirect_stderr=False):
        return run_playbook(pb, hosts, inv, on_event=view.update, **kwargs)


def _print_event(event: Event) -> None:
    sys.stdout.write(json.dumps(event.to_json(), default=str) + "\n")
    sys.stdout.flush()


STATUS_STYLE = {"ok": "green", "changed": "yellow", "change": "yellow", "failed": "bold red",
                "unreachable": "bold red", "cancelled": "magenta", "skipped": "dim", "running": "cyan",
                "waiting": "dim", "connecting": "cyan"}


class LiveView:
    """One row per host, rebuilt a few times a second from the latest event of each host."""

    def __init__(self, pb: Playbook, hosts: list[Host], mode: str) -> None:
        self.title = f"{mode} {pb.name}"
        self.total_steps = len(pb.steps)
        self.rows: dict[str, dict[str, Any]] = {
            h.name: {"status": "waiting", "step": "", "started": None, "ended": None} for h in hosts}
        self.started = time.monotonic()

    def update(self, event: Event) -> None:
        row = self.rows.get(event.host or "")
        if row is None:
            return
        now = time.monotonic()
        if event.kind == "host_start":
            row.update(status="connecting", started=now)
        elif event.kind == "facts":
            row.update(status="running", step="facts gathered")
        elif event.kind == "step_start":
            row["step"] = f"{event.step + 1}/{self.total_steps} {event.description}"
        elif event.kind == "step_end" and event.status == "failed":
            row["step"] = f"{event.step + 1}/{self.total_steps} {event.description}: {event.message or ''}"
        elif event.kind == "host_end":
            row.update(status=event.status, ended=now)
            if event.status in ("ok", "changed", "change"):
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
            busy = [(n, r) for n, r in rows if r["status"] not in ("ok", "changed", "change", "waiting")]
            rows = busy[:room]
        for name, row in rows:
            start = row["started"]
            elapsed = "" if start is None else f"{(row['ended'] or now) - start:.1f}s"
            style = STATUS_STYLE.get(row["status"], "")
            table.add_row(name, f"[{style}]{row['status']}[/]", _esc(row["step"]), elapsed)
        return table


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# -- after the run ----------------------------------------------------------------------------
# Both views fit the terminal (80 columns included): host names and statuses are never cut; long
# text wraps under its own indent instead of back at column 0; paths are shortened with ~.
def _print_plan(report: rp.RunReport) -> None:
    from remoteenv import report as rp

    out = console()
    groups: dict[tuple, list[str]] = {}
    for h in report.hosts:
        if h.status in (rp.HOST_OK, rp.HOST_CHANGE):
            key = tuple((s.description, s.change.summary, s.change.reason) for s in h.steps if s.change)
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
        for description, summary, reason in key:
            out.print(_hanging("  [yellow]+[/]", f"{_esc(description)}: {_esc(summary)}"
                               + (f" [dim]({_esc(reason)})[/]" if reason else "")))
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


SUMMARY_COUNTS = (("ok", "ok"), ("changed", "chg"), ("failed", "fail"), ("skipped", "skip"))


def _print_summary(report: rp.RunReport) -> None:
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
    counts = report.counts()
    out.print(" · ".join(f"[{STATUS_STYLE.get(s, '')}]{n} {s}[/]" for s, n in sorted(counts.items()))
              + (" · [magenta]cancelled: later steps did not run[/]" if report.cancelled else ""))
    if report.path:
        _print_labelled(out, "report:", _short_path(str(report.path)))
        _print_labelled(out, "logs:", _short_path(str(report.path.with_suffix(""))) + "/")
    if report.failures:
        _print_labelled(out, "retry the failed hosts:",
                        f"remoteenv apply {_short_path(report.playbook_path or report.playbook)} --retry-failed")


def _print_labelled(out: Any, label: str, value: str) -> None:
    """`label value` on one line when it fits, else the value alone on the next line, whole."""
    from rich.markup import escape

    if len(label) + 1 + len(value) <= out.width:
        out.print(f"[dim]{label} {escape(value)}[/]", soft_wrap=True)
    else:
        out.print(f"[dim]{label}[/]")
        out.print(f"  [dim]{escape(value)}[/]", soft_wrap=True)


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


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("apply")(apply)


__all__ = ["apply", "plan", "register"]
