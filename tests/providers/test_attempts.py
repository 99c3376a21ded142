"""Attempts of jobs their provider retries: what a Describe or a listing says, as `extra` and note text."""

from __future__ import annotations

from typing import Any

import pytest

from providers.alibaba_pai import parse_restarts
from providers.attempts import ATTEMPT, RETRY_CAUSE, attempt_of, carry, retry_text
from providers.aws_batch import attempts_extra
from providers.model import Job, JobStatus


def job(status: JobStatus = JobStatus.RUNNING, **extra: Any) -> Job:
    return Job(queue="q", id="j", name="train", status=status, native_status=status.value, extra=extra)


def attempt(stopped: int | None = None, reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"startedAt": 1}
    if stopped is not None:
        out["stoppedAt"] = stopped
    if reason is not None:
        out["statusReason"] = reason
    return out


SPOT = "Host EC2 (instance i-0abc) terminated."


def test_batch_describe_between_attempts_is_on_the_next_attempt() -> None:
    raw = {"attempts": [attempt(2, SPOT)], "retryStrategy": {"attempts": 3}}
    extra = attempts_extra(raw, JobStatus.QUEUED)
    assert extra[ATTEMPT] == 2 and extra["attempts_max"] == 3 and extra[RETRY_CAUSE] == "spot_interruption"
    assert retry_text(job(JobStatus.QUEUED, **extra)) == "attempt 1 of 3 failed: spot_interruption, retrying"


def test_batch_describe_of_an_ended_job_counts_its_last_attempt_as_final() -> None:
    raw = {"attempts": [attempt(2, SPOT), attempt(3, "AlgorithmError: NaN")], "retryStrategy": {"attempts": 2}}
    extra = attempts_extra(raw, JobStatus.FAILED)
    assert extra[ATTEMPT] == 2 and extra[RETRY_CAUSE] == "spot_interruption"
    assert retry_text(job(JobStatus.FAILED, **extra)) is None  # the final outcome is an alert, not a note


def test_a_job_never_retried_gets_no_extra() -> None:
    assert attempts_extra({"attempts": [attempt()]}, JobStatus.RUNNING) == {}
    assert attempts_extra({"attempts": []}, JobStatus.SUCCEEDED) == {}
    assert attempt_of(job()) == 1 and retry_text(job()) is None


def test_more_failed_attempts_than_the_strategy_allows_drop_the_of() -> None:
    # Capacity retries do not count against retryStrategy.attempts.
    raw = {"attempts": [attempt(1), attempt(2), attempt(3)], "retryStrategy": {"attempts": 2}}
    extra = attempts_extra(raw, JobStatus.QUEUED)
    assert retry_text(job(JobStatus.QUEUED, **extra)) == "attempt 3 failed: unknown, retrying"


def test_carry_keeps_what_the_stored_job_knew() -> None:
    stored = job(attempt=2, retry_cause="out_of_memory")
    assert carry(job(), stored).extra == {"attempt": 2, "retry_cause": "out_of_memory"}
    assert carry(job(attempt=3), stored).extra == {"attempt": 3}
    assert carry(job(), None).extra == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", (2, None)), (2, (2, None)), ("1/3", (1, 3)), (None, (0, None)), ("", (0, None)), ("n/a", (0, None))],
)
def test_pai_restart_times(value: object, expected: tuple[int, int | None]) -> None:
    assert parse_restarts(value) == expected
