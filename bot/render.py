"""Every Slack payload, built as plain dicts. Provider strings are escaped and truncated here.

Slack limits honoured: section text 3,000 characters, 50 blocks, message text well under 40,000.
https://docs.slack.dev/messaging/formatting-message-text#escaping
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers import Job, JobStatus

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


def console_button(job: Job) -> list[dict[str, Any]]:
    """A 'View in console' link button, when the adapter built a console URL."""
    if not job.url or not job.url.startswith("https://"):
        return []
    return [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "View in console"},
                    "url": job.url[:3000],
                    "action_id": "console_link",
                }
            ],
        }
    ]


def status_line(job: Job, old: JobStatus | None) -> str:
    """`running → *succeeded* (Completed)`."""
    arrow = f"{old.value} → " if old else "new · "
    return f"{EMOJI[job.status]} {arrow}*{job.status.value}* ({safe(job.native_status, 100)})"


def alert_text(job: Job) -> str:
    """Notification fallback: always the job name, the queue and the new native status."""
    return (
        clip(f"{job.name} in {job.queue}: {job.native_status}", TEXT_MAX)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def job_details(job: Job) -> list[str]:
    """Duration, reason and provider extras as context lines."""
    parts = []
    took = duration(job.duration_seconds)
    if took:
        parts.append(f":stopwatch: {took}")
    if job.created_at:
        parts.append(f"created {when(job.created_at)}")
    for key, value in list(job.extra.items())[:6]:
        if value not in (None, ""):
            parts.append(f"{safe(key, 40)}: {safe(str(value), 100)}")
    return parts


def alert_message(job: Job, old: JobStatus | None) -> Message:
    """The alert for one status change."""
    blocks: list[dict[str, Any]] = [section(f"*{safe(job.name)}* · `{safe(job.queue, 64)}`\n{status_line(job, old)}")]
    if job.reason:
        blocks.append(section(f"> {safe(job.reason, REASON_MAX)}"))
    details = job_details(job)
    if details:
        blocks.append(context(" · ".join(details)))
    blocks.extend(console_button(job))
    return Message(alert_text(job), blocks)


def parent_message(job: Job) -> Message:
    """The thread parent of a job's alerts, updated in place to the current status."""
    message = alert_message(job, None)
    now = f"{EMOJI[job.status]} now *{job.status.value}* ({safe(job.native_status, 100)})"
    first = section(f"*{safe(job.name)}* · `{safe(job.queue, 64)}`\n{now}")
    return Message(message.text, [first, *message.blocks[1:]])


def notice_message(text: str) -> Message:
    """An operator notice (provider outage or recovery)."""
    return Message(escape(clip(text, TEXT_MAX)), [section(f":warning: {safe(text, SECTION_MAX - 20)}")])


def job_row(job: Job) -> str:
    """One line of a job list."""
    took = duration(job.duration_seconds)
    tail = f" · {took}" if took else ""
    return f"{EMOJI[job.status]} *{safe(job.name, 80)}* — {job.status.value} ({safe(job.native_status, 60)}){tail}"


def job_list(queue: str, jobs: Sequence[Job], *, total: int, status: str | None, note: str = "") -> Message:
    """Reply to `/jobs list`."""
    head = f"*{len(jobs)}* most recent {escape(status) + ' ' if status else ''}jobs in `{safe(queue, 64)}`"
    if total > len(jobs):
        head += f" (of {total})"
    lines = [job_row(j) for j in jobs] or ["_no jobs_"]
    blocks = [section(head)]
    # Several sections so 50 long rows never pass the per-section limit.
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start : start + 10])))
    if note:
        blocks.append(context(note))
    return Message(f"{len(jobs)} jobs in {queue}", blocks)


def job_status(job: Job, *, others: int, note: str = "") -> Message:
    """Reply to `/jobs status`: every field of one job."""
    fields = [
        f"*Status:* {EMOJI[job.status]} {job.status.value} ({safe(job.native_status, 100)})",
        f"*Id:* `{safe(job.id, 300)}`",
        f"*Created:* {when(job.created_at)}",
        f"*Started:* {when(job.started_at)}",
        f"*Ended:* {when(job.ended_at)}",
        f"*Duration:* {duration(job.duration_seconds) or '—'}",
    ]
    blocks = [section(f"*{safe(job.name)}* · `{safe(job.queue, 64)}`"), section("\n".join(fields))]
    if job.reason:
        blocks.append(section(f"*Reason:*\n> {safe(job.reason, REASON_MAX)}"))
    details = job_details(job)
    if details:
        blocks.append(context(" · ".join(details)))
    if others:
        blocks.append(context(f"{others} other job(s) match; showing the newest."))
    if note:
        blocks.append(context(note))
    blocks.extend(console_button(job))
    return Message(f"{job.name} in {job.queue}: {job.native_status}", blocks)


def plain(text: str) -> Message:
    """A one-section mrkdwn reply (the caller escapes anything untrusted)."""
    return Message(text, [section(text)])


def error(problem: str, usage: str = "") -> Message:
    """A short error with the usage that applies."""
    text = f":warning: {problem}"
    if usage:
        text += f"\nUsage: {usage}"
    return plain(text)


HELP = """*jobwatch* tells this channel what your jobs are doing.
• `/jobs queues` — configured queues and their health
• `/jobs list <queue> [status] [--limit N]` — most recent jobs, e.g. `/jobs list training failed`
• `/jobs status <queue> <job>` — one job in detail, by name or id
• `/jobs subscribe <queue> [status ...] [--match PATTERN]` — alerts in this channel,
   e.g. `/jobs subscribe training failed timed_out --match nightly-*`
• `/jobs unsubscribe <queue>` — stop them
• `/jobs subscriptions` — this channel's subscriptions
Statuses: queued, running, stopping, succeeded, failed, stopped, timed_out, unknown."""


def help_message() -> Message:
    """Usage with examples."""
    return plain(HELP)


@dataclass(frozen=True)
class QueueRow:
    """What `/jobs queues` shows of one queue (the caller derives it from the store)."""

    name: str
    provider: str
    scope: str
    health: str
    last_poll: str
    subscribers: int


def _health_dot(health: str) -> str:
    if health == "ok":
        return ":large_green_circle:"
    return ":red_circle:" if health.startswith("failing") else ":white_circle:"


def queue_list(rows: Sequence[QueueRow]) -> Message:
    """Reply to `/jobs queues`."""
    if not rows:
        return plain("No queues are configured. Add `[[queues]]` tables to the queues file.")
    lines = [
        f"*{safe(r.name, 64)}* — {safe(r.provider, 20)} · {safe(r.scope, 200)} · {_health_dot(r.health)} "
        f"{safe(r.health, 300)} · last poll {r.last_poll} · {r.subscribers} subscribed channel(s)"
        for r in rows
    ]
    blocks = [section("*Queues*")] + [section("\n".join(lines[i : i + 10])) for i in range(0, len(lines), 10)]
    return Message(f"{len(rows)} queues", blocks)


@dataclass(frozen=True)
class SubscriptionRow:
    """One subscription as `/jobs subscriptions` shows it."""

    queue: str
    statuses: str
    match: str | None
    paused_reason: str | None


def subscription_list(rows: Sequence[SubscriptionRow]) -> Message:
    """Reply to `/jobs subscriptions`."""
    if not rows:
        return plain("This channel has no subscriptions. Try `/jobs subscribe <queue>`.")
    lines = []
    for r in rows:
        line = f"*{safe(r.queue, 64)}* — {safe(r.statuses.replace(',', ', '), 200) or 'every change'}"
        if r.match:
            line += f" · jobs matching `{safe(r.match, 100)}`"
        if r.paused_reason:
            line += (
                f" · :double_vertical_bar: paused: {safe(r.paused_reason, 100)} (invite the bot and subscribe again)"
            )
        lines.append(line)
    return Message(f"{len(rows)} subscriptions", [section("\n".join(lines))])
