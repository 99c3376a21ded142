"""Claim a failure ("I'm on it") and see the failures nobody has claimed (`/jobs open`).

A failed or timed-out job's card has a Claim button. Anyone in a channel with the card may press
it (a claim changes nothing at the provider, so it is not an operator's act):

1. the job must be one the store knows as failed or timed out in this queue;
2. the claim is recorded (table job_claim, one per workspace, queue and job) in one transaction
   with its audit row and, for every channel of the workspace that has the job's thread, one note
   "@x is on it" whose payload carries the card as it is to look now ("claimed by @x"); delivery
   posts the note in the thread and edits the card in place (bot/pipeline/send.py, as for a
   status change). The handler never calls Slack itself. A follow-up of the failure
   (bot/pipeline/followup.py) written but not yet sent is withdrawn in the same transaction.
3. a second person pressing Claim is told who has it, since when, with a Take over button; a
   take-over is recorded the same way (the one it replaces is kept as `previous_user_id` and in
   the audit), and names the holder it replaces, so a take-over of a claim that changed meanwhile
   is refused rather than applied blindly. Pressing again when it is already yours writes nothing;
   two first claims at once: the one that commits first holds it, the other is told so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.blocks import render
from bot.core import history
from bot.core.clock import Clock, utcnow
from bot.core.config import AppConfig
from bot.core.errors import ServiceError
from bot.core.ids import CHANNEL_RE, USER_RE
from bot.core.outbox import OutboxRow, TextPayload
from bot.features import access
from bot.features.access import Actor
from bot.store import claims, outbox, snapshots, threads
from bot.store.db import Database
from bot.store.session import Conflict, Session
from providers import Job, JobStatus

CLAIMABLE = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})
OPEN_WINDOW = timedelta(hours=24)  # `/jobs open` lists the failures of the last day


@dataclass(frozen=True)
class OpenFailure:
    """One unclaimed failure of the last day."""

    job: Job
    ended: datetime


class Claimer:
    """Runs the Claim and Take over buttons and `/jobs open`."""

    def __init__(self, *, config: AppConfig, db: Database, clock: Clock = utcnow) -> None:
        self.config = config
        self.db = db
        self.clock = clock

    def claim(self, actor: Actor, queue: str, job_id: str, *, holder: str | None = None) -> render.Message:
        """Claim the job for `actor`, or (with `holder`, the user Take over was offered against) take
        it over; the answer is for the presser only."""
        if self.config.queue(queue) is None:
            raise ServiceError(f"unknown queue `{queue}`")
        if not CHANNEL_RE.match(actor.channel_id) or not USER_RE.match(actor.user_id):
            raise ServiceError("claim a failure from a channel that has its card")
        with self.db.read() as session:
            found = snapshots.jobs_of(session, queue, [job_id])
        if not found:
            raise ServiceError(f"no job `{job_id}` in queue `{queue}` (it may have been pruned)")
        job = found[0]
        if job.status not in CLAIMABLE:
            return render.plain(f"*{render.safe(job.name)}* is {job.status.value}: only failures are claimed.")
        now = self.clock()
        try:
            with self.db.write() as session:
                current = claims.of_job(session, actor.team_id, queue, job_id)
                answer = self._refusal(job, current, actor, holder)
                if answer is not None:
                    return answer
                claims.claim(session, team_id=actor.team_id, queue=queue, job_id=job_id, user_id=actor.user_id, now=now)
                # a follow-up written before the claim but not yet sent is taken back with it
                outbox.withdraw_follow_ups(session, queue=queue, job_ids=[job_id], team_id=actor.team_id)
                before = current.user_id if current is not None else None
                verb = "take over" if before else "claim"
                access.record(
                    session,
                    actor,
                    verb,
                    queue=queue,
                    detail=f"{job_id}" + (f" from {before}" if before else ""),
                    now=now,
                )
                told = self._notes(session, actor, job, before, now)
        except Conflict:  # another first claim committed meanwhile
            with self.db.read() as session:
                current = claims.of_job(session, actor.team_id, queue, job_id)
            answer = self._refusal(job, current, actor, holder)
            if answer is None:
                raise
            return answer
        where = f" Its card says so in {told} channel(s)." if told else ""
        taken = f", taken over from <@{before}>" if before else ""
        return render.plain(f":raising_hand: You are on *{render.safe(job.name)}*{taken}.{where}")

    def _refusal(
        self, job: Job, current: claims.Claimed | None, actor: Actor, holder: str | None
    ) -> render.Message | None:
        """Why nothing is written: the claim is already the presser's, or someone else's (without a
        take-over of exactly that claim)."""
        if current is None:
            return None
        name = render.safe(job.name)
        if current.user_id == actor.user_id:
            return render.plain(f"*{name}* is already yours (since {render.when(current.at)}).")
        if holder is not None and holder == current.user_id:
            return None
        changed = " The claim changed since you were offered to take it over." if holder is not None else ""
        message = render.plain(
            f":raising_hand: *{name}* is claimed by <@{current.user_id}> since {render.when(current.at)}.{changed}"
        )
        buttons = render.take_over_button(job.queue, job.id, current.user_id)
        blocks = [*message.blocks, {"type": "actions", "elements": buttons}] if buttons else message.blocks
        return render.Message(message.text, blocks)

    def _notes(self, session: Session, actor: Actor, job: Job, before: str | None, now: datetime) -> int:
        """One note per channel of the workspace with the job's thread; each carries the card to show."""
        text = f":raising_hand: <@{actor.user_id}> is on it" + (f" (taken over from <@{before}>)" if before else ".")
        rows: list[OutboxRow] = []
        for team, channel in sorted(threads.channels_with_thread(session, job.queue, job.id)):
            if team != actor.team_id:
                continue
            shown = claims.card(session, team, channel, job.queue, job.id) or job
            card = render.with_claim(shown, actor.user_id, before).model_dump_json()
            rows.append(
                OutboxRow.note(
                    f"claim:{job.queue}:{job.id}:{actor.user_id}:{now.isoformat()}",
                    TextPayload(text, card=card),
                    team_id=team,
                    channel_id=channel,
                    queue=job.queue,
                    job_id=job.id,
                    status=job.status.value,
                    now=now,
                )
            )
        outbox.insert(session, rows)
        # a status change written before the claim and not yet posted redraws the card when it goes:
        # it is to say who has the job too (bot/pipeline/owed.py `claimed_cards` does so for later ones)
        for row in outbox.owed_cards(session, actor.team_id, job.queue, job.id):
            owed = render.with_claim(Job.stored(row.payload), actor.user_id, before)
            outbox.set_payload(session, row, owed.model_dump_json())
        return len(rows)

    def open_failures(self, team_id: str, queues: Sequence[str]) -> list[OpenFailure]:
        """The failed and timed-out jobs of `queues` that ended in the last OPEN_WINDOW, that nobody
        in the workspace has claimed and whose family has not succeeded since; oldest first."""
        now = self.clock()
        out: list[OpenFailure] = []
        with self.db.read() as session:
            for queue in queues:
                config = self.config.queue(queue)
                pattern = config.family_pattern() if config else None
                recent = [
                    (job, ended)
                    for job in claims.failures(session, queue)
                    if (ended := job.ended_at or job.updated_at) is not None and now - ended <= OPEN_WINDOW
                ]
                taken = claims.claimed_ids(session, team_id, queue, [j.id for j, _ in recent])
                families = {j.id: history.family_of(j.name, pattern) for j, _ in recent}
                fixed = claims.last_successes(session, queue, families.values())
                for job, ended in recent:
                    success = fixed.get(families[job.id])
                    if job.id not in taken and (success is None or success < ended):
                        out.append(OpenFailure(job, ended))
        out.sort(key=lambda f: f.ended)
        return out
