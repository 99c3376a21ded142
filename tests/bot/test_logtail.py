"""Log tails in the failure's thread (bot/pipeline/logtail.py): through the real app, store, worker and delivery,
against the SageMaker and CloudWatch Logs simulators and the fake Slack."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.core.config import ConfigError, parse_config
from bot.pipeline.logtail import BACKOFF, TAIL_MAX, TRIES, failure_text, tail_text
from bot.sim.http import LocalServer, Request, Response
from bot.sim.logs import LogsSim
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack, Fault
from bot.store.tables import LogTailRequest, OutboxItem
from providers import AuthError, Job, JobStatus, LogTail
from providers._aws import AwsQueue
from providers._logs import GROUP
from tests.conftest import AWS_ENV
from tests.harness import Bot, MovableClock, queue_config, text_of


@pytest.fixture
def logs() -> Iterator[LogsSim]:
    server = LogsSim().start()
    yield server
    server.stop()


def make_bot(tmp_path: Path, database_url: str, slack: FakeSlack, sim: SageMakerSim, logs_url: str, **kw: Any) -> Bot:
    config = queue_config(sim) + f'log_tail = true\nlogs_endpoint_url = "{logs_url}"\n'
    return Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, **kw)


def start_and_fail(bot: Bot, sim: SageMakerSim, name: str = "bert") -> None:
    """A running job (announced), then failed (announced: the alert the tail follows)."""
    bot.command("subscribe ml", channel="C1")
    bot.cycle()
    sim.add(name)
    sim.set(name, "InProgress", "Training")
    bot.cycle()
    sim.set(name, "Failed", "Failed", reason="AlgorithmError: CUDA out of memory")
    bot.cycle()


def tails(slack: FakeSlack, channel: str = "C1") -> list[dict[str, Any]]:
    return [m for m in slack.posts(channel) if ":scroll:" in text_of(m)]


def failure_alerts(slack: FakeSlack) -> list[dict[str, Any]]:
    """The failure alerts: replies in the job's thread (the parent, updated in place, says failed too)."""
    return [
        m for m in slack.posts("C1") if m.get("thread_ts") and "*failed*" in text_of(m) and ":scroll:" not in text_of(m)
    ]


def test_the_tail_follows_the_failure_in_its_thread_escaped_and_once_across_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, logs: LogsSim
) -> None:
    sagemaker.logs = logs
    bot = make_bot(tmp_path, database_url, slack, sagemaker, logs.url)
    try:
        start_and_fail(bot, sagemaker)
        stream = f"bert/algo-1-{int(sagemaker.jobs['bert'].created.timestamp())}"
        logs.write(GROUP, stream, ["<!channel> look & see `<@U0HACKER>`", "```closed?"])
        (alert,) = failure_alerts(slack)
        assert tails(slack) == []  # the poll read nothing: the tail comes from the worker's own job
        assert bot.runtime.worker.log_tails() == 1
        bot.runtime.worker.deliver()
        (note,) = tails(slack)
        assert note["thread_ts"] == alert["thread_ts"] and not note.get("reply_broadcast")
        text = text_of(note)
        assert "RuntimeError: CUDA out of memory" in text and "Last 14 log line(s) of *bert*" in text
        assert "&lt;!channel&gt; look &amp; see '&lt;@U0HACKER&gt;'" in text
        assert note["blocks"][0]["text"]["text"].count("```") == 2  # the log cannot close the code block
        assert slack.problems() == []  # nothing pings, nothing links
        assert logs.requests == ["Logs_20140328.DescribeLogStreams", "Logs_20140328.GetLogEvents"]
        bot.runtime.worker.log_tails()
        bot.cycle()
    finally:
        bot.close()
    again = make_bot(tmp_path, database_url, slack, sagemaker, logs.url)  # a new process, same store
    try:
        again.cycle()
        again.runtime.worker.log_tails()
        again.runtime.worker.deliver()
        assert len(tails(slack)) == 1 and len(failure_alerts(slack)) == 1
        assert len(logs.requests) == 2
    finally:
        again.close()


def test_a_tail_read_again_after_a_lost_commit_is_still_posted_once(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, logs: LogsSim
) -> None:
    """If the process dies after reading the tail and writing its note but before the row is marked
    (the store does both in one transaction; here the row is put back by hand to play that crash),
    the tail is read again and the note, keyed logs:<alert id>, is not written twice."""
    sagemaker.logs = logs
    bot = make_bot(tmp_path, database_url, slack, sagemaker, logs.url)
    try:
        start_and_fail(bot, sagemaker)
        bot.runtime.worker.log_tails()
        with bot.runtime.db.write() as session:
            (row,) = session.exec(select(LogTailRequest)).all()
            row.state = "pending"
            session.add(row)
        assert bot.runtime.worker.log_tails() == 1
        with bot.runtime.db.read() as session:
            notes = session.exec(select(OutboxItem).where(OutboxItem.kind == "note")).all()
        assert [n.alert_id for n in notes] == [f"logs:{row.alert_id}"]
        bot.runtime.worker.deliver()
        assert len(tails(slack)) == 1
    finally:
        bot.close()


def test_a_hanging_log_service_delays_no_alert_and_the_read_gives_up_at_its_deadline(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, logs: LogsSim
) -> None:
    def hang(req: Request) -> Response:
        time.sleep(1.5)
        return logs.handle(req)

    slow = LocalServer(hang).start()
    bot = make_bot(tmp_path, database_url, slack, sagemaker, slow.url)
    try:
        bot.command("subscribe ml", channel="C1")
        bot.cycle()
        sagemaker.add("bert", status="InProgress", secondary="Training")
        bot.cycle()
        sagemaker.set("bert", "Failed", "Failed", reason="AlgorithmError: boom")
        started = time.monotonic()
        bot.cycle()  # poll and delivery: the failure is announced at once
        assert time.monotonic() - started < 1.0
        assert len(failure_alerts(slack)) == 1
        worker = bot.runtime.worker
        worker.tails.deadline = 0.2
        started = time.monotonic()
        assert worker.log_tails() == 0  # not settled: retried later
        assert time.monotonic() - started < 1.0
        with bot.runtime.db.read() as session:
            (row,) = session.exec(select(LogTailRequest)).all()
        assert row.state == "pending" and row.attempts == 1 and "TimeoutError" in (row.last_error or "")
    finally:
        bot.close()
        slow.stop()


def test_a_failing_log_service_is_retried_with_backoff_then_a_short_note_says_so(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, logs: LogsSim
) -> None:
    clock = MovableClock()
    bot = make_bot(tmp_path, database_url, slack, sagemaker, logs.url, clock=clock)
    try:
        for _ in range(TRIES + 2):
            logs.fail_next(500, "ServiceUnavailableException")
        start_and_fail(bot, sagemaker)
        assert len(failure_alerts(slack)) == 1  # delivered with the poll, whatever the logs do
        worker = bot.runtime.worker
        for wait in BACKOFF:
            assert worker.log_tails() == 0
            assert worker.log_tails() == 0  # not due yet: no request
            clock.offset += wait
        assert len(logs.requests) == TRIES - 1
        assert worker.log_tails() == 1
        assert len(logs.requests) == TRIES
        bot.cycle()
        (note,) = tails(slack)
        assert "Could not read the log tail of *bert*: 4 tries failed" in text_of(note)
        assert "ServiceUnavailableException" in text_of(note)
        clock.offset += timedelta(hours=1)
        worker.log_tails()
        bot.cycle()
        assert len(tails(slack)) == 1 and len(logs.requests) == TRIES and len(failure_alerts(slack)) == 1
    finally:
        bot.close()


def test_access_denied_is_not_retried_and_the_note_names_the_refusal(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, logs: LogsSim
) -> None:
    bot = make_bot(tmp_path, database_url, slack, sagemaker, logs.url)
    try:
        logs.fail_next(400, "AccessDeniedException")
        start_and_fail(bot, sagemaker)
        assert bot.runtime.worker.log_tails() == 1
        bot.cycle()
        (note,) = tails(slack)
        assert "the provider refused" in text_of(note) and "AccessDeniedException" in text_of(note)
        assert len(logs.requests) == 1
    finally:
        bot.close()


def test_the_note_waits_for_the_failure_alert_it_follows(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, logs: LogsSim
) -> None:
    """The job's thread exists already; Slack turns the failure alert away once (429). The tail, read
    in the meantime, does not overtake it in the thread."""
    sagemaker.logs = logs
    bot = make_bot(tmp_path, database_url, slack, sagemaker, logs.url)
    try:
        bot.command("subscribe ml", channel="C1")
        bot.cycle()
        sagemaker.add("bert")
        sagemaker.set("bert", "InProgress", "Training")
        bot.cycle()
        sagemaker.set("bert", "Failed", "Failed", reason="AlgorithmError: boom")
        # A Retry-After far longer than this test takes: on a busy machine a 1 s one could end before
        # the next round, and the alert would no longer be waiting when the note is looked at.
        slack.script("chat.postMessage", Fault(status=429, retry_after=60))
        bot.cycle()
        assert failure_alerts(slack) == []
        bot.runtime.worker.log_tails()
        bot.runtime.worker.deliver()  # the alert waits out its backoff; so does the note
        assert tails(slack) == []
        with bot.runtime.db.write() as session:  # the backoff is over
            for row in session.exec(select(OutboxItem).where(OutboxItem.state == "pending")).all():
                row.next_attempt_at = bot.runtime.worker.clock()
                session.add(row)
        bot.runtime.worker.deliver()
        order = [m for m in slack.posts("C1") if m in failure_alerts(slack) or m in tails(slack)]
        assert [":scroll:" in text_of(m) for m in order] == [False, True]
    finally:
        bot.close()


def test_queues_without_log_tail_read_no_logs(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, logs: LogsSim
) -> None:
    sagemaker.logs = logs
    config = queue_config(sagemaker) + f'logs_endpoint_url = "{logs.url}"\n'
    bot = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    try:
        start_and_fail(bot, sagemaker)
        assert bot.runtime.worker.log_tails() == 0
        with bot.runtime.db.read() as session:
            assert session.exec(select(LogTailRequest)).all() == []
        assert logs.requests == [] and len(failure_alerts(slack)) == 1
    finally:
        bot.close()


# -- the note's text --------------------------------------------------------------------------

JOB = Job(queue="ml", id="arn:x:training-job/bert", name="bert <!here>", status=JobStatus.FAILED, native_status="F")


def test_long_logs_are_clipped_keeping_the_newest_lines() -> None:
    lines = tuple(f"{n:02d} " + "<&>" * 400 for n in range(20))
    text = tail_text(JOB, LogTail(source="g s", lines=lines))
    assert len(text) <= TAIL_MAX + 300  # a section holds 3,000
    assert "earlier line(s) left out to fit" in text
    assert "\n19 &lt;&amp;&gt;" in text and "\n00 " not in text  # the newest lines stay
    assert "…" in text  # each line clipped
    assert "*bert &lt;!here&gt;*" in text


def test_terminal_codes_and_progress_bars_are_cleaned() -> None:
    lines = ("\x1b[31mERROR\x1b[0m disk full", " 10%|#   \r 50%|#####  \r100%|##########", "tab\there\x07")
    text = tail_text(JOB, LogTail(source="g s", lines=lines))
    assert "\nERROR disk full\n100%|##########\ntab    here\n```" in text
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text


def test_the_give_up_note_says_why_in_a_line() -> None:
    assert failure_text(JOB, TimeoutError(), 4).endswith("4 tries failed, the last with no answer in time")
    refused = failure_text(JOB, AuthError("GetLogEvents: AccessDeniedException <not allowed>"), 1)
    assert refused.endswith("the provider refused (GetLogEvents: AccessDeniedException &lt;not allowed&gt;)")


def test_a_job_without_a_log_gets_a_one_line_note() -> None:
    assert "No log lines found for *bert &lt;!here&gt;*" in tail_text(JOB, None)


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["modzy", "aitems", "pai"])
def test_log_tail_is_refused_for_providers_without_logs(provider: str) -> None:
    table = f'[[queues]]\nname = "q"\nprovider = "{provider}"\nlog_tail = true\n'
    with pytest.raises(ConfigError, match=rf"jobwatch.toml: queue 'q': key log_tail: {provider} has no job logs"):
        parse_config(Path("jobwatch.toml"), tomllib.loads(table))


def test_log_tail_must_be_a_boolean() -> None:
    table = '[[queues]]\nname = "q"\nprovider = "sagemaker"\nregion = "us-east-1"\nlog_tail = "yes"\n'
    with pytest.raises(ConfigError, match=r"jobwatch.toml: queue 'q': key log_tail: Input should be a valid boolean"):
        parse_config(Path("jobwatch.toml"), tomllib.loads(table))
    for provider, scope in (("sagemaker", ""), ("batch", 'job_queue = "gpu"\n')):
        table = f'[[queues]]\nname = "q"\nprovider = "{provider}"\nregion = "us-east-1"\n{scope}log_tail = true\n'
        (queue,) = parse_config(Path("jobwatch.toml"), tomllib.loads(table)).queues
        assert isinstance(queue, AwsQueue) and queue.log_tail is True
