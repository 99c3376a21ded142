"""Baselines take turns (a whole history in memory at a time); steady polls run in parallel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from bot.sim.http import Request, Response
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from tests.conftest import AWS_ENV
from tests.harness import Bot

WAIT = 1.0  # how long queue a's listing waits to see whether queue b is listed meanwhile


def queue(name: str, sim: SageMakerSim) -> str:
    return f"""
[[queues]]
name = "{name}"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{sim.url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
"""


def listed_meanwhile(bot: Bot, a: SageMakerSim, b: SageMakerSim) -> bool:
    """Poll queues a and b from two threads; whether b was listed while a's listing was under way."""
    a_listing, b_listed = threading.Event(), threading.Event()
    seen: list[bool] = []

    def hold(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            if not seen:
                a_listing.set()
                seen.append(b_listed.wait(WAIT))
            return handler(req)

        return run

    def note(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            b_listed.set()
            return handler(req)

        return run

    originals = a._server.handler, b._server.handler
    a._server.handler, b._server.handler = hold(originals[0]), note(originals[1])
    try:
        first = threading.Thread(target=bot.runtime.worker.poll, args=("a",))
        first.start()
        assert a_listing.wait(10)
        bot.runtime.worker.poll("b")
        first.join(10)
    finally:
        a._server.handler, b._server.handler = originals
    return seen[0]


def test_baselines_take_turns_and_steady_polls_do_not(tmp_path: Path, slack: FakeSlack) -> None:
    a, b = SageMakerSim().start(), SageMakerSim().start()
    a.add("resnet", status="InProgress", secondary="Training")
    b.add("bert", status="InProgress", secondary="Training")
    bot = Bot(tmp_path, slack, queue("a", a) + queue("b", b), env=AWS_ENV)
    try:
        bot.runtime.worker.renew()
        assert not listed_meanwhile(bot, a, b)  # b's baseline waited for a's to be committed
        assert bot.runtime.services.recent("b", status=None, limit=5)[0]  # and then ran
        assert listed_meanwhile(bot, a, b)  # steady polls overlap
    finally:
        bot.close()
        a.stop()
        b.stop()
