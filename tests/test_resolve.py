"""One rule names a job: id, the provider's own identifiers, or name, in any case (bot/store/refs.py).

The refs come from real adapter output: each provider's adapter lists its simulator, the real
pipeline (diff, commit_poll) stores the jobs, and every identifier a user may type resolves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.core.errors import NoSuchJob
from bot.pipeline.diff import diff
from bot.pipeline.enqueue import PollCommit, commit_poll
from bot.sim.batch import BatchSim
from bot.sim.slack import FakeSlack
from bot.store.db import Database
from bot.store.refs import resolve_job
from bot.store.tables import JobRef, Mute
from providers import Job, JobStatus
from tests.harness import Bot, sim_queue, text_of
from tests.providers.worlds import WORLDS

Named = list[tuple[str, str]]  # (the id the adapter reports, something a user may type for it)


def sagemaker(sim: Any) -> Named:
    job = sim.add("Train-Alpha", status="Completed", secondary="Completed")
    sim.add("train-beta", status="Completed", secondary="Completed")
    return [(job.arn, job.arn), (job.arn, job.name)]


def batch(sim: Any) -> Named:
    job = sim.add("Svc-Alpha", "RUNNING")
    sim.add("svc-beta", "RUNNING")
    return [(job.arn, job.job_id), (job.arn, job.name), (job.arn, job.arn)]


def aitems(sim: Any) -> Named:
    train = sim.add("personalRecommend", "completed", version="V20240101A")
    sim.add("relatedItem", "completed", version="V20240102B")
    return [
        (train.ident, train.version),
        (train.ident, train.ident),
        (train.ident, f"personalRecommend {train.version}"),
    ]


def pai(sim: Any) -> Named:
    training = sim.add("Run-Alpha", "Running", kind="TrainingService")
    dlc = sim.add("run-beta", "Running", kind="DLC")
    return [
        (training.ident, training.ident),
        (training.ident, training.name),
        (training.ident, training.source_id),
        (dlc.ident, dlc.source_id),
    ]


def modzy(sim: Any) -> Named:
    job = sim.add("ocr", "COMPLETED")
    sim.add("ocr", "COMPLETED")
    return [(job.ident, job.ident)]


CASES: dict[str, Callable[[Any], Named]] = {
    "sagemaker": sagemaker,
    "batch": batch,
    "aitems": aitems,
    "pai": pai,
    "modzy": modzy,
}


@pytest.mark.parametrize("provider", sorted(CASES))
def test_each_natural_identifier_resolves_in_any_case(provider: str, db: Database) -> None:
    world = WORLDS[provider]()
    try:
        named = CASES[provider](world.sim)
        jobs = world.source().list_jobs(since=None, live=[])
    finally:
        world.close()
    now = datetime.now(UTC)
    commit_poll(
        db, PollCommit(queue="contract", started_at=now, result=diff({}, jobs, baseline=True), now=now), fence=None
    )
    with db.read() as session:
        for job_id, typed in named:
            for variant in (typed, typed.upper(), typed.lower()):
                found = resolve_job(session, "contract", variant)
                assert found.job.id == job_id, (typed, variant)
                assert found.others == 0, variant
        with pytest.raises(NoSuchJob, match=r"no job `nope` in queue `contract` \(try `/jobs list contract`\)"):
            resolve_job(session, "contract", "nope")


@pytest.fixture
def gpu(tmp_path: Path, database_url: str, slack: FakeSlack) -> Iterator[tuple[Bot, BatchSim]]:
    q = sim_queue("batch")
    bot = Bot(tmp_path, slack, q.queue("gpu"), env=q.env, database_url=database_url)
    yield bot, q.sim
    bot.close()
    q.sim.stop()


def muted_job(bot: Bot) -> str:
    with bot.runtime.db.read() as session:
        return session.exec(select(Mute.job_id)).one()


def test_status_mute_and_unmute_pick_the_same_job_among_namesakes(gpu: tuple[Bot, BatchSim]) -> None:
    """Jobs sharing a name and a creation time: the smallest id, for every command."""
    bot, sim = gpu
    created = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp() * 1000)
    jobs = [sim.add("nightly", "RUNNING", created_ms=created) for _ in range(3)]
    first = min(j.arn for j in jobs)
    bot.cycle()
    status = text_of(bot.command("status gpu NIGHTLY"))
    assert f"*Id:* `{first}`" in status and "2 other job(s) match too" in status
    bot.command("mute gpu Nightly 1h")
    assert muted_job(bot) == first
    assert "Unmuted job nightly in gpu" in text_of(bot.command("unmute gpu nightly"))


def test_a_provider_id_beats_another_jobs_name(gpu: tuple[Bot, BatchSim]) -> None:
    """A job named like another job's jobId: the jobId names the other job, in status and mute."""
    bot, sim = gpu
    target = sim.add("train", "RUNNING", created_ms=1_000)
    sim.add(target.job_id, "RUNNING", created_ms=2_000)  # newer, named after target's jobId
    bot.cycle()
    status = text_of(bot.command(f"status gpu {target.job_id.upper()}"))
    assert f"*Id:* `{target.arn}`" in status and "1 other job(s) match too" in status
    bot.command(f"mute gpu {target.job_id} 1h")
    assert muted_job(bot) == target.arn
    assert "Unmuted job train in gpu" in text_of(bot.command(f"unmute gpu {target.job_id.upper()}"))


def test_unmute_picks_among_the_muted_jobs(gpu: tuple[Bot, BatchSim]) -> None:
    """A newer namesake appears after the mute: `unmute <name>` still ends the muted one."""
    bot, sim = gpu
    old = sim.add("nightly", "RUNNING", created_ms=1_000)
    bot.cycle()
    bot.command("mute gpu nightly 1h")
    assert muted_job(bot) == old.arn
    sim.add("nightly", "RUNNING", created_ms=2_000)
    bot.cycle()
    assert "Unmuted job nightly in gpu" in text_of(bot.command("unmute gpu NIGHTLY"))
    with bot.runtime.db.read() as session:
        assert session.exec(select(Mute)).all() == []


def test_an_id_typed_in_its_exact_case_wins_over_one_equal_in_another_case(db: Database) -> None:
    """Ids that differ only by case (a button sends the exact id): each names itself."""
    now = datetime.now(UTC)
    jobs = [
        Job(queue="q", id=ident, name="same", status=JobStatus.RUNNING, native_status="Running", created_at=now)
        for ident in ("Job-A", "job-a")
    ]
    commit_poll(db, PollCommit(queue="q", started_at=now, result=diff({}, jobs, baseline=True), now=now), fence=None)
    with db.read() as session:
        assert resolve_job(session, "q", "Job-A").job.id == "Job-A"
        assert resolve_job(session, "q", "job-a").job.id == "job-a"
        found = resolve_job(session, "q", "JOB-A")  # neither exact: the smallest id
        assert (found.job.id, found.others, found.matched) == ("Job-A", 1, "id")


def test_a_job_with_a_lowercase_id_and_name_costs_no_job_ref_row(db: Database) -> None:
    """Found through the snapshot's own indexes, in any case; only capitals and provider ids get rows."""
    now = datetime.now(UTC)
    jobs = [
        Job(queue="q", id="9f1c-ab", name="9f1c-ab (ocr)", status=JobStatus.RUNNING, native_status="X"),
        Job(queue="q", id="Train/V1", name="train v1", status=JobStatus.RUNNING, native_status="X", refs=("V1",)),
    ]
    commit_poll(db, PollCommit(queue="q", started_at=now, result=diff({}, jobs, baseline=True), now=now), fence=None)
    with db.read() as session:
        rows = {(r.job_id, r.ref, r.rank) for r in session.exec(select(JobRef))}
        assert rows == {("Train/V1", "train/v1", 0), ("Train/V1", "v1", 1)}
        for typed, job_id, matched in [
            ("9F1C-AB", "9f1c-ab", "id"),
            ("9f1c-AB (OCR)", "9f1c-ab", "name"),
            ("TRAIN/v1", "Train/V1", "id"),
            ("v1", "Train/V1", "provider id"),
            ("Train V1", "Train/V1", "name"),
        ]:
            found = resolve_job(session, "q", typed)
            assert (found.job.id, found.matched) == (job_id, matched), typed
