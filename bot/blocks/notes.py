"""The text of thread notes: an owner's mention when their job fails or times out; a running job
nearing its runtime limit."""

from __future__ import annotations

from datetime import datetime

from bot.blocks.text import safe, when
from bot.core.history import short
from bot.core.ids import USER_RE
from providers import Job, JobStatus


def mention_text(user: str, job: Job) -> str:
    """The thread note that tells an owner their job failed; `user` must be a validated id."""
    assert USER_RE.match(user), "only a validated Slack user id is ever mentioned"
    what = "timed out" if job.status is JobStatus.TIMED_OUT else "failed"
    return f":bust_in_silhouette: <@{user}> your job *{safe(job.name)}* {what}."


def limit_text(job: Job, percent: int, ends: datetime | None) -> str:
    """`:alarm_clock: *bert-ft* has used 95 % of its 24 h limit; it will be stopped at 14:05.`"""
    limit = job.extra.get("limit_s")
    size = f" {short(float(limit))}" if isinstance(limit, int | float) else ""
    stop = f"; it will be stopped at {when(ends)}" if ends is not None else ""
    return f":alarm_clock: *{safe(job.name)}* has used {percent} % of its{size} runtime limit{stop}."
