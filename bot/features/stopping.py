"""Stop a job from Slack: who may, which job, once, with a deadline, and what the channel hears.

The order of checks is the order of the answers a person gets:

1. the queue exists and its provider can stop a job (else "not supported by <provider>");
2. the conversation is a channel the queue allows (not a DM), and the person is one of the
   queue's operators (`operators` on the queue, else `[access] operators`; empty: nobody);
3. the job resolves (the one lookup every command uses) and, fresh from the provider, is not
   terminal (else "already finished (<status>)" and no call);
4. the stop is recorded (table `stop_request`, unique per queue, job and action) *before* the
   provider is called, so a double click, a Slack retry or two people pressing together find the
   row and make no second call;
5. the provider call runs with a deadline; its answer, or its refusal in plain words, is shown to
   the person and kept on the row. Nothing is retried by itself: a refused, failed or unanswered
   stop may be asked again by a person, which reuses the row.

Every outcome, refusals included, is one audit row. A stop that reached the provider puts one
note, "Stop requested by @user: reason", in the job's thread in each channel of the workspace
that has one (and in the asking channel), through the outbox like every other message; the
Stopping and Stopped transitions that follow are ordinary alerts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as DeadlineExceeded
from dataclasses import dataclass
from typing import Protocol

from bot.blocks import render
from bot.core.alert_ids import stop_note_id
from bot.core.audit import AuditOutcome
from bot.core.clock import Clock, utcnow
from bot.core.config import AppConfig
from bot.core.errors import ServiceError
from bot.core.ids import CHANNEL_RE
from bot.core.outbox import OutboxRow, TextPayload
from bot.core.owners import OWNER_KEY
from bot.core.stops import StopAction, StopRequested, StopState
from bot.features import access
from bot.features.access import Actor
from bot.store import outbox, stops, threads
from bot.store.db import Database
from bot.store.session import Conflict, Session
from providers import Job, JobSource, JobStatus, ProviderError, QueueConfig, Stoppable, StopResult, stop_support
from providers.errors import AuthError, ConflictError, NotFoundError, ThrottledError

log = logging.getLogger(__name__)

ACTION = StopAction.STOP
DEADLINE = 20.0  # seconds the provider has to answer a stop
MENTION_RE = re.compile(r"^[UW][A-Z0-9]{2,40}$")


Finder = Callable[[str, str], Job]  # (queue, reference) -> the job, fresh when the provider answers


@dataclass(frozen=True)
class Stopped:
    """What became of one stop that got as far as its job: the reply, the audited outcome (`ok`: the
    provider accepted it), the job, and the provider's answer in plain words when it was asked."""

    message: render.Message
    outcome: AuditOutcome
    job: Job
    answer: str = ""


class Found(Protocol):
    """A job a reference resolved to, and how many other jobs matched it too."""

    @property
    def job(self) -> Job: ...

    @property
    def others(self) -> int: ...


Looker = Callable[[str, str], Found]  # (queue, reference) -> the job and the count of other matches


def operator_text(config: AppConfig, source: JobSource) -> str:
    """`jobwatch check`'s line: whether stop works for this queue and for whom."""
    support = stop_support(source)
    if support is not None:
        return support
    queue = source.config
    operators = config.operators(queue)
    if not operators:
        return "off: nobody may stop jobs (set operators in [access] or on the queue)"
    where = "the queue's operators" if queue.operators is not None else "[access] operators"
    return f"on for {', '.join(operators)} ({where})"


def stop_buttons(config: AppConfig, sources: Mapping[str, JobSource]) -> dict[str, str]:
    """Queue -> provider for the queues whose jobs get a Stop button: the adapter can stop a job
    and somebody may (a button that refuses everyone would only be noise)."""
    return {
        name: source.config.provider
        for name, source in sources.items()
        if stop_support(source) is None and config.operators(source.config)
    }


class Stopper:
    """Runs `/jobs stop` and the Stop button."""

    def __init__(
        self,
        *,
        config: AppConfig,
        db: Database,
        sources: Mapping[str, JobSource],
        clock: Clock = utcnow,
        deadline: float = DEADLINE,
    ) -> None:
        self.config = config
        self.db = db
        self.sources = sources
        self.clock = clock
        self.deadline = deadline
        self._calls = ThreadPoolExecutor(max_workers=8, thread_name_prefix="stop")

    def confirm(self, actor: Actor, queue: str, ref: str, *, reason: str, find: Looker) -> render.Message:
        """`/jobs stop`: the same checks as a stop, then the job `ref` resolved to and a Stop button
        behind Slack's confirmation. No stop is recorded and the provider is only asked for the
        job's current state; the press (`stop`, by the job's id) does the rest."""
        seen: list[Found] = []

        def look(q: str, r: str) -> Job:
            seen.append(find(q, r))
            return seen[-1].job

        checked = self._checks(actor, queue, ref, find=look)
        if isinstance(checked, Stopped):
            return checked.message
        job, others = checked, seen[-1].others
        provider = self.sources[queue].config.provider
        owner = str(job.extra.get(OWNER_KEY) or "")
        return render.stop_confirm(job, provider=provider, owner=owner, others=others, reason=reason)

    def stop(self, actor: Actor, queue: str, ref: str, *, reason: str, find: Finder) -> render.Message:
        """Check, record, call the provider, tell the threads; every branch is audited."""
        return self.attempt(actor, queue, ref, reason=reason, find=find).message

    def attempt(self, actor: Actor, queue: str, ref: str, *, reason: str, find: Finder) -> Stopped:
        """`stop`, with what became of it (a Workflow Builder step completes or fails on it)."""
        checked = self._checks(actor, queue, ref, find=find)
        if isinstance(checked, Stopped):
            return checked
        job, config = checked, self.config.queue(queue)
        assert config is not None  # _checks said so
        earlier = self._record(actor, job, reason)
        if earlier is not None:
            self._audit(actor, queue, f"{job.id}: already requested ({earlier.state})", AuditOutcome.DUPLICATE)
            who = f"<@{earlier.user_id}>" if MENTION_RE.match(earlier.user_id) else "someone"
            message = render.plain(
                f"A stop of *{render.safe(job.name)}* was already requested by {who} at "
                f"{render.when(earlier.requested_at)} ({earlier.state}); not asking again."
            )
            return Stopped(message, AuditOutcome.DUPLICATE, job)
        return self._call(actor, config, self.sources[queue], job, reason)

    def _checks(self, actor: Actor, queue: str, ref: str, *, find: Finder) -> Job | Stopped:
        """Checks 1 to 3 of the module docstring: the job to stop, or what became of the stop when
        nothing is to be done (a refusal raises ServiceError); each refusal audited."""
        config = self.config.queue(queue)
        if config is None:
            known = ", ".join(q.name for q in self.config.queues) or "none configured"
            self._audit(actor, queue, f"unknown queue {queue!r}", AuditOutcome.REFUSED)
            raise ServiceError(f"unknown queue `{queue}`; queues: {known}")
        source = self.sources[queue]
        unsupported = stop_support(source)
        if unsupported is not None:
            self._audit(actor, queue, unsupported, AuditOutcome.REFUSED)
            raise ServiceError(unsupported)
        refusal = self.refusal(actor, config)
        if refusal is not None:
            raise access.refuse(self.db, actor, f"{ACTION} {ref[:100]}", queue=queue, reason=refusal, now=self.clock())
        try:
            job = find(queue, ref)
        except ServiceError as err:
            self._audit(actor, queue, f"{ref[:100]}: {err}", AuditOutcome.NOT_FOUND)
            raise
        if job.status.terminal:
            self._audit(actor, queue, f"{job.id}: already {job.status.value}", AuditOutcome.FINISHED)
            message = render.plain(
                f"*{render.safe(job.name)}* already finished ({job.status.value}, "
                f"{render.safe(job.native_status, 100)}); nothing to stop."
            )
            return Stopped(message, AuditOutcome.FINISHED, job)
        if job.status is JobStatus.STOPPING:
            self._audit(actor, queue, f"{job.id}: already stopping", AuditOutcome.STOPPING)
            message = render.plain(f"*{render.safe(job.name)}* is already stopping; nothing more to do.")
            return Stopped(message, AuditOutcome.STOPPING, job)
        return job

    def refusal(self, actor: Actor, queue: QueueConfig) -> str | None:
        """Why `actor` may not stop `queue`'s jobs from here, or None."""
        if actor.channel_id.startswith("D") or not CHANNEL_RE.match(actor.channel_id):
            return "stop a job from a channel that gets its alerts, not from a direct message"
        if queue.channels and actor.channel_id not in queue.channels:
            return f"jobs of queue `{queue.name}` may not be stopped from this channel"
        operators = self.config.operators(queue)
        if not operators:
            return f"nobody may stop jobs of queue `{queue.name}`: the bot's operators list is empty"
        if actor.user_id not in operators:
            return f"only the operators of queue `{queue.name}` may stop its jobs (ask one of them)"
        return None

    def _record(self, actor: Actor, job: Job, reason: str) -> StopRequested | None:
        """Write the request before any call; the earlier request instead, when one stands."""
        now = self.clock()
        try:
            with self.db.write() as session:
                return stops.ask(
                    session,
                    queue=job.queue,
                    job_id=job.id,
                    action=ACTION,
                    team_id=actor.team_id,
                    channel_id=actor.channel_id,
                    user_id=actor.user_id,
                    trigger_id=actor.trigger_id,
                    reason=reason,
                    now=now,
                )
        except Conflict:  # another request for this job committed first
            with self.db.read() as session:
                found = stops.find(session, job.queue, job.id, ACTION)
            if found is None:
                raise
            return found

    def _call(self, actor: Actor, queue: QueueConfig, source: JobSource, job: Job, reason: str) -> Stopped:
        assert isinstance(source, Stoppable)  # stop_support() said so
        stop = source.stop_job
        note = f"requested by Slack user {actor.user_id}" + (f": {reason}" if reason else "")
        future = self._calls.submit(stop, job, reason=note)
        try:
            result: StopResult = future.result(timeout=self.deadline)
        except DeadlineExceeded:
            answer = (
                f"{queue.provider} did not answer within {self.deadline:.0f} s; the stop may or may not have "
                f"been accepted. Check with `/jobs status {queue.name} {job.id}` before asking again."
            )
            return self._settle(actor, job, reason, StopState.UNANSWERED, answer)
        except ProviderError as err:
            state, answer = StopState.FAILED, plain_refusal(queue.provider, err)
            if isinstance(err, ConflictError | AuthError | NotFoundError):
                state = StopState.REFUSED
            return self._settle(actor, job, reason, state, answer)
        except Exception as err:  # an adapter bug: say so, keep the row askable again
            log.exception("stop_failed queue=%s job_id=%s", job.queue, job.id)
            answer = f"jobwatch failed while asking {queue.provider} ({type(err).__name__}); try again in a minute."
            return self._settle(actor, job, reason, StopState.FAILED, answer)
        return self._settle(actor, job, reason, StopState.ACCEPTED, result.message)

    def _settle(self, actor: Actor, job: Job, reason: str, state: StopState, answer: str) -> Stopped:
        now = self.clock()
        with self.db.write() as session:
            row = stops.settle(session, job.queue, job.id, ACTION, state=state, answer=answer[:500], now=now)
            if row is not None and state is StopState.ACCEPTED:
                self._notes(session, actor, job, reason, row)
            outcome = AuditOutcome.OK if state is StopState.ACCEPTED else AuditOutcome(state.value)
            access.record(
                session, actor, ACTION, queue=job.queue, detail=f"{job.id}: {answer}", now=now, outcome=outcome
            )
        name = render.safe(job.name)
        if state is StopState.ACCEPTED:
            text = f":black_square_for_stop: Stop requested for *{name}*. {render.safe(answer, 500)}"
        else:
            text = f":warning: Could not stop *{name}*: {render.safe(answer, 500)}"
        return Stopped(render.plain(text), outcome, job, answer)

    def _notes(self, session: Session, actor: Actor, job: Job, reason: str, row: StopRequested) -> None:
        """One outbox note per channel of the workspace that has the job's thread (and the asking channel)."""
        threaded = threads.channels_with_thread(session, job.queue, job.id)
        channels = {channel for team, channel in threaded if team == actor.team_id}
        channels.add(actor.channel_id)
        who = f"<@{actor.user_id}>" if MENTION_RE.match(actor.user_id) else "someone"
        text = f":black_square_for_stop: Stop requested by {who}" + (
            f": {render.safe(reason, 300)}" if reason else f" for *{render.safe(job.name)}*"
        )
        now = self.clock()
        note = TextPayload(text)
        notes = [
            OutboxRow.note(
                stop_note_id(row.id, now),
                note,
                team_id=actor.team_id,
                channel_id=channel,
                queue=job.queue,
                job_id=job.id,
                status=job.status.value,
                now=now,
            )
            for channel in sorted(channels)
        ]
        outbox.insert(session, notes)

    def _audit(self, actor: Actor, queue: str, detail: str, outcome: AuditOutcome) -> None:
        with self.db.write() as session:
            access.record(session, actor, ACTION, queue=queue, detail=detail, now=self.clock(), outcome=outcome)


def plain_refusal(provider: str, err: ProviderError) -> str:
    """A provider's refusal in words a person can act on."""
    if isinstance(err, ConflictError):
        return f"{provider} refused: the job is not in a state that can be stopped ({err})"
    if isinstance(err, AuthError):
        return (
            f"{provider} refused: jobwatch's credentials may not stop this job ({err}); "
            "see docs/commands.md §Stopping jobs"
        )
    if isinstance(err, ThrottledError):
        return f"{provider} is throttling requests ({err}); nothing was stopped. Try again in a minute."
    if isinstance(err, NotFoundError):
        return f"{provider} no longer knows this job ({err})"
    return f"{provider} could not be asked ({type(err).__name__}: {err}); nothing was stopped as far as we know."
