"""Run reports do not pile up: saving one keeps the newest KEEP_RUNS runs, reports and logs alike."""

from __future__ import annotations

import time

import pytest

from remoteenv import report as rp


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def make_report(run_id: str, hosts=("a", "b")) -> rp.RunReport:
    report = rp.RunReport(run_id, "hello", "/p/hello.yaml", "apply")
    report.hosts = [rp.HostReport(h, status=rp.HOST_FAILED if h == "b" else rp.HOST_OK) for h in hosts]
    return report


def run_id(n: int) -> str:
    """Ids as new_run_id makes them, in order: n seconds into a day."""
    return f"20260101-{n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}.000-{n:06x}"


def test_saving_keeps_the_newest_fifty_runs_and_their_logs(state_dir):
    assert rp.KEEP_RUNS == 50
    runs = state_dir / "runs"
    ids = [run_id(n) for n in range(57)]
    for i in ids:
        rp.save(make_report(i))
    kept = sorted(p.stem for p in runs.glob("*.json") if p.name != "last.json")
    assert kept == ids[-50:]
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ids[-50:]
    for i in ids[-50:]:
        assert sorted(p.name for p in (runs / i).iterdir()) == ["a.log", "b.log"]
    assert rp.load(runs / "last.json")["run_id"] == ids[-1]
    # --retry-failed still finds the last apply.
    last = rp.last_run(playbook_path="/p/hello.yaml")
    assert last is not None and last["run_id"] == ids[-1] and rp.hosts_to_retry(last) == ["b"]


def test_real_run_ids_sort_by_time_so_the_oldest_go(state_dir):
    first = rp.new_run_id()
    rp.save(make_report(first))
    time.sleep(0.002)
    rp.prune(state_dir / "runs", keep=1, current=None)
    assert (state_dir / "runs" / f"{first}.json").exists()
    second = rp.new_run_id()
    assert second > first
    rp.save(make_report(second))
    rp.prune(state_dir / "runs", keep=1)
    assert not (state_dir / "runs" / f"{first}.json").exists()
    assert not (state_dir / "runs" / first).exists()
    assert (state_dir / "runs" / f"{second}.json").exists()


def test_the_run_being_saved_is_never_pruned_and_other_files_stay(state_dir):
    runs = state_dir / "runs"
    for n in range(10, 60):
        rp.save(make_report(run_id(n)))
    (runs / "notes.txt").write_text("mine\n")
    (runs / "keep-me.json").write_text("{}\n")
    # A clock set back: the new run sorts first, yet it is the one just written.
    early = run_id(1)
    rp.save(make_report(early))
    assert (runs / f"{early}.json").exists() and (runs / early / "a.log").exists()
    assert (runs / "notes.txt").exists() and (runs / "keep-me.json").exists()
    assert len([p for p in runs.glob("2026*.json")]) == 50  # the one just saved and the newest 49 others
    assert not (runs / f"{run_id(10)}.json").exists()


def test_pruning_tolerates_runs_already_gone(state_dir):
    runs = state_dir / "runs"
    for n in range(5):
        rp.save(make_report(run_id(n)))
    # Another process pruned the log folder first.
    import shutil

    shutil.rmtree(runs / run_id(0))
    assert rp.prune(runs, keep=3) == [run_id(0), run_id(1)]
    assert sorted(p.stem for p in runs.glob("2026*.json")) == [run_id(n) for n in (2, 3, 4)]


def test_a_run_prunes_as_it_starts_and_ends_with_the_newest_50(state_dir):
    runs = state_dir / "runs"
    for n in range(10, 60):
        rp.save(make_report(run_id(n)))
    new = run_id(100)
    rp.start_pruning(new).join()  # before the run has written anything
    assert len(list(runs.glob("2026*.json"))) == 49 and not (runs / run_id(10)).exists()
    rp.save(make_report(new))
    assert len(list(runs.glob("2026*.json"))) == 50 and (runs / new / "a.log").exists()
