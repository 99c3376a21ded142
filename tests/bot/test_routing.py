"""Routing as code: [[subscriptions]] in the queues file (reconcile at start-up and on reload),
export back to it, and the filter dry-run against the stored transition history."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.core.config import ConfigError
from bot.runtime import reload_subscriptions
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.tables import AuditEntry, OutboxItem, Subscription, TransitionRecord
from tests.conftest import AWS_ENV, TOKEN
from tests.harness import Bot, queue_config, text_of
from tests.harness import MovableClock as Clock
from tests.test_cli import run

ENTRIES = """
[[subscriptions]]
team = "T0001"
channel = "C1"
queue = "ml"
statuses = ["failed", "timed_out"]

[[subscriptions]]
channel = "C2"
queue = "ml"
match = "train-*"
"""


def subs(bot: Bot) -> dict[str, tuple[str, str, str | None]]:
    """channel -> (source, statuses, match) of every subscription."""
    with bot.runtime.db.read() as session:
        return {s.channel_id: (s.source, s.statuses, s.match) for s in session.exec(select(Subscription)).all()}


def rows(bot: Bot, table: type) -> list[Any]:
    with bot.runtime.db.read() as session:
        return list(session.exec(select(table)).all())


def rewrite(bot: Bot, sagemaker: SageMakerSim, entries: str) -> None:
    bot.settings.jobwatch_config.write_text(queue_config(sagemaker, entries))


@pytest.fixture
def routed(tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock) -> Any:
    b = Bot(tmp_path, slack, queue_config(sagemaker, ENTRIES), env=AWS_ENV, clock=clock, database_url=database_url)
    yield b
    b.close()


def test_start_up_applies_the_file_and_a_missing_team_is_the_tokens(routed: Bot) -> None:
    assert subs(routed) == {"C1": ("file", "failed,timed_out", None), "C2": ("file", "", "train-*")}
    with routed.runtime.db.read() as session:
        teams = {s.team_id for s in session.exec(select(Subscription)).all()}
    assert teams == {"T0001"}  # C2 named no team: auth.test of the token says T0001
    audit = [(a.user_id, a.action, a.channel_id) for a in rows(routed, AuditEntry)]
    assert sorted(audit) == [("jobwatch.toml", "subscribe (file)", "C1"), ("jobwatch.toml", "subscribe (file)", "C2")]
    assert reload_subscriptions(routed.settings, routed.runtime.db).nothing  # idempotent


def test_reload_adds_changes_removes_and_leaves_chat_made_ones(routed: Bot, sagemaker: SageMakerSim) -> None:
    assert "Subscribed" in text_of(routed.command("subscribe ml succeeded", channel="C3"))
    rewrite(
        routed,
        sagemaker,
        """
[[subscriptions]]
channel = "C1"
queue = "ml"
statuses = ["failed"]

[[subscriptions]]
channel = "C4"
queue = "ml"
""",
    )
    done = reload_subscriptions(routed.settings, routed.runtime.db)
    assert (done.added, done.changed, done.removed, done.adopted) == (["C4 ml"], ["C1 ml"], ["C2 ml"], [])
    assert subs(routed) == {
        "C1": ("file", "failed", None),
        "C3": ("chat", "succeeded", None),
        "C4": ("file", "", None),
    }
    removed = [a for a in rows(routed, AuditEntry) if a.action == "unsubscribe (file)"]
    assert [(a.channel_id, a.user_id, a.detail) for a in removed] == [("C2", "jobwatch.toml", "entry removed")]


def test_an_invalid_entry_names_file_entry_and_key_and_changes_nothing(routed: Bot, sagemaker: SageMakerSim) -> None:
    before = subs(routed)
    path = routed.settings.jobwatch_config
    bad = ENTRIES.replace('statuses = ["failed", "timed_out"]', 'statuses = ["failed", "exploded"]') + (
        '\n[[subscriptions]]\nchannel = "C9"\nqueue = "ml"\n'
    )
    rewrite(routed, sagemaker, bad)
    with pytest.raises(ConfigError) as err:
        reload_subscriptions(routed.settings, routed.runtime.db)
    assert str(err.value).startswith(f"{path}: subscriptions[0] (channel 'C1', queue 'ml'): key statuses.1:")
    rewrite(routed, sagemaker, ENTRIES.replace('queue = "ml"\nmatch', 'queue = "nope"\nmatch'))
    with pytest.raises(ConfigError, match=r"subscriptions\[1\] \(channel 'C2', queue 'nope'\): key queue: no queue"):
        reload_subscriptions(routed.settings, routed.runtime.db)
    assert subs(routed) == before


def test_file_entries_take_slow_stuck_and_causes(routed: Bot, sagemaker: SageMakerSim) -> None:
    wanted = 'statuses = ["failed", "Stuck"]\ncauses = ["oom", "user_code"]'
    rewrite(routed, sagemaker, ENTRIES.replace('statuses = ["failed", "timed_out"]', wanted))
    done = reload_subscriptions(routed.settings, routed.runtime.db)
    assert done.changed == ["C1 ml"]
    (c1,) = [s for s in rows(routed, Subscription) if s.channel_id == "C1"]
    assert (c1.statuses, c1.causes) == ("failed,stuck", "out_of_memory,user_code")
    again = reload_subscriptions(routed.settings, routed.runtime.db)
    assert again.nothing  # the same file changes nothing
    rewrite(routed, sagemaker, ENTRIES.replace('statuses = ["failed", "timed_out"]', 'causes = ["gremlins"]'))
    with pytest.raises(ConfigError, match=r"subscriptions\[0\] \(channel 'C1', queue 'ml'\): key causes: .*'gremlins'"):
        reload_subscriptions(routed.settings, routed.runtime.db)
    rewrite(routed, sagemaker, ENTRIES.replace('"timed_out"', '"sluggish"'))
    with pytest.raises(
        ConfigError, match=r"key statuses.1: .*'sluggish' is not a status or event; use one of: .*stuck"
    ):
        reload_subscriptions(routed.settings, routed.runtime.db)


def test_chat_cannot_change_a_file_subscription_but_sees_where_it_comes_from(routed: Bot) -> None:
    for text in ("unsubscribe ml", "subscribe ml succeeded"):
        reply = text_of(routed.command(text, channel="C1"))
        assert "comes from jobwatch.toml" in reply and "jobwatch reload" in reply, reply
    assert subs(routed)["C1"] == ("file", "failed,timed_out", None)
    assert "from jobwatch.toml" in text_of(routed.command("subscriptions", channel="C1"))
    refused = [a for a in rows(routed, AuditEntry) if a.outcome == "refused"]
    assert len(refused) == 2


def test_export_round_trip_changes_nothing(routed: Bot, sagemaker: SageMakerSim, tmp_path: Path) -> None:
    routed.command("subscribe ml failed slow --cause oom --match 'nightly-*'", channel="C3")
    one = text_of(routed.command("subscriptions export", channel="C1"))
    assert 'channel = "C1"' in one and 'statuses = ["failed", "timed_out"]' in one and "C2" not in one
    env = {"DATABASE_URL": routed.settings.database_url, "JOBWATCH_CONFIG": str(routed.settings.jobwatch_config)}
    exported = run("subscriptions", "export", env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "# made in chat by U0001" in exported.stdout
    assert 'statuses = ["failed", "slow"]\nmatch = "nightly-*"\ncauses = ["out_of_memory"]' in exported.stdout
    before = subs(routed)
    rewrite(routed, sagemaker, exported.stdout)
    done = reload_subscriptions(routed.settings, routed.runtime.db)
    assert (done.added, done.changed, done.removed, done.adopted) == ([], [], [], ["C3 ml"])
    assert subs(routed) == {**before, "C3": ("file", "failed,slow", "nightly-*")}
    again = run("reload", env={**env, "SLACK_BOT_TOKEN": TOKEN}, cwd=tmp_path)
    assert again.returncode == 0 and "added 0, changed 0, adopted 0, removed 0" in again.stdout, again.stderr


@pytest.mark.real_pacing
def test_reload_while_delivering_posts_nothing_twice_and_nothing_unwanted(
    routed: Bot, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    names = [f"train-{i}" for i in range(6)]
    for name in names:
        sagemaker.add(name, status="InProgress", secondary="Training")
    routed.cycle()
    for name in names:
        sagemaker.set(name, "Failed", "Failed", reason="OOM")
    routed.runtime.worker.renew()
    routed.runtime.worker.poll_all()  # C1 (failed) and C2 (train-*) are owed 6 alerts each, paced at 1/s
    rewrite(routed, sagemaker, ENTRIES.split('[[subscriptions]]\nchannel = "C2"')[0])  # C2's entry removed
    delivering = threading.Thread(target=routed.runtime.worker.deliver)
    delivering.start()
    done = reload_subscriptions(routed.settings, routed.runtime.db)
    delivering.join()
    routed.runtime.worker.deliver()
    assert done.removed == ["C2 ml"]
    c1, c2 = slack.alert_ids("C1"), slack.alert_ids("C2")
    assert len(c1) == len(set(c1)) == 6 and len(c2) == len(set(c2)) < 6
    left = [r for r in rows(routed, OutboxItem) if r.channel_id == "C2"]
    assert all(r.state == "sent" for r in left) and len(left) == len(c2)  # the rest were withdrawn


def test_dry_run_counts_the_recorded_history_and_subscribes_nothing(
    routed: Bot, sagemaker: SageMakerSim, clock: Clock
) -> None:
    now = clock()
    hour = now.replace(minute=30, second=0, microsecond=0) - timedelta(hours=3)
    history = [
        ("train-a", "failed", hour),
        ("train-b", "failed", hour),
        ("train-c", "succeeded", hour),
        ("eval-d", "failed", hour - timedelta(hours=2)),
        ("train-e", "succeeded", hour - timedelta(hours=5)),
        ("train-f", "failed", now - timedelta(hours=30)),  # older than 24 h
    ]
    with routed.runtime.db.write() as session:
        for name, new, at in history:
            session.add(TransitionRecord(queue="ml", job_id=name, name=name, old="running", new=new, at=at))
    reply = text_of(routed.command("subscribe ml --match train-* --dry-run", channel="C7"))
    assert (
        f"would have posted 4 alerts in the last 24 h: 2 failed, 2 succeeded; busiest hour {hour:%H}:00 with 3" in reply
    )
    assert "would have posted 3 alerts in the last 24 h: 3 failed;" in text_of(
        routed.command("subscribe ml failed --dry-run", channel="C7")
    )
    assert "C7" not in subs(routed)
    assert "unknown queue" in text_of(routed.command("subscribe nope --dry-run", channel="C7"))


def test_dry_run_replays_causes_but_not_slow_or_stuck(routed: Bot, clock: Clock) -> None:
    at = clock() - timedelta(hours=1)
    reasons = ["AlgorithmError: CUDA out of memory (GPU 0; 15.78 GiB)", "AlgorithmError: CUDA out of memory", "?"]
    with routed.runtime.db.write() as session:
        for n, reason in enumerate(reasons):
            session.add(TransitionRecord(queue="ml", job_id=f"j{n}", name=f"j{n}", new="failed", reason=reason, at=at))
    reply = text_of(routed.command("subscribe ml failed --cause oom --dry-run", channel="C7"))
    assert "failures caused by out_of_memory): would have posted 2 alerts in the last 24 h: 2 failed" in reply
    reply = text_of(routed.command("subscribe ml slow stuck --dry-run", channel="C7"))
    assert "would have posted no alerts" in reply
    assert "slow and stuck alerts are not counted: they are not status changes" in reply


def test_polls_record_the_transition_history(routed: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("train-1", status="InProgress", secondary="Training")
    routed.cycle()
    assert rows(routed, TransitionRecord) == []  # the baseline is not news
    sagemaker.set("train-1", "Failed", "Failed", reason="OOM")
    routed.cycle()
    (row,) = rows(routed, TransitionRecord)
    assert (row.name, row.old, row.new, row.reason) == ("train-1", "running", "failed", "OOM")
    assert "would have posted 1 alert in the last 24 h: 1 failed" in text_of(
        routed.command("subscribe ml --dry-run", channel="C7")
    )


def test_sighup_makes_a_running_worker_reload_its_subscriptions(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    """A real `jobwatch worker`: SIGHUP applies the file's entries; an invalid file is logged, changes nothing.

    Each step waits for its outcome (the store, or the worker's log line) before the file changes again:
    a reload reads the file when its thread runs, which under load may be well after the signal."""
    import signal
    import time

    from sqlalchemy import create_engine, text

    from tests.test_cli import start

    config = tmp_path / "jobwatch.toml"
    config.write_text(queue_config(sagemaker))
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    env = {**AWS_ENV, "SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.api_url, "DATABASE_URL": url}
    env |= {"JOBWATCH_CONFIG": str(config), "JOBWATCH_LOG_FORMAT": "text"}
    log = tmp_path / "worker.log"
    sink = log.open("w")
    proc = start("worker", "--port", "0", env=env, cwd=tmp_path, log=sink)
    engine = create_engine(url)

    def query(sql: str) -> list[str]:
        try:
            with engine.connect() as conn:
                return [str(r[0]) for r in conn.execute(text(sql))]
        except Exception:  # not migrated yet
            return []

    def wait_until(done: Any, what: str) -> None:
        deadline = time.monotonic() + 60  # generous: only a broken reload waits this long
        while not done():
            assert proc.poll() is None, f"the worker ended while waiting for {what}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no {what} in 60 s:\n{log.read_text()}"
            time.sleep(0.05)

    subscribed = "SELECT channel_id FROM subscription ORDER BY channel_id"
    try:
        # started: the SIGHUP handler is in place before the scheduler takes the lease
        wait_until(lambda: query("SELECT name FROM lease") == ["poller"], "poller lease")
        config.write_text(queue_config(sagemaker, ENTRIES))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload_done added 2" in log.read_text(), "reload_done")
        assert query(subscribed) == ["C1", "C2"]
        config.write_text(queue_config(sagemaker, '[[subscriptions]]\nchannel = "C1"\nqueue = "nope"\n'))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload_refused" in log.read_text(), "reload_refused")
        assert "key queue: no queue called 'nope'" in log.read_text()
        assert query(subscribed) == ["C1", "C2"]
        config.write_text(queue_config(sagemaker, ENTRIES.split('[[subscriptions]]\nchannel = "C2"')[0]))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: query(subscribed) == ["C1"], "C2's removal")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sink.close()
        engine.dispose()
