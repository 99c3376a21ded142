"""Watch a job: the person hears about *their* job in a direct message, wherever they are.

`/jobs watch <queue> <job>` and the Watch button under alerts and `/jobs status` replies write
one `watch` row per (team, user, queue, job). Anyone who may read a queue may watch its jobs
(reading is open to everyone in the workspace), from any conversation, DMs included.

The row is only ever turned into messages by the poll: the commit that stores a watched job's
transition also writes a `dm` outbox row addressed to the user (bot/pipeline/enqueue.py
`watch_rows`) and deletes the watch once the job is terminal, in the same transaction. Delivery
opens the IM (conversations.open) and posts it like any other row: exactly once, paced, recovered
after a crash by the alert id in the IM's history.

A job that has already ended is answered at once and nothing is stored. Both the fresh status
from the provider and the stored snapshot are checked, the latter in the transaction that writes
the row: writes are serialised (SQLite's lock, PostgreSQL's advisory writer lock), so a poll that
stored the job's end either committed first (the snapshot says so and no row is written) or
commits after and finds the row.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.blocks import render
from bot.core.clock import Clock, utcnow
from bot.core.config import AppConfig
from bot.core.errors import NoSuchJob, ServiceError
from bot.features.access import Actor
from bot.store import snapshots, watches
from bot.store.db import Database
from bot.store.refs import resolve_job
from bot.store.session import Conflict
from providers import Job, JobStatus

MAX_WATCHES = 200  # per person: a bound on what one person can make the bot send them

Finder = Callable[[str, str], Job]  # (queue, reference) -> the job, fresh when the provider answers


class Watcher:
    """Runs `/jobs watch`, `/jobs unwatch`, `/jobs watching` and the Watch and Unwatch buttons."""

    def __init__(self, *, config: AppConfig, db: Database, clock: Clock = utcnow) -> None:
        self.config = config
        self.db = db
        self.clock = clock

    def _known(self, queue: str) -> None:
        if self.config.queue(queue) is None:
            known = ", ".join(q.name for q in self.config.queues) or "none configured"
            raise ServiceError(f"unknown queue `{queue}`; queues: {known}")

    def watch(self, actor: Actor, queue: str, ref: str, *, find: Finder) -> render.Message:
        """Store a watch on the job `ref` names, unless it has ended (then say so, store nothing)."""
        self._known(queue)
        job = find(queue, ref)
        name = render.safe(job.name)
        if job.status.terminal:
            return _finished(job)
        already = render.plain(f":eyes: You already watch *{name}*; you get a direct message when it ends.")
        try:
            with self.db.write() as session:
                stored = snapshots.stored_job(session, queue, job.id)
                if stored is not None and stored.status.terminal:
                    return _finished(stored)
                if watches.watches(session, actor.team_id, actor.user_id, queue, job.id):
                    return already
                if watches.count(session, actor.team_id, actor.user_id, limit=MAX_WATCHES) >= MAX_WATCHES:
                    raise ServiceError(f"you already watch {MAX_WATCHES} jobs; `/jobs unwatch` some first")
                watches.add(
                    session,
                    team_id=actor.team_id,
                    user_id=actor.user_id,
                    queue=queue,
                    job_id=job.id,
                    job_name=job.name[:300],
                    now=self.clock(),
                    trigger_id=actor.trigger_id,
                )
        except Conflict:  # a double click committed first: the same answer
            return already
        started = " and once when it starts running" if job.status is JobStatus.QUEUED else ""
        return render.plain(
            f":eyes: Watching *{name}* (`{queue}`, now {job.status.value}): you get a direct message "
            f"when it ends{started}. `/jobs unwatch {queue} {render.safe(job.id, 300)}` stops it."
        )

    def unwatch(self, actor: Actor, queue: str, ref: str) -> render.Message:
        """Remove the person's watch on the job `ref` names (by id, provider id or name among
        their watches; by stored id when the job is no longer known)."""
        self._known(queue)
        with self.db.write() as session:
            mine = watches.in_queue(session, actor.team_id, actor.user_id, queue)
            by_id = {w.job_id: w for w in mine}
            try:
                job_id = resolve_job(session, queue, ref, among=list(by_id)).job.id if by_id else ref
            except NoSuchJob:
                job_id = ref
            row = by_id.get(job_id)
            if row is None:
                return render.plain(f"You do not watch `{render.safe(ref, 300)}` in `{queue}`; nothing to remove.")
            watches.remove(session, row.id)
        return render.plain(f"Stopped watching *{render.safe(row.job_name or row.job_id)}* (`{queue}`).")

    def watching(self, actor: Actor) -> render.Message:
        """The person's watches, each with the job's last polled status and an Unwatch button."""
        return render.watch_list(self.rows(actor.team_id, actor.user_id))

    def rows(self, team_id: str, user_id: str) -> list[tuple[str, str, str, str]]:
        """(queue, job id, job name, last polled status) of each watch, oldest first."""
        with self.db.read() as session:
            return watches.listing(session, team_id, user_id)


def _finished(job: Job) -> render.Message:
    return render.plain(
        f"*{render.safe(job.name)}* already finished ({job.status.value}, {render.safe(job.native_status, 100)}); "
        "there is nothing to watch."
    )
