"""SQLModel tables. Every row that belongs to a Slack workspace carries its team_id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, MetaData, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.core.log_tails import LogTailState
from bot.core.outbox import OutboxKind, OutboxState


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and gives them back aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class QueueState(SQLModel, table=True):
    """Poll bookkeeping and health of one queue."""

    queue: str = Field(primary_key=True)
    baseline_at: datetime | None = _when(default=None)
    watermark: datetime | None = _when(default=None)
    last_poll_at: datetime | None = _when(default=None)
    last_success_at: datetime | None = _when(default=None)
    last_error: str | None = None
    consecutive_failures: int = 0
    outage_notified: bool = False
    last_event_at: datetime | None = _when(default=None)  # the last pushed change applied (bot/pipeline/push.py)


class JobSnapshot(SQLModel, table=True):
    """The last observed state of one job."""

    __table_args__ = (
        Index("ix_snapshot_live", "queue", "live"),
        Index("ix_snapshot_created", "queue", "created_at"),
        Index("ix_snapshot_name", "queue", "name"),
    )

    queue: str = Field(primary_key=True)
    job_id: str = Field(primary_key=True)
    name: str
    status: str
    live: bool
    fingerprint: str
    created_at: datetime | None = _when(default=None)
    seen_at: datetime = _when()
    data: str  # the Job as JSON


class JobRef(SQLModel, table=True):
    """One lowercased string a user may type to name a job: a provider id (Job.refs), or its id or
    name when they have capitals (lowercase ones are found through JobSnapshot's own indexes).

    Written with the snapshot (bot/pipeline/enqueue.py) and deleted with it (bot/pipeline/prune.py);
    read by bot/store/refs.py through (queue, ref). `rank` orders the kinds of match: 0 the job's id,
    1 a provider id, 2 its name (a string that is several of these for one job keeps the lowest).
    Rows are only ever added (ids do not change), so a name a job once had still names it until
    the job is pruned.
    """

    __tablename__ = "job_ref"
    __table_args__ = (Index("ix_job_ref", "queue", "ref"),)

    queue: str = Field(primary_key=True)
    job_id: str = Field(primary_key=True)
    ref: str = Field(primary_key=True)
    rank: int


class Subscription(SQLModel, table=True):
    """One channel subscribed to one queue, with optional filters."""

    __table_args__ = (UniqueConstraint("team_id", "channel_id", "queue"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True)
    channel_id: str
    queue: str = Field(index=True)
    statuses: str = ""  # comma-separated canonical statuses; empty = every change
    match: str | None = None  # job-name glob
    causes: str = ""  # comma-separated failure causes (providers/causes.py); empty = any cause
    created_by: str
    created_at: datetime = _when()
    paused_reason: str | None = None
    source: str = "chat"  # chat (made with /jobs subscribe) | file (a [[subscriptions]] entry; bot/features/routing.py)
    quiet_start: str | None = None  # quiet hours (bot/core/quiet.py): "HH:MM" wall-clock times
    quiet_end: str | None = None
    quiet_tz: str | None = None  # IANA zone of the window; None: [bot] timezone
    quiet_all: bool = False  # hold failed and timed_out alerts too
    owner: str | None = None  # a Slack user id: only the jobs whose owner is this person (bot/core/owners.py)
    recovery: bool = True  # a family's recovery after failures passes the status filter (bot/core/subscriptions.py)
    follow_up: int | None = None  # seconds after which an unclaimed failure gets a follow-up (bot/pipeline/followup.py)


class OutboxItem(SQLModel, table=True):
    """One message owed to one channel. `kind` is an OutboxKind and `state` an OutboxState, stored as
    their text; rows are built as OutboxRow values (bot/core/outbox.py, which draws the states and
    kinds). A digest's parts and the alerts folded into it point at it through `parent_id`."""

    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "alert_id"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str
    kind: str = OutboxKind.ALERT.value  # an OutboxKind (bot/core/outbox.py)
    team_id: str
    channel_id: str
    queue: str
    job_id: str = ""
    old_status: str | None = None
    new_status: str = ""
    payload: str  # the Job as JSON (alert) or the notice text
    state: str = OutboxState.PENDING.value  # an OutboxState
    attempts: int = 0
    next_attempt_at: datetime = _when()
    sending_started_at: datetime | None = _when(default=None)
    fence: int = 0
    slack_ts: str | None = None
    thread_ts: str | None = None
    parent_id: int | None = None  # a digest_part's digest; a digested alert's digest
    last_error: str | None = None
    created_at: datetime = _when()


class JobThread(SQLModel, table=True):
    """The parent message of a job's alerts in one channel."""

    team_id: str = Field(primary_key=True)
    channel_id: str = Field(primary_key=True)
    queue: str = Field(primary_key=True)
    job_id: str = Field(primary_key=True)
    parent_ts: str
    parent_alert_id: str


class Lease(SQLModel, table=True):
    """Who may poll and deliver; the fence grows with every new owner."""

    name: str = Field(primary_key=True)
    owner: str
    expires_at: datetime = _when()
    fence: int = 0


class Mute(SQLModel, table=True):
    """A silence: alerts of a queue (or one job of it) for one channel are held back until `until`."""

    __table_args__ = (UniqueConstraint("team_id", "channel_id", "queue", "job_id"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True)
    channel_id: str
    queue: str = Field(index=True)
    job_id: str = ""  # empty: the whole queue
    job_name: str = ""  # what to call the job in messages
    until: datetime = _when(index=True)
    created_by: str
    created_at: datetime = _when()
    trigger_id: str = ""


class StopRequest(SQLModel, table=True):
    """A stop asked of a provider, written before the call: a double click, a Slack retry or two
    people pressing together find this row and make no second call. One row per (queue, job,
    action): requested -> accepted | refused | failed | unanswered; a settled request that did not
    stop the job (refused, failed, unanswered) may be asked again, which reuses the row."""

    __tablename__ = "stop_request"
    __table_args__ = (UniqueConstraint("queue", "job_id", "action"),)

    id: int | None = Field(default=None, primary_key=True)
    queue: str
    job_id: str
    action: str = "stop"
    team_id: str
    channel_id: str
    user_id: str
    trigger_id: str = ""
    reason: str = ""
    state: str = "requested"
    answer: str = ""  # the provider's answer, in plain words
    requested_at: datetime = _when()
    settled_at: datetime | None = _when(default=None)


class JobClaim(SQLModel, table=True):
    """Who is on a failed or timed-out job in one workspace ("I'm on it", the Claim button): one row
    per (team, queue, job), the current claim; a take-over replaces the user and keeps the one it
    replaced (`previous_user_id`). Every claim and take-over is also an audit row. Written by the
    button handler (bot/features/claiming.py); the cards show it through the outbox."""

    __tablename__ = "job_claim"
    __table_args__ = (UniqueConstraint("team_id", "queue", "job_id"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    queue: str
    job_id: str
    user_id: str
    claimed_at: datetime = _when()
    previous_user_id: str | None = None


class DigestSchedule(SQLModel, table=True):
    """A scheduled digest (bot/features/schedules.py): one message per period to one channel about one queue.
    `at` is "HH:MM" wall-clock in `tz` (empty: [bot] timezone); `weekday` 0 (Monday) to 6 when weekly."""

    __tablename__ = "digest_schedule"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "queue"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True)
    channel_id: str
    queue: str
    cadence: str  # daily | weekly
    weekday: int | None = None
    at: str
    tz: str = ""
    created_by: str
    created_at: datetime = _when()


class TransitionRecord(SQLModel, table=True):
    """One status change a poll saw, kept a while (bot/pipeline/prune.py, TRANSITION_DAYS) so a
    filter can be tried against the recent past (`/jobs subscribe ... --dry-run`, bot/features/routing.py).
    Written in the poll's own transaction (bot/pipeline/enqueue.py `commit_poll`)."""

    __tablename__ = "transition"
    __table_args__ = (Index("ix_transition_queue_at", "queue", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    queue: str
    job_id: str
    name: str
    old: str | None = None
    new: str
    reason: str | None = None
    at: datetime = _when(index=True)


class Watch(SQLModel, table=True):
    """One Slack user watching one job: a direct message when it first runs (if it was queued)
    and when it ends. Written by the Slack handler (bot/features/watching.py); the poll's commit turns the
    job's transitions into `dm` outbox rows addressed to the user and deletes the row once the job
    is terminal (bot/pipeline/enqueue.py)."""

    __table_args__ = (
        UniqueConstraint("team_id", "user_id", "queue", "job_id"),
        Index("ix_watch_job", "queue", "job_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    user_id: str
    queue: str
    job_id: str
    job_name: str = ""  # what to call the job in `/jobs watching`
    created_at: datetime = _when()
    trigger_id: str = ""


class LogTailRequest(SQLModel, table=True):
    """A failed job's log tail, owed to the threads of its failure alert (bot/pipeline/logtail.py).

    Written in the poll's own transaction, with the alert, for queues with `log_tail = true`
    (bot/pipeline/enqueue.py); read and settled by the worker's log-tail job, never by the poll.
    `alert_id` is the failure's transition id (each channel's note is keyed `logs:<alert_id>`).
    pending -> done (notes written) | failed (gave up after LOG_TRIES, with a short note).
    """

    __tablename__ = "log_tail"
    __table_args__ = (UniqueConstraint("alert_id"), Index("ix_log_tail_due", "state", "next_attempt_at"))

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str
    queue: str
    job_id: str
    job: str  # the Job as JSON, as the failure alert showed it
    state: str = LogTailState.PENDING.value  # a LogTailState
    attempts: int = 0
    next_attempt_at: datetime = _when()
    last_error: str | None = None
    created_at: datetime = _when()


class StepWait(SQLModel, table=True):
    """One run of the Workflow Builder step "Wait for job to finish", until its job ends
    (bot/features/workflow.py writes it; bot/pipeline/steps.py owes its completion).

    waiting -> done: in one transaction with the `step` outbox row (alert_id `step:<execution_id>`)
    that completes the run, so a restart, a retried event or a second worker completes it once.
    """

    __tablename__ = "step_wait"
    __table_args__ = (UniqueConstraint("execution_id"), Index("ix_step_wait_state", "state", "queue", "job_id"))

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    execution_id: str  # Slack's function_execution_id
    queue: str
    job_id: str
    state: str = "waiting"  # waiting | done
    created_at: datetime = _when()
    done_at: datetime | None = _when(default=None)


class EmailUser(SQLModel, table=True):
    """What `users.lookupByEmail` answered for one owner e-mail address in one workspace (the cache
    of bot/features/directory.py, shared by the worker, which asks, and the Slack handlers, which read it for
    `mine`). `outcome`: ok (user_id set) | users_not_found | not_a_user (an answer that is no user
    id, or a deleted user) | missing_scope (the app lacks users:read.email; kept under `email` "*",
    for the whole workspace). Rows are replaced when they expire, never deleted."""

    __tablename__ = "email_user"
    __table_args__ = (Index("ix_email_user_user", "team_id", "user_id"),)

    team_id: str = Field(primary_key=True)
    email: str = Field(primary_key=True)  # lower case
    user_id: str | None = None
    outcome: str
    checked_at: datetime = _when()


class PushedJob(SQLModel, table=True):
    """A job a provider said changed, by a webhook that carries no state (Modzy's Job Completion):
    written by the process that answered the webhook, which answers once it is stored; the worker
    reads the job from the provider, applies it as it applies any pushed change and deletes the
    row (bot/pipeline/webhooks.py). One row per (queue, job): a repeated webhook adds nothing."""

    __tablename__ = "pushed_job"

    queue: str = Field(primary_key=True)
    job_id: str = Field(primary_key=True)
    received_at: datetime = _when()
    attempts: int = 0


class AuditEntry(SQLModel, table=True):
    """Who changed (or tried to change) what, from where: every subscription, mute and refusal."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True)
    user_id: str
    channel_id: str
    action: str  # subscribe | unsubscribe | mute | unmute | stop, with the `via` button or command
    queue: str = ""
    outcome: str = "ok"  # ok | refused; stop also: duplicate | finished | stopping | not_found | failed | unanswered
    detail: str = ""
    trigger_id: str = ""
    at: datetime = _when()


class RunHistory(SQLModel, table=True):
    """One finished job of a queue's job family, for what is usual (bot/core/history.py): its run time
    (succeeded runs only), its wait before running, how it ended. At most history.KEEP rows per
    (queue, family), the newest; retention pruning leaves this table alone."""

    __tablename__ = "run_history"
    __table_args__ = (
        Index("ix_run_history_family", "queue", "family", "ended_at"),
        Index("ix_run_history_ended", "queue", "ended_at"),
    )

    queue: str = Field(primary_key=True)
    job_id: str = Field(primary_key=True)
    family: str
    status: str
    cause: str = ""
    run_seconds: float | None = None
    wait_seconds: float | None = None
    ended_at: datetime | None = _when(default=None)


def schema() -> MetaData:
    """Every table the migrations manage: jobwatch's own, and the tables of slack_sdk's SQLAlchemy
    installation and OAuth state stores (install mode; bot/slack/install.py)."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as Installs
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore as States

    meta = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(meta)
    Installs.build_installations_table(meta, Installs.default_installations_table_name)
    Installs.build_bots_table(meta, Installs.default_bots_table_name)
    States.build_oauth_states_table(meta, States.default_table_name)
    return meta
