"""Workflow Builder step listeners (docs/slack-native.md §Workflow Builder steps): a
`function_executed` event of one of jobwatch's steps is acknowledged at once (Bolt does it), and
the work, which may ask a provider, runs after the ack on the provider threads (`later`).

*Get job status* and *Stop job* complete or fail their run right there, with the token of the event
(it lives until the run completes, 15 minutes at most). *Wait for job to finish* only records the
run (or, for a job already finished, its completion) in the store; the worker completes it through
the outbox (bot/pipeline/steps.py), so it fails here only when it cannot start waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, Complete, Fail

from bot.blocks.steps import step_error
from bot.core.errors import ServiceError
from bot.features.queries import Services
from bot.features.workflow import Run, WorkflowSteps
from bot.slack.replies import Later

log = logging.getLogger(__name__)

GET_STATUS = "get_job_status"  # the callback_id of each step in manifest.yml's `functions`
WAIT = "wait_for_job"
STOP = "stop_job"
CALLBACK_IDS = (GET_STATUS, WAIT, STOP)
SORRY = "something went wrong on our side; the team has the details. Try again in a minute."


def run_of(body: dict[str, Any], event: dict[str, Any]) -> Run:
    """The run a `function_executed` event is about."""
    inputs = event.get("inputs")
    return Run(
        team_id=str(body.get("team_id", "")),
        execution_id=str(event.get("function_execution_id", "")),
        inputs=inputs if isinstance(inputs, dict) else {},
    )


def answer(work: Callable[[], dict[str, Any] | None], complete: Complete, fail: Fail, *, step: str) -> None:
    """Run a step's work; complete the run with its outputs (None: the worker will), or fail it
    with the reason, never silently."""
    try:
        outputs = work()
    except ServiceError as err:
        log.info("step_refused step=%s reason=%s", step, err)
        fail(step_error(str(err)))
        return
    except Exception:
        log.exception("step_failed step=%s", step)
        fail(step_error(SORRY))
        return
    if outputs is not None:
        complete(outputs=outputs)


def register(app: App, services: Services, *, later: Later) -> None:
    """Attach the step listeners; `later` runs their work after the ack."""
    flows = WorkflowSteps(services)

    def listen(step: str, work: Callable[[Run], dict[str, Any] | None]) -> None:
        def on_run(body: dict[str, Any], event: dict[str, Any], complete: Complete, fail: Fail) -> None:
            run = run_of(body, event)
            log.info("step_run step=%s execution=%s", step, run.execution_id)

            def logged() -> None:
                try:
                    answer(lambda: work(run), complete, fail, step=step)
                except Exception:  # completing itself failed (Slack refused, the token ran out)
                    log.exception("step_complete_failed step=%s execution=%s", step, run.execution_id)

            later(logged)

        app.function(step)(on_run)

    def wait(run: Run) -> None:
        flows.wait(run)  # completed later, by the worker (bot/pipeline/steps.py)

    listen(GET_STATUS, flows.status)
    listen(WAIT, wait)
    listen(STOP, flows.stop)
