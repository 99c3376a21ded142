"""Routing as code: `[[subscriptions]]` in the queues file, reconciled into the store; the export
that writes them back; and the filter dry-run against the transitions of the last day.

Reconciliation (start-up, `jobwatch reload`, SIGHUP) makes the store's file-managed subscriptions
(`source = "file"`) exactly the file's entries, in one transaction with one audit row per change
(user `jobwatch.toml`): an entry with no row is added; a chat-made row for the same channel and
queue is adopted (it becomes file-managed); a row whose filters differ is changed; a file-managed
row whose entry is gone is removed. Alerts still owed that a changed or removed subscription no
longer wants are withdrawn in the same transaction, as `/jobs subscribe` does. Chat-made rows the
file does not name are left alone. The file is validated in full before anything is written, so
an invalid entry changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.blocks import render
from bot.core.audit import Via
from bot.core.config import AppConfig, ConfigError, SubscriptionEntry
from bot.core.quiet import QuietHours
from bot.core.subscriptions import FlagKind, Subscribed, SubscriptionFilter, SubscriptionSource
from bot.features import access
from bot.features.access import Actor
from bot.features.channel_settings import subscribe_detail
from bot.store import subscriptions as stored_subs
from bot.store import transitions
from bot.store.db import Database
from bot.store.outbox import resume_held, withdraw_unwanted
from bot.store.session import Session
from providers import Job, JobStatus
from providers.causes import with_cause

log = logging.getLogger(__name__)

FILE_ACTOR = "jobwatch.toml"  # the audit rows' user for changes the queues file made
DRY_RUN_WINDOW = timedelta(hours=24)

TeamLookup = Callable[[], str]  # the workspace of the one bot token (auth.test)


@dataclass
class Reconciled:
    """What one reconciliation changed, each as `channel queue` labels."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """`added 1, changed 0, adopted 0, removed 2`."""
        return ", ".join(f"{name} {len(getattr(self, name))}" for name in ("added", "changed", "adopted", "removed"))

    @property
    def nothing(self) -> bool:
        """True when the store already matched the file."""
        return not (self.added or self.changed or self.adopted or self.removed)


def _teams(config: AppConfig, default_team: TeamLookup | None) -> list[tuple[str, SubscriptionEntry]]:
    """Every entry with its workspace; a missing `team` is the token's (looked up once, if needed)."""
    found: list[tuple[str, SubscriptionEntry]] = []
    token_team: str | None = None
    for i, entry in enumerate(config.subscriptions):
        team = entry.team
        if team is None:
            if default_team is None:
                raise ConfigError(
                    f"{config.path}: subscriptions[{i}] ({entry.label()}): key team: required in install mode "
                    "(the id of the workspace the channel is in)"
                )
            if token_team is None:
                token_team = default_team()
            team = token_team
        found.append((team, entry))
    return found


def _wanted(entry: SubscriptionEntry) -> tuple[SubscriptionFilter, QuietHours | None]:
    """The filter and quiet hours an entry asks for, as they will be stored."""
    wanted = SubscriptionFilter.from_words(
        entry.statuses,
        match=entry.match,
        causes=entry.causes,
        owner=entry.owner,
        recovery=entry.recovery,
        follow_up=entry.follow_up_seconds(),
    )
    return wanted, QuietHours.from_columns(*entry.quiet_hours())


def _write(
    session: Session,
    sub: Subscribed,
    wanted: tuple[SubscriptionFilter, QuietHours | None],
    *,
    verb: str,
    config: AppConfig,
    now: datetime,
) -> None:
    """Make `sub` file-managed with the entry's filter and quiet hours (`wanted`): held alerts resume
    when its quiet hours changed, owed alerts it no longer wants are withdrawn, the change is audited."""
    team, channel, queue = sub.team_id, sub.channel_id, sub.queue
    saved = stored_subs.save(session, replace(sub, filter=wanted[0], quiet=wanted[1], source=SubscriptionSource.FILE))
    if sub.quiet != saved.quiet:
        resume_held(session, team_id=team, channel_id=channel, queue=queue, now=now)
    withdraw_unwanted(
        session, team_id=team, channel_id=channel, queue=queue, wanted=saved.filter, owners_table=config.owners.users
    )
    detail = subscribe_detail(saved, verb)
    access.record(session, _actor(team, channel), "subscribe", queue=queue, detail=detail, now=now)


def reconcile(db: Database, config: AppConfig, *, default_team: TeamLookup | None, now: datetime) -> Reconciled:
    """Make the store's file-managed subscriptions those of `config` (see the module docstring)."""
    wanted = {(team, e.channel, e.queue): e for team, e in _teams(config, default_team)}
    done = Reconciled()
    with db.write() as session:
        by_key = {(s.team_id, s.channel_id, s.queue): s for s in stored_subs.every(session)}
        for (team, channel, queue), entry in wanted.items():
            filter_, hours = _wanted(entry)
            sub = by_key.get((team, channel, queue))
            what = f"{channel} {queue}"
            if sub is None:
                sub = Subscribed(0, team, channel, queue, filter_, created_by=FILE_ACTOR, created_at=now)
                done.added.append(what)
                verb = "new"
            elif sub.source is not SubscriptionSource.FILE:
                done.adopted.append(what)
                verb = "adopted from chat"
            elif (sub.filter.columns(), sub.quiet) != (filter_.columns(), hours):
                done.changed.append(what)
                verb = "updated"
            else:
                continue
            _write(session, sub, (filter_, hours), verb=verb, config=config, now=now)
        for key, sub in by_key.items():
            if sub.source is SubscriptionSource.FILE and key not in wanted:
                stored_subs.remove(session, sub.id)
                withdraw_unwanted(session, team_id=sub.team_id, channel_id=sub.channel_id, queue=sub.queue, wanted=None)
                access.record(
                    session,
                    _actor(sub.team_id, sub.channel_id),
                    "unsubscribe",
                    queue=sub.queue,
                    detail="entry removed",
                    now=now,
                )
                done.removed.append(f"{sub.channel_id} {sub.queue}")
    log.info("subscriptions_reconciled file=%s %s", config.path, done.summary())
    return done


def _actor(team: str, channel: str) -> Actor:
    return Actor(team_id=team, channel_id=channel, user_id=FILE_ACTOR, via=Via.FILE)


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for these characters)."""
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: Sequence[str]) -> str:
    return f"[{', '.join(_toml_string(v) for v in values)}]"


def _entry(sub: Subscribed) -> list[str]:
    """One `[[subscriptions]]` table, with a comment when the subscription was made in chat."""
    lines = [] if sub.source is SubscriptionSource.FILE else [f"# made in chat by {sub.created_by}"]
    lines += [
        "[[subscriptions]]",
        f"team = {_toml_string(sub.team_id)}",
        f"channel = {_toml_string(sub.channel_id)}",
        f"queue = {_toml_string(sub.queue)}",
    ]
    if sub.filter.names:
        lines.append(f"statuses = {_toml_list(sub.filter.names)}")
    if sub.filter.match:
        lines.append(f"match = {_toml_string(sub.filter.match)}")
    if sub.filter.owner:
        lines.append(f"owner = {_toml_string(sub.filter.owner)}")
    if sub.filter.causes:
        lines.append(f"causes = {_toml_list(sub.filter.causes)}")
    if not sub.filter.recovery:
        lines.append("recovery = false")
    if sub.filter.follow_up:
        lines.append(f"follow_up = {_toml_string(follow_up_text(sub.filter.follow_up))}")
    if sub.quiet is not None:
        lines.append(f"quiet = {_toml_string(f'{sub.quiet.start}-{sub.quiet.end}')}")
        if sub.quiet.tz:
            lines.append(f"quiet_tz = {_toml_string(sub.quiet.tz)}")
        if sub.quiet.everything:
            lines.append("quiet_all = true")
    return lines


def follow_up_text(seconds: int) -> str:
    """`30m`, `2h`, `1d`: a follow-up time as `follow_up` and `--follow-up` take it."""
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def export_toml(subs: Sequence[Subscribed]) -> str:
    """`[[subscriptions]]` tables for the queues file, one per subscription; chat-made ones say so
    in a comment (pasted into the file, the next reload makes them file-managed)."""
    parts = ["\n".join(_entry(sub)) for sub in sorted(subs, key=lambda s: (s.team_id, s.channel_id, s.queue))]
    return "\n\n".join(parts) + ("\n" if parts else "")


@dataclass(frozen=True)
class DryRun:
    """What a filter would have posted over the window: counts by status, and the busiest hour."""

    queue: str
    total: int
    by_status: list[tuple[str, int]]  # most first
    busiest: tuple[str, int] | None  # ("14:00", 9) in the configured time zone
    hours: int


def dry_run(
    db: Database,
    queue: str,
    *,
    statuses: Sequence[JobStatus],
    match: str | None,
    now: datetime,
    tz: ZoneInfo,
    causes: Sequence[str] = (),
    flags: Sequence[str] = (),
    provider: str = "",
) -> DryRun:
    """Replay the stored transitions of the last DRY_RUN_WINDOW against a filter (`wants`, as
    delivery applies it); subscribes nothing. A failure's cause is classified again from the stored
    reason with `provider`'s rules (providers/causes.py). The `slow` and `stuck` events are not
    status changes and are not stored as transitions, so they cannot be replayed."""
    probe = SubscriptionFilter(
        statuses=tuple(statuses), flags=tuple(FlagKind(f) for f in flags), match=match, causes=tuple(causes)
    )
    with db.read() as session:
        rows = transitions.since(session, queue, now - DRY_RUN_WINDOW)
    by_status: Counter[str] = Counter()
    by_hour: Counter[str] = Counter()
    for row in rows:
        job = Job(
            queue=queue,
            id=row.job_id,
            name=row.name,
            status=JobStatus(row.new),
            native_status=row.new,
            reason=row.reason,
        )
        if provider:
            job = with_cause(provider, job)
        if probe.wants(job):
            by_status[row.new] += 1
            by_hour[f"{row.at.astimezone(tz):%H}:00"] += 1
    busiest = max(sorted(by_hour.items()), key=lambda kv: kv[1]) if by_hour else None
    return DryRun(
        queue=queue,
        total=sum(by_status.values()),
        by_status=sorted(by_status.items(), key=lambda kv: (-kv[1], kv[0])),
        busiest=busiest,
        hours=int(DRY_RUN_WINDOW.total_seconds() // 3600),
    )


def dry_run_message(
    found: DryRun,
    *,
    statuses: Sequence[JobStatus],
    match: str | None,
    causes: Sequence[str] = (),
    flags: Sequence[str] = (),
) -> render.Message:
    """`Dry run of ml: would have posted 37 alerts in the last 24 h: 12 failed, 25 succeeded; busiest hour ...`."""
    what = ", ".join(s.value for s in statuses) or ("no status change" if flags else "every status change")
    pattern = f" of jobs matching `{render.safe(match, 100)}`" if match else ""
    pattern += f", failures caused by {', '.join(causes)}" if causes else ""
    if found.total == 0:
        counts = f"would have posted no alerts in the last {found.hours} h"
    else:
        parts = ", ".join(f"{n} {render.safe(status, 20)}" for status, n in found.by_status)
        alerts = "1 alert" if found.total == 1 else f"{found.total} alerts"
        counts = f"would have posted {alerts} in the last {found.hours} h: {parts}"
        if found.busiest is not None:
            counts += f"; busiest hour {found.busiest[0]} with {found.busiest[1]}"
    unreplayed = (
        f" {' and '.join(flags)} alerts are not counted: they are not status changes, and only status changes"
        " are kept to replay."
        if flags
        else ""
    )
    return render.plain(
        f":test_tube: Dry run of `{render.safe(found.queue, 64)}` ({what}{pattern}): {counts}.{unreplayed} "
        "Nothing was subscribed; run it again without `--dry-run` to subscribe."
    )


def export_message(toml: str, *, path: str) -> render.Message:
    """The reply to `/jobs subscriptions export`: the snippet in a code block, and where it goes."""
    if not toml:
        return render.plain("This channel has no subscriptions to export.")
    intro = f"Paste into {render.escape(path)}, then run `jobwatch reload`:"
    return render.Message(f"{intro}\n{toml}", [render.section(intro), render.section(f"```{render.escape(toml)}```")])
