"""A whole bot on the local stand-ins: the real HTTP app, store, worker and delivery."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from bot.core.clock import Clock, FastForward, ShiftedClock, utcnow
from bot.core.config import Settings, load_config
from bot.runtime import Runtime, build_runtime, build_sources, command_client, readiness
from bot.sim.aitems import AitemsSim
from bot.sim.batch import BatchSim
from bot.sim.modzy import ModzySim
from bot.sim.pai import PaiSim
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.sim.slash import block_action, event, slash_command
from bot.slack.app import build_app
from bot.slack.install import oauth_settings
from bot.store.tables import OutboxItem
from bot.web import Background, WebApp
from providers import JobSource
from tests.conftest import AWS_ENV, SECRET, TOKEN

THREAD_WAIT_FAST = timedelta(seconds=0.2)
MovableClock = ShiftedClock  # real time plus an offset the test controls (mutes expire without waiting)


class Bot:
    """Start with `Bot(...)`, drive with `command()` and `cycle()`, end with `close()`."""

    def __init__(
        self,
        tmp_path: Path,
        slack: FakeSlack,
        config_text: str,
        *,
        env: Mapping[str, str],
        sources: Mapping[str, JobSource] | None = None,
        clock: Clock = utcnow,
        database_url: str | None = None,
        **settings: Any,
    ) -> None:
        path = tmp_path / "jobwatch.toml"
        path.write_text(config_text)
        self.slack = slack
        settings.setdefault("slack_bot_token", TOKEN)
        self.settings = Settings(
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            database_url=database_url or f"sqlite:///{tmp_path / 'bot.db'}",
            jobwatch_config=path,
            **settings,
        )
        config = load_config(path)
        if sources is None:
            sources = build_sources(config, env=env)
        # Posts keep Slack's pace without waiting for it when the fake Slack reads a FastForward.
        pace = slack.monotonic if isinstance(slack.monotonic, FastForward) else None
        self.runtime: Runtime = build_runtime(self.settings, config=config, sources=sources, clock=clock, pace=pace)
        if pace is not None:
            # A thread-only note that found its alert still owed (say, held back by a 429) looks again
            # soon instead of 5 s of real time later: the order is kept, settle() waits less.
            self.runtime.worker.deliverer.thread_wait = THREAD_WAIT_FAST
        metrics = self.runtime.metrics
        installs = self.runtime.installations
        app = build_app(
            self.runtime.services,
            client=command_client(self.settings, metrics=metrics),
            signing_secret=SECRET,
            timing=metrics.command,
            oauth=oauth_settings(self.settings, installs) if installs is not None else None,
        )
        self.app = app
        self.ready = readiness(self.runtime, worker=True)
        self.http = Background(
            WebApp(app, signing_secret=SECRET, ready=self.ready, metrics=metrics, webhooks=self.runtime.webhooks)
        )
        self.url = self.http.url
        self._replies = 0

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url + "/slack/events", content=body, headers=headers, timeout=10)

    def command(self, text: str, *, channel: str = "C0001", user: str = "U0001", team: str = "T0001") -> dict[str, Any]:
        """Send a signed `/jobs` and return the reply, from the ack or from response_url."""
        self._replies += 1
        name = f"r{self._replies}"
        body, headers = slash_command(
            SECRET, text, team=team, channel=channel, user=user, response_url=self.slack.response_url(name)
        )
        response = self.post(body, headers)
        assert response.status_code == 200, response.text
        if response.content:
            return dict(response.json())
        return self.response(name)

    def response(self, name: str) -> dict[str, Any]:
        """What was posted to the response_url called `name` (waits a little for it)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for got, payload in self.slack.responses:
                if got == name:
                    return payload
            time.sleep(0.02)
        raise AssertionError(f"nothing posted to response_url {name}")

    def press(
        self, action_id: str, value: str, *, channel: str = "C0001", user: str = "U0001", team: str = "T0001"
    ) -> dict[str, Any]:
        """Press a button on an alert (a signed block_actions) and return the ephemeral answer."""
        self._replies += 1
        name = f"a{self._replies}"
        body, headers = block_action(
            SECRET,
            action_id=action_id,
            value=value,
            team=team,
            channel=channel,
            user=user,
            response_url=self.slack.response_url(name),
        )
        response = self.post(body, headers)
        assert response.status_code == 200 and not response.content, response.text
        return self.response(name)

    def event(self, inner: dict[str, Any], *, team: str = "T0001") -> None:
        """Send a signed Events API event (a `function_executed`, a `link_shared`); Slack only
        wants it acknowledged."""
        body, headers = event(SECRET, inner, team=team)
        response = self.post(body, headers)
        assert response.status_code == 200, response.text

    def open_home(self, *, user: str = "U0001", team: str = "T0001") -> dict[str, Any]:
        """Open the App Home tab (a signed app_home_opened event) and return the view published."""
        before = len(self.slack.views)
        body, headers = event(
            SECRET, {"type": "app_home_opened", "user": user, "channel": "D0001", "tab": "home"}, team=team
        )
        assert self.post(body, headers).status_code == 200
        deadline = time.monotonic() + 10
        while len(self.slack.views) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        (published,) = self.slack.views[before:]
        assert published["user_id"] == user
        return dict(published["view"])

    def cycle(self) -> None:
        """One poll of every queue, then deliver everything due."""
        worker = self.runtime.worker
        worker.renew()
        worker.poll_all()
        worker.deliver()

    def settle(self, timeout: float = 10.0, *, waiting: Callable[[OutboxItem], bool] | None = None) -> None:
        """Deliver until no outbox row is pending or sending (FakeSlack paces each channel in real
        time, and a thread-only note waits for its alert), or until `timeout` seconds.

        `waiting` picks the rows the test expects to stay pending (a note whose alert quiet hours
        hold): they are not waited for, so the test goes on as soon as everything else is out
        instead of after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.runtime.worker.deliver()
            with self.runtime.db.read() as session:
                busy = session.exec(select(OutboxItem).where(col(OutboxItem.state).in_(("pending", "sending")))).all()
            if all(waiting is not None and waiting(row) for row in busy):
                return
            time.sleep(0.1)

    def close(self) -> None:
        self.http.close()
        self.runtime.worker.close()
        self.runtime.db.dispose()


def queue_config(sagemaker: SageMakerSim, extra: str = "") -> str:
    """A queues file with the SageMaker queue `ml` (and anything in `extra`)."""
    return f"""
{extra}
[[queues]]
name = "ml"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{sagemaker.url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
"""


@dataclass
class SimQueue:
    """One provider's simulator, started, and what a bot needs to poll it as a queue."""

    provider: str
    sim: Any
    table: str  # the [[queues]] keys after name and provider
    env: dict[str, str]

    def queue(self, name: str) -> str:
        """A [[queues]] entry called `name` for this simulator (append more keys after it)."""
        return f'[[queues]]\nname = "{name}"\nprovider = "{self.provider}"\n{self.table}\n'


AWS_KEYS = 'access_key_env = "TEST_AWS_KEY"\nsecret_key_env = "TEST_AWS_SECRET"'


def sim_queue(provider: str) -> SimQueue:
    """Start `provider`'s simulator (stop it with `.sim.stop()`)."""
    if provider == "sagemaker":
        sm = SageMakerSim().start()
        return SimQueue(provider, sm, f'region = "us-east-1"\nendpoint_url = "{sm.url}"\n{AWS_KEYS}', dict(AWS_ENV))
    if provider == "batch":
        batch = BatchSim().start()
        table = f'region = "us-east-1"\njob_queue = "gpu-spot"\nendpoint_url = "{batch.url}"\n{AWS_KEYS}'
        return SimQueue(provider, batch, table, dict(AWS_ENV))
    if provider == "pai":
        pai = PaiSim().start()
        table = f'region = "cn-shanghai"\nworkspace_id = "{pai.workspace_id}"\nendpoint_url = "{pai.url}"'
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": pai.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": pai.access_key_secret,
        }
        return SimQueue(provider, pai, table, env)
    if provider == "modzy":
        modzy = ModzySim().start()
        return SimQueue(provider, modzy, f'endpoint_url = "{modzy.url}"', {"MODZY_API_KEY": modzy.api_key})
    if provider == "aitems":
        aitems = AitemsSim().start()
        table = f'service_id = "{aitems.service_id}"\nendpoint_url = "{aitems.url}"'
        return SimQueue(
            provider, aitems, table, {"NCP_ACCESS_KEY": aitems.access_key, "NCP_SECRET_KEY": aitems.secret_key}
        )
    raise ValueError(f"no simulator for provider {provider!r}")


def text_of(reply: dict[str, Any]) -> str:
    """Everything a person would read in a reply or message."""
    parts = [str(reply.get("text", ""))]
    for block in reply.get("blocks") or []:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts.extend(e.get("text", "") for e in block["elements"])
    return "\n".join(parts)
