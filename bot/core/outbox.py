"""The outbox's values: what one row owed to Slack says, built in one place."""

from __future__ import annotations

import json
from datetime import datetime


def notice_row(*, team_id: str, channel_id: str, queue: str, key: str, text: str, now: datetime) -> dict[str, object]:
    """An outbox row for an operator notice (provider outage or recovery)."""
    return {
        "alert_id": key,
        "kind": "notice",
        "team_id": team_id,
        "channel_id": channel_id,
        "queue": queue,
        "payload": json.dumps({"text": text}),
        "state": "pending",
        "next_attempt_at": now,
        "created_at": now,
    }


def note_payload(text: str, *, after: str) -> str:
    """A thread-only note's payload: `after` is the alert it follows."""
    return json.dumps({"text": text, "thread_only": True, "after": after})
