"""The text of thread notes: an owner's mention when their job fails or times out."""

from __future__ import annotations

from bot.blocks.text import safe
from bot.core.ids import USER_RE
from providers import Job, JobStatus


def mention_text(user: str, job: Job) -> str:
    """The thread note that tells an owner their job failed; `user` must be a validated id."""
    assert USER_RE.match(user), "only a validated Slack user id is ever mentioned"
    what = "timed out" if job.status is JobStatus.TIMED_OUT else "failed"
    return f":bust_in_silhouette: <@{user}> your job *{safe(job.name)}* {what}."
