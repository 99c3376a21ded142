"""Every Slack payload, built as plain dicts. Provider strings are escaped and truncated here.

Slack limits honoured: section text 3,000 characters, 50 blocks, message text well under 40,000.
https://docs.slack.dev/messaging/formatting-message-text#escaping
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.history import MIN_RUNS, Summary, Usual, eta, short
from providers import Job, JobStatus, attempts

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
MUTE_ACTION = "mute_job"
UNSUBSCRIBE_ACTION = "unsubscribe"
STOP_ACTION = "stop_job"
WATCH_ACTION = "watch_job"
UNWATCH_ACTION = "unwatch_job"
MUTE_BUTTON_SECONDS = 3600
URL_RE = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[^\s<>|\"]*)?$")


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


def link_button(job: Job) -> list[dict[str, Any]]:
    """A 'View in console' link button, when the adapter built an https console URL from its template."""
    if not job.url or len(job.url) > URL_MAX or not URL_RE.match(job.url):
        return []  # a cut URL would lead somewhere else: no button rather than a wrong one
    return [button("View in console", "console_link", url=job.url)]


def button(
    label: str, action_id: str, *, value: str = "", url: str = "", confirm: str = "", style: str = ""
) -> dict[str, Any]:
    """A Block Kit button (labels are ours; values and urls are checked against Slack's limits).
    `confirm` opens Slack's confirmation dialog (plain text, at most 300 characters) before the
    action is sent; `style` is `danger` or `primary`."""
    out: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": action_id}
    if value:
        out["value"] = value
    if url:
        out["url"] = url
    if style:
        out["style"] = style
    if confirm:
        out["confirm"] = {
            "title": {"type": "plain_text", "text": label},
            "text": {"type": "plain_text", "text": clip(confirm, 300)},
            "confirm": {"type": "plain_text", "text": label},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        if style:
            out["confirm"]["style"] = style
    return out


def job_target(job: Job) -> str:
    """A button's value naming one job: `{"queue": ..., "job": <id>}`."""
    return json.dumps({"queue": job.queue, "job": job.id}, separators=(",", ":"))


def stop_button(job: Job, provider: str) -> list[dict[str, Any]]:
    """A Stop button behind a confirmation, for a job that is neither terminal nor stopping."""
    target = job_target(job)
    if job.status.terminal or job.status is JobStatus.STOPPING or len(target) > VALUE_MAX:
        return []  # nothing (more) to stop
    # The dialog is plain text: no escaping, but clipped to Slack's 300 characters with the
    # warning kept whole.
    what = f"Stop {clip(job.name, 150)} in queue {job.queue} ({provider})?"
    return [button("Stop", STOP_ACTION, value=target, style="danger", confirm=f"{what} This cannot be undone.")]


def watch_button(job: Job) -> list[dict[str, Any]]:
    """A Watch button (a direct message when the job ends), for a job that has not ended."""
    target = job_target(job)
    if job.status.terminal or len(target) > VALUE_MAX:
        return []
    return [button("Watch", WATCH_ACTION, value=target)]


def unwatch_button(queue: str, job_id: str) -> list[dict[str, Any]]:
    """An Unwatch button for one watched job."""
    target = json.dumps({"queue": queue, "job": job_id}, separators=(",", ":"))
    return [button("Unwatch", UNWATCH_ACTION, value=target)] if len(target) <= VALUE_MAX else []


def console_button(job: Job, *, stop_by: str = "") -> list[dict[str, Any]]:
    """An actions block under a command reply: Stop (when `stop_by` names the provider that can
    stop the job), Watch and the console link."""
    elements = [*(stop_button(job, stop_by) if stop_by else []), *watch_button(job), *link_button(job)]
    return [{"type": "actions", "elements": elements}] if elements else []


def alert_actions(job: Job, *, stop_by: str = "") -> dict[str, Any]:
    """The buttons under an alert: stop (when `stop_by` names a provider that can), mute this job
    for an hour, watch it (while it has not ended), unsubscribe, view in console."""
    elements = stop_button(job, stop_by) if stop_by else []
    target = job_target(job)
    if len(target) <= VALUE_MAX:
        elements.append(button("Mute job 1h", MUTE_ACTION, value=target))
    elements.extend(watch_button(job))
    elements.append(
        button(
            "Unsubscribe",
            UNSUBSCRIBE_ACTION,
            value=job.queue,
            confirm=f"Stop every alert of queue {job.queue} in this channel?",
        )
    )
    elements.extend(link_button(job))
    return {"type": "actions", "block_id": "alert_actions", "elements": elements}


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
    }
)


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
    if job.created_at:
        parts.append(f"created {when(job.created_at)}")
    for key, value in [kv for kv in job.extra.items() if kv[0] not in OWN_EXTRAS][:6]:
        if value not in (None, ""):
            parts.append(f"{safe(key, 40)}: {safe(str(value), 100)}")
    return parts


def usual_line(job: Job) -> str:
    """What is usual for the job's family, from the `usual_*` extras bot/pipeline/usual.py sets:
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


def alert_message(job: Job, old: JobStatus | None, *, stop_by: str = "") -> Message:
    """The alert for one status change."""
    blocks: list[dict[str, Any]] = [section(f"*{safe(job.name)}* · `{safe(job.queue, 64)}`\n{status_line(job, old)}")]
    if job.reason:
        blocks.append(section(f"> {safe(job.reason, REASON_MAX)}"))
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


FLAG_EMOJI = {"slow": ":turtle:", "stuck": ":hourglass:"}


def flag_message(job: Job) -> Message:
    """A slow or stuck job (the `flag` and `flag_text` extras bot/pipeline/usual.py sets)."""
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


DIGEST_LINES = 20  # jobs per digest thread reply: 20 lines stay far below a section's 3,000


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


def plain(text: str) -> Message:
    """A one-section mrkdwn reply (the caller escapes anything untrusted)."""
    return Message(text, [section(text)])


def error(problem: str, usage: str = "") -> Message:
    """A short error with the usage that applies (both escaped: they may quote what the user typed)."""
    text = f":warning: {escape(clip(problem, 500))}"
    if usage:
        text += f"\nUsage: {escape(usage)}"
    return plain(text)


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
• `/jobs stop <queue> <job> [reason]` — ask the provider to stop a job (operators only)
• `/jobs watch <queue> <job>` — a direct message to you when the job ends (`/jobs watching`, `/jobs unwatch`)
• `/jobs stats <queue> [family]` — usual run and wait times, success rate, last 30 days
Changes may be limited to the bot's admins and to some channels; anyone may ask.
Statuses: queued, running, stopping, succeeded, failed, stopped, timed_out, unknown; events: slow, stuck."""


def help_message() -> Message:
    """Usage with examples."""
    return plain(escape(HELP))
