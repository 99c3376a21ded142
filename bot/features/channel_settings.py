"""The write side of the Slack experience: subscribe, unsubscribe, mute, unmute, digest schedules.

Each one checks access (bot/features/access.py), changes the store and writes its audit row in the same
transaction; a refusal is audited too. Each is idempotent, so a Slack retry or a replay of the
same signed request changes nothing further: rows are keyed on (team, channel, queue[, job]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.core import quiet
from bot.core.clock import Clock, utcnow
from bot.core.config import AppConfig
from bot.core.errors import NoSuchJob, ServiceError
from bot.core.mutes import MuteChange, Muted
from bot.core.quiet import QuietHours
from bot.core.subscriptions import Subscribed, SubscriptionFilter, SubscriptionSource
from bot.features import access, mutes, schedules
from bot.features.access import Actor
from bot.store import mutes as stored_mutes
from bot.store import schedules as stored_schedules
from bot.store import subscriptions as stored_subs
from bot.store.db import Database
from bot.store.outbox import resume_held, withdraw_unwanted
from bot.store.refs import resolve_job
from bot.store.session import Session
from providers import JobStatus, QueueConfig


class DigestChange(StrEnum):
    """What `/jobs digest` did to the channel's schedule of a queue."""

    NEW = "new"
    UPDATED = "updated"
    REMOVED = "removed"
    NONE = "none"  # `off`, and there was none


@dataclass(frozen=True)
class ScheduledDigest:
    """A channel's scheduled digest of one queue: `daily 09:00` or `weekly mon 09:00 Europe/Paris`
    (bot/features/schedules.py `label`), and its zone as stored ("" for [bot] timezone)."""

    queue: str
    label: str
    tz: str


@dataclass(frozen=True)
class Unmuted:
    """What `unmute` ended: the mutes' labels and how many alerts they held back."""

    labels: list[str]
    held: int


class ChannelSettings:
    """A channel's settings and their changes: subscriptions, mutes and scheduled digests, scoped by the
    actor's team and channel."""

    def __init__(self, *, config: AppConfig, db: Database, clock: Clock = utcnow) -> None:
        self.config = config
        self.db = db
        self.clock = clock

    def allowed(self, actor: Actor, action: str, queue: str) -> QueueConfig:
        """The queue, if `actor` may change it from this channel; otherwise audit and raise NotAllowed."""
        config = self.config.queue(queue)
        if config is None:
            known = ", ".join(q.name for q in self.config.queues) or "none configured"
            raise ServiceError(f"unknown queue `{queue}`; queues: {known}")
        reason = access.refusal(self.config, actor, config)
        if reason is not None:
            raise access.refuse(self.db, actor, action, queue=queue, reason=reason, now=self.clock())
        return config

    def not_from_file(self, actor: Actor, action: str, queue: str) -> None:
        """Refuse (and audit) a chat change of a subscription the queues file manages (bot/features/routing.py)."""
        with self.db.read() as session:
            sub = stored_subs.of_channel(session, actor.team_id, actor.channel_id, queue)
        if sub is not None and sub.source is SubscriptionSource.FILE:
            reason = (
                f"this channel's subscription to `{queue}` comes from {self.config.path.name}; "
                "change or remove its [[subscriptions]] entry there, then run `jobwatch reload`"
            )
            raise access.refuse(self.db, actor, action, queue=queue, reason=reason, now=self.clock())

    def subscribe(
        self,
        actor: Actor,
        queue: str,
        *,
        statuses: Sequence[JobStatus],
        match: str | None,
        quiet_hours: tuple[str, str] | None = None,
        quiet_tz: str | None = None,
        quiet_all: bool = False,
        owner: str | None = None,
        flags: Sequence[str] = (),
        causes: Sequence[str] = (),
        recovery: bool = True,
        follow_up: int | None = None,
    ) -> tuple[Subscribed, bool]:
        """Create or update this channel's subscription (resuming a paused one); True when new.
        `owner`: a validated Slack user id; only the jobs whose owner is that person get through."""
        self.allowed(actor, "subscribe", queue)
        self.not_from_file(actor, "subscribe", queue)
        now = self.clock()
        wanted = SubscriptionFilter.from_words(
            [*(s.value for s in statuses), *flags],
            match=match,
            causes=causes,
            owner=owner,
            recovery=recovery,
            follow_up=follow_up,
        )
        hours = QuietHours(*quiet_hours, quiet_tz, quiet_all) if quiet_hours else None
        with self.db.write() as session:
            sub = stored_subs.of_channel(session, actor.team_id, actor.channel_id, queue)
            if sub is not None and sub.source is SubscriptionSource.FILE:
                raise ServiceError(f"this channel's subscription to `{queue}` comes from {self.config.path.name}")
            created = sub is None
            if sub is None:
                sub = Subscribed(
                    0, actor.team_id, actor.channel_id, queue, wanted, created_by=actor.user_id, created_at=now
                )
            before = quiet.label(sub.quiet)
            sub = stored_subs.save(session, replace(sub, filter=wanted, quiet=hours, paused_reason=None))
            if before != quiet.label(sub.quiet):  # held alerts go out at the next round, as one digest
                resume_held(session, team_id=actor.team_id, channel_id=actor.channel_id, queue=queue, now=now)
            withdraw_unwanted(
                session,
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                queue=queue,
                wanted=sub.filter,
                owners_table=self.config.owners.users,
            )
            detail = subscribe_detail(sub, "new" if created else "updated")
            access.record(session, actor, "subscribe", queue=queue, detail=detail, now=now)
            return sub, created

    def unsubscribe(self, actor: Actor, queue: str) -> bool:
        """Remove this channel's subscription; False when there was none."""
        self.allowed(actor, "unsubscribe", queue)
        self.not_from_file(actor, "unsubscribe", queue)
        now = self.clock()
        with self.db.write() as session:
            sub = stored_subs.of_channel(session, actor.team_id, actor.channel_id, queue)
            if sub is not None and sub.source is SubscriptionSource.FILE:
                raise ServiceError(f"this channel's subscription to `{queue}` comes from {self.config.path.name}")
            if sub is not None:
                stored_subs.remove(session, sub.id)
                withdraw_unwanted(session, team_id=actor.team_id, channel_id=actor.channel_id, queue=queue, wanted=None)
            access.record(session, actor, "unsubscribe", queue=queue, detail="" if sub else "none", now=now)
            return sub is not None

    def mute(self, actor: Actor, queue: str, *, job: str | None, seconds: int) -> tuple[Muted, bool]:
        """Mute the queue (or the one job `job` names, bot/store/refs.py) in this channel; True when new."""
        self.allowed(actor, "mute", queue)
        now = self.clock()
        with self.db.write() as session:
            named = None if job is None else resolve_job(session, queue, job).job
            job_id, job_name = ("", "") if named is None else (named.id, named.name)
            mute, change = stored_mutes.put(
                session,
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                queue=queue,
                job_id=job_id,
                job_name=job_name,
                user_id=actor.user_id,
                trigger_id=actor.trigger_id,
                seconds=seconds,
                now=now,
            )
            if change is not MuteChange.REPLAY:
                detail = f"{mute.label} until {mute.until.isoformat()} {change}"
                access.record(session, actor, "mute", queue=queue, detail=detail, now=now)
            return mute, change is MuteChange.NEW

    def unmute(self, actor: Actor, queue: str, *, job: str | None) -> Unmuted:
        """End this channel's mutes of the queue: all of them, or the one of the muted job `job` names
        (bot/store/refs.py; a job no longer stored is matched on the id or name the mute kept)."""
        self.allowed(actor, "unmute", queue)
        now = self.clock()
        with self.db.write() as session:
            found = stored_mutes.active(
                session, team_id=actor.team_id, channel_id=actor.channel_id, queue=queue, now=now
            )
            if job is not None:
                found = _muted_job(session, queue, job, found)
            labels = [m.label for m in found]
            count = mutes.end(session, found, why="unmuted", now=now)
            access.record(session, actor, "unmute", queue=queue, detail=f"{labels} held={count}", now=now)
            return Unmuted(labels, count)

    def schedule_digest(
        self, actor: Actor, queue: str, *, cadence: str, weekday: int | None, at: str, tz: str | None
    ) -> tuple[ScheduledDigest | None, DigestChange]:
        """Make, change (`new` | `updated`) or, with cadence `off`, remove (`removed` | `none`) this
        channel's scheduled digest of the queue (bot/features/schedules.py)."""
        self.allowed(actor, "digest", queue)
        now = self.clock()
        with self.db.write() as session:
            if cadence == "off":
                removed = stored_schedules.remove(session, actor.team_id, actor.channel_id, queue)
                change = DigestChange.REMOVED if removed else DigestChange.NONE
                access.record(session, actor, "digest", queue=queue, detail=f"off {change}", now=now)
                return None, change
            sched, created = stored_schedules.put(
                session,
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                queue=queue,
                cadence=cadence,
                weekday=weekday,
                at=at,
                tz=tz or "",
                created_by=actor.user_id,
                now=now,
            )
            change = DigestChange.NEW if created else DigestChange.UPDATED
            label = schedules.label(sched)
            access.record(session, actor, "digest", queue=queue, detail=f"{label} {change}", now=now)
            return ScheduledDigest(sched.queue, label, sched.tz), change


def subscribe_detail(sub: Subscribed, verb: str) -> str:
    """The audit detail of a subscription made or changed (`verb`: new, updated, adopted from chat)."""
    columns = sub.filter.columns()
    detail = f"statuses={columns['statuses'] or 'all'} match={sub.filter.match or ''} {verb}"
    detail += f" owner={sub.filter.owner}" if sub.filter.owner else ""
    detail += f" {quiet.label(sub.quiet)}" if sub.quiet else ""
    detail += f" causes={columns['causes']}" if columns["causes"] else ""
    detail += " no-recovery" if not sub.filter.recovery else ""
    return detail


def _muted_job(session: Session, queue: str, ref: str, found: list[Muted]) -> list[Muted]:
    """The mute (of those found) of the job `ref` names, resolved among the muted jobs only."""
    try:
        job_id = resolve_job(session, queue, ref, among={m.job_id for m in found if m.job_id}).job.id
    except NoSuchJob:
        key = ref.lower()
        return [m for m in found if m.job_id and key in (m.job_id.lower(), m.job_name.lower())]
    return [m for m in found if m.job_id == job_id]
