"""A job's card as the unfurl of its console link (docs/slack-native.md §Job links that unfurl):
the alert card as the job stands now (status, duration against its usual, cause, details), its
owner as plain text (an unfurl never mentions anyone), and the buttons of an alert (Stop, Mute,
Watch, console), which the same listeners answer."""

from __future__ import annotations

from typing import Any

from bot.blocks.alerts import parent_message
from bot.blocks.text import context, safe
from bot.core.owners import OWNER_KEY
from providers import Job


def unfurl_card(job: Job, *, stop_by: str = "") -> dict[str, Any]:
    """What `chat.unfurl` attaches under one link: `{"blocks": [...]}`."""
    message = parent_message(job, stop_by=stop_by)
    blocks = list(message.blocks)
    owner = job.extra.get(OWNER_KEY)
    if owner:
        blocks.insert(1, context(f":bust_in_silhouette: owner: {safe(str(owner), 100)}"))
    return {"blocks": blocks}
