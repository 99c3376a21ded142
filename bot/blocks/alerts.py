"""A job's messages: its alert card (and the thread parent that stays up to date), a slow or stuck
flag, a watcher's or owner's direct message, thread notes and operator notices."""

from __future__ import annotations

from typing import Any

from bot.blocks.buttons import alert_actions, link_button, unwatch_button
from bot.blocks.text import (
    EMOJI,
    NAME_MAX,
    REASON_MAX,
    SECTION_MAX,
    TEXT_MAX,
    Message,
    clip,
    context,
    duration,
    escape,
    safe,
    section,
    when,
)
from bot.core.history import MIN_RUNS, STREAK_KEYS, Usual, eta, short, streak_since, streak_words
from bot.core.ids import USER_RE
from providers import Job, JobStatus, attempts


def status_line(job: Job, old: JobStatus | None) -> str:
    """`running → *succeeded* (Completed)`."""
    arrow = f"{old.value} → " if old else "new · "
    return f"{EMOJI[job.status]} {arrow}*{job.status.value}* ({safe(job.native_status, 100)})"


def alert_text(job: Job) -> str:
    """Notification fallback: always the job name, the queue and the new native status."""
    return escape(f"{clip(job.name, NAME_MAX)} in {job.queue}: {clip(job.native_status, 100)}")


# Extras jobwatch itself sets (providers/causes.py, providers/attempts.py, bot/core/history.py): shown in
# their own words, not as key: value; bot/pipeline/tags.py's bookkeeping (whether a job's tags were read) is
# not shown at all.
OWN_EXTRAS = frozenset(
    {
        "cause",
        "usual_runs",
        "usual_p10",
        "usual_p50",
        "usual_p90",
        "flag",
        "flag_text",
        "tags_read",
        "tag_failures",
        *attempts.KEYS,
        *STREAK_KEYS,
        "claimed_by",
        "claimed_from",
        "limit_s",
        "limit_read",
        "limit_failures",
    }
)


def job_details(job: Job) -> list[str]:
    """Duration, cause and provider extras as context lines."""
    parts = []
    took = duration(job.duration_seconds)
    if took:
        parts.append(f":stopwatch: {took}")
    cause = job.extra.get("cause")
    if cause:
        parts.append(f"cause: *{safe(str(cause), 40)}*")
    attempt = attempts.attempt_of(job)
    if attempt > 1:
        top = job.extra.get(attempts.ATTEMPTS_MAX)
        parts.append(f"attempt {attempt}" + (f" of {top}" if isinstance(top, int) and attempt <= top else ""))
    limit = job.extra.get("limit_s")
    if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
        parts.append(f"limit {short(float(limit))}")
    if job.created_at:
        parts.append(f"created {when(job.created_at)}")
    for key, value in [kv for kv in job.extra.items() if kv[0] not in OWN_EXTRAS][:6]:
        if value not in (None, ""):
            parts.append(f"{safe(key, 40)}: {safe(str(value), 100)}")
    return parts


def usual_line(job: Job) -> str:
    """What is usual for the job's family, from the `usual_*` extras bot/core/history.py `with_usual` sets:
    `running 42 min · usually 35 min (p50), 1 h 10 (p90) · ETA …`, or for a finished run outside
    p10..p90 `took 2.3× the usual (35 min, p50)`; empty without enough history."""
    p10, p50, p90 = (job.extra.get(k) for k in ("usual_p10", "usual_p50", "usual_p90"))
    if not isinstance(p10, int | float) or not isinstance(p50, int | float) or not isinstance(p90, int | float):
        return ""
    usually = f"usually {short(p50)} (p50), {short(p90)} (p90)"
    took = job.duration_seconds
    if job.status is JobStatus.RUNNING:
        parts = [f"running {short(took)}" if took is not None else "running", usually]
        ends = eta(job, Usual(runs=MIN_RUNS, p10=p10, p50=p50, p90=p90))
        if ends is not None:
            parts.append(f"ETA {when(ends)}")
        return " · ".join(parts)
    if job.status is JobStatus.SUCCEEDED and took is not None:
        if p50 > 0 and not p10 <= took <= p90:
            return f"took {took / p50:.1f}× the usual ({short(p50)}, p50)"
        return f"took {short(took)} · {usually}"
    return usually


CLAIMED_BY = "claimed_by"  # on a card a claim edits (bot/features/claiming.py): the claimer's user id
CLAIMED_FROM = "claimed_from"  # and whom they took it over from


def with_claim(job: Job, who: str, before: str | None) -> Job:
    """`job` as the card of a claimed job shows it: claimed by `who` (taken over from `before`)."""
    extra = {**job.extra, CLAIMED_BY: who}
    if before:
        extra[CLAIMED_FROM] = before
    else:
        extra.pop(CLAIMED_FROM, None)
    return job.model_copy(update={"extra": extra})


def claim_line(job: Job) -> str:
    """`:raising_hand: claimed by @x` (`, taken over from @y`) on a claimed failure's card; ids
    that are not Slack user ids are not shown."""
    who, before = str(job.extra.get(CLAIMED_BY) or ""), str(job.extra.get(CLAIMED_FROM) or "")
    if not USER_RE.match(who):
        return ""
    line = f":raising_hand: claimed by <@{who}>"
    return line + (f", taken over from <@{before}>" if USER_RE.match(before) else "")


def streak_line(job: Job) -> str:
    """`:repeat: 3rd failure in a row of nightly-eval (since Tue 09:12)` on a failure's card, or
    `:white_check_mark: nightly-eval recovered after 3 failures` on a recovery's; empty otherwise."""
    words = streak_words(job)
    if not words:
        return ""
    if job.status is JobStatus.SUCCEEDED:
        return f":white_check_mark: {safe(words, 300)}"
    since = streak_since(job)
    return f":repeat: {safe(words, 300)}" + (f" (since {when(since)})" if since else "")


def alert_message(job: Job, old: JobStatus | None, *, stop_by: str = "") -> Message:
    """The alert for one status change."""
    blocks: list[dict[str, Any]] = [section(f"*{safe(job.name)}* · `{safe(job.queue, 64)}`\n{status_line(job, old)}")]
    if job.reason:
        blocks.append(section(f"> {safe(job.reason, REASON_MAX)}"))
    streak = streak_line(job)
    if streak:
        blocks.append(context(streak))
    claimed = claim_line(job)
    if claimed:
        blocks.append(context(claimed))
    usual = usual_line(job)
    if usual:
        blocks.append(context(f":bar_chart: {usual}"))
    details = job_details(job)
    if details:
        blocks.append(context(" · ".join(details)))
    blocks.append(alert_actions(job, stop_by=stop_by))
    return Message(alert_text(job), blocks)


def parent_message(job: Job, *, stop_by: str = "") -> Message:
    """The thread parent of a job's alerts, updated in place to the current status (its Stop
    button goes once the job is terminal)."""
    message = alert_message(job, None, stop_by=stop_by)
    now = f"{EMOJI[job.status]} now *{job.status.value}* ({safe(job.native_status, 100)})"
    first = section(f"*{safe(job.name)}* · `{safe(job.queue, 64)}`\n{now}")
    return Message(message.text, [first, *message.blocks[1:]])


def dm_message(job: Job, old: JobStatus | None, *, why: str = "you watch it") -> Message:
    """The direct message to a person watching (or owning) a job: it started running, or it ended,
    with duration, reason and the console link; an Unwatch button while it still runs."""
    name = f"*{safe(job.name)}* · `{safe(job.queue, 64)}`"
    if job.status.terminal:
        head = f"{EMOJI[job.status]} {name} ended: *{job.status.value}* ({safe(job.native_status, 100)})"
    else:
        head = f"{EMOJI[job.status]} {name} is *{job.status.value}* ({safe(job.native_status, 100)})"
    blocks: list[dict[str, Any]] = [section(head)]
    if job.reason:
        blocks.append(section(f"> {safe(job.reason, REASON_MAX)}"))
    details = job_details(job)
    ending = "this watch has ended" if job.status.terminal else "you will hear once more when it ends"
    blocks.append(context(" · ".join([*details, f"You get this because {why}; {ending}."])))
    elements = [*([] if job.status.terminal else unwatch_button(job.queue, job.id)), *link_button(job)]
    if elements:
        blocks.append({"type": "actions", "block_id": "dm_actions", "elements": elements})
    arrow = f"{old.value} → " if old else ""
    text = escape(
        f"{clip(job.name, NAME_MAX)} in {job.queue}: {arrow}{job.status.value} ({clip(job.native_status, 100)})"
    )
    return Message(text, blocks)


FLAG_EMOJI = {"slow": ":turtle:", "stuck": ":hourglass:"}


def flag_message(job: Job) -> Message:
    """A slow or stuck job (the `flag` and `flag_text` extras bot/pipeline/owed.py sets)."""
    kind, text = str(job.extra.get("flag", "")), str(job.extra.get("flag_text", ""))
    head = f"{FLAG_EMOJI.get(kind, ':warning:')} *{safe(job.name)}* · `{safe(job.queue, 64)}` is *{safe(kind, 20)}*: "
    fallback = escape(f"{clip(job.name, NAME_MAX)} in {job.queue} is {kind}: {text}")
    return Message(clip(fallback, TEXT_MAX), [section(head + safe(text, 300)), alert_actions(job)])


def note_message(text: str) -> Message:
    """A note in a job's thread; `text` is mrkdwn that its author already made safe."""
    return Message(clip(text, TEXT_MAX), [section(clip(text, SECTION_MAX))])


def notice_message(text: str) -> Message:
    """An operator notice (provider outage or recovery)."""
    return Message(escape(clip(text, TEXT_MAX)), [section(f":warning: {safe(text, SECTION_MAX - 20)}")])
