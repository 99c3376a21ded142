"""Block Kit for the state overviews: `/jobs queues`, `/jobs subscriptions` and the App Home tab.

Pure formatting with the escaping and limits of bot/blocks/text.py: provider strings go through
`safe`, channel ids are only linked (`<#C…>`) when they look like channel ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.blocks.text import EMOJI, Message, context, plain, safe, section, when
from bot.core.ids import CHANNEL_RE, USER_RE
from bot.core.subscriptions import SubscriptionSource
from providers import JobStatus

HOME_ALERTS = 15
HOME_BLOCKS = 100  # Slack's limit for a view
LINES_PER_SECTION = 10


@dataclass(frozen=True)
class QueueRow:
    """What `/jobs queues` shows of one queue (the caller derives it from the store)."""

    name: str
    provider: str
    scope: str
    health: str
    last_poll: str
    subscribers: int


@dataclass(frozen=True)
class SubscriptionRow:
    """One subscription as `/jobs subscriptions` and the App Home show it."""

    queue: str
    statuses: Sequence[str]  # the statuses and flag kinds named (bot/core/subscriptions.py); none: every change
    match: str | None
    paused_reason: str | None
    channel: str = ""
    source: SubscriptionSource = SubscriptionSource.CHAT  # FILE: a [[subscriptions]] entry of the queues file
    quiet: str = ""  # `quiet 20:00-08:00 Europe/Paris` (bot/core/quiet.py label)
    owner: str | None = None  # a Slack user id: only that person's jobs
    follow_up: str = ""  # `30m` (as `--follow-up` takes it): an unclaimed failure's one follow-up; "": none
    recovery: bool = True  # False: `--no-recovery`, a family's recovery is not told


@dataclass(frozen=True)
class MuteRow:
    """One running mute."""

    what: str  # `ml` or `job bert-1 in ml`
    until: datetime


@dataclass(frozen=True)
class AlertRow:
    """One recent alert and what became of it (sent, pending, muted, dead)."""

    job: str
    queue: str
    old: str | None
    new: str
    state: str
    at: datetime


def channel_ref(channel: str) -> str:
    """`<#C123>` (Slack shows the name to those who may see it), or the escaped raw text."""
    return f"<#{channel}>" if CHANNEL_RE.match(channel) else safe(channel, 40)


def user_ref(user: str) -> str:
    """`<@U123>` (Slack shows the person's name; a view or an ephemeral reply notifies nobody) for a
    validated user id, else the escaped raw text."""
    return f"<@{user}>" if USER_RE.match(user) else safe(user, 40)


def _health_dot(health: str) -> str:
    if health == "ok":
        return ":large_green_circle:"
    return ":red_circle:" if health.startswith("failing") else ":white_circle:"


def _sections(lines: Sequence[str]) -> list[dict[str, Any]]:
    """Lines in several sections, so many long ones never pass the per-section limit."""
    return [section("\n".join(lines[i : i + LINES_PER_SECTION])) for i in range(0, len(lines), LINES_PER_SECTION)]


def queue_lines(rows: Sequence[QueueRow]) -> list[str]:
    """One line per queue: provider, scope, health, last poll, subscribers."""
    return [
        f"*{safe(r.name, 64)}* — {safe(r.provider, 20)} · {safe(r.scope, 200)} · {_health_dot(r.health)} "
        f"{safe(r.health, 300)} · last poll {safe(r.last_poll, 40)} · {r.subscribers} subscribed channel(s)"
        for r in rows
    ]


def queue_list(rows: Sequence[QueueRow]) -> Message:
    """Reply to `/jobs queues`."""
    if not rows:
        return plain("No queues are configured. Add `[[queues]]` tables to the queues file.")
    return Message(f"{len(rows)} queues", [section("*Queues*"), *_sections(queue_lines(rows))])


def subscription_line(r: SubscriptionRow) -> str:
    """`*ml* — failed, timed_out · jobs matching `x*` · follow-up after 30m · paused: …`."""
    line = f"*{safe(r.queue, 64)}* — {safe(', '.join(r.statuses), 200) or 'every change'}"
    if r.channel:
        line = f"{channel_ref(r.channel)} · {line}"
    if r.match:
        line += f" · jobs matching `{safe(r.match, 100)}`"
    if r.owner:
        line += f" · jobs of {user_ref(r.owner)}"
    if r.follow_up:
        line += f" · :bell: follow-up after {safe(r.follow_up, 20)} (`--follow-up`)"
    if not r.recovery:
        line += " · no recovery (`--no-recovery`)"
    if r.paused_reason:
        line += f" · :double_vertical_bar: paused: {safe(r.paused_reason, 100)} (invite the bot and subscribe again)"
    if r.quiet:
        line += f" · :crescent_moon: {safe(r.quiet, 120)}"
    if r.source is SubscriptionSource.FILE:
        line += " · from jobwatch.toml (edit it there)"
    return line


def mute_line(m: MuteRow) -> str:
    """`:no_bell: ml muted until …`."""
    return f":no_bell: {safe(m.what, 300)} muted until {when(m.until)}"


def subscription_list(
    rows: Sequence[SubscriptionRow], mutes: Sequence[MuteRow] = (), digests: Sequence[str] = ()
) -> Message:
    """Reply to `/jobs subscriptions`: filters, paused state and why, running mutes, and scheduled
    digests (`ml: daily 09:00`, bot/features/schedules.py)."""
    if not rows and not mutes and not digests:
        return plain("This channel has no subscriptions. Try `/jobs subscribe &lt;queue&gt;`.")
    lines = [subscription_line(r) for r in rows] + [mute_line(m) for m in mutes]
    lines += [f":calendar: digest of {safe(d, 200)} (`/jobs digest &lt;queue&gt; off` removes it)" for d in digests]
    text = f"{len(rows)} subscriptions, {len(mutes)} mutes" + (f", {len(digests)} digests" if digests else "")
    return Message(text, _sections(lines))


def alert_line(a: AlertRow) -> str:
    """One recent alert for the App Home."""
    new = JobStatus(a.new) if a.new in JobStatus._value2member_map_ else JobStatus.UNKNOWN
    arrow = f"{safe(a.old, 20)} → " if a.old else "new · "
    return (
        f"{EMOJI[new]} *{safe(a.job, 80)}* · `{safe(a.queue, 64)}` · {arrow}{new.value} · "
        f"{safe(a.state, 20)} · {when(a.at)}"
    )


def home_view(
    *,
    queues: Sequence[QueueRow],
    subscriptions: Sequence[SubscriptionRow],
    alerts: Sequence[AlertRow],
    mine: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The App Home tab: the viewer's own jobs (`mine`: blocks, when any), queues, this workspace's
    subscriptions, recent alerts."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "jobwatch"}},
        *([section("*My jobs* (the jobs you watch or own)"), *mine, {"type": "divider"}] if mine else []),
        section("*Queues*"),
        *(_sections(queue_lines(queues)) or [context("No queues are configured.")]),
        {"type": "divider"},
        section("*Subscriptions in this workspace*"),
        context(
            "Every channel of this workspace that gets alerts; Slack shows the names of the channels you can "
            "see. `/jobs subscribe` in a channel adds one."
        ),
        *(_sections([subscription_line(s) for s in subscriptions]) or [context("No channel is subscribed yet.")]),
        {"type": "divider"},
        section(f"*Recent alerts* (newest {HOME_ALERTS})"),
        *(_sections([alert_line(a) for a in alerts[:HOME_ALERTS]]) or [context("No alerts yet.")]),
    ]
    return {"type": "home", "blocks": blocks[:HOME_BLOCKS]}
