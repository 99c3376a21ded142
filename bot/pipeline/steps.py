"""Workflow Builder step runs, the delivery side (docs/slack-native.md §Workflow Builder steps).

`settle_waits`, at the start of each delivery round behind the lease: every "Wait for job to
finish" run whose job the store now has as terminal is owed its completion (the job's outputs),
and a run that has waited `MAX_WAIT` is owed a failure that says so; in one transaction each, the
`step_wait` row becomes `done` and one `step` outbox row (alert_id `step:<function_execution_id>`)
is written, so a run is completed once whoever sees it first. Reading the store, not the poll's
transitions, also catches a job that ended between the listener's look and its write.

`call` is the delivery of a `step` row (bot/pipeline/send.py claims and settles it like a post):
`functions.completeSuccess` with the outputs or `functions.completeError` with the error, with the
workspace's bot token (the token in the `function_executed` event lives 15 minutes at most). Slack
completes a run once: a second call answers `function_execution_not_found`, so recovery of an
ambiguous call (bot/pipeline/recover.py) simply calls again and takes that answer as done.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from slack_sdk import WebClient

from bot.blocks.steps import step_error, step_outputs
from bot.blocks.text import duration
from bot.core.outbox import StepPayload
from bot.store import steps
from bot.store.db import Database
from bot.store.lease import Fence
from bot.store.tables import OutboxItem

log = logging.getLogger("bot.pipeline.deliver")

# Slack's answers when the run is not running any more: completed (by us, maybe by an earlier call
# whose answer was lost) or ended by Slack.
GONE = frozenset({"function_execution_not_found", "execution_not_in_running_state"})
MAX_WAIT = timedelta(hours=24)  # docs/slack-native.md §How long a step may wait


def settle_waits(db: Database, now: datetime, fence: Fence | None, *, max_wait: timedelta = MAX_WAIT) -> int:
    """Owe the completion of every waiting run whose job is terminal in the store (or that waited
    too long, or whose job is no longer stored); returns how many."""
    with db.write() as session:
        if fence is not None:
            fence.check(session)
        due = steps.due(session, created_before=now - max_wait)
        for run in due:
            job = run.job
            if job is not None and job.status.terminal:
                body = StepPayload(step_outputs(job))
            elif job is None:
                body = StepPayload(None, step_error(f"job {run.job_id} of queue {run.queue} is no longer known"))
            else:
                waited = duration((now - run.created_at).total_seconds())
                body = StepPayload(
                    None,
                    step_error(
                        f"gave up waiting after {waited}: {job.name} is still {job.status.value} ({job.native_status})"
                    ),
                )
            steps.complete(
                session,
                team_id=run.team_id,
                execution_id=run.execution_id,
                queue=run.queue,
                job_id=run.job_id,
                body=body,
                now=now,
            )
    if due:
        log.info("step_waits_settled runs=%d", len(due))
    return len(due)


def call(client: WebClient, item: OutboxItem) -> None:
    """Complete the run of a `step` row (its channel_id is the run's function_execution_id)."""
    body = StepPayload.load(item.payload)
    if body.outputs is None:
        client.functions_completeError(function_execution_id=item.channel_id, error=body.error)
    else:
        client.functions_completeSuccess(function_execution_id=item.channel_id, outputs=dict(body.outputs))
