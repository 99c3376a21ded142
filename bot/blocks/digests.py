"""Digests: the parent of a burst, quiet-hours or scheduled digest (counts by status, failures by
cause) and the thread replies that list its jobs."""

from __future__ import annotations

from collections.abc import Sequence

from bot.blocks.text import EMOJI, TEXT_MAX, Message, clip, context, escape, safe, section
from providers import Job, JobStatus

DIGEST_LINES = 20  # jobs per digest thread reply: 20 lines stay far below a section's 3,000


def cause_counts(jobs: Sequence[Job]) -> dict[str, dict[str, int]]:
    """Per failed status, how many jobs had each cause: {"failed": {"spot_interruption": 30, ...}}."""
    out: dict[str, dict[str, int]] = {}
    for job in jobs:
        cause = job.extra.get("cause")
        if isinstance(cause, str) and cause:
            by = out.setdefault(job.status.value, {})
            by[cause] = by.get(cause, 0) + 1
    return out


def causes_text(by_cause: dict[str, int]) -> str:
    """`30 spot_interruption, 7 user_code`, most frequent first."""
    return ", ".join(f"{n} {safe(c, 40)}" for c, n in sorted(by_cause.items(), key=lambda kv: (-kv[1], kv[0])))


def digest_message(
    counts: dict[str, int],
    queues: Sequence[str],
    *,
    title: str = "",
    notes: Sequence[str] = (),
    causes: dict[str, dict[str, int]] | None = None,
) -> Message:
    """The parent of a digest: how many jobs changed, by new status (failures by cause: `37 failed:
    30 spot_interruption, 7 user_code`); the jobs are in the thread. `title` (e.g. quiet hours'
    "While you were away") heads it when given."""
    total = sum(counts.values())
    order = [s.value for s in JobStatus]
    by_cause = causes or {}
    parts = [
        f"{EMOJI[JobStatus(s)]} {counts[s]} {s}" + (f": {causes_text(by_cause[s])}" if by_cause.get(s) else "")
        for s in sorted(counts, key=order.index)
    ]
    where = ", ".join(f"`{safe(q, 64)}`" for q in queues[:10]) + (" …" if len(queues) > 10 else "")
    text = f"{total} jobs changed status in {', '.join(queues[:10])}: " + ", ".join(
        f"{counts[s]} {s}" for s in sorted(counts, key=order.index)
    )
    head = f"*{safe(title, 100)}:* " if title else ""
    blocks = [
        section(f"{head}*{total} jobs changed status* in {where}\n" + " · ".join(parts)),
        *([section("\n".join(safe(n, 600) for n in notes))] if notes else []),
        context("Every job is listed in this thread, one per line."),
    ]
    if notes:  # a scheduled digest (bot/features/schedules.py): its thread lists the failures and the slowest jobs
        blocks[-1] = context("The failures and the slowest jobs are listed in this thread.")
        text += ". " + "; ".join(notes)
    return Message(escape(clip((f"{title}: " if title else "") + text, TEXT_MAX)), blocks)


def digest_lines(lines: Sequence[Sequence[str]], *, part: int, parts: int) -> Message:
    """One thread reply of a digest: one job per line, with its queue and new native status."""
    rows = [
        f"{EMOJI[JobStatus(status)]} *{safe(name, 120)}* · `{safe(queue, 64)}` → {safe(native, 60)}"
        for name, queue, native, status in lines
    ]
    text = f"Jobs {part}/{parts}: " + "; ".join(f"{name} in {queue}: {native}" for name, queue, native, _ in lines)
    return Message(escape(clip(text, TEXT_MAX)), [section("\n".join(rows))])
