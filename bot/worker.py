"""The worker: polls every queue on its own schedule and drains the outbox, behind the lease.

With sharded polling (PostgreSQL, `JOBWATCH_SHARDED`) the polls are shared between the workers:
each queue belongs to a scope of `bot/store/shards.py` (the queue itself, or with `[bot] shard_by =
"account"` its provider account scope, so one worker spends one account's rate budget), polled only
by the worker holding that scope and fenced by its token; this worker schedules poll jobs for the
queues of the scopes it holds and adds or removes them as the renewals give or take scopes
(docs/scaling.md). Delivery is shared too: every worker's dispatcher drains the channels of the
delivery buckets it holds (bot/pipeline/buckets.py). The side jobs (quiet-hours release, step waits,
mute expiry, scheduled digests, prune, log tails, pushed events) stay behind the single poller lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from bot.core import history, owners
from bot.core.clock import Clock, utcnow
from bot.core.config import AppConfig, Settings
from bot.core.snapshot import Prior, fingerprint
from bot.features import mutes, schedules
from bot.features.directory import EmailDirectory
from bot.ops.metrics import Metrics
from bot.pipeline import limits, logtail, tags
from bot.pipeline.buckets import Buckets
from bot.pipeline.deliver import Deliverer
from bot.pipeline.diff import Transition, diff
from bot.pipeline.enqueue import PollCommit, Pushed, QueueRules, commit_poll, commit_push, record_failure
from bot.pipeline.poll import enrich, poll_queue, with_causes
from bot.pipeline.prune import prune
from bot.pipeline.push import EventConsumer
from bot.pipeline.quiet import release as quiet_release
from bot.pipeline.steps import settle_waits
from bot.pipeline.usual import Normal
from bot.pipeline.webhooks import apply_owed
from bot.store import subscriptions
from bot.store.db import Database
from bot.store.lease import Fence, LeaseKeeper, LostLease
from bot.store.shards import ShardKeeper
from bot.store.snapshots import QueueView, baseline_due, priors, queue_view, stored_jobs
from providers import Job, JobSource, LimitReading, Taggable, wants_log_tail
from providers.base import native_order
from providers.causes import with_cause
from providers.events import stale

log = logging.getLogger(__name__)


class Worker:
    """One poll cycle per queue, and delivery rounds; only while holding the lease."""

    def __init__(
        self,
        *,
        settings: Settings,
        config: AppConfig,
        db: Database,
        sources: Mapping[str, JobSource],
        deliverer: Deliverer,
        lease: LeaseKeeper,
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
        directory: EmailDirectory | None = None,
        shards: ShardKeeper | None = None,
        buckets: Buckets | None = None,
    ) -> None:
        self.settings = settings
        self.buckets = buckets  # sharded delivery: the channels this worker drains (None: all, behind the lease)
        self.shards = shards  # sharded polling: the queues this worker polls (None: all, behind the lease)
        self.scopes = {name: config.shard_scope(source.config) for name, source in sources.items()}
        self._idle_noted = False  # the warning that some workers have no scope, logged once
        self.directory = directory  # owners given as e-mail addresses (None: `[owners]` only)
        self.config = config
        self.db = db
        self.sources = sources
        self.deliverer = deliverer
        self.lease = lease
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._scheduler: BaseScheduler | None = None
        self.retention = timedelta(days=config.bot.retention_days)
        self._baseline = threading.Lock()
        self.tails = logtail.LogTails(db=db, sources=sources, clock=clock)
        self._normals: dict[str, Normal] = {}
        self.consumers: list[EventConsumer] = []  # one per SQS queue of events (bot/pipeline/push.py)
        self._stop_events = threading.Event()
        self._event_threads: list[threading.Thread] = []

    @staticmethod
    def _live(stored: Sequence[Job], observed: Sequence[Job]) -> list[Job]:
        """Every job to check for slow or stuck: those this cycle listed, and the live ones stored
        (a steady listing shows only what changed; a quiet live job is slow all the same)."""
        return list({**{j.id: j for j in stored}, **{j.id: j for j in observed}}.values())

    def _normal(self, queue: str) -> Normal:
        """The queue's history windows, kept between cycles (bot/pipeline/usual.py)."""
        found = self._normals.get(queue)
        if found is None:
            config = self.sources[queue].config
            limits = history.Limits(config.slow_factor, config.slow_floor, config.stuck_factor, config.stuck_floor)
            found = self._normals[queue] = Normal(queue, config.family_pattern(), limits)
        return found

    def poll(self, queue: str) -> int:
        """One complete poll of one queue; returns the outbox rows it enqueued."""
        fence = self.poll_fence(queue)
        if fence is None:
            return 0
        started = time.monotonic()
        outcome, enqueued = "error", 0  # an exception escaped: the scheduler logs it
        try:
            with self._baseline_turn(queue):
                outcome, enqueued = self._poll(queue, fence)
        finally:
            self.metrics.poll_done(queue, outcome, time.monotonic() - started, enqueued=enqueued)
        return enqueued

    def poll_fence(self, queue: str) -> Fence | None:
        """What a poll of `queue` writes behind: its scope's fence when polling is sharded, else
        the poller lease's; None when this worker must not poll it."""
        if self.shards is not None:
            return self.shards.fence(self.scopes[queue])
        return self.lease.fence()

    def held_queues(self) -> list[str]:
        """The queues this worker polls: every one without sharding, else those of the scopes it holds."""
        if self.shards is None:
            return list(self.sources)
        held = self.shards.held()
        return [name for name in self.sources if self.scopes[name] in held]

    def _baseline_turn(self, queue: str) -> AbstractContextManager[object]:
        """Baselines take turns; other polls run at once.

        A baseline holds a queue's whole history in memory, from the listing to the commit
        (10,000 jobs: about 25 MB of Python objects); the scheduler starts every queue's first
        poll at the same moment, so without turns a process polling five such queues held five
        listings at once. Steady polls list only what changed and the live jobs, and go in parallel.
        """
        return self._baseline if baseline_due(self.db, queue) else nullcontext()

    def _poll(self, queue: str, fence: Fence) -> tuple[str, int]:
        """Poll, diff and commit one queue; (outcome, rows enqueued).

        Whatever goes wrong (the listing, or a bug in diff, enrichment or the commit) is a failed
        poll, recorded like a provider outage, so it counts towards the outage notice and shows in
        `/jobs queues`; nothing but a lost lease is left to the scheduler.
        """
        source = self.sources[queue]
        try:
            view = queue_view(self.db, queue)
            result = poll_queue(source, since=view.since, live=view.live, clock=self.clock)
            if result.jobs is None:
                self._record_failure(queue, fence, result.error or "unknown error", result.remedy)
                return "failed", 0
            poll = self._found(queue, source, view, result.jobs, result.started_at)
            enqueued = commit_poll(self.db, poll, fence=fence)
        except LostLease:
            self._normals.pop(queue, None)
            log.warning("lease_lost queue=%s", queue)
            return "lost_lease", 0
        except Exception as err:
            self._normals.pop(queue, None)  # its windows may hold history rows that were rolled back
            log.exception("poll_crashed queue=%s", queue)
            try:
                self._record_failure(queue, fence, f"internal error: {type(err).__name__}: {err}"[:500], None)
            except LostLease:
                return "lost_lease", 0
            except Exception:  # the store itself is failing: nothing can be recorded now
                log.exception("poll_failure_unrecorded queue=%s", queue)
            return "failed", 0
        log.info(
            "poll_done queue=%s jobs=%d transitions=%d enqueued=%d baseline=%s",
            queue,
            len(result.jobs),
            len(poll.result.transitions),
            enqueued,
            view.baseline,
        )
        return "ok", enqueued

    def _found(
        self, queue: str, source: JobSource, view: QueueView, jobs: list[Job], started_at: datetime
    ) -> PollCommit:
        """What a successful listing means: the jobs with their causes and owners, diffed against the
        store and enriched, with what the features decide about them (owners' users, history)."""
        known = priors(self.db, queue, [j.id for j in jobs])
        forgotten = self.clock() - self.retention
        # The cause goes on before the diff too, so a failed job listed again fingerprints the same.
        owner_from = source.config.owner_from
        observed = [owners.with_owner(with_cause(source.provider, j), owner_from, source.provider) for j in jobs]
        tag = owners.tag_key(owner_from)
        if tag is not None and isinstance(source, Taggable):
            observed = self._tag_owners(queue, source, tag, observed, known, view)
        observed = limits.carried(observed, {j.id: j for j in view.live})
        if isinstance(source, LimitReading):
            observed = self._limits(queue, source, observed, known, view)
        changes = enrich(source, diff(known, observed, baseline=view.baseline, forgotten_before=forgotten))
        changes = with_causes(source.provider, changes)
        live = self._live(view.live, observed)
        return PollCommit(
            queue=queue,
            started_at=started_at,
            result=changes,
            now=self.clock(),
            live=live,
            baseline=view.baseline,
            owner_users=self._owner_users(queue, owner_from, observed, changes.transitions, live),
            normal=self._normal(queue),
            rules=self._rules(source),
            native_order=native_order(source),
        )

    def apply_pushed(self, queue: str, job: Job) -> Pushed | None:
        """Apply one pushed state of one job (an event, bot/pipeline/push.py) the way a poll applies
        what it lists: causes and owners, the diff against the store, the failure's detail when the
        event lacks its reason, then `commit_push`, whose guard drops a state older than the stored
        one. None without the lease (nothing written: the event is to be applied later)."""
        fence = self.lease.fence()
        if fence is None:
            return None
        source = self.sources[queue]
        owner_from = source.config.owner_from
        stored = stored_jobs(self.db, queue, [job.id])
        if job.id in stored and stale(job, stored[job.id], native_order(source)):
            return Pushed(stale=[job.id])  # the commit checks again, in its transaction
        observed = tags.carried(
            [owners.with_owner(with_cause(source.provider, job), owner_from, source.provider)], stored
        )
        known = {j.id: Prior(j.status, fingerprint(j)) for j in stored.values()}
        tag = owners.tag_key(owner_from)
        if tag is not None and isinstance(source, Taggable):
            observed = tags.with_tag_owners(source, tag, observed, known, baseline=False)
        forgotten = self.clock() - self.retention
        changes = with_causes(
            source.provider, enrich(source, diff(known, observed, baseline=False, forgotten_before=forgotten))
        )
        push = PollCommit(
            queue=queue,
            started_at=self.clock(),
            result=changes,
            now=self.clock(),
            owner_users=self._owner_users(queue, owner_from, observed, changes.transitions),
            normal=self._normal(queue),
            rules=self._rules(source),
            native_order=native_order(source),
        )
        try:
            pushed = commit_push(self.db, push, fence=fence)
        except LostLease:
            log.warning("lease_lost queue=%s during a pushed change", queue)
            return None
        except Exception:
            self._normals.pop(queue, None)  # its windows may hold history rows that were rolled back
            raise
        if pushed.enqueued:
            self.soon("deliver")  # a pushed change is posted now, not at the next delivery round
        return pushed

    def soon(self, job_id: str) -> None:
        """Run one of the scheduler's jobs (`deliver`, `webhooks`) now rather than at its next
        interval; nothing when it is not scheduled. A run already under way is not doubled: the
        scheduler skips the extra one (max_instances=1), and the next interval takes it."""
        job = self._scheduler.get_job(job_id) if self._scheduler is not None else None
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def _tag_owners(
        self, queue: str, source: Taggable, key: str, listed: list[Job], known: dict[str, Prior], view: QueueView
    ) -> list[Job]:
        """The listed jobs with their stored tag state and, for those due, the owner read from their
        tags (bot/pipeline/tags.py); plus the live jobs the listing left out whose read is still due (a retry).
        Adds the priors of those to `known`."""
        stored = {j.id: j for j in view.live}
        ended = [j.id for j in listed if j.id in known and j.id not in stored]
        stored.update(stored_jobs(self.db, queue, ended) if ended else {})
        jobs = tags.carried(listed, stored)
        shown = {j.id for j in jobs}
        retry = [j for j in view.live if j.id not in shown and tags.due(j, None, baseline=False)]
        if retry:
            known.update(priors(self.db, queue, [j.id for j in retry]))
            jobs += retry
        return tags.with_tag_owners(source, key, jobs, known, baseline=view.baseline)

    def _limits(
        self, queue: str, source: LimitReading, listed: list[Job], known: dict[str, Prior], view: QueueView
    ) -> list[Job]:
        """The listed jobs, and the live ones the listing left out whose runtime limit is still to be
        read (more than one cycle's reads at the baseline, or a failed read), with the limits of those
        due read (bot/pipeline/limits.py). Adds the priors of the added jobs to `known`."""
        shown = {j.id for j in listed}
        retry = [j for j in view.live if j.id not in shown and limits.due(j)]
        if retry:
            known.update(priors(self.db, queue, [j.id for j in retry]))
        return limits.with_limits(source, listed + retry)

    def _owner_users(
        self,
        queue: str,
        owner_from: str | None,
        jobs: Sequence[Job],
        transitions: Sequence[Transition],
        live: Sequence[Job] = (),
    ) -> dict[str, str]:
        """Job id -> the owner's Slack user id, for the jobs of `transitions` (every change: a
        subscription's `--owner` filter needs them; the owner's mention and DM only the ended ones)
        and for the `live` ones whose owner is already known (a slow or stuck flag may name them).

        Runs before the commit, outside its transaction: `[owners]` first, then e-mail addresses
        through bot/features/directory.py, which looks up the owners of every listed job (so the answer is
        cached long before the job ends) and waits briefly only for those of changed jobs."""
        if not owner_from:
            return {}
        table = self.config.owners.users
        changed = {t.job.id: str(t.job.extra.get(owners.OWNER_KEY) or "") for t in transitions}
        changed = {job_id: value for job_id, value in changed.items() if value}
        listed = {str(j.extra.get(owners.OWNER_KEY) or "") for j in jobs} - {""}
        if self.directory is None or not (listed or changed):
            users = {v: u for v in changed.values() if (u := owners.slack_user(v, table)) is not None}
        else:
            team = self._owner_team(queue)
            users = self.directory.users(team, listed | set(changed.values()), table, urgent=changed.values())
        for job in live:
            value = str(job.extra.get(owners.OWNER_KEY) or "")
            if value and job.id not in changed:
                known = users.get(value) or owners.slack_user(value, table)
                if known is not None:
                    changed[job.id] = value
                    users.setdefault(value, known)
        return {job_id: users[value] for job_id, value in changed.items() if value in users}

    def _owner_team(self, queue: str) -> str:
        """The workspace whose users owners are looked up in: that of the queue's first subscription
        (the owner's DM goes there too, bot/pipeline/enqueue.py), else `[bot] ops_team`."""
        with self.db.read() as session:
            subs = subscriptions.for_queue(session, queue)
        return subs[0].team_id if subs else self.config.bot.ops_team or ""

    def _rules(self, source: JobSource) -> QueueRules:
        """How this queue's news is told (bot/pipeline/enqueue.py QueueRules), from the configuration."""
        bot = self.config.bot
        return QueueRules(
            ops_channel=bot.ops_channel,
            ops_team=bot.ops_team or "",
            timezone=bot.timezone,
            owner_notify=self.config.owners.notify,
            log_tail=wants_log_tail(source),
            failure_threshold=bot.failure_threshold,
            digest_threshold=bot.digest_threshold,
            follow_up_group=bot.follow_up_group,
            owners_table=self.config.owners.users,
        )

    def _record_failure(self, queue: str, fence: Fence, error: str, remedy: str | None) -> None:
        rules = self._rules(self.sources[queue])
        record_failure(self.db, queue=queue, error=error, now=self.clock(), fence=fence, rules=rules, remedy=remedy)

    def poll_all(self) -> int:
        """Poll every queue once (`jobwatch poll --once`); with sharded polling only those of the
        scopes this worker holds."""
        return sum(self.poll(name) for name in self.held_queues())

    def dispatch(self) -> None:
        """The delivery tick (every second): owe what ended mutes and quiet hours say, then make sure
        each channel with due rows has its drainer, and return at once (bot/pipeline/deliver.py).
        Sharded delivery: the channels of this worker's buckets, with or without the lease."""
        if self.buckets is None:
            self._delivery(self.deliverer.dispatch)
            return
        self._delivery(lambda: None)  # what is not per channel stays behind the lease
        try:
            self.deliverer.dispatch()
        except LostLease:
            log.warning("bucket_lost during delivery")

    def deliver(self) -> None:
        """One synchronous delivery round: everything due now is sent when it returns (`jobwatch
        poll --once`, the demo, the tests)."""
        self._delivery(self.deliverer.run_once)

    def _delivery(self, run: Callable[[], object]) -> None:
        if self.lease.fence() is None:
            return
        try:
            mutes.expire(self.db, self.clock())  # summaries of ended mutes go out in this round
            quiet_release(self.db, self.clock(), self.lease.fence())  # so do digests of ended quiet hours
            settle_waits(self.db, self.clock(), self.lease.fence())  # workflow steps whose job has ended
            run()
        except LostLease:
            log.warning("lease_lost during delivery")

    def prune(self) -> None:
        """Forget old finished jobs and settled alerts (`[bot] retention_days`)."""
        fence = self.lease.fence()
        if fence is None:
            return
        try:
            prune(self.db, now=self.clock(), retention=self.retention, fence=fence)
        except LostLease:
            log.warning("lease_lost during prune")

    def digests(self) -> int:
        """Owe each scheduled digest whose period has ended (bot/features/schedules.py); returns digests written."""
        fence = self.lease.fence()
        if fence is None:
            return 0
        try:
            return schedules.enqueue_due(
                self.db,
                self.clock(),
                default_tz=self.config.bot.timezone,
                fence=fence,
                providers={name: source.provider for name, source in self.sources.items()},
            )
        except LostLease:
            log.warning("lease_lost during digests")
            return 0

    def log_tails(self) -> int:
        """Read the log tails failures are owed and write their thread notes (bot/pipeline/logtail.py)."""
        fence = self.lease.fence()
        if fence is None:
            return 0
        try:
            return self.tails.run_once(fence)
        except LostLease:
            log.warning("lease_lost during log tails")
            return 0

    def webhooks(self) -> int:
        """Read and apply the jobs providers' webhooks named (bot/pipeline/webhooks.py)."""
        if self.lease.fence() is None:
            return 0
        return apply_owed(self.db, self.sources, self.apply_pushed, report=self.metrics, clock=self.clock)

    def renew(self) -> None:
        """Keep (or try to take) the lease, and with sharded polling this worker's share of the queues."""
        held = self.lease.fence() is not None
        fence = self.lease.renew()
        if fence is not None and not held:
            log.info("lease_acquired owner=%s fence=%d", self.lease.owner, fence.token)
            if self.shards is None:
                self._poll_now()  # a standby that takes over polls at once, not one interval later
        elif fence is None and held:
            log.warning("lease_lost owner=%s", self.lease.owner)
        if self.shards is not None:
            self.renew_shards()
        if self.buckets is not None:
            self.renew_buckets()

    def renew_buckets(self) -> None:
        """Renew this worker's delivery buckets; a bucket lost or given up stops its drainers
        before their next post (their fence is gone), a bucket taken is drained from the next tick."""
        assert self.buckets is not None
        gained, gone = self.buckets.renew()
        held = self.buckets.held()
        self.metrics.buckets_held(len(held))
        if gained or gone:
            log.info(
                "buckets_changed owner=%s held=%d gained=%s gone=%s",
                self.buckets.keeper.owner,
                len(held),
                ",".join(gained),
                ",".join(gone),
            )

    def renew_shards(self) -> None:
        """Renew this worker's scopes; a queue of a scope taken starts its poll job at once, a queue
        of a scope given up (a worker joined) or lost (this one was paused past the TTL) loses its
        poll job."""
        assert self.shards is not None
        before = set(self.held_queues())
        scopes = set(self.scopes.values())
        held = self.shards.renew(scopes)
        now_held = set(self.held_queues())
        gained, gone = sorted(now_held - before), sorted(before - now_held)
        if gained or gone:
            log.info(
                "shards_changed owner=%s scopes=%d held=%d gained=%s gone=%s",
                self.shards.owner,
                len(held),
                len(now_held),
                ",".join(gained),
                ",".join(gone),
            )
        idle = self.shards.members > len(scopes)
        if idle and not self._idle_noted:
            log.warning(
                "shards_fewer_than_workers shard_by=%s scopes=%d workers=%d: %d worker(s) poll nothing",
                self.config.bot.shard_by,
                len(scopes),
                self.shards.members,
                self.shards.members - len(scopes),
            )
        self._idle_noted = idle
        if self._scheduler is None:
            return
        for name in gone:
            self._normals.pop(name, None)  # whoever polls it now keeps its windows
            if self._scheduler.get_job(f"poll:{name}") is not None:
                self._scheduler.remove_job(f"poll:{name}")
        for name in gained:
            if self._scheduler.get_job(f"poll:{name}") is None:
                self._add_poll(self._scheduler, name, self.clock())

    def _poll_now(self) -> None:
        if self._scheduler is None:
            return
        now = self.clock()
        for name in self.sources:
            job = self._scheduler.get_job(f"poll:{name}")
            if job is not None:
                job.modify(next_run_time=now)

    def schedule(self, scheduler: BaseScheduler) -> None:
        """Add the lease, poll and delivery jobs to a scheduler; try for the lease first so the
        first polls run at once instead of one interval later."""
        self.renew()
        now = self.clock()
        ttl = self.lease.ttl.total_seconds()
        if self.shards is not None:  # one job renews both, as often as the shorter TTL needs
            ttl = min(ttl, self.shards.ttl.total_seconds())
        scheduler.add_job(self.renew, "interval", seconds=max(1.0, ttl / 3), id="lease")
        for name in self.held_queues():
            self._add_poll(scheduler, name, now)
        scheduler.add_job(
            self.dispatch, "interval", seconds=1, id="deliver", max_instances=1, coalesce=True, misfire_grace_time=5
        )
        if any(getattr(s.config, "webhook", False) for s in self.sources.values()):
            scheduler.add_job(
                self.webhooks,
                "interval",
                seconds=1,
                id="webhooks",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=5,
            )
        scheduler.add_job(
            self.digests, "interval", minutes=1, id="digests", next_run_time=now, max_instances=1, coalesce=True
        )
        if self.tails.wanted:
            # Its own thread: a slow log service never holds a thread the polls or delivery need.
            scheduler.add_executor(SchedulerPool(max_workers=1), alias="logtail")
            scheduler.add_job(
                self.log_tails,
                "interval",
                seconds=logtail.EVERY,
                id="log_tails",
                executor="logtail",
                max_instances=1,
                coalesce=True,
            )
        scheduler.add_job(
            self.prune,
            "interval",
            hours=1,
            id="prune",
            next_run_time=now + timedelta(minutes=1),
            max_instances=1,
            coalesce=True,
        )
        self._scheduler = scheduler
        self.start_events()

    def _add_poll(self, scheduler: BaseScheduler, name: str, first: datetime) -> None:
        interval = self.config.interval(self.sources[name].config, self.settings)
        scheduler.add_job(
            self.poll,
            "interval",
            args=[name],
            seconds=interval,
            id=f"poll:{name}",
            next_run_time=first,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval / 2)),
        )

    def start_events(self) -> None:
        """One thread per SQS queue of events, each long-polling it while this worker holds the
        lease (a long poll would hold a scheduler thread for 20 s at a time)."""
        for consumer in self.consumers:
            thread = threading.Thread(
                target=consumer.run,
                args=(self._stop_events,),
                kwargs={"holding": lambda: self.lease.fence() is not None},
                name=consumer.channel,
                daemon=True,
            )
            thread.start()
            self._event_threads.append(thread)

    def start_background(self) -> BackgroundScheduler:
        """Run inside another process (the web server)."""
        scheduler = BackgroundScheduler(
            executors={"default": SchedulerPool(max_workers=max(4, len(self.sources) + 2))}, timezone="UTC"
        )
        self.schedule(scheduler)
        scheduler.start()
        return scheduler

    def close(self) -> None:
        """Stop reading events and the channels' drainers, then release the lease and the adapters'
        connections. A consumer in the middle of a long poll is not waited for: what it receives is not
        applied nor deleted, and comes back to whoever holds the lease next."""
        self._stop_events.set()
        for thread in self._event_threads:
            thread.join(timeout=1.0)
        self.deliverer.close()
        if self.shards is not None:
            self.shards.release()
        if self.buckets is not None:
            self.buckets.release()
        self.lease.release()
        self.tails.close()
        if self.directory is not None:
            self.directory.close()
        for source in self.sources.values():
            source.close()
