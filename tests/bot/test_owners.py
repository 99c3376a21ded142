"""Job owners: read from the job (its name, or the listing's owner field), mapped to Slack users by
`[owners]`, mentioned in the job's thread on a failure or time-out only, and sent the watcher's DM
when the job ends. Through the real HTTP app against the simulators and the fake Slack."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.core.config import ConfigError, parse_config
from bot.sim.slack import FakeSlack
from tests.bot.test_watch import ALICE, BOB, Kit, modzy_kit, pai_kit, sagemaker_kit
from tests.harness import Bot, text_of

NAME_RULE = 'owner_from = "name:^(?P<owner>[a-z]+)-"\n'


def make_bot(tmp_path: Path, database_url: str, slack: FakeSlack, kit: Kit, *, rule: str, owners: str = "") -> Bot:
    config = f"{kit.queue('q')}{rule}\n{owners}\n"
    return Bot(tmp_path, slack, config, env=kit.env, database_url=database_url)


def mentions(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.posts(channel) if "<@" in text_of(m)]


def run(bot: Bot, n: int = 3) -> None:
    for _ in range(n):
        bot.cycle()
    bot.settle()


def test_the_owner_is_mentioned_in_the_thread_on_failure_and_gets_a_dm(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    kit = sagemaker_kit()
    owners = f'[owners]\nalice = "{ALICE}"\n'
    bot = make_bot(tmp_path, database_url, slack, kit, rule=NAME_RULE, owners=owners)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        kit.sim.add("alice-bert", status="InProgress", secondary="Training")
        kit.sim.add("alice-gpt", status="InProgress", secondary="Training")
        kit.sim.add("bob-t5", status="InProgress", secondary="Training")
        run(bot)
        assert mentions(slack, "C1") == []  # running is no news for the owner
        kit.move("alice-bert", "failed")
        kit.move("alice-gpt", "succeeded")
        kit.move("bob-t5", "failed")  # bob is in no [owners] entry
        run(bot)
        (note,) = mentions(slack, "C1")
        assert note["thread_ts"] != note["ts"] and not note.get("reply_broadcast")  # a reply, in the thread only
        parent = next(m for m in slack.posts("C1") if m["ts"] == note["thread_ts"])
        assert "alice-bert" in text_of(parent) and not parent.get("thread_ts")
        assert f"<@{ALICE}> your job *alice-bert* failed" in text_of(note)
        ended = [text_of(m) for m in slack.dms(ALICE)]
        assert len(ended) == 2 and any("alice-bert" in t and "*failed*" in t for t in ended), ended
        assert any("alice-gpt" in t and "*succeeded*" in t for t in ended), ended
        assert slack.dms(BOB) == []
        run(bot)
        assert len(mentions(slack, "C1")) == 1 and len(slack.dms(ALICE)) == 2  # once each
        assert set(slack.problems()) == {f"live markup '<@{ALICE}>'"}  # the one mention meant
    finally:
        bot.close()
        kit.sim.stop()


def test_thread_mode_sends_no_dm(tmp_path: Path, database_url: str, slack: FakeSlack) -> None:
    kit = sagemaker_kit()
    owners = f'[owners]\nnotify = "thread"\nAlice = "{ALICE}"\n'  # keys compare case-insensitively
    bot = make_bot(tmp_path, database_url, slack, kit, rule=NAME_RULE, owners=owners)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        kit.sim.add("alice-bert", status="InProgress", secondary="Training")
        run(bot)
        kit.move("alice-bert", "failed")
        run(bot)
        assert len(mentions(slack, "C1")) == 1 and slack.dms(ALICE) == []
    finally:
        bot.close()
        kit.sim.stop()


def test_an_owner_who_watches_gets_one_dm(tmp_path: Path, database_url: str, slack: FakeSlack) -> None:
    kit = sagemaker_kit()
    owners = f'[owners]\nalice = "{ALICE}"\n'
    bot = make_bot(tmp_path, database_url, slack, kit, rule=NAME_RULE, owners=owners)
    try:
        bot.cycle()
        kit.sim.add("alice-vit", status="InProgress", secondary="Training")
        run(bot)
        assert "Watching" in text_of(bot.command("watch q alice-vit", user=ALICE))
        kit.move("alice-vit", "succeeded")
        run(bot)
        assert len(slack.dms(ALICE)) == 1  # the watch's DM; the owner's would say the same
    finally:
        bot.close()
        kit.sim.stop()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("provider", ["pai", "modzy"])
def test_owner_from_the_listing_field(tmp_path: Path, database_url: str, slack: FakeSlack, provider: str) -> None:
    kit = pai_kit() if provider == "pai" else modzy_kit()
    owners = f'[owners]\n"alice@example.com" = "{ALICE}"\n'
    bot = make_bot(tmp_path, database_url, slack, kit, rule='owner_from = "field"', owners=owners)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        ref = kit.launch(False)
        if provider == "pai":
            next(r for r in kit.sim.runs.values() if r.ident == ref).user_id = "alice@example.com"
        else:
            kit.sim.jobs[ref].submitted_by = "Alice@Example.com"
        run(bot)
        kit.move(ref, "failed")
        run(bot)
        (note,) = mentions(slack, "C1")
        assert note.get("thread_ts") and f"<@{ALICE}> your job" in text_of(note)
        assert len(slack.dms(ALICE)) == 1
    finally:
        bot.close()
        kit.sim.stop()


@pytest.mark.sqlite_only
def test_hostile_owner_values_mention_nobody_else(tmp_path: Path, database_url: str, slack: FakeSlack) -> None:
    kit = sagemaker_kit()
    owners = f'[owners]\n"<@U0HACKER>" = "{ALICE}"\n'
    rule = 'owner_from = "name:^(?P<owner>[^_]+)_"\n'
    bot = make_bot(tmp_path, database_url, slack, kit, rule=rule, owners=owners)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        for name in ("<@U0HACKER>_a", "<!channel>_b"):
            kit.sim.add(name, status="InProgress", secondary="Training")
        run(bot)
        for name in ("<@U0HACKER>_a", "<!channel>_b"):
            kit.move(name, "failed")
        run(bot)
        (note,) = mentions(slack, "C1")  # the value maps to alice: she, and only she, is mentioned
        body = text_of(note)
        assert f"<@{ALICE}>" in body and "&lt;@U0HACKER&gt;_a" in body and "<@U0HACKER>" not in body
        assert set(slack.problems()) == {f"live markup '<@{ALICE}>'"}  # no other mention, no <!channel>
    finally:
        bot.close()
        kit.sim.stop()


@pytest.mark.parametrize(
    ("table", "owners", "problem"),
    [
        ('provider = "sagemaker"\nregion = "us-east-1"\nowner_from = "field"', "", "owner_from 'field' is for"),
        ('provider = "pai"\nregion = "cn-shanghai"\nworkspace_id = "1"\nowner_from = "name:(x"', "", "valid regular"),
        ('provider = "modzy"\nendpoint_url = "http://x"\nowner_from = "name:^x"', "", "(?P<owner>"),
        ('provider = "modzy"\nendpoint_url = "http://x"\nowner_from = "tags"', "", "must be 'field', "),
        ('provider = "modzy"\nendpoint_url = "http://x"', '[owners]\nbob = "bob@example.com"', "not a Slack user id"),
        ('provider = "modzy"\nendpoint_url = "http://x"', '[owners]\nnotify = "email"', "notify"),
    ],
)
def test_bad_owner_settings_are_named(table: str, owners: str, problem: str) -> None:
    text = f'[[queues]]\nname = "q"\n{table}\n{owners}\n'
    with pytest.raises(ConfigError) as err:
        parse_config(Path("jobwatch.toml"), tomllib.loads(text))
    assert problem in str(err.value), str(err.value)


def test_list_mine_shows_watched_and_owned_jobs(tmp_path: Path, database_url: str, slack: FakeSlack) -> None:
    kit = sagemaker_kit()
    owners = f'[owners]\nalice = "{ALICE}"\n'
    bot = make_bot(tmp_path, database_url, slack, kit, rule=NAME_RULE, owners=owners)
    try:
        bot.cycle()
        for name in ("alice-bert", "bob-t5", "carol-vit"):
            kit.sim.add(name, status="InProgress", secondary="Training")
        run(bot, 2)
        assert "Watching" in text_of(bot.command("watch q bob-t5", user=ALICE))
        kit.move("alice-bert", "failed")
        run(bot, 2)
        mine = text_of(bot.command("list q mine", user=ALICE))
        assert "alice-bert" in mine and "bob-t5" in mine and "carol-vit" not in mine, mine
        everywhere = text_of(bot.command("list mine", user=ALICE))
        assert "every queue" in everywhere and "`q` " in everywhere and "bob-t5" in everywhere, everywhere
        failed = text_of(bot.command("list q failed mine", user=ALICE))
        assert "alice-bert" in failed and "bob-t5" not in failed, failed
        assert "_no jobs_" in text_of(bot.command("list mine", user=BOB))
        assert "carol-vit" in text_of(bot.command("list q", user=BOB))  # without `mine`: every job
        assert "unknown queue" in text_of(bot.command("list nope mine", user=ALICE))
    finally:
        bot.close()
        kit.sim.stop()
