"""The demo's page (bot/sim/page.py) draws what Slack received, and nothing in it is live: provider
strings show as text, never as markup, scripts or links of their own."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.sim.page import Names, render_page
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from tests.harness import Bot, text_of

SCRIPT = "<script>alert(1)</script>&amp;"


def hostile_log() -> list[dict[str, Any]]:
    """A FakeSlack log whose every string tries to be markup (also opened in Chromium,
    tests/test_page_browser.py)."""
    hostile = {"type": "plain_text", "text": '"><img src=x onerror=alert(1)> :x:'}
    log: list[dict[str, Any]] = [
        {"kind": "command", "text": f"/jobs status q {SCRIPT}", "user": "U1", "channel": "C1"},
        {
            "kind": "ephemeral",
            "payload": {
                "text": "fallback",
                "blocks": [
                    {"type": "header", "text": hostile},
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": "*bold* _it_ `co<de>` &lt;b&gt; <!date^1^{date}|2026-01-01> <#C1> <@U1> "
                            '<javascript:alert(1)|x> <https://example.com/a?b=1&amp;c="|site>\n> quoted :x:',
                        },
                        "fields": [{"type": "mrkdwn", "text": "*Status:* ok"}],
                    },
                    {
                        "type": "context",
                        "elements": [{"type": "image", "image_url": "https://x/y.png", "alt_text": SCRIPT}],
                    },
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": SCRIPT},
                                "confirm": {
                                    "title": {"type": "plain_text", "text": "Stop"},
                                    "text": {"type": "plain_text", "text": f'Stop {SCRIPT}"?'},
                                    "confirm": {"type": "plain_text", "text": "Stop"},
                                    "deny": {"type": "plain_text", "text": "Cancel"},
                                },
                                "style": "danger",
                            },
                            {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": 'javascript:"x'},
                        ],
                    },
                    {"type": "rich_text<script>"},
                ],
            },
        },
    ]
    return log


def test_mrkdwn_is_drawn_and_everything_else_escaped() -> None:
    page = render_page(hostile_log(), Names(channels={"C1": "ml-jobs"}, users={"U1": "you"}))
    assert "<script" not in page and "<img" not in page  # markup in payloads shows as text
    assert "&lt;javascript:alert(1)|x&gt;" in page and 'title="Opens javascript:&quot;x"' in page  # no such link
    assert 'href="javascript' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;" in page  # shown as typed
    assert "<b>bold</b> <i>it</i> <code>co&lt;de&gt;</code> &lt;b&gt; <time>2026-01-01</time>" in page
    assert '<span class="mention">#ml-jobs</span> <span class="mention">@you</span>' in page
    assert '<a href="https://example.com/a?b=1&amp;c=&quot;" rel="noopener noreferrer">site</a>' in page
    assert '<blockquote>quoted <span class="emoji" title=":x:">❌</span></blockquote>' in page
    assert 'title="Stop: Stop &lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;&quot;? [Stop] [Cancel]"' in page
    assert "Only visible to you" in page and "/jobs status q &lt;script&gt;" in page
    assert "default-src 'none'" in page  # no script, no request, even if something slipped through
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.replace('href="https://example.com', ""))


@pytest.mark.sqlite_only
def test_page_of_a_hostile_job_through_the_bot(ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    """A job named like markup goes through the real bot (alert, thread reply, edited parent) and
    shows on the page as the characters Slack would show."""
    assert "Subscribed" in text_of(ml.command("subscribe ml", channel="C1"))
    ml.cycle()  # the baseline
    sagemaker.add(SCRIPT, status="InProgress", secondary="Training")
    ml.cycle()
    sagemaker.set(SCRIPT, "Failed", "Failed", reason=f"{SCRIPT} <!channel>")
    ml.cycle()
    ml.cycle()
    page = render_page(list(slack.log), Names(channels={"C1": "ml-jobs"}))
    assert "<script" not in page
    shown = "&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;"
    assert page.count(f"<b>{shown}</b>") >= 2, page  # the parent and its replies
    assert 'data-edited="yes"' in page and "(edited)" in page  # the parent was updated to the failure
    assert "Thread · " in page and "also sent to the channel" in page  # the failure is broadcast
    assert "&lt;!channel&gt;" in page  # the reason's ping, shown as text
