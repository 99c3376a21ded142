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
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from bot.blocks.buttons import CLAIM_ACTION, STOP_ACTION
from bot.core import history
from bot.core.clock import FastForward, ShiftedClock
from bot.core.config import Settings, load_config
from bot.runtime import Runtime, build_runtime, build_sources, command_client
from bot.sim.aitems import AitemsStory
from bot.sim.batch import BatchStory
from bot.sim.logs import LogsSim
from bot.sim.modzy import ModzyStory
from bot.sim.page import Names, render_page
from bot.sim.pai import PaiStory
from bot.sim.sagemaker import SageMakerSim, TrainingJob
from bot.sim.slack import FakeSlack, pretty
from bot.sim.slash import block_action, event
from bot.slack.app import build_app
from bot.web import Background, WebApp
from providers.sagemaker import console_url

SECRET = "demo-signing-secret"
TOKEN = "xoxb-demo"
CHANNEL = "CDEMO01"
OPERATOR = "UDEMO01"
ONCALL_USER = "UDEMO02"  # the person who claims a failure
ONCALL = "SDEMOONCALL"  # the Slack user group a follow-up mentions
# The demo's jobs run for seconds: its queues set low floors (`slow_floor`, `stuck_floor`, written
# into the config it writes) so that factor x percentile, not a floor of minutes, decides when one
# of them is slow or stuck.
LIMITS = history.Limits(slow_floor=30.0, stuck_floor=60.0)
FLOORS = f"slow_floor = {LIMITS.slow_floor:g}\nstuck_floor = {LIMITS.stuck_floor:g}\n"


class Story(Protocol):
    """One simulated queue: a provider simulator plus a scripted job lifecycle."""

    queue: str

    def start(self) -> None:
        """Start the simulator and create the jobs that exist before the bot starts."""

    def config(self) -> str:
        """The queue's `[[queues]]` table, pointing at the simulator."""
        ...

    def env(self) -> dict[str, str]:
        """The (fake) credentials the queue's adapter reads."""
        ...

    def step(self) -> None:
        """Move the world on: jobs start, progress, end."""

    def failed_job(self) -> str | None:
        """A job that has failed by now, to show `/jobs status` on."""
        ...

    def stop(self) -> None:
        """Stop the simulator."""


class SageMakerStory:
    """Training jobs that start, run and end (some fail, some time out) on a seeded schedule.

    One job is already training when the bot starts and fails at the first step: its alert shows
    the cause, and the log tail it wrote to the CloudWatch Logs simulator follows in its thread.
    Tonight's nightly evaluation is running when the bot starts and turns slow `slow_in` after the
    story's first step, which comes after the bot's baseline however long that took: its flag is
    news (a job already slow at the baseline never gets one).
    """

    queue = "ml-training"
    STEPS: tuple[tuple[str, str], ...] = (
        ("InProgress", "Downloading"),
        ("InProgress", "Training"),
        ("InProgress", "Uploading"),
    )

    DOOMED = "bert-finetune-000"

    def __init__(self, rng: random.Random, slow_in: timedelta = timedelta(seconds=15)) -> None:
        self.slow_in = slow_in
        self.logs = LogsSim()
        self.sim = SageMakerSim(logs=self.logs)
        self.rng = rng
        self.stage: dict[str, int] = {}
        self.count = 0
        self.lock = threading.Lock()  # step() runs on the scheduler's thread
        self.tonight: TrainingJob | None = None  # tonight's nightly evaluation, and when it turns slow
        self.threshold = timedelta(0)

    def start(self) -> None:
        self.logs.start()
        self.sim.start()
        self.seed_history()
        for n in range(3):
            self.sim.add(f"resnet50-sweep-{n}", status="Completed", secondary="Completed")
        self.sim.add(self.DOOMED)
        self.sim.set(self.DOOMED, "InProgress", "Training")
        self.spawn()

    def seed_history(self) -> None:
        """Finished runs from before the bot starts, as a real account has them: the baseline records
        them as the families' history (bot/core/history.py), so cards can say what is usual at once.

        `bert-finetune-*` runs took about as long as the demo's script takes (four steps); the
        nightly evaluations took 25 to 35 minutes, and tonight's has been running for nearly its
        threshold (1.5 x their p90, bot/core/history.py `slow_after`): it passes it `slow_in` from now."""
        now = self.sim.clock()
        for n in range(1, 9):
            job = self.sim.add(f"bert-finetune-{n:03d}", status="Completed", secondary="Completed")
            job.created = now - timedelta(hours=9 - n)
            job.ended = job.modified = job.created + timedelta(seconds=self.rng.uniform(15, 24))
        self.count = 8
        evals: list[float] = []
        for day in range(7, 0, -1):
            job = self.sim.add(
                f"nightly-eval-{now - timedelta(days=day):%Y%m%d}", status="Completed", secondary="Completed"
            )
            job.created = now - timedelta(days=day)
            job.ended = job.modified = job.created + timedelta(minutes=self.rng.uniform(25, 35))
            evals.append((job.ended - job.created).total_seconds())
        after = history.slow_after(history.usual(evals, []), LIMITS)
        self.threshold = timedelta(seconds=after.seconds if after is not None else 0)  # seven runs are enough
        self.tonight = self.sim.add(f"nightly-eval-{now:%Y%m%d}", secondary="Training")
        self._turn_slow_in(self.slow_in)

    def _turn_slow_in(self, delay: timedelta) -> None:
        """Tonight's evaluation started so long ago that it passes its threshold `delay` from now. Its
        LastModifiedTime is now, so the incremental listing shows the bot the new start: on a busy
        machine the baseline may come after the first moment set (the job is then past its
        threshold when first listed, and rightly never announced), never after this one."""
        if self.tonight is not None:
            now = self.sim.clock()
            self.tonight.created, self.tonight.modified = now - self.threshold + delay, now

    def config(self) -> str:
        return f"""
[[queues]]
name = "{self.queue}"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{self.sim.url}"
access_key_env = "DEMO_AWS_KEY"
secret_key_env = "DEMO_AWS_SECRET"
log_tail = true  # a failure's last log lines in its thread
logs_endpoint_url = "{self.logs.url}"
"""

    def env(self) -> dict[str, str]:
        return {"DEMO_AWS_KEY": "AKIDEMO", "DEMO_AWS_SECRET": "demo-secret-key"}

    def spawn(self) -> None:
        self.count += 1
        name = f"bert-finetune-{self.count:03d}"
        self.sim.add(name)
        self.stage[name] = 0

    def step(self) -> None:
        with self.lock:
            self._step()

    def next_job(self) -> str | None:
        """A job the script has yet to finish (somebody watches it from Slack)."""
        with self.lock:
            return next(iter(self.stage), None)

    def running_job(self) -> str | None:
        """A job in training, taken out of the script: somebody is about to stop it from Slack."""
        with self.lock:
            name = next((n for n, stage in self.stage.items() if stage > 0), None)
            if name is not None:
                del self.stage[name]
            return name

    def _step(self) -> None:
        if self.tonight is not None:  # the first step: the bot has its baseline, and the clock starts now
            self._turn_slow_in(self.slow_in)
            self.tonight = None
        if self.sim.jobs[self.DOOMED].status == "InProgress":
            self.sim.set(
                self.DOOMED, "Failed", "Failed", reason="AlgorithmError: CUDA out of memory (GPU 0; 15.78 GiB)"
            )
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
                self.sim.set(name, "Failed", "Failed", reason="AlgorithmError: CUDA out of memory (GPU 0; 15.78 GiB)")
            else:
                self.sim.set(name, "Stopped", "MaxRuntimeExceeded")
            del self.stage[name]
        if len(self.stage) < 2:
            self.spawn()

    def failed_job(self) -> str | None:
        return next((n for n, j in self.sim.jobs.items() if j.status == "Failed"), None)

    def stop(self) -> None:
        self.sim.stop()
        self.logs.stop()


# Every simulated provider in the demo; each story lives beside its simulator.
STORIES: list[Callable[[random.Random], Story]] = [SageMakerStory, BatchStory, ModzyStory, AitemsStory, PaiStory]


def run_demo(
    *,
    seconds: float = 45,
    interval: int = 5,
    out: TextIO = sys.stdout,
    seed: int = 7,
    pace: FastForward | None = None,
    html: Path | None = None,
) -> int:
    """Run the demo for `seconds`; returns the number of alerts Slack received. With `pace`, posts
    keep Slack's 1 per second per channel without waiting for it (the tests). With `html`, also
    writes the conversation as Slack shows it to that file (bot/sim/page.py)."""
    # Delivery rounds that outlast their 1 s interval are skipped by design; not news in a demo.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    say = _Say(out)
    slack = FakeSlack(
        tokens={TOKEN: "TDEMO"},
        on_post=lambda m: say(pretty(m)),
        on_response=lambda _path, payload: say(pretty({"channel": "you (ephemeral reply)", **payload})),
        on_complete=lambda done: say(step_done(done)),
        on_unfurl=lambda call: say(
            "\n".join(pretty({"channel": f"{call['channel']} (unfurl)", **card}) for card in call["unfurls"].values())
        ),
        monotonic=time.monotonic if pace is None else pace,
    ).start()
    rng = random.Random(seed)
    stories = [make(rng) for make in STORIES]
    for story in stories:
        if isinstance(story, SageMakerStory):  # tonight's evaluation turns slow a few polls into the demo
            story.slow_in = timedelta(seconds=interval)
        story.start()
    try:
        with tempfile.TemporaryDirectory(prefix="jobwatch-demo-") as tmp:
            demo = _Demo.start(Path(tmp), stories, slack, say, interval=interval, pace=pace)
            try:
                demo.set_up_channel()
                demo.watch(seconds)
                demo.failures()
                demo.two_hours_later()
                alerts = demo.finish()
            finally:
                demo.close()
    finally:
        for story in stories:
            story.stop()
        slack.stop()
    if html is not None:
        names = Names(channels={CHANNEL: "ml-jobs"}, users={OPERATOR: "you"})
        html.write_text(render_page(list(slack.log), names), encoding="utf-8")
        say(f"Wrote the conversation as Slack shows it to {html}")
    return alerts


def step_done(done: dict[str, Any]) -> str:
    """A workflow step's completion as the workflow's author would read it in its activity."""
    if not done["ok"]:
        return f"── workflow step failed ──\n{done['error']}"
    outputs = done["outputs"]
    shown = ", ".join(f"{k}: {outputs[k]}" for k in STEP_FIELDS if k in outputs)
    return f"── workflow step completed ──\n{shown}"


STEP_FIELDS = ("job_name", "status", "native_status", "duration", "failure_cause", "reason")


class _Say:
    """Prints one message of the transcript at a time (posts arrive from delivery threads)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self.lock:
            print(text, file=self.out, flush=True)


@dataclass
class _Demo:
    """The running bot of the demo, and the script of what a user does with it."""

    stories: list[Story]
    slack: FakeSlack
    say: _Say
    runtime: Runtime
    http: Background
    clock: ShiftedClock
    interval: int

    @classmethod
    def start(
        cls, folder: Path, stories: list[Story], slack: FakeSlack, say: _Say, *, interval: int, pace: FastForward | None
    ) -> _Demo:
        """The bot, configured with one queue per story, its store in `folder`, behind a local HTTP app."""
        config_path = folder / "jobwatch.toml"
        access = f'[access]\noperators = ["{OPERATOR}"]  # who may stop jobs from Slack\n'
        queues = "".join(s.config() + FLOORS for s in stories)
        group = f'follow_up_group = "{ONCALL}"  # who a follow-up mentions when a job has no known owner\n'
        config_path.write_text(f"[bot]\npoll_interval = {interval}\n{group}{access}" + queues)
        settings = Settings(
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{folder / 'jobwatch.db'}",
            jobwatch_config=config_path,
        )
        config = load_config(config_path)
        clock = ShiftedClock()  # the end of the demo skips ahead two hours
        env = {k: v for story in stories for k, v in story.env().items()}
        sources = build_sources(config, env=env)
        runtime = build_runtime(settings, config=config, sources=sources, clock=clock, pace=pace)
        app = build_app(runtime.services, client=command_client(settings), signing_secret=SECRET)
        http = Background(WebApp(app, signing_secret=SECRET))
        return cls(stories, slack, say, runtime, http, clock, interval)

    def command(self, text: str, *, name: str = "cmd") -> None:
        """Type `/jobs <text>` in the demo channel; print the reply (`name`: its response_url's)."""
        self.say(f"\n$ /jobs {text}")
        reply = self.slack.command(self.http.url, SECRET, text, team="TDEMO", channel=CHANNEL, user=OPERATOR, name=name)
        if reply is not None:
            self.say(pretty({"channel": "you (ephemeral reply)", **reply}))

    def event(self, inner: dict[str, Any]) -> None:
        """Slack sends an event (a workflow step runs, a link is pasted) to the bot."""
        body, headers = event(SECRET, inner, team="TDEMO")
        httpx.post(self.http.url + "/slack/events", content=body, headers=headers, timeout=10)

    def paste_link(self, story: SageMakerStory) -> None:
        """Somebody pastes the console link of a job: it unfurls into the job's card."""
        job = story.failed_job()
        if job is None:
            return
        link = console_url("us-east-1", job)
        self.say(f"\nSomebody pastes a console link in the channel: {link}")
        before = len(self.slack.unfurls)
        self.event(self.slack.link_shared([link], channel=CHANNEL, user=OPERATOR))
        deadline = time.monotonic() + 5
        while len(self.slack.unfurls) == before and time.monotonic() < deadline:
            time.sleep(0.05)

    def answered(self, name: str) -> dict[str, Any]:
        """The reply posted to the response_url `name` (waits a little for it), or {}."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for got, payload in self.slack.responses:
                if got == name:
                    return payload
            time.sleep(0.05)
        return {}

    def press(self, message: dict[str, Any], action_id: str, *, user: str = OPERATOR, says: str = "") -> bool:
        """Press the button `action_id` of `message` (after Slack's confirmation, if it has one) as
        `user`; False when the message has no such button."""
        found = [
            element
            for block in message.get("blocks") or []
            for element in block.get("elements") or []
            if isinstance(element, dict) and element.get("action_id") == action_id
        ]
        if not found:
            return False
        label = found[0]["text"]["text"]
        self.say(f"\n[{user} presses {label}]" + (f" {says}" if says else ""))
        body, headers = block_action(
            SECRET,
            action_id=action_id,
            value=str(found[0].get("value", "")),
            team="TDEMO",
            channel=CHANNEL,
            user=user,
            response_url=self.slack.response_url(f"press-{action_id}-{user}"),
        )
        httpx.post(self.http.url + "/slack/events", content=body, headers=headers, timeout=10)
        return True

    def set_up_channel(self) -> None:
        """Subscribe the channel to every queue (one in its quiet hours, one with a daily digest),
        then the baseline poll: existing jobs are stored, not announced."""
        queues = ", ".join(s.queue for s in self.stories)
        self.say(f"jobwatch demo: fake Slack at {self.slack.api_url}, bot at {self.http.url}, queues: {queues}")
        self.command("help")
        for story in self.stories:
            self.command(f"subscribe {story.queue}")
        started = self.clock()
        hushed = self.stories[2].queue
        window = f"{started - timedelta(hours=1):%H:%M}-{started + timedelta(hours=1):%H:%M}"
        self.say(f"\n{hushed} is in its quiet hours for the demo: only its failures post until they end.")
        self.command(f"subscribe {hushed} --quiet {window} --quiet-tz UTC")
        self.command(f"digest {self.stories[0].queue} daily {started + timedelta(hours=1):%H:%M} --tz UTC")
        self.command(f"subscribe {self.stories[0].queue} --follow-up 30m")
        self.runtime.worker.renew()
        self.runtime.worker.poll_all()
        self.command(f"list {self.stories[0].queue}")
        sagemaker = next(s for s in self.stories if isinstance(s, SageMakerStory))
        watched = sagemaker.next_job()
        if watched is not None:  # a direct message comes when it ends
            self.command(f"watch {sagemaker.queue} {watched}")
        doomed = SageMakerStory.DOOMED
        self.say(
            f'\nA Workflow Builder workflow "Retrain when training ends" reaches its step Wait for job to finish '
            f"({self.stories[0].queue}, {doomed}): it completes when the job ends, and the workflow branches "
            "on its status."
        )
        self.event(
            self.slack.function_executed("wait_for_job", {"queue": self.stories[0].queue, "job": doomed}, team="TDEMO")
        )

    def watch(self, seconds: float) -> None:
        """The worker's own scheduler for `seconds` while the jobs move; then someone stops a runaway job."""
        scheduler = BackgroundScheduler(timezone="UTC")
        self.runtime.worker.schedule(scheduler)
        for story in self.stories:
            scheduler.add_job(story.step, "interval", seconds=self.interval, id=f"story:{story.queue}")
        self.say(f"\nWatching for {seconds:.0f}s: jobs move through their lifecycle; alerts follow.\n")
        scheduler.start()
        _wait(seconds)
        sagemaker = next(s for s in self.stories if isinstance(s, SageMakerStory))
        runaway = sagemaker.running_job()
        if runaway is not None:
            self.say("\nSomebody stops a runaway job from Slack; Stopping and Stopped follow in its thread.")
            self.command(f"stop {sagemaker.queue} {runaway} runaway: loss is NaN since step 1200", name="stop")
            self.press(self.answered("stop"), STOP_ACTION, says="and confirms in Slack's dialog")
            _wait(3 * self.interval)
        self.paste_link(sagemaker)
        scheduler.shutdown(wait=True)
        self.runtime.worker.log_tails()  # a failure of the last poll gets its tail before the last delivery
        self.runtime.worker.deliver()

    def _round(self) -> None:
        """One poll of every queue and one delivery round (the scheduler is stopped by now)."""
        self.runtime.worker.renew()
        self.runtime.worker.poll_all()
        self.runtime.worker.deliver()

    def _card(self, name: str) -> dict[str, Any]:
        """The card of job `name` in the demo channel as it looks now (its last edit, else as posted)."""
        parents = [p for p in self.slack.posts(CHANNEL) if not p.get("thread_ts") and name in str(p.get("text", ""))]
        if not parents:
            return {}
        edits = [u for u in self.slack.updates if u["ts"] == parents[-1]["ts"]]
        return edits[-1] if edits else parents[-1]

    def failures(self) -> None:
        """Failures that get handled: a nightly job fails twice (its card counts the streak) and the
        second failure is claimed (every card of it says so); a backfill fails and nobody claims it
        (it gets a follow-up later); the nightly job recovers; a pretraining job declares a runtime
        limit (warned about later)."""
        sagemaker = next(s for s in self.stories if isinstance(s, SageMakerStory))
        sim = sagemaker.sim
        self.say("\nA nightly ETL job fails two nights in a row; its card counts the streak.")
        for night in ("20261201", "20261202"):
            sim.add(f"nightly-etl-{night}", secondary="Training")
            self._round()
            sim.set(f"nightly-etl-{night}", "Failed", "Failed", reason="ClientError: input table is empty")
            self._round()
        self.say("\nA backfill fails too; nobody will claim it.")
        sim.add("feature-backfill-7", secondary="Training")
        self._round()
        sim.set("feature-backfill-7", "Failed", "Failed", reason="AlgorithmError: KeyError: 'user_id'")
        self._round()
        if self.press(self._card("nightly-etl-20261202"), CLAIM_ACTION, user=ONCALL_USER, says="(I'm on it)"):
            time.sleep(0.5)
            self.runtime.worker.deliver()  # the claim's note; the card is edited in place
            self.say(
                "The card, edited in place:\n" + pretty({"channel": CHANNEL, **self._card("nightly-etl-20261202")})
            )
        self.say("\nThe next night's run succeeds: a recovery, told even where only failures are.")
        sim.add("nightly-etl-20261203", secondary="Training")
        self._round()
        sim.set("nightly-etl-20261203", "Completed", "Completed")
        self._round()
        self.say("\nA pretraining job starts with a runtime limit of 2 h 18 (StoppingCondition.MaxRuntimeInSeconds).")
        job = sim.add("llm-pretrain-70b", secondary="Training")
        job.max_runtime = int(2.3 * 3600)
        self._round()

    def two_hours_later(self) -> None:
        """The quiet hours end and the daily digest is due: both go out; the pretraining job has used
        80 % of its limit and the unclaimed backfill failure gets its follow-up."""
        self.say(
            "\nTwo hours later: the quiet hours have ended, the daily digest is due, the pretraining job"
            " is past 80 % of its limit and the backfill failure is still unclaimed."
        )
        self.clock.offset = timedelta(hours=2)
        self.runtime.worker.renew()
        self.runtime.worker.poll_all()
        self.runtime.worker.digests()
        for _ in range(3):  # the digests, then their thread replies
            self.runtime.worker.deliver()
        self.command("queues")
        for story in self.stories:
            failed = story.failed_job()
            if failed:
                self.command(f"status {story.queue} {failed}")
                time.sleep(0.5)
                break

    def finish(self) -> int:
        """Open the App Home; say what Slack received; returns the number of alerts."""
        self.slack.open_home(self.http.url, SECRET, team="TDEMO", user=OPERATOR)
        alerts = len(self.slack.alert_ids())
        self.say(
            f"\nDone: {alerts} alert(s) posted, {len(self.slack.updates)} thread parent(s) updated, "
            f"{self.slack.rejected} rejected by rate limit."
        )
        return alerts

    def close(self) -> None:
        """Stop the HTTP app, the worker and the store."""
        self.http.close()
        self.runtime.worker.close()
        self.runtime.db.dispose()


def _wait(seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sleep(min(0.5, deadline - time.monotonic()))


def main(seconds: float, html: Path | None = None, show: bool = False) -> int:
    """Entry point for the CLI: `show` opens the page (`html`, default jobwatch-demo.html) in a browser."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if show and html is None:
        html = Path("jobwatch-demo.html")
    alerts = run_demo(seconds=seconds, html=html)
    if show and html is not None:
        webbrowser.open(html.resolve().as_uri())
    return 0 if alerts > 0 else 1
