"""StepIO: lines as they come, to the log at once and to watchers at a bounded rate."""

from __future__ import annotations

import io

from remoteenv.steps.io import LINE_LIMIT, StepIO


def collect(every: float = 0.0):
    log = io.StringIO()
    told: list[tuple[str | None, float | None]] = []
    return StepIO(log, lambda line, frac: told.append((line, frac)), every), log, told


def test_lines_split_across_chunks_and_carriage_returns():
    out, log, told = collect()
    for chunk in ("Solving env", "ironment\nDownloading 1/8", "0 MB\rDownloading 42/80 MB\r", "\r\ndone"):
        out.write(chunk)
    assert log.getvalue() == "Solving environment\nDownloading 1/80 MB\nDownloading 42/80 MB\n\n"
    out.flush()
    assert log.getvalue().endswith("done\n")
    assert [line for line, _ in told] == ["Solving environment", "Downloading 1/80 MB", "Downloading 42/80 MB",
                                          "done"]
    assert out.output() == "Solving environment\nDownloading 1/80 MB\rDownloading 42/80 MB\r\r\ndone"


def test_watchers_get_at_most_one_line_per_interval_and_the_latest_at_the_end():
    out, log, told = collect(every=3600)
    for n in range(1000):
        out.write(f"line {n}\n")
    assert len(log.getvalue().splitlines()) == 1000  # the log has every line
    assert [line for line, _ in told] == ["line 0"]
    out.flush()
    assert [line for line, _ in told] == ["line 0", "line 999"]


def test_progress_is_clamped_and_long_lines_are_cut_for_watchers():
    out, log, told = collect()
    out.progress(1.5, "almost")
    out.progress(-1)
    out.write("x" * (LINE_LIMIT * 2) + "\n")
    assert told[0] == ("almost", 1.0) and told[1] == (None, 0.0)
    assert len(told[2][0]) == LINE_LIMIT and told[2][0].endswith("…")
    assert log.getvalue().splitlines()[-1] == "x" * (LINE_LIMIT * 2)


def test_blank_lines_are_logged_but_not_told():
    out, log, told = collect()
    out.write("\n\n  \nreal\n")
    assert told == [("real", None)] and log.getvalue() == "\n\n  \nreal\n"
