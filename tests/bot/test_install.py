"""Install mode: Slack's OAuth flow through the real HTTP app, tokens per workspace in our database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bot.core.config import ConfigError
from bot.sim.modzy import ModzySim
from bot.sim.slack import FakeSlack
from bot.slack.install import SCOPES
from tests.harness import Bot, text_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def modzy() -> Iterator[ModzySim]:
    sim = ModzySim().start()
    yield sim
    sim.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack(tokens={}, oauth_client=("cid.123", "client-secret")).start()
    yield server
    server.stop()


def install_mode_bot(tmp_path: Path, slack: FakeSlack, modzy: ModzySim, bot_table: str = "") -> Bot:
    """A bot in install mode (no bot token: a client id and secret) on one Modzy queue."""
    config = f'{bot_table}\n[[queues]]\nname = "inference"\nprovider = "modzy"\nendpoint_url = "{modzy.url}"\n'
    return Bot(
        tmp_path,
        slack,
        config,
        env={"MODZY_API_KEY": modzy.api_key},
        slack_bot_token=None,
        slack_client_id="cid.123",
        slack_client_secret="client-secret",
    )


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, modzy: ModzySim) -> Iterator[Bot]:
    b = install_mode_bot(tmp_path, slack, modzy)
    yield b
    b.close()


def install(bot: Bot, slack: FakeSlack, team: str) -> None:
    """A user of `team` clicks "Add to Slack", approves, and Slack redirects back with a code."""
    with httpx.Client(base_url=bot.url, timeout=10) as browser:
        page = browser.get("/slack/install")
        assert page.status_code == 200
        link = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
        assert link is not None, page.text
        authorize = httpx.URL(link.group(1).replace("&amp;", "&"))
        assert authorize.params["client_id"] == "cid.123"
        assert set(authorize.params["scope"].split(",")) == set(SCOPES)
        code = f"code-{team}"
        slack.oauth_codes[code] = team
        # The state cookie is Secure (production is https); a browser sends it back, so do we.
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        done = browser.get(
            "/slack/oauth_redirect",
            params={"code": code, "state": authorize.params["state"]},
            headers={"Cookie": cookie},
        )
        assert done.status_code in (200, 302), done.text


def test_two_workspaces_install_and_get_alerts_with_their_own_tokens(
    bot: Bot, slack: FakeSlack, modzy: ModzySim
) -> None:
    install(bot, slack, "T0009")
    install(bot, slack, "T0010")
    assert bot.runtime.installations is not None
    token9 = bot.runtime.installations.bot_token("T0009")
    token10 = bot.runtime.installations.bot_token("T0010")
    assert token9 and token10 and token9 != token10
    assert slack.tokens == {token9: "T0009", token10: "T0010"}

    # Each workspace subscribes its own C1 (same channel id, same queue name).
    for team in ("T0009", "T0010"):
        assert "Subscribed" in text_of(bot.command("subscribe inference", channel="C1", team=team))
    job = modzy.add("ocr")
    bot.cycle()
    modzy.set(job.ident, "IN_PROGRESS")
    bot.cycle()
    posts = slack.posts("C1")
    assert sorted(m["team"] for m in posts) == ["T0009", "T0010"]  # posted with each team's token


def test_a_workspace_that_never_installed_is_refused_and_gets_nothing(bot: Bot, slack: FakeSlack) -> None:
    install(bot, slack, "T0009")
    reply = bot.command("subscribe inference", channel="C1", team="T0404")
    assert "Subscribed" not in text_of(reply)
    assert bot.runtime.services.subscriptions(team_id="T0404", channel_id="C1") == []


def test_a_forged_state_finishes_no_install(bot: Bot, slack: FakeSlack) -> None:
    slack.oauth_codes["code-x"] = "T0666"
    with httpx.Client(base_url=bot.url, timeout=10) as browser:
        page = browser.get("/slack/install")
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        answer = browser.get(
            "/slack/oauth_redirect", params={"code": "code-x", "state": "forged"}, headers={"Cookie": cookie}
        )
    assert answer.status_code >= 400
    assert bot.runtime.installations is not None and bot.runtime.installations.bot_token("T0666") is None


def test_manifest_asks_for_the_scopes_the_install_flow_requests() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(SCOPES)


def test_outage_notices_go_to_the_ops_workspace(tmp_path: Path, slack: FakeSlack, modzy: ModzySim) -> None:
    ops = '[bot]\nfailure_threshold = 1\nops_channel = "COPS"\nops_team = "T0009"\n'
    bot = install_mode_bot(tmp_path, slack, modzy, ops)
    try:
        install(bot, slack, "T0009")
        modzy.faults.append("html")
        bot.cycle()
        (notice,) = slack.posts("COPS")
        assert notice["team"] == "T0009" and "failed 1 polls in a row" in notice["text"]
    finally:
        bot.close()


def test_install_mode_with_an_ops_channel_needs_its_workspace(tmp_path: Path, slack: FakeSlack) -> None:
    config = '[bot]\nops_channel = "COPS"\n'
    with pytest.raises(ConfigError, match=r"\[bot\]: key ops_team: required with ops_channel in install mode"):
        Bot(tmp_path, slack, config, env={}, slack_bot_token=None, slack_client_id="c", slack_client_secret="s")


def test_readiness_in_install_mode_asks_slack_without_a_token(bot: Bot, slack: FakeSlack) -> None:
    report = bot.ready()
    assert report.ready and report.body["slack"], report.body
    assert any(method == "api.test" for method, _ in slack.calls)
