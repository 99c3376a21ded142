"""Hostile provider strings reach Slack inert: no live mention, no foreign link, nothing too long."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.sim.checks import block_problems, live_markup
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.tables import OutboxItem
from tests.harness import Bot, text_of

HOSTILE = [
    "<!channel> deploy now",
    "<!here|here> and <!everyone>",
    "<!subteam^S0123|@oncall> wake up",
    "<@U0001> look",
    "<#C0001|general> moved",
    "<https://evil.example|click to pay>",
    "<mailto:a@evil.example|mail>",
    "*bold* _italic_ ~strike~ `code` ```block```",
    "a & b &lt; c &amp;",
    "\u202eevil\u202c \u200bhidden\u2066name\u2069",
    "x" * 50_000,
]


@pytest.mark.sqlite_only
def test_hostile_job_names_and_reasons_post_inert(ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    for i, name in enumerate(HOSTILE):
        sagemaker.add(f"{name}-{i}", status="InProgress", secondary="Training")
    assert "Subscribed" in text_of(ml.command("subscribe ml", channel="C1"))
    ml.cycle()
    for i, name in enumerate(HOSTILE):
        sagemaker.set(f"{name}-{i}", "Failed", "Failed", reason=f"{name} <!channel> <https://evil.example|x>")
    for _ in range(4):
        ml.cycle()
    with ml.runtime.db.read() as session:
        states = [r.state for r in session.exec(select(OutboxItem)).all()]
    assert states == ["sent"] * len(HOSTILE)
    posts = slack.posts("C1")
    assert len(posts) == len(HOSTILE) and slack.rejected == 0
    assert slack.problems() == []
    shown = "\n".join(text_of(p) for p in posts)
    assert "&lt;!channel&gt; deploy now" in shown and "&lt;https://evil.example|click to pay&gt;" in shown
    assert "a &amp; b &amp;lt; c" in shown
    assert all(len(p["text"]) < 1_000 for p in posts)
    listed, failed, queues = (
        text_of(ml.command(c)) for c in ("list ml --limit 50", "list ml failed --limit 50", "queues")
    )
    assert live_markup(listed) == live_markup(failed) == live_markup(queues) == []
    for reply in (listed, failed):
        assert "&lt;!channel&gt; deploy now" in reply and "&lt;https://evil.example|click to pay&gt;" in reply
    assert "*ml* — sagemaker" in queues
    home = text_of({"blocks": ml.open_home()["blocks"]})
    assert "&lt;!channel&gt; deploy now" in home and "running → failed · sent" in home
    assert slack.problems() == []


def test_fake_slack_catches_live_markup() -> None:
    assert live_markup("hi <!channel> and <@U1> see <https://x.example|x>") != []
    assert len(live_markup("hi <!channel> and <@U1> see <https://x.example|x>")) == 3
    assert live_markup("at <!date^1700000000^{date}|2023-11-14> in <#C123>") == []
    assert block_problems([{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]) == [
        "section text over 3000"
    ]
