"""Everything remoteenv prints for people fits an 80-column terminal, and what matters is never cut.

"Never cut": host names and statuses appear whole on one line (no "…" in them); paths and messages
may wrap, but under their own indent.
"""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_runner import remoteenv

pytestmark = pytest.mark.integration

WIDTH = 80
# Long enough to squeeze every column: 16 characters of prefix plus two digits.
PREFIX = "averylonghostnam"

PLAYBOOK = """
    name: a-playbook-with-a-rather-long-name-for-the-title
    vars: {fail: "no"}
    steps:
      - name: count this apply, with a description long enough to need more than one line here
        shell: echo run >> ~/.rt-80-count
      - name: maybe fail
        shell: >-
          if [ {{ fail | quote }} = yes ]; then
          echo "boom on {{ inventory_hostname }}, and a long line of output after it"; exit 1; fi
      - name: settings file
        upload:
          dest: ~/.rt-80/a/rather/deep/folder/with/a/long/path/settings.conf
          content: "x\\n"
"""


def assert_fits(text: str, what: str) -> list[str]:
    lines = text.splitlines()
    wide = [line for line in lines if len(line) > WIDTH]
    assert not wide, f"{what}: lines wider than {WIDTH}:\n" + "\n".join(wide)
    return lines


def line_with(lines: list[str], *words: str) -> str:
    """The first line holding every word whole (bounded by non-word characters)."""
    for line in lines:
        if all(re.search(rf"(?<![\w.-]){re.escape(w)}(?![\w-])", line) for w in words):
            return line
    raise AssertionError(f"no line holds {words} whole:\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    import conftest

    bed = conftest._make(4, prefix=PREFIX, down={f"{PREFIX}04": "nosshd"})
    tmp = tmp_path_factory.mktemp("w80")
    inventory = tmp / "hosts.yaml"
    inventory.write_text("groups:\n  gpu-nodes-of-the-lab: {}\nhosts:\n" + "".join(
        f"  {h.name}: " + ("{vars: {fail: 'yes'}, groups: [gpu-nodes-of-the-lab]}" if h.name.endswith("02")
                           else "{groups: [gpu-nodes-of-the-lab]}") + "\n" for h in bed.hosts))
    playbook = tmp / "pb.yaml"
    playbook.write_text(textwrap.dedent(PLAYBOOK).lstrip())
    env = {**bed.client.env(), "COLUMNS": str(WIDTH), "REMOTEENV_CONNECT_TIMEOUT": "3"}
    yield SimpleNamespace(bed=bed, inventory=inventory, playbook=playbook, env=env, tmp=tmp)
    bed.close()


def run(fleet, *args: str):
    return remoteenv("-i", str(fleet.inventory), *args, env=fleet.env, cwd=fleet.tmp)


def test_plan_fits(fleet):
    result = run(fleet, "plan", str(fleet.playbook))
    assert result.code == 3 or result.code == 0, result.err  # the down host
    lines = assert_fits(result.out, "plan")
    names = [h.name for h in fleet.bed.hosts]
    assert line_with(lines, names[0], "3", "step(s)", "would", "change")
    assert line_with(lines, names[3], "unreachable")
    # A wrapped change continues under its own text, not at column 0.
    for i, line in enumerate(lines):
        if line.startswith("  + ") and i + 1 < len(lines) and not lines[i + 1].startswith(("  + ", PREFIX)):
            assert lines[i + 1].startswith("    "), lines[i:i + 2]
    assert all(line.startswith((PREFIX, "  ", "Plan:")) for line in lines), lines


def test_apply_summary_fits(fleet):
    result = run(fleet, "apply", str(fleet.playbook))
    assert result.code == 1, result.out + result.err
    lines = assert_fits(result.out, "apply")
    h01, h02, h03, h04 = (h.name for h in fleet.bed.hosts)
    # Without a terminal, one line per finished host, then the summary table.
    assert line_with(lines, h02 + ":", "failed")
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("apply a-playbook")):]
    for name, status in ((h01, "changed"), (h02, "failed"), (h03, "changed"), (h04, "unreachable")):
        row = line_with(table, name, status)
        assert re.search(r"\d+\.\d+s", row), row
    # What went wrong: each failing host's message whole (wrapped words joined), and its output.
    joined = " ".join(" ".join(table).split())
    assert f"{h02} failed: step 2 (maybe fail) failed: exited 1: boom on {h02}" in joined
    assert f"{h04} unreachable: connection refused" in joined
    assert "│ boom on" in joined
    # Paths: whole, shortened so that they fit.
    report = line_with(table, "report:")
    assert re.search(r"report: ~/\.local/state/remoteenv/runs/[\w.-]+\.json$", report.strip()), report
    retry = " ".join(table[table.index(line_with(table, "retry")):])
    assert "remoteenv apply pb.yaml --retry-failed" in " ".join(retry.split())
    assert "…" not in result.out


def test_probe_and_hosts_tables_fit(fleet):
    h01 = fleet.bed.hosts[0]
    probe = run(fleet, "probe", h01.name)
    assert probe.code == 0, probe.err
    lines = assert_fits(probe.out, "probe")
    assert line_with(lines, h01.name) and "…" not in probe.out
    # The home folder is long: it folds, every character kept.
    assert str(h01.home) in "".join(line.strip("│ ") for line in lines)

    hosts = run(fleet, "hosts")
    lines = assert_fits(hosts.out, "hosts")
    assert "…" not in hosts.out
    for host in fleet.bed.hosts:
        assert line_with(lines, host.name)
        # user@address folds if it must, but nothing of it is lost.
        assert f"{host.user}@{host.address}" in "".join(line.split("│")[2].strip() for line in lines
                                                         if line.count("│") >= 4)


@pytest.mark.parametrize("command", [[], ["probe"], ["hosts"], ["plan"], ["apply"], ["sandbox"],
                                     ["export", "ansible"]])
def test_help_fits(command, tmp_path):
    result = remoteenv(*command, "--help", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                "COLUMNS": str(WIDTH)})
    assert result.code == 0, result.err
    assert_fits(result.out, f"{' '.join(command)} --help")


def test_top_level_help_lists_every_exit_code_and_no_integer_for_verbose(tmp_path):
    text = remoteenv("--help", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"}).out
    flat = " ".join(text.split())
    for code in ("0 ok", "1 failed on a host", "2 bad usage or config", "3 unreachable", "130 interrupted"):
        assert code in flat, code
    verbose = next(line for line in text.splitlines() if "--verbose" in line)
    assert "INTEGER" not in verbose and "-v" in verbose
    assert "[default: 0]" not in flat


def test_live_table_fits_80_columns(monkeypatch):
    """The live table (drawn only at a terminal), rendered at 80 columns with long names and steps."""
    from rich.console import Console

    from remoteenv.cli import views as view_mod
    from remoteenv.events import Event

    narrow = Console(file=io.StringIO(), width=WIDTH, height=40, force_terminal=False, color_system=None)
    monkeypatch.setattr(view_mod, "console", lambda: narrow)
    names = [f"{PREFIX}{i:02d}" for i in range(1, 5)]
    view = view_mod.LiveView("apply a-playbook-with-a-rather-long-name", names, 3)
    view.update(Event("host_start", host=names[0]))
    view.update(Event("facts", host=names[0]))
    view.update(Event("step_start", host=names[0], step=1,
                      description="a step whose description is far too long for any narrow terminal"))
    view.update(Event("host_start", host=names[1]))
    view.update(Event("host_end", host=names[1], status="unreachable",
                      message=f"{names[1]}: connection refused at 198.18.1.12:22 (hint: is sshd running there?)"))
    view.update(Event("host_start", host=names[2]))
    view.update(Event("host_end", host=names[2], status="changed"))
    narrow.print(view)
    lines = assert_fits(narrow.file.getvalue(), "live table")
    assert line_with(lines, names[0], "running")
    assert line_with(lines, names[1], "unreachable")
    assert line_with(lines, names[2], "changed")
    assert line_with(lines, names[3], "waiting")


def test_reports_print_paths_relative_to_home(monkeypatch, tmp_path):
    from remoteenv.cli import views as view_mod

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(Path("/"))
    assert view_mod._short_path(str(tmp_path / "a" / "b.json")) == "~/a/b.json"
    monkeypatch.chdir(tmp_path)
    assert view_mod._short_path(str(tmp_path / "a" / "b.json")) == "a/b.json"
    assert view_mod._short_path("/elsewhere/x.yaml") == "/elsewhere/x.yaml"


def test_live_table_shows_each_hosts_latest_line_and_progress(monkeypatch):
    from rich.console import Console

    from remoteenv.cli import views as view_mod
    from remoteenv.events import Event

    narrow = Console(file=io.StringIO(), width=WIDTH, height=40, force_terminal=False, color_system=None)
    monkeypatch.setattr(view_mod, "console", lambda: narrow)
    view = view_mod.LiveView("apply envs", ["a", "b"], 2)
    for host in ("a", "b"):
        view.update(Event("host_start", host=host))
        view.update(Event("step_start", host=host, step=0, description="env"))
    view.update(Event("step_output", host="a", step=0, message="Solving environment"))
    view.update(Event("step_output", host="a", step=0, message="Downloading 42/80 MB"))
    view.update(Event("step_output", host="b", step=0, data={"progress": 0.5}))
    narrow.print(view)
    lines = assert_fits(narrow.file.getvalue(), "live table")
    assert line_with(lines, "a", "Downloading 42/80 MB") and not any("Solving" in ln for ln in lines)
    assert line_with(lines, "b", "50%") and "━" in line_with(lines, "b", "50%")
    view.update(Event("step_end", host="a", step=0, status="changed"))
    narrow.file.truncate(0)
    narrow.print(view)
    assert "Downloading" not in narrow.file.getvalue()
