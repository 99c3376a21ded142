"""Domain operations the Slack listeners call; they read the store and, for detail, the provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.core import history, owners
from bot.core.clock import Clock, utcnow
from bot.core.config import AppConfig
from bot.core.errors import NotAllowed, ServiceError
from bot.core.history import with_usual
from bot.core.mutes import Muted
from bot.core.subscriptions import Subscribed
from bot.features import schedules
from bot.features.channel_settings import ChannelSettings, ScheduledDigest
from bot.features.claiming import Claimer
from bot.features.stopping import Stopper, stop_buttons
from bot.features.watching import Watcher
from bot.store import alerts, snapshots, stats, watches
from bot.store import history as run_history
from bot.store import mutes as stored_mutes
from bot.store import schedules as stored_schedules
from bot.store import subscriptions as stored_subs
from bot.store.alerts import RecentAlert
from bot.store.db import Database
from bot.store.owners import owned_values
from bot.store.refs import resolve_job
from bot.store.stats import PollState
from providers import Job, JobSource, JobStatus, ProviderError, QueueConfig
from providers.causes import with_cause

SCAN_MAX = 5_000  # rows read to filter on a native status
__all__ = ["Lookup", "NotAllowed", "QueueInfo", "ServiceError", "Services", "age"]


@dataclass(frozen=True)
class QueueInfo:
    """One row of `/jobs queues`."""

    config: QueueConfig
    state: PollState | None
    subscribers: int

    @property
    def health(self) -> str:
        """ok | failing | not polled yet."""
        if self.state is None or self.state.last_poll_at is None:
            return "not polled yet"
        if self.state.consecutive_failures:
            return f"failing ({self.state.consecutive_failures} polls)"
        return "ok"


@dataclass(frozen=True)
class Lookup:
    """A job found by id, provider id or name, how many other jobs also match, and a note on freshness."""

    job: Job
    others: int
    note: str = ""
    fresh: bool = True  # False: the provider did not answer (or no longer lists it); `job` is as last polled


class Services:
    """Queries and subscription changes, scoped by Slack team."""

    def __init__(
        self,
        *,
        config: AppConfig,
        db: Database,
        sources: Mapping[str, JobSource],
        clock: Clock = utcnow,
    ) -> None:
        self.config = config
        self.db = db
        self.sources = sources
        self.clock = clock
        self.settings = ChannelSettings(config=config, db=db, clock=clock)
        self.stopper = Stopper(config=config, db=db, sources=sources, clock=clock)
        self.stop_by = stop_buttons(config, sources)
        self.watcher = Watcher(config=config, db=db, clock=clock)
        self.claimer = Claimer(config=config, db=db, clock=clock)

    def queue(self, name: str) -> QueueConfig:
        """The configured queue or a ServiceError listing the known ones."""
        queue = self.config.queue(name)
        if queue is None:
            known = ", ".join(q.name for q in self.config.queues) or "none configured"
            raise ServiceError(f"unknown queue `{name}`; queues: {known}")
        return queue

    def queues(self, team_id: str) -> list[QueueInfo]:
        """Every configured queue with its health and this team's subscriber count."""
        with self.db.read() as session:
            states = stats.poll_states(session)
            counts = stored_subs.counts(session, team_id)
        return [QueueInfo(q, states.get(q.name), int(counts.get(q.name, 0))) for q in self.config.queues]

    def poll_note(self, queue: str) -> str:
        """A warning when the data shown may be stale."""
        with self.db.read() as session:
            state = stats.poll_state(session, queue)
        if state is None or state.last_success_at is None:
            return "No poll of this queue has completed yet." + (
                f" Last error: {state.last_error}" if state and state.last_error else ""
            )
        if state.consecutive_failures:
            since = f"{state.last_success_at:%Y-%m-%d %H:%M} UTC"
            return f"Polling is failing ({state.last_error}); showing data as of {since}."
        return ""

    def recent(self, queue: str, *, status: str | None, limit: int) -> tuple[list[Job], int]:
        """Newest jobs first, filtered by a canonical or native status (case-insensitive)."""
        self.queue(queue)
        canonical = _canonical(status)
        with self.db.read() as session:
            if status is None or canonical is not None:
                total = snapshots.count(session, queue, status=canonical)
                return snapshots.newest(session, queue, limit=limit, status=canonical), total
            scanned = snapshots.newest(session, queue, limit=SCAN_MAX)
        wanted = status.lower()
        jobs = [j for j in scanned if _native_matches(j, wanted)]
        return jobs[:limit], len(jobs)

    def mine(self, team_id: str, user_id: str, *, queue: str, status: str | None, limit: int) -> tuple[list[Job], int]:
        """The person's jobs, newest first: those they watch and those they own (`[owners]`, or an
        owner e-mail address that `users.lookupByEmail` gave their id; bot/core/owners.py), in one queue
        or (`queue` "") every queue; the status filter as `recent`."""
        names = [self.queue(queue).name] if queue else [q.name for q in self.config.queues]
        with self.db.read() as session:
            values = owned_values(session, team_id, user_id, self.config.owners.users)
            watched = watches.watched_jobs(session, team_id, user_id)
            jobs: list[Job] = []
            for name in names:
                for job in snapshots.newest(session, name, limit=SCAN_MAX):
                    if (name, job.id) in watched or owners.is_owner(job, values):
                        jobs.append(job)
        canonical = _canonical(status)
        if status is not None:
            jobs = [j for j in jobs if j.status is canonical or _native_matches(j, status.lower())]
        epoch = datetime.min.replace(tzinfo=UTC)
        jobs.sort(key=lambda j: j.created_at or epoch, reverse=True)
        return jobs[:limit], len(jobs)

    def find(self, queue: str, ref: str) -> Lookup:
        """The job `ref` names (bot/store/refs.py), refreshed from the provider when possible."""
        self.queue(queue)
        with self.db.read() as session:
            found = resolve_job(session, queue, ref)
        stored, others = found.job, found.others
        try:
            fresh = self.sources[queue].get_job(stored.id)
        except ProviderError as err:
            return Lookup(
                stored,
                others,
                f"Provider unreachable ({type(err).__name__}); showing the last polled state.",
                fresh=False,
            )
        if fresh is None:
            return Lookup(
                stored, others, "The provider no longer lists this job; showing the last polled state.", fresh=False
            )
        return Lookup(self.usual(with_cause(self.sources[queue].provider, fresh)), others)

    def usual(self, job: Job) -> Job:
        """`job` with its family's usual run times (bot/pipeline/usual.py), for `/jobs status`."""
        config = self.config.queue(job.queue)
        family = history.family_of(job.name, config.family_pattern() if config else None)
        with self.db.read() as session:
            found = run_history.load(session, job.queue, [family])
        return with_usual(job, found[family])

    def stats(self, queue: str, family: str | None) -> list[history.Summary]:
        """`/jobs stats`: run and wait percentiles, success rate and count over 30 days."""
        self.queue(queue)
        with self.db.read() as session:
            return run_history.stats(session, queue, family, self.clock())

    def current(self, queue: str, ref: str) -> Job:
        """The job `ref` names, fresh from the provider when it answers (stop's lookup)."""
        return self.find(queue, ref).job

    def subscriptions(self, *, team_id: str, channel_id: str | None) -> list[Subscribed]:
        """This channel's subscriptions (or, with channel_id None, every one of the team)."""
        with self.db.read() as session:
            return stored_subs.of_team(session, team_id, channel_id)

    def schedules(self, *, team_id: str, channel_id: str) -> list[ScheduledDigest]:
        """This channel's scheduled digests (bot/features/schedules.py), by queue."""
        with self.db.read() as session:
            found = stored_schedules.of_channel(session, team_id, channel_id)
        return [ScheduledDigest(d.queue, schedules.label(d), d.tz) for d in found]

    def mutes(self, *, team_id: str, channel_id: str) -> list[Muted]:
        """This channel's running mutes."""
        with self.db.read() as session:
            return stored_mutes.active(session, team_id=team_id, channel_id=channel_id, queue=None, now=self.clock())

    def recent_alerts(self, team_id: str, *, limit: int) -> list[RecentAlert]:
        """The team's newest alerts, whatever became of them (sent, pending, muted, dead)."""
        with self.db.read() as session:
            return alerts.newest(session, team_id, limit=limit)


def _canonical(status: str | None) -> JobStatus | None:
    if status is None:
        return None
    try:
        return JobStatus(status.lower())
    except ValueError:
        return None


def _native_matches(job: Job, wanted: str) -> bool:
    native = job.native_status.lower()
    return native == wanted or native.split(" (", 1)[0] == wanted


def age(moment: datetime | None, now: datetime) -> str:
    """`3m ago`, `never`."""
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"
