"""Workflow Builder steps through the real HTTP app: a signed `function_executed` event of each step
gets exactly one `functions.completeSuccess` or `functions.completeError` from the fake Slack's point
of view, with the right outputs, including a wait that spans a restart of the bot."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import select

from bot.blocks.steps import OUTPUTS, REQUIRED
from bot.core.outbox import OutboxKind
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack, Fault
from bot.slack.steps import CALLBACK_IDS, GET_STATUS, STOP, WAIT
from bot.store.tables import AuditEntry, OutboxItem, StepWait
from tests.conftest import AWS_ENV
from tests.harness import Bot, MovableClock, queue_config

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "UOP0001"
OTHER = "UOTHER01"
CONFIG_EXTRA = f'[access]\noperators = ["{OPERATOR}"]\n'


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def bot(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, clock: MovableClock
) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, queue_config(sagemaker, CONFIG_EXTRA), env=AWS_ENV, database_url=database_url, clock=clock)
    yield b
    b.close()


def run_step(bot: Bot, callback_id: str, inputs: dict[str, Any], *, execution: str | None = None) -> str:
    """Send the `function_executed` event of one run of a step; its function_execution_id."""
    event = bot.slack.function_executed(callback_id, inputs, execution=execution)
    bot.event(event)
    return str(event["function_execution_id"])


def completion(slack: FakeSlack, execution: str, timeout: float = 10) -> dict[str, Any]:
    """The one completion of a run (waits for it)."""
    deadline = time.monotonic() + timeout
    while not slack.completed(execution):
        assert time.monotonic() < deadline, f"run {execution} was never completed"
        time.sleep(0.02)
    (done,) = slack.completed(execution)
    return done


def step_calls(slack: FakeSlack) -> int:
    return slack.count("functions.completeSuccess") + slack.count("functions.completeError")


@pytest.mark.sqlite_only
def test_get_job_status_completes_with_the_jobs_outputs(bot: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert-1", status="InProgress", secondary="Training")
    bot.cycle()
    execution = run_step(bot, GET_STATUS, {"queue": "ml", "job": "bert-1"})
    done = completion(bot.slack, execution)
    assert done["ok"] is True
    outputs = done["outputs"]
    assert outputs["status"] == "running" and outputs["native_status"] == "InProgress (Training)"
    assert outputs["job_name"] == "bert-1" and outputs["job_id"].endswith("training-job/bert-1")
    assert outputs["console_link"].startswith("https://")
    assert done["token"] == "function"  # answered at once: with the run's own token
    time.sleep(0.3)
    assert step_calls(bot.slack) == 1


@pytest.mark.sqlite_only
def test_get_job_status_fails_clearly_for_an_unknown_queue_or_job_or_a_provider_down(
    bot: Bot, sagemaker: SageMakerSim
) -> None:
    sagemaker.add("bert-1", status="InProgress", secondary="Training")
    bot.cycle()
    unknown_queue = completion(bot.slack, run_step(bot, GET_STATUS, {"queue": "nope", "job": "bert-1"}))
    assert unknown_queue["ok"] is False and "unknown queue `nope`; queues: ml" in unknown_queue["error"]
    unknown_job = completion(bot.slack, run_step(bot, GET_STATUS, {"queue": "ml", "job": "gpt-9"}))
    assert unknown_job["ok"] is False and "gpt-9" in unknown_job["error"]
    empty = completion(bot.slack, run_step(bot, GET_STATUS, {"queue": "ml", "job": " "}))
    assert empty["ok"] is False and "`job` input is empty" in empty["error"]
    sagemaker.op_errors["DescribeTrainingJob"] = deque([(500, "InternalFailure")] * 10)
    down = completion(bot.slack, run_step(bot, GET_STATUS, {"queue": "ml", "job": "bert-1"}))
    assert down["ok"] is False and "Provider unreachable" in down["error"] and "running" in down["error"]


def test_wait_completes_once_when_the_job_ends_even_across_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, bot: Bot, clock: MovableClock
) -> None:
    sagemaker.add("bert-1", status="InProgress", secondary="Training")
    bot.cycle()
    execution = run_step(bot, WAIT, {"queue": "ml", "job": "bert-1"})
    deadline = time.monotonic() + 10
    while True:
        with bot.runtime.db.read() as session:
            waits = session.exec(select(StepWait)).all()
        if waits:
            break
        assert time.monotonic() < deadline, "the wait was never recorded"
        time.sleep(0.02)
    (wait,) = waits
    assert wait.state == "waiting" and wait.execution_id == execution
    bot.event(slack.function_executed(WAIT, {"queue": "ml", "job": "bert-1"}, execution=execution))  # Slack retries
    bot.cycle()
    bot.settle()
    assert slack.completed(execution) == []  # still running: nothing yet

    bot.close()  # a restart in the middle of the wait; the job fails meanwhile
    sagemaker.set("bert-1", "Failed", "Failed", reason="AlgorithmError: CUDA out of memory")
    again = Bot(
        tmp_path, slack, queue_config(sagemaker, CONFIG_EXTRA), env=AWS_ENV, database_url=database_url, clock=clock
    )
    try:
        again.cycle()
        done = completion(slack, execution)
        assert done["ok"] is True  # a failed job completes the step: the workflow branches on its status
        assert done["token"] == "bot"  # the run's own token lives 15 minutes at most
        outputs = done["outputs"]
        assert outputs["status"] == "failed" and outputs["native_status"].startswith("Failed")
        assert outputs["reason"] == "AlgorithmError: CUDA out of memory"
        assert outputs["failure_cause"] == "out_of_memory"
        for _ in range(3):
            again.cycle()
        again.settle()
        assert len(slack.completed(execution)) == 1 and step_calls(slack) == 1
        with again.runtime.db.read() as session:
            (row,) = session.exec(select(OutboxItem).where(OutboxItem.kind == OutboxKind.STEP.value)).all()
            (wait,) = session.exec(select(StepWait)).all()
        assert row.state == "sent" and row.alert_id == f"step:{execution}" and wait.state == "done"
    finally:
        again.close()
    bot.close = lambda: None  # type: ignore[method-assign]  # closed above


@pytest.mark.sqlite_only
def test_wait_on_a_finished_job_completes_at_once(bot: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert-1", status="Completed", secondary="Completed")
    bot.cycle()
    execution = run_step(bot, WAIT, {"queue": "ml", "job": "bert-1"})
    deadline = time.monotonic() + 10
    while not bot.slack.completed(execution):  # the next delivery round, no poll needed
        assert time.monotonic() < deadline
        bot.runtime.worker.deliver()
        time.sleep(0.05)
    (done,) = bot.slack.completed(execution)
    assert done["ok"] is True and done["outputs"]["status"] == "succeeded"


@pytest.mark.sqlite_only
def test_a_completion_whose_answer_was_lost_is_not_sent_twice(bot: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert-1", status="Completed", secondary="Completed")
    bot.cycle()
    bot.slack.script("functions.completeSuccess", Fault(drop=True))  # Slack completes the run; the answer is lost
    execution = run_step(bot, WAIT, {"queue": "ml", "job": "bert-1"})
    time.sleep(0.5)
    bot.runtime.worker.deliver()
    with bot.runtime.db.read() as session:
        (row,) = session.exec(select(OutboxItem).where(OutboxItem.kind == OutboxKind.STEP.value)).all()
    assert row.state == "sending"  # ambiguous: recovery settles it
    bot.runtime.worker.deliverer.recovery_after = timedelta(0)
    bot.runtime.worker.deliver()
    with bot.runtime.db.read() as session:
        (row,) = session.exec(select(OutboxItem).where(OutboxItem.kind == OutboxKind.STEP.value)).all()
    assert row.state == "sent"
    assert len(bot.slack.completed(execution)) == 1  # the second call found the run completed


@pytest.mark.sqlite_only
def test_a_wait_that_outlives_its_bound_fails_saying_so(bot: Bot, sagemaker: SageMakerSim, clock: MovableClock) -> None:
    sagemaker.add("bert-1", status="InProgress", secondary="Training")
    bot.cycle()
    execution = run_step(bot, WAIT, {"queue": "ml", "job": "bert-1"})
    deadline = time.monotonic() + 10
    while True:
        with bot.runtime.db.read() as session:
            if session.exec(select(StepWait)).first() is not None:
                break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    clock.offset += timedelta(hours=24, minutes=1)
    bot.runtime.worker.renew()
    bot.settle()
    done = completion(bot.slack, execution)
    assert done["ok"] is False and "gave up waiting after 24h" in done["error"] and "still running" in done["error"]
    clock.offset += timedelta(days=31)  # past retention_days: the finished wait is forgotten
    bot.runtime.worker.renew()
    bot.runtime.worker.prune()
    with bot.runtime.db.read() as session:
        assert session.exec(select(StepWait)).all() == []


@pytest.mark.sqlite_only
def test_stop_job_step_stops_for_an_operator_and_refuses_anyone_else(bot: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert-1", status="InProgress", secondary="Training")
    bot.cycle()

    def stop(user: str | None, channel: str = "C0001") -> dict[str, Any]:
        inputs: dict[str, Any] = {"queue": "ml", "job": "bert-1", "channel": channel, "reason": "wrong lr"}
        if user is not None:
            inputs["interactivity"] = {"interactor": {"id": user, "secret": "s"}, "interactivity_pointer": "1.2.x"}
        return completion(bot.slack, run_step(bot, STOP, inputs))

    refused = stop(OTHER)
    assert refused["ok"] is False and "only the operators of queue `ml`" in refused["error"]
    nobody = stop(None)
    assert nobody["ok"] is False and "who asks" in nobody["error"]
    from_dm = stop(OPERATOR, channel="D0001")
    assert from_dm["ok"] is False and "not from a direct message" in from_dm["error"]
    assert sagemaker.stops == []

    done = stop(OPERATOR)
    assert done["ok"] is True and done["outputs"]["outcome"] == "requested"
    assert sagemaker.stops == ["bert-1"]
    twice = stop(OPERATOR)
    assert twice["ok"] is True and twice["outputs"]["outcome"] == "already_stopping" and sagemaker.stops == ["bert-1"]
    with bot.runtime.db.read() as session:
        audited = session.exec(select(AuditEntry.action, AuditEntry.outcome)).all()
    assert ("stop (step)", "ok") in audited and ("stop bert-1 (step)", "refused") in audited


def test_the_manifest_declares_each_step_and_its_outputs() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    functions = manifest["functions"]
    assert set(functions) == set(CALLBACK_IDS)
    for name in (GET_STATUS, WAIT):
        outputs = functions[name]["output_parameters"]
        assert {k: v["type"] for k, v in outputs["properties"].items()} == OUTPUTS
        assert tuple(outputs["required"]) == REQUIRED
        assert set(functions[name]["input_parameters"]["required"]) == {"queue", "job"}
    assert manifest["settings"]["function_runtime"] == "remote" and manifest["settings"]["org_deploy_enabled"]
    assert "function_executed" in manifest["settings"]["event_subscriptions"]["bot_events"]
