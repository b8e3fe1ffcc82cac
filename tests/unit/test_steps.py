"""Steps' check() from facts alone, the registry, the runner's apply rules, reports and events."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from types import SimpleNamespace

import pytest

from remoteenv import events as ev
from remoteenv import report as rp
from remoteenv.facts import HostFacts, Query
from remoteenv.playbook import load_text
from remoteenv.runner import _Run
from remoteenv.steps import CHANGED, FAILED, OK, STEP_TYPES, Change, Param, Result, Step, register
from remoteenv.steps.facts import Facts
from remoteenv.steps.shell import Shell
from remoteenv.steps.upload import Upload


def facts_with(answers: dict[Query, str]) -> HostFacts:
    return HostFacts(home="/home/ada", answers={q.id: a for q, a in answers.items()})


def shell(**params) -> Shell:
    return Shell({"command": "make", **params})


# -- registry ---------------------------------------------------------------------------------
def test_builtin_steps_are_registered():
    assert {"shell", "upload", "facts"} <= set(STEP_TYPES)
    assert STEP_TYPES["shell"] is Shell and Shell.type_name == "shell"


def test_register_refuses_a_second_class_under_one_name():
    with pytest.raises(ValueError, match="registered twice"):
        register("shell")(type("Other", (Step,), {}))


# -- shell ------------------------------------------------------------------------------------
def test_shell_without_guard_always_changes():
    step = shell()
    assert step.queries() == []
    change = step.check(HostFacts())
    assert isinstance(change, Change) and change.summary == "run `make`"
    assert "no guard" in change.reason


def test_shell_creates():
    step = shell(creates="~/out")
    (query,) = step.queries()
    assert query == Query("exists", "~/out")
    assert step.check(facts_with({query: "1"})) is None
    assert step.noop_reason(facts_with({query: "1"})) == "~/out exists"
    assert step.check(facts_with({query: "0"})).reason == "~/out is missing"


def test_shell_relative_paths_are_under_chdir_or_home():
    assert shell(creates="out").queries() == [Query("exists", "~/out")]
    assert shell(creates="out", chdir="~/src").queries() == [Query("exists", "~/src/out")]
    assert shell(creates="out", chdir="src").queries() == [Query("exists", "~/src/out")]
    assert shell(creates="/abs", chdir="~/src").queries() == [Query("exists", "/abs")]


def test_shell_removes():
    step = shell(removes="~/old")
    (query,) = step.queries()
    assert step.check(facts_with({query: "0"})) is None
    assert step.check(facts_with({query: "1"})) is not None


def test_shell_unless_and_only_if():
    unless = shell(unless="test -f done", chdir="~/w")
    (q,) = unless.queries()
    assert q.kind == "cmd" and q.arg == "cd \"$HOME\"/w && eval 'test -f done'"
    with_env = shell(unless="test -f $F", env={"F": "a b"})
    assert with_env.queries()[0].arg == "cd \"$HOME\" && export F='a b'; eval 'test -f $F'"
    assert unless.check(facts_with({q: "0"})) is None
    assert unless.check(facts_with({q: "1"})) is not None

    only_if = shell(only_if="test -f ready")
    (q,) = only_if.queries()
    assert only_if.check(facts_with({q: "0"})) is not None
    assert only_if.check(facts_with({q: "2"})) is None
    assert only_if.noop_reason(facts_with({q: "2"})) == "only_if: exited 2"


def test_shell_unanswered_guard_means_run():
    assert shell(creates="x", unless="true").check(HostFacts()) is not None


def test_shell_describe_uses_name_or_command():
    assert shell().describe() == "shell: make"
    assert Shell({"command": "a\nb"}, name="build").describe() == "build"
    assert Shell({"command": "first line\nsecond"}).describe() == "shell: first line …"


# -- upload -----------------------------------------------------------------------------------
def upload(content: str = "hello\n", mode: str = "0644") -> Upload:
    step = Upload({"dest": "~/.remoteenv/README", "content": content, "mode": mode})
    step.prepare()
    return step


def test_upload_asks_checksum_and_parent():
    assert upload().queries() == [Query("file", "~/.remoteenv/README"), Query("exists", "~/.remoteenv")]


def test_upload_check():
    step = upload()
    file_q = step.queries()[0]
    digest = hashlib.sha256(b"hello\n").hexdigest()
    assert step.check(facts_with({file_q: "-"})).summary == "create ~/.remoteenv/README"
    assert step.check(facts_with({file_q: f"{digest} 644"})) is None
    assert step.noop_reason(HostFacts()) == "~/.remoteenv/README is up to date"
    changed = step.check(facts_with({file_q: f"{'0' * 64} 644"}))
    assert changed.summary == "update ~/.remoteenv/README" and "content differs" in changed.reason
    mode = step.check(facts_with({file_q: f"{digest} 600"}))
    assert mode.reason == "mode is 0600, want 0644"


def test_upload_mode_string_is_validated():
    from remoteenv.errors import ConfigError

    with pytest.raises(ConfigError, match="not an octal number"):
        upload(mode="rw-r--r--")


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_upload_src_that_is_not_a_regular_file_is_refused_before_any_read(tmp_path, kind):
    from remoteenv.errors import ConfigError

    if kind == "device":
        src = "/dev/zero"
    elif kind == "fifo":
        src = str(tmp_path / "fifo")
        os.mkfifo(src)  # reading it would block for ever
    else:
        src = str(tmp_path)
    step = Upload({"dest": "~/x", "src": src})
    with pytest.raises(ConfigError, match=r"not a regular file|a folder") as caught:
        step.prepare()
    assert caught.value.hint


# -- facts ------------------------------------------------------------------------------------
def test_facts_step_never_plans_and_gets_later_queries():
    pb = load_text("steps:\n  - shell: {command: a, creates: x}\n  - facts: {}\n"
                   "  - shell: {command: b, unless: c}\n")
    _first, refresh, last = pb.build(None)
    assert isinstance(refresh, Facts)
    assert refresh.check(HostFacts()) is None
    assert refresh.later_queries == last.queries()
    assert refresh.rechecks_after_change


# -- the runner's apply rules (no SSH: steps that record what they were asked) ----------------
class Recorder(Step):
    PARAMS = (Param("name"), Param("changes", kind=bool), Param("fails", kind=bool),
              Param("guarded", kind=bool))

    def __init__(self, params, calls, **kw):
        super().__init__(params, **kw)
        self.calls = calls
        self.rechecks_after_change = bool(self.params["guarded"])

    def check(self, facts):
        return Change("do it") if self.params["changes"] else None

    def describe(self):
        return self.params["name"]

    def apply(self, conn, facts, io):
        self.calls.append(self.params["name"])
        if self.params["fails"]:
            return Result(FAILED, message="exited 1", output="line1\nboom\n")
        return Result(CHANGED if self.params["changes"] else OK)


def run_steps(specs: list[dict], mode: str = "apply") -> tuple[rp.HostReport, list[str], list[ev.Event]]:
    from remoteenv.playbook import Playbook
    from remoteenv.transport import ConnectOptions

    calls: list[str] = []
    seen: list[ev.Event] = []
    steps = [Recorder(s, calls) for s in specs]
    run = _Run(Playbook("t", []), mode, ConnectOptions(), None, seen.append, threading.Event())
    hr = rp.HostReport("h", steps=[rp.StepReport(i, "recorder", s.describe()) for i, s in enumerate(steps)])
    if mode == "plan":
        run._plan("h", steps, hr, HostFacts(), 0.0)
    else:
        run._conns["h"] = object()  # the host's connection, as if opened for its first change
        run._apply(SimpleNamespace(name="h"), steps, hr, HostFacts(), 0.0, None)
    return hr, calls, seen


def test_unchanged_steps_are_not_applied():
    hr, calls, _ = run_steps([{"name": "a"}, {"name": "b"}])
    assert calls == [] and hr.status == "ok" and [s.status for s in hr.steps] == ["ok", "ok"]


def test_guarded_step_is_rechecked_on_the_host_after_an_earlier_change():
    hr, calls, _ = run_steps([{"name": "a", "changes": True}, {"name": "unguarded"},
                              {"name": "guarded", "guarded": True}])
    assert calls == ["a", "guarded"]
    assert hr.status == "changed"
    assert [s.status for s in hr.steps] == ["changed", "ok", "ok"]


def test_failed_step_stops_the_host():
    hr, calls, seen = run_steps([{"name": "a", "changes": True, "fails": True},
                                 {"name": "b", "changes": True}])
    assert calls == ["a"]
    assert hr.status == "failed" and hr.message == "step 1 (a) failed: exited 1"
    assert hr.steps[0].tail() == ["line1", "boom"]
    assert hr.steps[1].status == "pending"  # the host worker marks these skipped
    end = next(e for e in seen if e.kind == ev.STEP_END)
    assert end.data["output_tail"] == ["line1", "boom"]


def test_plan_records_changes_and_applies_nothing():
    hr, calls, seen = run_steps([{"name": "a", "changes": True}, {"name": "b"}], mode="plan")
    assert calls == []
    assert hr.status == "change" and [s.status for s in hr.steps] == ["change", "ok"]
    assert seen[0].data["change"]["summary"] == "do it"


# -- reports and events -----------------------------------------------------------------------
def make_report(statuses: list[str]) -> rp.RunReport:
    report = rp.RunReport(rp.new_run_id(), "hello", "/p/hello.yaml", "apply")
    for i, status in enumerate(statuses):
        step = rp.StepReport(0, "shell", "say hi", status="failed" if status == "failed" else "changed",
                             output="".join(f"out {n}\n" for n in range(30)))
        report.hosts.append(rp.HostReport(f"h{i:02d}", status=status, steps=[step]))
    return report


@pytest.mark.parametrize(("statuses", "code"), [
    (["ok", "changed"], 0), (["ok", "failed", "unreachable"], 1), (["ok", "unreachable"], 3),
    (["cancelled", "ok"], 0)])
def test_exit_codes(statuses, code):
    assert make_report(statuses).exit_code() == code


def test_report_saved_private_with_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    report = make_report(["ok", "failed"])
    path = rp.save(report)
    assert path == tmp_path / "state" / "runs" / f"{report.run_id}.json" == report.path
    data = json.loads(path.read_text())
    assert data["counts"] == {"ok": 1, "failed": 1} and data["exit_code"] == 1
    assert data["hosts"][1]["steps"][0]["output_tail"] == [f"out {n}" for n in range(10, 30)]
    assert json.loads((path.parent / "last.json").read_text()) == data
    log = path.parent / report.run_id / "h01.log"
    assert "out 0\n" in log.read_text() and "out 29\n" in log.read_text()
    for f in (path, path.parent / "last.json", log):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert rp.hosts_to_retry(data) == ["h01"]
    assert rp.last_run(playbook_path="/p/hello.yaml")["run_id"] == report.run_id
    assert rp.last_run(playbook_path="/p/other.yaml") is None
    assert rp.last_run(playbook_path="/p/hello.yaml", mode="plan") is None


def test_event_json_leaves_out_absent_values():
    event = ev.Event(ev.STEP_END, run_id="r", host="h01", step=0, status="ok", elapsed=0.12345,
                     data={"counts": {"ok": 1}})
    out = event.to_json()
    assert out["event"] == "step_end" and out["host"] == "h01" and out["step"] == 0
    assert out["elapsed"] == 0.123 and out["counts"] == {"ok": 1}
    assert "message" not in out and "description" not in out
    json.dumps(out)


def test_a_host_whose_facts_came_without_a_connection_connects_for_its_first_change_only():
    from remoteenv.errors import HostUnreachable
    from remoteenv.playbook import Playbook
    from remoteenv.transport import ConnectOptions

    calls: list[str] = []
    steps = [Recorder({"name": "a"}, calls), Recorder({"name": "b", "changes": True}, calls),
             Recorder({"name": "c", "changes": True}, calls)]
    run = _Run(Playbook("t", []), "apply", ConnectOptions(), None, None, threading.Event())
    opened: list[str] = []
    run.fleet.connect = lambda host: opened.append(host.name) or object()
    hr = rp.HostReport("h", steps=[rp.StepReport(i, "recorder", s.describe()) for i, s in enumerate(steps)])
    run._apply(SimpleNamespace(name="h"), steps, hr, HostFacts(), 0.0, None)
    assert calls == ["b", "c"] and opened == ["h"]  # one connection, opened for step b

    # The host went away between its facts and its first change: unreachable, the step failed, no more.
    def down(host):
        raise HostUnreachable(host.name, "no route to host")

    calls.clear()
    run = _Run(Playbook("t", []), "apply", ConnectOptions(), None, None, threading.Event())
    run.fleet.connect = down
    hr = rp.HostReport("h", steps=[rp.StepReport(i, "recorder", s.describe()) for i, s in enumerate(steps)])
    run._apply(SimpleNamespace(name="h"), steps, hr, HostFacts(), 0.0, None)
    assert calls == [] and hr.status == rp.HOST_UNREACHABLE and "no route to host" in hr.message
    assert [s.status for s in hr.steps][:2] == ["ok", "failed"]
