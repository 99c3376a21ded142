"""Owners given as e-mail addresses (users.lookupByEmail on the fake Slack, cached), the
`subscribe --owner` filter (chat and the queues file) and the App Home's "My jobs". Through the
real HTTP app against the simulators and the fake Slack."""

from __future__ import annotations

import logging
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.blocks.render import UNWATCH_ACTION
from bot.check import email_scope_problems
from bot.core.config import ConfigError, parse_config
from bot.features.routing import export_toml, reconcile
from bot.sim.slack import FakeSlack, Fault
from bot.store import subscriptions
from bot.store.tables import EmailUser
from tests.bot.test_owners import NAME_RULE, make_bot, mentions, run
from tests.bot.test_watch import ALICE, BOB, pai_kit, sagemaker_kit
from tests.harness import text_of

LOOKUP = "users.lookupByEmail"
UNTIL_UNDERSCORE = 'owner_from = "name:^(?P<owner>[^_]+)_"\n'


def launch_owned(kit: Any, email: str) -> str:
    """A running PAI job whose listing names `email` as its owner (UserId)."""
    ref = str(kit.launch(False))
    next(r for r in kit.sim.runs.values() if r.ident == ref).user_id = email
    return ref


def test_an_email_owner_is_looked_up_once_mentioned_and_listed_as_theirs(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    slack.people = {ALICE: "alice@example.com", BOB: "bob@example.com"}
    kit = pai_kit()
    bot = make_bot(tmp_path, database_url, slack, kit, rule='owner_from = "field"')  # no [owners] entry
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        ref = launch_owned(kit, "Alice@Example.COM")
        run(bot)
        assert slack.count(LOOKUP) == 1  # when the job is first seen, not when it ends
        kit.move(ref, "failed")
        run(bot)
        (note,) = mentions(slack, "C1")
        assert note.get("thread_ts") and f"<@{ALICE}> your job" in text_of(note)
        assert len(slack.dms(ALICE)) == 1 and slack.dms(BOB) == []
        assert slack.count(LOOKUP) == 1  # the failure found the answer cached
        mine = text_of(bot.command("list mine", user=ALICE))
        assert "qwen-0" in mine, mine
        assert "_no jobs_" in text_of(bot.command("list mine", user=BOB))
    finally:
        bot.close()
        kit.sim.stop()


def test_users_not_found_is_remembered_one_call_for_two_alerts(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    slack.people = {ALICE: "alice@example.com"}
    kit = pai_kit()
    bot = make_bot(tmp_path, database_url, slack, kit, rule='owner_from = "field"')
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        first = launch_owned(kit, "ghost@example.com")
        run(bot)
        kit.move(first, "failed")
        run(bot)
        second = launch_owned(kit, "ghost@example.com")
        run(bot)
        kit.move(second, "failed")
        run(bot)
        failed = [m for m in slack.posts("C1") if "failed" in text_of(m)]
        assert len(failed) >= 2  # both alerts went out
        assert slack.count(LOOKUP) == 1 and mentions(slack, "C1") == []
        with bot.runtime.db.read() as session:
            (row,) = session.exec(select(EmailUser)).all()
        assert (row.email, row.outcome, row.user_id) == ("ghost@example.com", "users_not_found", None)
    finally:
        bot.close()
        kit.sim.stop()


def test_missing_scope_stops_lookups_is_logged_once_and_reported_by_check(
    tmp_path: Path, database_url: str, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    slack.people = {ALICE: "alice@example.com", BOB: "bob@example.com"}
    slack.missing = {"users:read.email"}
    kit = pai_kit()
    bot = make_bot(tmp_path, database_url, slack, kit, rule='owner_from = "field"')
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        refs = [launch_owned(kit, "alice@example.com"), launch_owned(kit, "bob@example.com")]
        with caplog.at_level(logging.WARNING, logger="bot.directory"):
            run(bot)
            for ref in refs:
                kit.move(ref, "failed")
            run(bot)
        assert slack.count(LOOKUP) == 1  # the whole workspace lacks the scope: asked once
        assert mentions(slack, "C1") == [] and len([m for m in slack.posts("C1") if "failed" in text_of(m)]) >= 2
        scope_logs = [r for r in caplog.records if "missing_scope" in r.getMessage()]
        assert len(scope_logs) == 1 and "users:read.email" in scope_logs[0].getMessage()
        (problem,) = email_scope_problems(bot.settings.database_url, datetime.now(UTC))
        assert "T0001" in problem and "users:read.email" in problem and "reinstall" in problem
    finally:
        bot.close()
        kit.sim.stop()


def test_hostile_owner_values_are_never_looked_up_and_a_bad_answer_mentions_nobody(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    slack.people = {ALICE: "alice@example.com", "<!channel>": "mallory@example.com"}  # an answer that is no id
    kit = sagemaker_kit()
    bot = make_bot(tmp_path, database_url, slack, kit, rule=UNTIL_UNDERSCORE)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        names = ["<@U0HACKER>@evil.com_a", "x@<!here>.com_b", "a|<!channel>@x.io_c", "mallory@example.com_d"]
        for name in names:
            kit.sim.add(name, status="InProgress", secondary="Training")
        run(bot)
        for name in names:
            kit.move(name, "failed")
        run(bot)
        lookups = [params["email"] for method, params in slack.calls if method == LOOKUP]
        assert lookups == ["mallory@example.com"]  # the only one that is an address
        assert mentions(slack, "C1") == [] and slack.dms(ALICE) == []
        assert not [p for p in slack.problems() if "live markup" in p], slack.problems()
    finally:
        bot.close()
        kit.sim.stop()


def test_subscribe_owner_filters_the_channel_to_that_persons_jobs(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    slack.people = {ALICE: "alice@example.com", BOB: "bob@example.com"}
    kit = sagemaker_kit()
    owners = f'[owners]\nalice = "{ALICE}"\n'
    rule = 'owner_from = "name:^(?P<owner>[a-z]+(@[a-z.]+)?)-"\n'
    bot = make_bot(tmp_path, database_url, slack, kit, rule=rule, owners=owners)
    try:
        reply = text_of(bot.command(f"subscribe q --owner <@{ALICE}|alice>", channel="C1"))
        assert f"owned by <@{ALICE}>" in reply, reply
        text_of(bot.command(f"subscribe q failed --owner={BOB}", channel="C2"))  # an e-mail owner: looked up
        bot.command("subscribe q", channel="C3")
        assert f"jobs of <@{ALICE}>" in text_of(bot.command("subscriptions", channel="C1"))
        bot.cycle()
        for name in ("alice-bert", "bob@example.com-t5", "carol-vit"):
            kit.sim.add(name, status="InProgress", secondary="Training")
        run(bot)
        for name in ("alice-bert", "bob@example.com-t5", "carol-vit"):
            kit.move(name, "failed")
        run(bot)
        c1 = " ".join(text_of(m) for m in slack.posts("C1"))
        c2 = " ".join(text_of(m) for m in slack.posts("C2"))
        c3 = " ".join(text_of(m) for m in slack.posts("C3"))
        assert "alice-bert" in c1 and "bob@example.com-t5" not in c1 and "carol-vit" not in c1, c1
        assert "bob@example.com-t5" in c2 and "alice-bert" not in c2 and "carol-vit" not in c2, c2
        assert all(name in c3 for name in ("alice-bert", "bob@example.com-t5", "carol-vit")), c3
    finally:
        bot.close()
        kit.sim.stop()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("subscribe q --owner @alice", "a display name is not an id"),
        ("subscribe q --owner alice", "'alice' is not a Slack user"),
        ("subscribe q --owner <!channel>", "'&lt;!channel&gt;' is not a Slack user"),
        ("subscribe q --owner", "--owner needs a person"),
        (f"subscribe q --owner {ALICE} --dry-run", "--dry-run does not take --owner"),
    ],
)
def test_a_bad_owner_gets_usage_naming_the_problem(
    tmp_path: Path, database_url: str, slack: FakeSlack, text: str, problem: str
) -> None:
    kit = sagemaker_kit()
    bot = make_bot(tmp_path, database_url, slack, kit, rule=NAME_RULE)
    try:
        reply = text_of(bot.command(text, channel="C1"))
        assert problem in reply and "--owner &lt;@USER&gt;" in reply, reply
        with bot.runtime.db.read() as session:
            assert subscriptions.every(session) == []
    finally:
        bot.close()
        kit.sim.stop()


def test_owner_in_the_queues_file_filters_and_round_trips(tmp_path: Path, database_url: str, slack: FakeSlack) -> None:
    kit = sagemaker_kit()
    owners = f'[owners]\nalice = "{ALICE}"\n'
    entries = (
        f'[[subscriptions]]\nchannel = "C1"\nqueue = "q"\nowner = "{ALICE}"\n\n'
        '[[subscriptions]]\nchannel = "C2"\nqueue = "q"\n'
    )
    bot = make_bot(tmp_path, database_url, slack, kit, rule=NAME_RULE, owners=owners + "\n" + entries)
    try:
        assert f"jobs of <@{ALICE}>" in text_of(bot.command("subscriptions", channel="C1"))
        bot.cycle()
        for name in ("alice-bert", "bob-t5"):
            kit.sim.add(name, status="InProgress", secondary="Training")
        run(bot)
        c1 = " ".join(text_of(m) for m in slack.posts("C1"))
        assert "alice-bert" in c1 and "bob-t5" not in c1, c1
        assert "bob-t5" in " ".join(text_of(m) for m in slack.posts("C2"))
        with bot.runtime.db.read() as session:
            stored = subscriptions.every(session)
        exported = export_toml(stored)
        assert f'owner = "{ALICE}"' in exported, exported
        config = bot.runtime.config
        again = parse_config(
            config.path, tomllib.loads(config.path.read_text().split("[[subscriptions]]")[0] + exported)
        )
        done = reconcile(bot.runtime.db, again, default_team=lambda: "T0001", now=datetime.now(UTC))
        assert done.nothing, done.summary()
        changed = parse_config(config.path, tomllib.loads(config.path.read_text().replace(ALICE, BOB)))
        done = reconcile(bot.runtime.db, changed, default_team=lambda: "T0001", now=datetime.now(UTC))
        assert done.changed == ["C1 q"], done.summary()
    finally:
        bot.close()
        kit.sim.stop()


def test_a_bad_owner_in_the_queues_file_is_named(tmp_path: Path) -> None:
    text = (
        '[[queues]]\nname = "q"\nprovider = "modzy"\nendpoint_url = "http://127.0.0.1:9"\n\n'
        '[[subscriptions]]\nchannel = "C1"\nqueue = "q"\nowner = "@alice"\n'
    )
    with pytest.raises(ConfigError) as err:
        parse_config(Path("jobwatch.toml"), tomllib.loads(text))
    assert "subscriptions[0]" in str(err.value) and "owner" in str(err.value), str(err.value)


def home_lines(view: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(text, button action id) of each section between "My jobs" and the next divider."""
    blocks = view["blocks"]
    start = next(i for i, b in enumerate(blocks) if "My jobs" in (b.get("text") or {}).get("text", ""))
    found = []
    for block in blocks[start + 1 :]:
        if block["type"] == "divider":
            break
        found.append((block["text"]["text"], (block.get("accessory") or {}).get("action_id")))
    return found


def test_app_home_my_jobs_shows_watched_and_owned_jobs(tmp_path: Path, database_url: str, slack: FakeSlack) -> None:
    slack.people = {ALICE: "alice@example.com", BOB: "bob@example.com"}
    kit = sagemaker_kit()
    owners = f'[owners]\nalice = "{ALICE}"\n'
    bot = make_bot(tmp_path, database_url, slack, kit, rule=UNTIL_UNDERSCORE, owners=owners)
    try:
        bot.cycle()
        for name in ("alice_bert", "alice@example.com_vit", "bob@example.com_t5", "carol_gpt"):
            kit.sim.add(name, status="InProgress", secondary="Training")
        run(bot, 2)
        assert "Watching" in text_of(bot.command("watch q bob@example.com_t5", user=ALICE))
        kit.move("alice_bert", "failed")
        run(bot, 2)
        lines = home_lines(bot.open_home(user=ALICE))
        assert len(lines) == 3, lines
        watched, *owned = lines
        assert "bob@example.com_t5" in watched[0] and "running" in watched[0] and watched[1] == UNWATCH_ACTION
        texts = " ".join(t for t, _ in owned)
        assert "alice_bert" in texts and "failed" in texts and "alice@example.com_vit" in texts, owned
        assert all(action is None and "yours" in t for t, action in owned), owned
        assert "carol_gpt" not in " ".join(t for t, _ in lines)
        bob = home_lines(bot.open_home(user=BOB))
        assert [t for t, _ in bob if "bob@example.com_t5" in t] and not [t for t, _ in bob if "alice" in t], bob
    finally:
        bot.close()
        kit.sim.stop()


def test_ratelimited_lookups_wait_for_retry_after_and_alerts_still_go_out(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    slack.people = {ALICE: "alice@example.com", BOB: "bob@example.com"}
    slack.script(LOOKUP, Fault(retry_after=30))
    kit = pai_kit()
    bot = make_bot(tmp_path, database_url, slack, kit, rule='owner_from = "field"')
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        first = launch_owned(kit, "alice@example.com")
        run(bot)
        second = launch_owned(kit, "bob@example.com")
        for ref in (first, second):
            kit.move(ref, "failed")
        run(bot)
        assert slack.count(LOOKUP) == 1  # nothing more asked of the workspace within Retry-After
        assert len([m for m in slack.posts("C1") if "failed" in text_of(m)]) >= 2  # alerts are not held back
        assert mentions(slack, "C1") == []
        with bot.runtime.db.read() as session:
            assert session.exec(select(EmailUser)).all() == []  # a rate limit is not an answer to remember
    finally:
        bot.close()
        kit.sim.stop()
