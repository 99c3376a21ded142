"""Digests: the parent of a burst, quiet-hours or scheduled digest (counts by status, failures by
cause, slow and stuck flags by kind) and the thread replies that list its jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.blocks.alerts import FLAG_EMOJI
from bot.blocks.text import EMOJI, TEXT_MAX, Message, clip, context, escape, safe, section
from bot.core.subscriptions import FlagKind
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


def flags_text(flags: Mapping[str, int]) -> str:
    """`37 jobs stuck, 3 jobs slow`: a digest's flags by kind, in FlagKind's order."""
    return ", ".join(f"{n} {'job' if n == 1 else 'jobs'} {kind}" for kind, n in _flagged(flags))


def _flagged(flags: Mapping[str, int] | None) -> list[tuple[str, int]]:
    return [(k.value, n) for k in FlagKind if (n := (flags or {}).get(k.value, 0))]


def digest_message(
    counts: dict[str, int],
    queues: Sequence[str],
    *,
    title: str = "",
    notes: Sequence[str] = (),
    causes: dict[str, dict[str, int]] | None = None,
    flags: Mapping[str, int] | None = None,
) -> Message:
    """The parent of a digest: how many jobs changed, by new status (failures by cause: `37 failed:
    30 spot_interruption, 7 user_code`), and how many were flagged slow or stuck, counted apart
    (`37 jobs stuck in batch`); the jobs are in the thread. `title` (e.g. quiet hours' "While you
    were away") heads it when given. A digest with flags and no status change speaks of the flags
    only; one without flags reads as digests always have."""
    total = sum(counts.values())
    order = [s.value for s in JobStatus]
    by_cause = causes or {}
    flagged = _flagged(flags)
    statuses = sorted(counts, key=order.index)
    parts = [
        f"{EMOJI[JobStatus(s)]} {counts[s]} {s}" + (f": {causes_text(by_cause[s])}" if by_cause.get(s) else "")
        for s in statuses
    ]
    parts += [f"{FLAG_EMOJI[kind]} {n} {kind}" for kind, n in flagged]
    shown = ", ".join(queues[:10])
    where = ", ".join(f"`{safe(q, 64)}`" for q in queues[:10]) + (" …" if len(queues) > 10 else "")
    if counts or not flagged:
        text = f"{total} jobs changed status in {shown}: " + ", ".join(f"{counts[s]} {s}" for s in statuses)
        line = f"*{total} jobs changed status* in {where}"
        if flagged:
            text += "; " + flags_text(flags or {})
            line += f"; *{flags_text(flags or {})}*"
    else:
        text = f"{flags_text(flags or {})} in {shown}"
        line = f"*{flags_text(flags or {})}* in {where}"
    head = f"*{safe(title, 100)}:* " if title else ""
    blocks = [
        section(f"{head}{line}\n" + " · ".join(parts)),
        *([section("\n".join(safe(n, 600) for n in notes))] if notes else []),
        context("Every job is listed in this thread, one per line."),
    ]
    if notes:  # a scheduled digest (bot/features/schedules.py): its thread lists the failures and the slowest jobs
        blocks[-1] = context("The failures and the slowest jobs are listed in this thread.")
        text += ". " + "; ".join(notes)
    return Message(escape(clip((f"{title}: " if title else "") + text, TEXT_MAX)), blocks)


def digest_lines(lines: Sequence[Sequence[str]], *, part: int, parts: int) -> Message:
    """One thread reply of a digest: one job per line, with its queue and new native status, or, for
    a slow or stuck job (its last field a flag kind), what the flag says."""
    kinds = {k.value for k in FlagKind}
    rows = [
        f"{FLAG_EMOJI[status]} *{safe(name, 120)}* · `{safe(queue, 64)}` is *{status}*: {safe(native, 80)}"
        if status in kinds
        else f"{EMOJI[JobStatus(status)]} *{safe(name, 120)}* · `{safe(queue, 64)}` → {safe(native, 60)}"
        for name, queue, native, status in lines
    ]
    text = f"Jobs {part}/{parts}: " + "; ".join(
        f"{name} in {queue} is {status}: {native}" if status in kinds else f"{name} in {queue}: {native}"
        for name, queue, native, status in lines
    )
    return Message(escape(clip(text, TEXT_MAX)), [section("\n".join(rows))])
