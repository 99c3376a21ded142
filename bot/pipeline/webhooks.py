"""Pushed changes by webhook: Modzy's Job Completion (docs/push.md).

The webhook says which job completed, not its state (providers/modzy.py). So it is taken in two
steps, each safe to repeat:

1. `Webhooks.receive` (the HTTP process, `POST /webhooks/modzy/<queue>`): checks the queue's
   secret header, reads the job's identifier with the adapter's parser and stores one `pushed_job`
   row (bot/store/pushed.py) before answering; a repeated webhook finds the row there. Nothing
   else is written and the provider is not called while Modzy waits for the answer.
2. `apply_owed` (the worker, at once when it runs in the same process, else within a second,
   behind the lease): reads each owed job from the
   provider (`get_job`), applies it through the same path as an SQS event (the worker's
   `apply_pushed`: the poll's diff and enqueue behind the newer-than-stored guard), then deletes
   the row. A crash between the two leaves the row: the job is read and applied again, which
   changes nothing. A read that fails is tried again, `TRIES` times in all; then the queue's
   reconciliation poll finds the change.

A payload the adapter cannot read is refused (400) and counted `malformed`; one about a model the
queue does not watch is acknowledged and counted `foreign`; a wrong or missing secret is refused
(401) and counted `refused`.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr

from bot.core.clock import Clock, utcnow
from bot.pipeline.push import Apply, NoHooks, PushHooks, outcome_of
from bot.store import pushed
from bot.store.db import Database
from providers import Job, JobSource, ProviderError

log = logging.getLogger(__name__)

TRIES = 5  # reads of one owed job before it is left to the reconciliation poll
BATCH = 50  # owed jobs read per round


@runtime_checkable
class WebhookReading(Protocol):
    """An adapter that can read the job a webhook names (Modzy)."""

    def job_id_from_webhook(self, payload: Any) -> str | None: ...

    def get_job(self, job_id: str) -> Job | None: ...


@dataclass(frozen=True)
class Hook:
    """One queue's webhook: its adapter, and the secret header it must carry (None: no secret)."""

    source: WebhookReading
    header: str | None = None
    secret: SecretStr | None = None


class Webhooks:
    """The receiving side (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        hooks: Mapping[str, Hook],
        *,
        report: PushHooks | None = None,
        clock: Clock = utcnow,
        stored: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.hooks = dict(hooks)
        self.report = report or NoHooks()
        self.clock = clock
        self.stored = stored  # called once a job is stored: a worker in this process reads it now

    def receive(self, queue: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Check, read and store one webhook; (HTTP status, JSON body). `headers`: lower-case names."""
        hook = self.hooks.get(queue)
        if hook is None:
            return 404, {"error": "no webhook for this queue"}
        channel = f"webhook:{queue}"
        if hook.header is not None and hook.secret is not None:
            given = headers.get(hook.header.lower(), "")
            if not hmac.compare_digest(given.encode(), hook.secret.get_secret_value().encode()):
                self.report.push_message(channel, "refused")
                log.warning("webhook_refused queue=%s header=%s present=%s", queue, hook.header, bool(given))
                return 401, {"error": "invalid secret"}
        self.report.push_message(channel, "received")
        try:
            job_id = hook.source.job_id_from_webhook(json.loads(body))
        except (ValueError, ProviderError) as err:  # json.JSONDecodeError is a ValueError
            self.report.push_message(channel, "malformed")
            log.warning("webhook_malformed queue=%s error=%s", queue, str(err)[:300])
            return 400, {"error": "not a job completion webhook"}
        if job_id is None:
            self.report.push_message(channel, "foreign")
            return 200, {"ok": True, "ignored": "another model"}
        with self.db.write() as session:
            new = pushed.add(session, queue, job_id, self.clock())
        log.info("webhook_received queue=%s job_id=%s new=%s", queue, job_id, new)
        if new:
            self.stored()
        return 200, {"ok": True}


def apply_owed(
    db: Database,
    sources: Mapping[str, JobSource],
    apply: Apply,
    *,
    report: PushHooks | None = None,
    clock: Clock = utcnow,
) -> int:
    """Read and apply the jobs webhooks named (see the module's docstring); returns jobs applied or
    found unchanged. Stops at a lost lease (`apply` answers None): the rows wait for the next owner."""
    report = report or NoHooks()
    queues = [name for name, source in sources.items() if isinstance(source, WebhookReading)]
    if not queues:
        return 0
    with db.read() as session:
        owed = [(r.queue, r.job_id, r.received_at) for r in pushed.due(session, queues, limit=BATCH)]
    settled = 0
    for queue, job_id, received_at in owed:
        source = sources[queue]
        try:
            job = source.get_job(job_id)
        except ProviderError as err:
            with db.write() as session:
                last = pushed.failed(session, queue, job_id, tries=TRIES)
            report.push_event(queue, "error")
            log.warning("webhook_read_failed queue=%s job_id=%s last=%s error=%s", queue, job_id, last, err)
            continue
        if job is not None:
            result = apply(queue, job)
            if result is None:
                return settled
            outcome = outcome_of(result, job.id)
            report.push_event(queue, outcome)
            if outcome == "applied":
                report.push_lag(queue, max(0.0, (clock() - received_at).total_seconds()))
        with db.write() as session:
            pushed.done(session, queue, job_id)
        settled += 1
    return settled
