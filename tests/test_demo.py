"""`jobwatch demo` shows the whole loop: commands answered and alerts posted within a minute."""

import io

from bot.clock import FastForward
from bot.demo import run_demo


def test_demo_posts_alerts_and_answers_commands() -> None:
    out = io.StringIO()
    alerts = run_demo(seconds=6, interval=2, out=out, pace=FastForward())
    text = out.getvalue()
    assert alerts >= 2, text
    assert "Subscribed this channel to `ml-training`" in text
    assert "resnet50-sweep-0" in text  # the baseline listing answers /jobs list
    assert "→ *running*" in text
    assert "0 rejected by rate limit" in text
    assert "Daily digest of ml-training since" in text  # /jobs digest, due after the demo skips ahead
