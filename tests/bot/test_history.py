"""History statistics as pure functions: families, percentiles, ETA, thresholds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.blocks import render
from bot.core import history
from bot.store import history as run_history
from providers import Job, JobStatus

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("nightly-train-2024-05-01-1234", "nightly-train"),
        ("resnet50-finetune-17", "resnet50-finetune"),
        ("Llama_SFT.run42", "llama-sft"),
        ("sft-a1b2c3d4e5", "sft"),
        ("20240501", "20240501"),
        ("train", "train"),
        ("0b6c1e2a-9d1f-4c6e-8f0a-3b2d1c4e5f60 (ocr)", "ocr"),  # Modzy: the job's UUID and its model
        ("eval-0B6C1E2A-9D1F-4C6E-8F0A-3B2D1C4E5F60-v2", "eval"),
    ],
)
def test_default_family_rule(name: str, family: str) -> None:
    assert history.family_of(name) == family


def test_family_override_regex() -> None:
    pattern = re.compile(r"^team-([a-z]+)-")
    assert history.family_of("team-vision-exp-9", pattern) == "vision"
    assert history.family_of("other-9", pattern) == "other"  # no match: the default rule


def test_percentiles() -> None:
    assert history.percentile([10.0], 90) == 10.0
    assert history.percentile([0.0, 10.0], 50) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert history.percentile(values, 50) == pytest.approx(50.5)
    assert history.percentile(values, 90) == pytest.approx(90.1)
    with pytest.raises(ValueError):
        history.percentile([], 50)


def test_window_keeps_the_newest_samples_sorted() -> None:
    window = history.Window(3, [5.0, 1.0, 4.0, 2.0])  # 5 is the oldest and falls out
    assert list(window.order) == [1.0, 4.0, 2.0] and window.sorted == [1.0, 2.0, 4.0]
    window.add(9.0)  # 1 falls out
    assert window.sorted == [2.0, 4.0, 9.0] and len(window) == 3
    assert history.usual_sorted(window.sorted, []) == history.usual([9.0, 2.0, 4.0], [])


def test_baseline_rows_skip_families_of_one_and_keep_the_newest() -> None:
    def done(n: int) -> Job:
        return Job(
            queue="q", id=str(n), name=f"j{n}", status=JobStatus.SUCCEEDED, native_status="Completed",
            created_at=NOW, ended_at=NOW + timedelta(minutes=n),
        )  # fmt: skip

    pairs = [(done(n), f) for n, f in enumerate(["a", "b", "a", "c", "a"])]
    assert sorted(str(r["job_id"]) for r in run_history.baseline_rows(pairs)) == ["0", "2", "4"]
    many = [(done(n), "a") for n in range(history.KEEP + 5)]
    kept = run_history.baseline_rows(many)
    assert len(kept) == history.KEEP and min(int(str(r["job_id"])) for r in kept) == 5


def running(started_min_ago: float) -> Job:
    return Job(
        queue="q", id="1", name="train-7", status=JobStatus.RUNNING, native_status="InProgress",
        created_at=NOW - timedelta(minutes=started_min_ago + 1), started_at=NOW - timedelta(minutes=started_min_ago),
    )  # fmt: skip


def test_no_comparison_without_enough_history() -> None:
    few = history.usual([600.0] * 4, [60.0] * 4)
    assert not few.enough
    assert history.eta(running(5), few) is None
    assert history.slow_after(few, history.Limits()) is None and history.stuck_after(few, history.Limits()) is None
    assert history.slow_for(running(500), few, NOW) is None
    assert history.outside_usual(6000.0, few) is None


def test_eta_slow_and_outside() -> None:
    u = history.usual([600.0] * 5 + [1200.0] * 5, [60.0] * 10)  # p50 900 s, p90 1200 s
    assert u.enough and u.p90 == 1200.0
    assert history.eta(running(5), u) == NOW - timedelta(minutes=5) + timedelta(seconds=u.p50)
    # max(1.5 x 1200, 1200 + 300) = 1800 s: the factor sets it
    assert history.slow_after(u, history.Limits()) == history.Threshold(1800.0, floored=False)
    assert history.slow_for(running(29), u, NOW) is None  # 1740 s < 1800
    assert history.slow_for(running(31), u, NOW) == 1860.0
    assert history.slow_for(running(31), u, NOW, history.Limits(slow_factor=2.0)) is None
    assert history.outside_usual(900.0, u) is None
    assert history.outside_usual(2070.0, u) == pytest.approx(2.3)


def test_slow_floor_holds_a_short_family_back() -> None:
    u = history.usual([60.0] * 10, [])  # a family of one-minute runs: 1.5 x p90 is 90 s
    after = history.slow_after(u, history.Limits())
    assert after == history.Threshold(60.0 + history.SLOW_FLOOR, floored=True)  # p90 + 5 min
    assert history.slow_for(running(5), u, NOW) is None  # 2.5 x p90 but within the floor
    assert history.slow_for(running(7), u, NOW) == 420.0
    assert history.slow_since(running(7), after) == NOW - timedelta(minutes=1)
    degenerate = history.usual([0.0] * 10, [])
    assert history.slow_after(degenerate, history.Limits()) == history.Threshold(history.SLOW_FLOOR, floored=True)


def queued(minutes_ago: float) -> Job:
    return Job(
        queue="q", id="2", name="j", status=JobStatus.QUEUED, native_status="RUNNABLE",
        created_at=NOW - timedelta(minutes=minutes_ago),
    )  # fmt: skip


def test_stuck_threshold() -> None:
    u = history.usual([], [60.0] * 5 + [300.0] * 5)  # wait p95 300 s: the 10 min floor sets it
    assert history.stuck_after(u, history.Limits()) == history.Threshold(600.0, floored=True)
    assert history.stuck_for(queued(48), u, NOW) == 48 * 60
    assert history.stuck_for(queued(4), u, NOW) is None
    assert history.stuck_for(queued(11), u, NOW, history.Limits(stuck_factor=3.0)) is None  # 900 s
    long = history.usual([], [3600.0] * 10)  # an hour's wait is usual: the factor sets it
    assert history.stuck_after(long, history.Limits()) == history.Threshold(3600.0, floored=False)
    assert history.stuck_for(queued(59), long, NOW) is None
    assert history.stuck_since(queued(59), history.Threshold(3600.0, floored=False)) == NOW + timedelta(minutes=1)


def test_degenerate_waits_are_not_stuck_before_the_floor() -> None:
    """Every recorded wait near zero: p95 is under a second, the floor decides."""
    u = history.usual([], [0.0] * 900 + [0.4] * 100)
    assert u.wait_p95 < 1
    after = history.stuck_after(u, history.Limits())
    assert after == history.Threshold(history.STUCK_FLOOR, floored=True)
    assert history.stuck_for(queued(0.5), u, NOW) is None
    assert history.stuck_for(queued(9.9), u, NOW) is None
    assert history.stuck_for(queued(10.1), u, NOW) == pytest.approx(606.0)
    assert history.stuck_for(queued(10.1), u, NOW, history.Limits(stuck_floor=900.0)) is None
    assert history.stuck_words(26 * 60, after, u, history.Limits()) == (
        "queued 26 min, past its threshold of 10 min (usually under 0 s; floor 10 min)"
    )


def test_threshold_words_say_what_set_the_threshold() -> None:
    u = history.usual([3780.0] * 10, [40.0] * 10)  # p90 1 h 03, p95 wait 40 s
    limits = history.Limits()
    slow = history.slow_after(u, limits)
    assert slow is not None and not slow.floored
    assert history.slow_words(7800.0, slow, u, limits) == (
        "running 2 h 10, past its threshold of 1 h 34 (1.5 × p90 1 h 03)"
    )
    short_runs = history.usual([480.0] * 10, [5400.0] * 10)  # p90 8 min, p95 wait 1 h 30
    floored = history.slow_after(short_runs, limits)
    assert floored is not None and floored.floored
    assert history.slow_words(960.0, floored, short_runs, limits) == (
        "running 16 min, past its threshold of 13 min (p90 8 min + floor 5 min)"
    )
    stuck = history.stuck_after(short_runs, limits)
    assert stuck is not None and not stuck.floored
    assert history.stuck_words(7800.0, stuck, short_runs, limits) == (
        "queued 2 h 10, past its threshold of 1 h 30 (usually under 1 h 30)"
    )
    twice = history.Limits(stuck_factor=2.0)
    stuck = history.stuck_after(short_runs, twice)
    assert stuck is not None
    assert history.stuck_words(4 * 3600.0, stuck, short_runs, twice) == (
        "queued 4 h 00, past its threshold of 3 h 00 (2 × p95 wait 1 h 30)"
    )


def test_the_queue_keys_default_to_the_history_limits() -> None:
    from providers.sagemaker import SageMakerQueue

    config = SageMakerQueue(name="q", region="us-east-1")
    limits = history.Limits()
    assert (config.slow_factor, config.slow_floor, config.stuck_factor, config.stuck_floor) == (
        limits.slow_factor,
        limits.slow_floor,
        limits.stuck_factor,
        limits.stuck_floor,
    )


def test_card_shows_duration_against_history() -> None:
    extra: dict[str, str | int | float | bool | None] = {
        "usual_runs": 9, "usual_p10": 1500.0, "usual_p50": 2100.0, "usual_p90": 4200.0
    }  # fmt: skip
    job = running(42).model_copy(update={"extra": extra, "updated_at": NOW})
    line = render.usual_line(job)
    assert line.startswith("running 42 min · usually 35 min (p50), 1 h 10 (p90) · ETA <!date^")
    ended = NOW - timedelta(minutes=42) + timedelta(seconds=4830)
    done = job.model_copy(update={"status": JobStatus.SUCCEEDED, "ended_at": ended})
    assert render.usual_line(done) == "took 2.3× the usual (35 min, p50)"
    assert render.usual_line(running(42)) == ""  # no history: nothing claimed


def test_history_keeps_the_newest_runs_of_each_family(tmp_path: Path) -> None:
    from sqlmodel import select

    from bot.store.db import Database
    from bot.store.tables import RunHistory

    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    db.create_all()

    def done(n: int, family: str) -> Job:
        start = NOW + timedelta(minutes=n)
        return Job(
            queue="q", id=f"{family}-{n}", name=f"{family}-{n}", status=JobStatus.SUCCEEDED, native_status="Completed",
            created_at=start, started_at=start, ended_at=start + timedelta(seconds=60 + n),
        )  # fmt: skip

    for first in (0, 150):  # two cycles: the second pushes the family past KEEP
        with db.write() as session:
            jobs = [done(n, "train") for n in range(first, first + 150)] + [done(first, "eval")]
            rows = [r for j in jobs if (r := run_history.history_row(j, history.family_of(j.name)))]
            run_history.record(session, rows)
    with db.read() as session:
        kept = session.exec(select(RunHistory.job_id).where(RunHistory.family == "train")).all()
        usual = run_history.load(session, "q", ["train", "eval"])
    assert len(kept) == history.KEEP and "train-299" in kept and "train-99" not in kept and "train-100" in kept
    assert usual["train"].runs == history.KEEP and usual["eval"].runs == 2
    db.dispose()
