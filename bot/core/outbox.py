"""The outbox's values: every message owed to Slack is one `OutboxRow` of one `OutboxKind`, in one
`OutboxState`, with a typed payload and an id built by one function per format (bot/core/alert_ids.py).

States (the `state` column):

    pending -> sending -> sent | dead          delivery (bot/pipeline/deliver.py)
    pending -> muted -> silenced               a mute holds it; its summary counts it (bot/features/mutes.py)
    pending -> digested                        folded into a digest row (parent_id: the digest)
    held -> digested                           quiet hours: folded into "While you were away" when they end

Kinds (the `kind` column) and what each is:

    alert        a job's status change: the job's card, the parent of its thread in that channel
    flag         a slow or stuck job (bot/pipeline/usual.py): a broadcast reply in the job's thread
    note         a thread reply: a retry, an owner's mention, a log tail, a stop request
    notice       an operator notice at the top of a channel: outage, recovery, a mute's summary
    digest       the parent of a digest: counts by status (burst, quiet hours, schedule)
    digest_part  a thread reply of a digest, listing its jobs
    dm           a direct message to a person (channel_id: their user id until the IM is opened)
    step         the completion of a Workflow Builder step run (channel_id: its function_execution_id):
                 functions.completeSuccess or completeError, never a message (bot/pipeline/steps.py)

A stage that treats kinds differently matches on `OutboxKind` with `assert_never` in its last case,
so a new member fails the type check until every stage says what it does with it; a stored kind
that is no member raises `ValueError` (`OutboxKind(row.kind)`) instead of being shown as an alert.
The columns stay strings (no migration); these enums are `StrEnum`s, equal to the stored text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from bot.core.alert_ids import digest_part_id
from bot.core.subscriptions import FlagKind
from providers import Job, JobStatus


class OutboxState(StrEnum):
    """Where one outbox row stands (see the module docstring)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    MUTED = "muted"
    SILENCED = "silenced"
    DIGESTED = "digested"
    HELD = "held"


class OutboxKind(StrEnum):
    """What one outbox row is (see the module docstring)."""

    ALERT = "alert"
    FLAG = "flag"
    NOTE = "note"
    NOTICE = "notice"
    DIGEST = "digest"
    DIGEST_PART = "digest_part"
    DM = "dm"
    STEP = "step"


# --- policies, named once -------------------------------------------------------------------------
OWED = frozenset({OutboxState.PENDING, OutboxState.SENDING, OutboxState.HELD})  # still owed to Slack
SETTLED = frozenset(OutboxState) - OWED  # nothing more will happen to it: retention may delete it
# owed rows a change of the subscription may take back (a row being sent stays); muted ones too; a claim
# or a family's success takes back a failure's follow-up in these states (bot/store/outbox.py)
WITHDRAWABLE = frozenset({OutboxState.PENDING, OutboxState.MUTED, OutboxState.HELD})
# an alert in one of these states went, or will go, to its channel: a note that follows it is owed too
TOLD = frozenset({OutboxState.PENDING, OutboxState.SENDING, OutboxState.SENT, OutboxState.HELD})
TO_POST = frozenset({OutboxState.PENDING, OutboxState.HELD})  # a new row that will be posted (not muted)
IN_FLIGHT = frozenset({OutboxState.PENDING, OutboxState.SENDING})  # claimed or about to be

THREADED = frozenset({OutboxKind.ALERT, OutboxKind.NOTE, OutboxKind.FLAG})  # about one job: its thread
OPENS_THREAD = frozenset({OutboxKind.ALERT, OutboxKind.FLAG})  # once posted, its ts is the job's thread
STATUS_CHANGES = frozenset({OutboxKind.ALERT})  # its payload is the job's new status: its card shows it

# --- the noise rules, one set each: the kinds a rule acts on (docs/architecture.md §Message policy) ----
# A kind left out of a rule's set is a decision the table there gives with its reason, not an oversight;
# tests/pipeline/test_policy.py holds the table and these sets to each other.
ANNOUNCED = frozenset({OutboxKind.ALERT, OutboxKind.FLAG, OutboxKind.NOTE, OutboxKind.DM})  # a baseline owes none
FILTERED = frozenset({OutboxKind.ALERT, OutboxKind.FLAG, OutboxKind.NOTE})  # a channel's filter decides each
MUTE_HELD = frozenset({OutboxKind.ALERT, OutboxKind.FLAG, OutboxKind.NOTE})  # a running mute keeps them `muted`
QUIET_HELD = frozenset({OutboxKind.ALERT, OutboxKind.FLAG})  # what quiet hours hold until the window ends
QUIET_PASSES_FAILURES = frozenset({OutboxKind.ALERT})  # of those, failures go at once (unless `everything`)
FOLDED = frozenset({OutboxKind.ALERT, OutboxKind.FLAG})  # what a burst of a channel folds into one digest
WITHDRAWN = frozenset({OutboxKind.ALERT, OutboxKind.FLAG})  # what a changed filter takes back


# --- payloads --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextPayload:
    """A note's or a notice's text. `thread_only`: never posted at the top of the channel; `after`:
    the alert id it follows in the job's thread (it waits until that alert is posted); `card`: the
    job (as JSON) its thread parent is to show once the note is posted (a claim edits the card in
    place, bot/features/claiming.py); "" leaves the card as it is."""

    text: str
    thread_only: bool = False
    after: str = ""
    card: str = ""

    def dump(self) -> str:
        """As stored in the payload column (`card` only when there is one)."""
        if not self.thread_only and not self.after and not self.card:
            return json.dumps({"text": self.text})
        body: dict[str, Any] = {"text": self.text, "thread_only": self.thread_only, "after": self.after}
        if self.card:
            body["card"] = self.card
        return json.dumps(body)

    @classmethod
    def load(cls, payload: str) -> Self:
        """From the payload column."""
        body = json.loads(payload)
        return cls(
            str(body["text"]),
            bool(body.get("thread_only", False)),
            str(body.get("after") or ""),
            str(body.get("card") or ""),
        )


@dataclass(frozen=True)
class DigestPayload:
    """A digest's parent: counts by status (of the status changes it folds), the queues, failures by
    status and cause ({"failed": {"spot_interruption": 30}}; None: not counted, as in a scheduled
    digest, whose notes say it), a title, notes, and the slow and stuck flags it folds, counted by
    kind apart from the statuses ({"stuck": 37}; empty in digests stored before flags were folded)."""

    counts: Mapping[str, int]
    queues: Sequence[str]
    causes: Mapping[str, Mapping[str, int]] | None = None
    title: str = ""
    notes: Sequence[str] = ()
    flags: Mapping[str, int] = field(default_factory=dict)

    def dump(self) -> str:
        """As stored in the payload column: counts, queues, then causes, notes, title and flags when
        there are any (the order both writers have always stored: a burst or away digest's causes and
        title, a scheduled digest's notes and title; flags last, so a digest without any is stored
        as before)."""
        body: dict[str, Any] = {"counts": dict(self.counts), "queues": list(self.queues)}
        if self.causes is not None:
            body["causes"] = {status: dict(by) for status, by in self.causes.items()}
        if self.notes:
            body["notes"] = list(self.notes)
        if self.title:
            body["title"] = self.title
        if self.flags:
            body["flags"] = dict(self.flags)
        return json.dumps(body)

    @classmethod
    def load(cls, payload: str) -> Self:
        """From the payload column (a digest stored without flags has none)."""
        body = json.loads(payload)
        return cls(
            body["counts"],
            body["queues"],
            body.get("causes"),
            body.get("title", ""),
            body.get("notes", ()),
            body.get("flags", {}),
        )


@dataclass(frozen=True)
class DigestPartPayload:
    """One thread reply of a digest: lines of [name, queue, native status, status] for a status
    change, or [name, queue, the flag's words, flag kind] for a slow or stuck job; part n of parts."""

    lines: Sequence[Sequence[str]]
    part: int
    parts: int

    def dump(self) -> str:
        """As stored in the payload column."""
        return json.dumps({"lines": [list(line) for line in self.lines], "part": self.part, "parts": self.parts})

    @classmethod
    def load(cls, payload: str) -> Self:
        """From the payload column."""
        body = json.loads(payload)
        return cls(body["lines"], int(body["part"]), int(body["parts"]))


@dataclass(frozen=True)
class StepPayload:
    """A workflow step's completion: its `outputs` (functions.completeSuccess), or the `error` it
    fails with (functions.completeError) when `outputs` is None."""

    outputs: Mapping[str, Any] | None
    error: str = ""

    def dump(self) -> str:
        """As stored in the payload column."""
        if self.outputs is None:
            return json.dumps({"error": self.error})
        return json.dumps({"outputs": dict(self.outputs)})

    @classmethod
    def load(cls, payload: str) -> Self:
        """From the payload column."""
        body = json.loads(payload)
        outputs = body.get("outputs")
        return cls(None if outputs is None else dict(outputs), str(body.get("error") or ""))


# --- the row ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One message owed to one channel (or person), as the outbox table stores it; built by the
    constructors below, one per kind."""

    alert_id: str
    kind: OutboxKind
    team_id: str
    channel_id: str
    queue: str
    payload: str
    now: datetime
    job_id: str = ""
    old_status: str | None = None
    new_status: str = ""
    state: OutboxState = OutboxState.PENDING
    next_attempt_at: datetime | None = None  # None: now
    parent_id: int | None = None
    # The Job the payload was made from (alerts, flags, DMs), for a burst folded in the same
    # transaction (bot/pipeline/enqueue.py): not stored, and a row read back has none.
    job: Job | None = field(default=None, compare=False, repr=False)

    def values(self) -> dict[str, object]:
        """The column values to insert (spelled out: `dataclasses.asdict` costs ten times as much,
        and a cycle of 100k jobs writes a thousand rows)."""
        row: dict[str, object] = {
            "alert_id": self.alert_id,
            "kind": self.kind.value,
            "team_id": self.team_id,
            "channel_id": self.channel_id,
            "queue": self.queue,
            "payload": self.payload,
            "job_id": self.job_id,
            "old_status": self.old_status,
            "new_status": self.new_status,
            "state": self.state.value,
            "next_attempt_at": self.next_attempt_at or self.now,
            "created_at": self.now,
        }
        if self.parent_id is not None:
            row["parent_id"] = self.parent_id
        return row

    def but(self, **changes: Any) -> OutboxRow:
        """A copy with `changes`."""
        return replace(self, **changes)

    @property
    def to_post(self) -> bool:
        """Whether it will be posted (pending, or held for quiet hours)."""
        return self.state in TO_POST

    @classmethod
    def alert(
        cls, alert_id: str, job: Job, old: JobStatus | None, *, team_id: str, channel_id: str, now: datetime
    ) -> OutboxRow:
        """A status change of `job` for one channel."""
        return cls._change(OutboxKind.ALERT, alert_id, job, old, team_id=team_id, channel_id=channel_id, now=now)

    @classmethod
    def flag(
        cls, alert_id: str, kind: FlagKind, job: Job, *, team_id: str, channel_id: str, now: datetime
    ) -> OutboxRow:
        """A slow or stuck flag of `job` (its payload carries the flag's words) for one channel; its
        new_status is the flag's kind."""
        return cls(
            alert_id,
            OutboxKind.FLAG,
            team_id,
            channel_id,
            job.queue,
            job.model_dump_json(),
            now,
            job_id=job.id,
            old_status=job.status.value,
            new_status=kind.value,
            job=job,
        )

    @classmethod
    def note(
        cls,
        alert_id: str,
        text: TextPayload,
        *,
        team_id: str,
        channel_id: str,
        queue: str,
        job_id: str,
        status: str,
        now: datetime,
    ) -> OutboxRow:
        """A reply in the thread of job `job_id` (`status`: the job's status when it was written)."""
        return cls(alert_id, OutboxKind.NOTE, team_id, channel_id, queue, text.dump(), now, job_id, None, status)

    @classmethod
    def notice(cls, alert_id: str, text: str, *, team_id: str, channel_id: str, queue: str, now: datetime) -> OutboxRow:
        """An operator notice at the top of a channel."""
        return cls(alert_id, OutboxKind.NOTICE, team_id, channel_id, queue, TextPayload(text).dump(), now)

    @classmethod
    def dm(
        cls, alert_id: str, job: Job, old: JobStatus | None, *, team_id: str, user_id: str, now: datetime
    ) -> OutboxRow:
        """A direct message to `user_id` about `job`: channel_id is the user until delivery opens the IM."""
        return cls._change(OutboxKind.DM, alert_id, job, old, team_id=team_id, channel_id=user_id, now=now)

    @classmethod
    def step(
        cls,
        alert_id: str,
        body: StepPayload,
        *,
        team_id: str,
        execution_id: str,
        queue: str,
        job_id: str,
        now: datetime,
    ) -> OutboxRow:
        """The completion of the step run `execution_id` (its channel_id: no channel, the run)."""
        return cls(alert_id, OutboxKind.STEP, team_id, execution_id, queue, body.dump(), now, job_id)

    @classmethod
    def _change(
        cls,
        kind: OutboxKind,
        alert_id: str,
        job: Job,
        old: JobStatus | None,
        *,
        team_id: str,
        channel_id: str,
        now: datetime,
    ) -> OutboxRow:
        """A row about one status change of `job` (its payload: the job as the change left it)."""
        old_status = old.value if old else None
        payload = job.model_dump_json()
        return cls(
            alert_id, kind, team_id, channel_id, job.queue, payload, now, job.id, old_status, job.status.value, job=job
        )

    @classmethod
    def digest(
        cls, alert_id: str, body: DigestPayload, *, team_id: str, channel_id: str, queue: str, now: datetime
    ) -> OutboxRow:
        """The parent of a digest."""
        return cls(alert_id, OutboxKind.DIGEST, team_id, channel_id, queue, body.dump(), now)

    @classmethod
    def digest_part(
        cls, digest: OutboxRow, n: int, part: DigestPartPayload, *, parent_id: int | None = None
    ) -> OutboxRow:
        """The n-th thread reply of `digest` (`parent_id`: the digest's row id, once it has one)."""
        return cls(
            digest_part_id(digest.alert_id, n),
            OutboxKind.DIGEST_PART,
            digest.team_id,
            digest.channel_id,
            digest.queue,
            part.dump(),
            digest.now,
            parent_id=parent_id,
        )
