"""`jobwatch demo`: the whole bot on simulated queues, with a local stand-in for Slack.

Everything real runs: the HTTP app verifying signed slash commands, the adapters speaking
their providers' wire formats to local simulators, poll, diff, the SQLite store and outbox,
delivery with pacing and threads, Block Kit rendering. Only Slack and the providers are fakes.
"""

from __future__ import annotations

import logging
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from bot.app import build_app
from bot.config import Settings
from bot.runtime import build_runtime, build_sources, command_client
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack, pretty
from bot.sim.slash import slash_command
from bot.web import Background, WebApp

SECRET = "demo-signing-secret"
TOKEN = "xoxb-demo"
CHANNEL = "CDEMO01"
DEMO_ENV = {"DEMO_AWS_KEY": "AKIDEMO", "DEMO_AWS_SECRET": "demo-secret-key"}


class SageMakerStory:
    """Training jobs that start, run and end (one fails, one times out) on a seeded schedule."""

    STEPS: tuple[tuple[str, str], ...] = (
        ("InProgress", "Downloading"),
        ("InProgress", "Training"),
        ("InProgress", "Uploading"),
    )

    def __init__(self, sim: SageMakerSim, rng: random.Random) -> None:
        self.sim = sim
        self.rng = rng
        self.stage: dict[str, int] = {}
        self.count = 0

    def seed(self) -> None:
        """Jobs that exist before the bot starts (the baseline: stored, not announced)."""
        for n in range(3):
            self.sim.add(f"resnet50-sweep-{n}", status="Completed", secondary="Completed")
        self.spawn()

    def spawn(self) -> None:
        self.count += 1
        name = f"bert-finetune-{self.count:03d}"
        self.sim.add(name)
        self.stage[name] = 0

    def step(self) -> None:
        """Advance every live job by one stage; start a new job now and then."""
        for name, stage in list(self.stage.items()):
            if stage < len(self.STEPS):
                status, secondary = self.STEPS[stage]
                self.sim.set(name, status, secondary)
                self.stage[name] = stage + 1
                continue
            roll = self.rng.random()
            if roll < 0.6:
                self.sim.set(name, "Completed", "Completed")
            elif roll < 0.85:
                self.sim.set(
                    name, "Failed", "Failed", reason="AlgorithmError: CUDA out of memory (GPU 0; 15.78 GiB total)"
                )
            else:
                self.sim.set(name, "Stopped", "MaxRuntimeExceeded")
            del self.stage[name]
        if len(self.stage) < 2:
            self.spawn()


def _write_config(folder: Path, sagemaker_url: str, interval: int) -> Path:
    path = folder / "jobwatch.toml"
    path.write_text(
        f"""[bot]
poll_interval = {interval}

[[queues]]
name = "ml-training"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{sagemaker_url}"
access_key_env = "DEMO_AWS_KEY"
secret_key_env = "DEMO_AWS_SECRET"
""",
        encoding="utf-8",
    )
    return path


def run_demo(*, seconds: float = 45, interval: int = 5, out: TextIO = sys.stdout, seed: int = 7) -> int:
    """Run the demo for `seconds`; returns the number of alerts Slack received."""
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text, file=out, flush=True)

    def show_reply(_path: str, payload: dict[str, Any]) -> None:
        say(pretty({"channel": "you (ephemeral reply)", **payload}))

    slack = FakeSlack(tokens={TOKEN: "TDEMO"}, on_post=lambda m: say(pretty(m)), on_response=show_reply).start()
    sagemaker = SageMakerSim().start()
    story = SageMakerStory(sagemaker, random.Random(seed))
    story.seed()
    with tempfile.TemporaryDirectory(prefix="jobwatch-demo-") as tmp:
        folder = Path(tmp)
        settings = Settings(
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{folder / 'jobwatch.db'}",
            jobwatch_config=_write_config(folder, sagemaker.url, interval),
        )
        from bot.config import load_config

        config = load_config(settings.jobwatch_config)
        runtime = build_runtime(settings, config=config, sources=build_sources(config, env=DEMO_ENV))
        app = build_app(runtime.services, client=command_client(settings), signing_secret=SECRET)
        http = Background(WebApp(app))
        base = http.url

        def command(text: str) -> None:
            say(f"\n$ /jobs {text}")
            body, headers = slash_command(
                SECRET, text, team="TDEMO", channel=CHANNEL, response_url=slack.response_url()
            )
            reply = httpx.post(base + "/slack/events", content=body, headers=headers, timeout=10)
            if reply.content:
                show_reply("", reply.json())

        say(f"jobwatch demo: fake Slack at {slack.api_url}, simulated SageMaker at {sagemaker.url}, bot at {base}")
        command("help")
        command("subscribe ml-training")
        runtime.worker.lease.renew()
        runtime.worker.poll_all()  # the baseline: existing jobs are stored, not announced
        command("list ml-training")
        scheduler = BackgroundScheduler(timezone="UTC")
        runtime.worker.schedule(scheduler)
        scheduler.add_job(story.step, "interval", seconds=interval, id="story")
        say(f"\nWatching for {seconds:.0f}s: jobs move through their lifecycle; alerts follow.\n")
        scheduler.start()
        _wait(seconds)
        scheduler.shutdown(wait=True)
        runtime.worker.deliver()
        command("queues")
        failed = next((n for n, j in sagemaker.jobs.items() if j.status == "Failed"), None)
        if failed:
            command(f"status ml-training {failed}")
            time.sleep(0.5)
        alerts = len(slack.alert_ids())
        say(
            f"\nDone: {alerts} alert(s) posted, {len(slack.updates)} thread parent(s) updated, "
            f"{slack.rejected} rejected by rate limit."
        )
        http.close()
        runtime.worker.close()
        runtime.db.dispose()
    slack.stop()
    sagemaker.stop()
    return alerts


def _wait(seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sleep(min(0.5, deadline - time.monotonic()))


def main(seconds: float) -> int:
    """Entry point for the CLI."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    return 0 if run_demo(seconds=seconds) > 0 else 1
