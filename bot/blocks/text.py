"""Text for Block Kit: escaping and clipping of untrusted strings, Slack's size limits, the basic
blocks (section, context), times and durations, and the one-section replies (`plain`, `error`).

Slack limits honoured: section text 3,000 characters, 50 blocks, message text well under 40,000.
https://docs.slack.dev/messaging/formatting-message-text#escaping
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers import JobStatus

EMOJI: dict[JobStatus, str] = {
    JobStatus.QUEUED: ":hourglass_flowing_sand:",
    JobStatus.RUNNING: ":arrow_forward:",
    JobStatus.STOPPING: ":double_vertical_bar:",
    JobStatus.SUCCEEDED: ":white_check_mark:",
    JobStatus.FAILED: ":x:",
    JobStatus.STOPPED: ":black_square_for_stop:",
    JobStatus.TIMED_OUT: ":alarm_clock:",
    JobStatus.UNKNOWN: ":grey_question:",
}
NAME_MAX = 200
REASON_MAX = 1_500
SECTION_MAX = 3_000
TEXT_MAX = 3_000
VALUE_MAX = 2_000  # a button's value
URL_MAX = 3_000  # a button's url


@dataclass(frozen=True)
class Message:
    """A Slack message: notification fallback `text` plus Block Kit `blocks`."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe(text: str | None, limit: int = NAME_MAX) -> str:
    """An untrusted provider string made safe for mrkdwn: clipped, escaped, backticks neutralised."""
    return escape(clip((text or "").replace("`", "'"), limit))


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block, clipped to Slack's limit."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}}


def context(*parts: str) -> dict[str, Any]:
    """A context block of mrkdwn elements."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(p, SECTION_MAX)} for p in parts if p]}


def duration(seconds: float | None) -> str:
    """`1h 02m`, `3m 05s`, `12s`; empty when unknown."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def when(value: datetime | None) -> str:
    """A timestamp Slack shows in the reader's own time zone."""
    if value is None:
        return "—"
    epoch = int(value.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{value.strftime('%Y-%m-%d %H:%M UTC')}>"


def plain(text: str) -> Message:
    """A one-section mrkdwn reply (the caller escapes anything untrusted)."""
    return Message(text, [section(text)])


def error(problem: str, usage: str = "") -> Message:
    """A short error with the usage that applies (both escaped: they may quote what the user typed)."""
    text = f":warning: {escape(clip(problem, 500))}"
    if usage:
        text += f"\nUsage: {escape(usage)}"
    return plain(text)
