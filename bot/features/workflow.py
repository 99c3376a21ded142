"""Workflow Builder steps (docs/slack-native.md §Workflow Builder steps): what each does with its
inputs, for the listeners in bot/slack/steps.py, which complete or fail the step run.

- *Get job status* answers at once with the job's state, fresh from the provider; the step fails
  when the queue or job is unknown or the provider does not answer (a stale status could send a
  workflow down the wrong branch).
- *Wait for job to finish* records the run (table `step_wait`) and returns; the worker completes it
  through the outbox once the poll stores the job as terminal (bot/pipeline/steps.py). A job
  already finished (in the store or, fresh, at the provider) is owed its completion at once, by
  the same `step` outbox row. Either way one run gets one completion, across restarts and retried
  events: the row's id is the run's `function_execution_id`.
- *Stop job* is `/jobs stop` (bot/features/stopping.py: the queue's operators, from a channel the
  queue allows, audited `via=step`); who asks is the person Slack names as the run's interactor,
  never a user typed into the workflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.blocks.steps import step_outputs
from bot.core.audit import AuditOutcome, Via
from bot.core.errors import ServiceError
from bot.core.outbox import StepPayload
from bot.features.access import Actor
from bot.features.queries import Services
from bot.store import steps
from providers import Job

REF_MAX = 300


@dataclass(frozen=True)
class Run:
    """One run of a step, from the `function_executed` event."""

    team_id: str
    execution_id: str
    inputs: Mapping[str, Any]


def _text(inputs: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = inputs.get(name)
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ServiceError(f"the step's `{name}` input is empty")
    if len(text) > REF_MAX:
        raise ServiceError(f"the step's `{name}` input is longer than {REF_MAX} characters")
    return text


class WorkflowSteps:
    """The three steps, over the same services as `/jobs`."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _target(self, run: Run) -> tuple[str, str]:
        queue = _text(run.inputs, "queue")
        self.services.queue(queue)  # an unknown queue is named, with the known ones
        return queue, _text(run.inputs, "job")

    def status(self, run: Run) -> dict[str, Any]:
        """*Get job status*: the outputs; ServiceError when the job cannot be told for sure."""
        queue, ref = self._target(run)
        found = self.services.find(queue, ref)
        if not found.fresh:
            raise ServiceError(
                f"{found.note} Last polled status of `{found.job.name}`: {found.job.status.value} "
                f"({found.job.native_status})."
            )
        return step_outputs(found.job)

    def wait(self, run: Run) -> Job:
        """*Wait for job to finish*: record the wait, or owe the completion now when the job has
        finished; the job as known now. ServiceError for an unknown queue or job."""
        queue, ref = self._target(run)
        found = self.services.find(queue, ref)  # a provider that does not answer: the polls will tell
        job, now = found.job, self.services.clock()
        with self.services.db.write() as session:
            if job.status.terminal:
                steps.complete(
                    session,
                    team_id=run.team_id,
                    execution_id=run.execution_id,
                    queue=queue,
                    job_id=job.id,
                    body=StepPayload(step_outputs(job)),
                    now=now,
                )
            else:
                steps.wait(
                    session, team_id=run.team_id, execution_id=run.execution_id, queue=queue, job_id=job.id, now=now
                )
        return job

    def stop(self, run: Run) -> dict[str, Any]:
        """*Stop job*: `/jobs stop` for the run's interactor in the run's channel; the outputs when
        the stop was asked (or needed no asking), ServiceError (NotAllowed when refused) when not."""
        queue, ref = self._target(run)
        reason = _text(run.inputs, "reason", required=False)
        channel = _text(run.inputs, "channel")
        interactivity = run.inputs.get("interactivity")
        interactor = interactivity.get("interactor") if isinstance(interactivity, Mapping) else None
        user = str(interactor.get("id") or "") if isinstance(interactor, Mapping) else ""
        if not user:
            raise ServiceError(
                "Stop job needs to know who asks: give its `interactivity` input the person who started "
                "the workflow (a user typed into the workflow is not proof of who asks)"
            )
        actor = Actor(team_id=run.team_id, channel_id=channel, user_id=user, trigger_id=run.execution_id, via=Via.STEP)
        done = self.services.stopper.attempt(actor, queue, ref, reason=reason, find=self.services.current)
        if done.outcome in (AuditOutcome.REFUSED, AuditOutcome.FAILED, AuditOutcome.UNANSWERED):
            raise ServiceError(f"could not stop {done.job.name}: {done.answer}")
        words = {
            AuditOutcome.OK: "requested",
            AuditOutcome.FINISHED: "already_finished",
            AuditOutcome.STOPPING: "already_stopping",
            AuditOutcome.DUPLICATE: "already_requested",
        }
        return {**step_outputs(done.job), "outcome": words.get(done.outcome, str(done.outcome)), "message": done.answer}
