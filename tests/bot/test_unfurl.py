"""Console links that unfurl, through the real HTTP app: a signed `link_shared` event for a message
holding several links gets one `chat.unfurl` with the card of each link that names a job jobwatch
knows, for each provider's link shape, and nothing for the others."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.blocks import render
from bot.sim.slack import FakeSlack
from providers.sagemaker import console_url
from tests.harness import Bot, SimQueue, sim_queue

OPERATOR = "UOP0001"


@dataclass
class Shape:
    """One provider's simulator and the console links of its jobs."""

    q: SimQueue
    running: Callable[[], tuple[str, str]]  # start a running job: (its name, its console link)
    foreign: Callable[[str], str]  # the same link in another region, workspace or tenant


def sagemaker_shape() -> Shape:
    q = sim_queue("sagemaker")

    def running() -> tuple[str, str]:
        q.sim.add("bert-7", status="InProgress", secondary="Training")
        return "bert-7", console_url("us-east-1", "bert-7")

    return Shape(q, running, lambda link: link.replace("us-east-1", "eu-west-1"))


def batch_shape() -> Shape:
    q = sim_queue("batch")

    def running() -> tuple[str, str]:
        job = q.sim.add("llama-3", "RUNNING")
        return (
            "llama-3",
            f"https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/{job.job_id}",
        )

    return Shape(q, running, lambda link: link.replace("us-east-1", "us-west-2"))


def pai_shape() -> Shape:
    q = sim_queue("pai")

    def running() -> tuple[str, str]:
        job = q.sim.add("qwen-2", "Running")
        ws = q.sim.workspace_id
        return "qwen-2", f"https://pai.console.aliyun.com/?regionId=cn-shanghai&workspaceId={ws}#/dlc/jobs/{job.ident}"

    return Shape(q, running, lambda link: link.replace("workspaceId=", "workspaceId=9"))


def modzy_shape() -> Shape:
    q = sim_queue("modzy")

    def running() -> tuple[str, str]:
        job = q.sim.add("ocr", "IN_PROGRESS")
        host = q.sim.url.split("://", 1)[1]
        return job.ident, f"https://{host}/operations/jobs/{job.ident}"

    return Shape(q, running, lambda link: link.replace("127.0.0.1", "other.example.com"))


SHAPES = {"sagemaker": sagemaker_shape, "batch": batch_shape, "pai": pai_shape, "modzy": modzy_shape}


@pytest.fixture(params=sorted(SHAPES))
def shape(request: pytest.FixtureRequest) -> Iterator[Shape]:
    s = SHAPES[request.param]()
    yield s
    s.q.sim.stop()


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, shape: Shape) -> Iterator[Bot]:
    config = f'[access]\noperators = ["{OPERATOR}"]\n\n{shape.q.queue("q")}'
    b = Bot(tmp_path, slack, config, env=shape.q.env, database_url=database_url)
    yield b
    b.close()


def unfurled(slack: FakeSlack, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(slack.unfurls) < count:
        assert time.monotonic() < deadline, "nothing was unfurled"
        time.sleep(0.02)
    return list(slack.unfurls)


def action_ids(card: dict[str, Any]) -> list[str]:
    return [e.get("action_id", "") for b in card["blocks"] for e in b.get("elements") or [] if b["type"] == "actions"]


@pytest.mark.postgresql_with(shape=None)  # the store's part is refs.py's lookup, tested on both elsewhere
def test_each_providers_link_unfurls_into_the_jobs_card_and_no_other_link_does(
    bot: Bot, slack: FakeSlack, shape: Shape
) -> None:
    name, link = shape.running()
    bot.cycle()
    unknown = link.replace(link.rsplit("/", 1)[1], "no-such-job-42")
    foreign = shape.foreign(link)
    assert foreign != link
    other_page = "https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#Instances:"
    bot.event(slack.link_shared([unknown, foreign, other_page, link], channel="C0001"))
    (call,) = unfurled(slack)
    assert list(call["unfurls"]) == [link]  # only the link that names a job of ours
    assert call["channel"] == "C0001" and call["ts"]
    card = call["unfurls"][link]
    text = json.dumps(card)
    assert name in text and "running" in text and "`q`" in text
    assert render.STOP_ACTION in action_ids(card) and render.WATCH_ACTION in action_ids(card)
    assert slack.problems() == []

    bot.event(slack.link_shared([unknown, foreign]))  # a message with no link of ours: no call at all
    time.sleep(0.5)
    assert len(slack.unfurls) == 1


@pytest.mark.sqlite_only
def test_a_link_in_the_composer_unfurls_by_its_unfurl_id_and_shows_the_owner(tmp_path: Path, slack: FakeSlack) -> None:
    q = sim_queue("sagemaker")
    try:
        config = f'{q.queue("ml")}owner_from = "name:^(?P<owner>[a-z]+)-"\n'
        bot = Bot(tmp_path, slack, config, env=q.env)
        try:
            q.sim.add("alice-bert", status="InProgress", secondary="Training")
            bot.cycle()
            link = console_url("us-east-1", "alice-bert")
            event = {**slack.link_shared([link]), "source": "composer", "channel": "COMPOSER"}
            bot.event(event)
            (call,) = unfurled(slack)
            assert call["unfurl_id"] == event["unfurl_id"] and call["source"] == "composer" and call["channel"] is None
            text = json.dumps(call["unfurls"][link])
            assert "owner: alice" in text
            assert render.STOP_ACTION not in action_ids(call["unfurls"][link])  # nobody may stop: no button
        finally:
            bot.close()
    finally:
        q.sim.stop()
