"""A mute as the features and the Slack side see it (bot/features/mutes.py holds the use cases,
bot/store/mutes.py the rows): what it silences, until when, and what `/jobs mute` did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class MuteChange(StrEnum):
    """What one `/jobs mute` did: started a mute, extended the running one, or nothing (a Slack
    retry or replay of the same request, by its trigger_id)."""

    NEW = "new"
    EXTENDED = "extended"
    REPLAY = "replay"


@dataclass(frozen=True)
class Muted:
    """One running mute of a channel: a whole queue (`job_id` "") or one job of it."""

    id: int
    team_id: str
    channel_id: str
    queue: str
    job_id: str
    job_name: str
    until: datetime
    created_at: datetime

    @property
    def label(self) -> str:
        """`ml` or `job bert-1 in ml` (plain text; bot/blocks escapes it)."""
        return f"job {self.job_name or self.job_id} in {self.queue}" if self.job_id else self.queue
