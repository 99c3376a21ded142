"""Outbox ids: one builder per format. The outbox's unique key is (team, channel, alert id), so an
id that is the same for the same news makes every write of it idempotent: a re-poll, a restart or
a second worker writes nothing twice. Each format says what "the same news" is: a status change
(hashed from the job and the change), a flag (job and kind), a retry note (the failed attempt), a
note that follows an alert (the alert's id), a notice (the poll or failure that caused it), a
digest (the rows it folds, or a schedule's period), a workflow step's completion (its run)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from bot.core.subscriptions import FlagKind


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def transition_id(queue: str, job_id: str, old: str, new: str, updated: str) -> str:
    """A status change: the same change always gets the same id, across crashes and re-polls."""
    return _digest([queue, job_id, old, new, updated])


def flag_id(kind: FlagKind, queue: str, job_id: str) -> str:
    """A slow or stuck flag: once per job and kind."""
    return f"{kind}:{queue}:{job_id}"


def retry_id(queue: str, job_id: str, failed_attempt: int) -> str:
    """The note of one failed attempt of a retried job: once per attempt."""
    return f"retry:{queue}:{job_id}:{failed_attempt}"


def limit_id(queue: str, job_id: str, percent: int) -> str:
    """A running job's warning that it used `percent` of its runtime limit: once per job and threshold."""
    return f"limit:{queue}:{job_id}:{percent}"


FOLLOW_UP = "followup:"  # the prefix of a follow-up's id


def follow_up_id(alert_id: str) -> str:
    """The follow-up of an unclaimed failure alert `alert_id` (bot/pipeline/followup.py): once per
    alert and channel."""
    return f"{FOLLOW_UP}{alert_id}"


def owner_note_id(alert_id: str) -> str:
    """The owner's mention in the thread of the alert `alert_id`."""
    return f"owner:{alert_id}"


def logs_id(alert_id: str) -> str:
    """The log tail in the thread of the failure alert `alert_id`."""
    return f"logs:{alert_id}"


def stop_note_id(request_id: int, at: datetime) -> str:
    """The note that a stop was requested (stop request `request_id`, at `at`)."""
    return f"stop-{request_id}-{int(at.timestamp())}"


def dm_end_id(alert_id: str) -> str:
    """A watcher's DM that the job of `alert_id` ended."""
    return f"dm-end:{alert_id}"


def dm_run_id(queue: str, job_id: str) -> str:
    """A watcher's DM that a job started running: once per job, however often it runs."""
    return "dm-run:" + hashlib.sha256(f"{queue}|{job_id}".encode()).hexdigest()[:32]


def dm_owner_id(alert_id: str) -> str:
    """An owner's DM that the job of `alert_id` ended."""
    return f"dm-owner:{alert_id}"


def step_id(execution_id: str) -> str:
    """The completion of one Workflow Builder step run (a `function_execution_id`): once per run."""
    return f"step:{execution_id}"


def outage_id(queue: str, at: datetime) -> str:
    """The notice that `queue` stopped polling (the failure at `at` crossed the threshold)."""
    return f"outage:{queue}:{at.isoformat()}"


def recovered_id(queue: str, poll_started: datetime) -> str:
    """The notice that `queue` polls again (the poll that started at `poll_started`)."""
    return f"recovered:{queue}:{poll_started.isoformat()}"


def unmuted_id(mutes: Iterable[tuple[int | None, datetime]]) -> str:
    """The summary of the mutes (id, created at) that ended together."""
    return "unmuted:" + ",".join(f"{mute_id}@{created.isoformat()}" for mute_id, created in mutes)


class DigestOrigin(StrEnum):
    """Why a digest was written: a burst folded at delivery, quiet hours ended, or a schedule."""

    BURST = "digest"
    AWAY = "away"
    SCHEDULE = "sched"


def digest_id(origin: DigestOrigin, alert_ids: Iterable[str]) -> str:
    """A digest folding the rows `alert_ids` (burst or quiet hours)."""
    return f"{origin.value}:{_digest(alert_ids)}"


def schedule_digest_id(queue: str, period_end: datetime) -> str:
    """A scheduled digest of `queue`'s period ending at `period_end`: once per period."""
    return f"{DigestOrigin.SCHEDULE.value}:{queue}:{period_end.isoformat()}"


def digest_part_id(digest: str, n: int) -> str:
    """The n-th thread reply of the digest `digest`."""
    return f"{digest}:{n}"


def origin_of(alert_id: str) -> DigestOrigin | None:
    """Which kind of digest an id names, or None when it names none."""
    head = alert_id.split(":", 1)[0]
    return next((o for o in DigestOrigin if o.value == head), None)
