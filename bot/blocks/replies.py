"""Replies to `/jobs` commands that show jobs: lists, one job's status, the person's watches, stats
and the help text."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from bot.blocks.alerts import alert_text, job_details, usual_line
from bot.blocks.buttons import console_button, stop_button, unwatch_button
from bot.blocks.text import EMOJI, REASON_MAX, Message, context, duration, escape, plain, safe, section, when
from bot.core.history import Summary, short
from providers import Job, JobStatus


def watch_rows(
    rows: Sequence[tuple[str, str, str, str]], *, limit: int, owned: Collection[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """One section per job (queue, job id, job name, last polled status), each with Unwatch, but
    those in `owned` ((queue, job id) of jobs the person owns and does not watch): nothing to unwatch."""
    blocks = []
    for queue, job_id, name, status in rows[:limit]:
        known = {s.value: s for s in JobStatus}.get(status)
        emoji = EMOJI[known] + " " if known else ""
        line = f"{emoji}*{safe(name or job_id, 120)}* · `{safe(queue, 64)}` — {escape(status or 'not polled yet')}"
        if (queue, job_id) in owned:
            blocks.append(section(line + " · yours"))
            continue
        block = section(line)
        found = unwatch_button(queue, job_id)
        if found:
            block["accessory"] = found[0]
        blocks.append(block)
    if len(rows) > limit:
        blocks.append(context(f"and {len(rows) - limit} more (`/jobs watching`)"))
    return blocks


def watch_list(rows: Sequence[tuple[str, str, str, str]]) -> Message:
    """Reply to `/jobs watching`: (queue, job id, job name, status) per watch, each with Unwatch."""
    if not rows:
        return plain("You watch no jobs. Press *Watch* under an alert or use `/jobs watch <queue> <job>`.")
    head = section(f"*You watch {len(rows)} job(s)*; each ends by itself when its job does.")
    return Message(f"You watch {len(rows)} job(s)", [head, *watch_rows(rows, limit=40)])


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


def my_jobs(queue: str, jobs: Sequence[Job], *, total: int, status: str | None) -> Message:
    """Reply to `/jobs list [queue] mine`: the person's watched and owned jobs."""
    where = f"`{safe(queue, 64)}`" if queue else "every queue"
    head = f"*{len(jobs)}* of your {escape(status) + ' ' if status else ''}jobs (watched or owned) in {where}"
    if total > len(jobs):
        head += f" (of {total})"
    lines = [(f"`{safe(j.queue, 64)}` " if not queue else "") + job_row(j) for j in jobs] or ["_no jobs_"]
    blocks = [section(head)] + [section("\n".join(lines[i : i + 10])) for i in range(0, len(lines), 10)]
    return Message(f"{len(jobs)} of your jobs", blocks)


def job_status(job: Job, *, others: int, note: str = "", stop_by: str = "") -> Message:
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
    usual = usual_line(job)
    if usual:
        blocks.append(context(f":bar_chart: {usual}"))
    details = job_details(job)
    if details:
        blocks.append(context(" · ".join(details)))
    if others:
        blocks.append(
            context(
                f"{others} other job(s) match too; showing the best: id, then provider id, then name, newest first."
            )
        )
    if note:
        blocks.append(context(note))
    blocks.extend(console_button(job, stop_by=stop_by))
    return Message(alert_text(job), blocks)


def stop_confirm(job: Job, *, provider: str, owner: str, others: int, reason: str = "", note: str = "") -> Message:
    """Reply to `/jobs stop`: the job the reference resolved to (name, id, provider, status, owner)
    and a Stop button behind Slack's confirmation; nothing is asked of the provider until it is
    pressed."""
    fields = [
        f"*Id:* `{safe(job.id, 300)}`",
        f"*Provider:* {safe(provider, 40)}",
        f"*Status:* {EMOJI[job.status]} {job.status.value} ({safe(job.native_status, 100)})",
        f"*Owner:* {safe(owner, 200) if owner else 'unknown'}",
        f"*Created:* {when(job.created_at)}",
    ]
    blocks = [
        section(
            f"Stop *{safe(job.name)}* in `{safe(job.queue, 64)}`? Nothing has been asked of {safe(provider, 40)} yet."
        ),
        section("\n".join(fields)),
    ]
    if reason:
        blocks.append(context(f"Reason: {safe(reason, 300)}"))
    if others:
        blocks.append(
            context(
                f":warning: {others} other job(s) match too; this is the best match (id, then provider id, then "
                "name, newest first). To stop another one, name it by its id (`/jobs list`)."
            )
        )
    if note:
        blocks.append(context(note))
    buttons = stop_button(job, provider, reason=reason)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return Message(f"Stop {job.name}? Press Stop to confirm.", blocks)


def open_failures(rows: Sequence[tuple[Job, str]], *, scope: str) -> Message:
    """Reply to `/jobs open`: the unclaimed failures of the last 24 h, oldest first, with their age
    (`rows`: (job, age text)); a Claim button is on each job's card."""
    if not rows:
        return plain(f":white_check_mark: No unclaimed failure in the last 24 h ({safe(scope, 100)}).")
    lines = [
        f"{EMOJI[job.status]} *{safe(job.name, 150)}* · `{safe(job.queue, 64)}` · {job.status.value} {safe(age, 20)}"
        for job, age in rows[:50]
    ]
    more = f"\n…and {len(rows) - 50} more." if len(rows) > 50 else ""
    head = (
        f"*{len(rows)} unclaimed failure(s) in the last 24 h* ({safe(scope, 100)}); press Claim on a card to take one."
    )
    return Message(f"{len(rows)} unclaimed failure(s)", [section(head), section("\n".join(lines) + more)])


def stats_message(queue: str, family: str | None, rows: Sequence[Summary]) -> Message:
    """Reply to `/jobs stats`: one line per family (`*` is the whole queue), from history.Summary rows."""

    def pct(value: float | None) -> str:
        return short(value) if value is not None else "—"

    lines = [
        f"`{safe(r.family, 80)}` · {r.count} finished · {r.success_rate:.0%} succeeded · "
        f"run p50 {pct(r.run_p50)}, p90 {pct(r.run_p90)} · wait p50 {pct(r.wait_p50)}, p90 {pct(r.wait_p90)}"
        for r in rows
        if r.count
    ]
    what = f"family `{safe(family, 80)}` of " if family else ""
    head = f"*Last 30 days* of {what}`{safe(queue, 64)}`"
    body = "\n".join(lines) if lines else "_no finished jobs recorded yet_"
    return Message(f"Stats of {queue}", [section(head), section(body)])


HELP = """*jobwatch* tells this channel what your jobs are doing.
• `/jobs queues` — configured queues and their health
• `/jobs list <queue> [status] [--limit N]` — most recent jobs, e.g. `/jobs list training failed`
• `/jobs status <queue> <job>` — one job in detail, by id, name or the provider's own id
• `/jobs subscribe <queue> [status ...] [--match PATTERN] [--cause CAUSE,...]` — alerts in this channel,
   e.g. `/jobs subscribe training failed timed_out slow stuck --match nightly-* --cause oom,user_code`
• `/jobs unsubscribe <queue>` — stop them
• `/jobs subscribe <queue> [status ...] [--match PATTERN] --dry-run` — how many alerts that filter
   would have posted over the last 24 h; subscribes nothing
• `/jobs subscribe <queue> ... --quiet 20:00-08:00 [--quiet-all]` — hold all but failures during those
   hours; one "While you were away" digest when they end
• `/jobs subscribe <queue> ... --owner <@USER>` — only that person's jobs (their member id U… works too)
• `/jobs digest <queue> daily 09:00` (or `weekly mon 09:00`, `off`) — a summary of the queue once per period
• `/jobs subscriptions` — this channel's subscriptions and mutes
• `/jobs subscriptions export` — them as `[[subscriptions]]` tables for the queues file
• `/jobs mute <queue> [job] <duration>` — hold this channel's alerts back for 30m, 2h, 1d…;
   one summary when the mute ends
• `/jobs unmute <queue> [job]` — end a mute now
• `/jobs open [queue]` — the failures of the last 24 h nobody has claimed, with their age
• `/jobs stop <queue> <job> [reason]` — show the job it names and a Stop button (operators only)
• `/jobs watch <queue> <job>` — a direct message to you when the job ends (`/jobs watching`, `/jobs unwatch`)
• `/jobs stats <queue> [family]` — usual run and wait times, success rate, last 30 days
Changes may be limited to the bot's admins and to some channels; anyone may ask.
Statuses: queued, running, stopping, succeeded, failed, stopped, timed_out, unknown; events: slow, stuck."""


def help_message() -> Message:
    """Usage with examples."""
    return plain(escape(HELP))
