"""jobwatch scale bench: poll-cycle cost, slash-command ack latency, detection latency.

Run from the repository root: `python bench/run.py` (or `--quick`). Everything runs on
127.0.0.1 against the simulators in `bot/sim`; no network, no Slack credentials.

(a) Poll cycle through the real pipeline (adapter over HTTP -> poll -> diff -> enqueue commit
    into SQLite), Modzy at 1k/10k/100k tracked jobs, 3% live, 1% changed. The simulator runs in
    its own process; each size is measured in a fresh process that opens a store seeded by a
    real baseline poll, runs one quiet warm-up cycle, then the measured cycle. Requests are
    counted by the simulator and compared with a naive poller (in this file) that pages the
    whole listing. At 10k, steady-cycle requests for each provider simulator too, and the AiTEMS
    full listing (its baseline, and hourly) at the adapter's page of 1000 vs the former 100.
    Owners from tags: the extra SageMaker ListTags / Batch DescribeServiceJob requests at 10k jobs
    (3% live) with `owner_from = "tag:owner"`, at the baseline, in a cycle with 1% new jobs, in a
    quiet cycle and after a restart (bench and settings compared in one run, same simulator).
    Runtime limits: the extra SageMaker DescribeTrainingJob / Batch DescribeServiceJob requests at
    10k jobs (3% live, every job declaring a limit), in the same phases.
(b) `/jobs` ack latency: 20 concurrent signed `list`/`status` commands over HTTP to the real
    WSGI app, while every provider simulator answers each request after 2.5 s (a delay wrapped
    around the simulator's HTTP handler) and the worker polls in the background; then a burst
    of 80, then rounds of 25 `status` + 25 `list` sent by 10 senders (each sends its next once
    acked), each round after the previous one's status replies came back.
(c) Detection latency: the real worker scheduler (5 s interval), Modzy jobs changed
    at random moments, time from change to FakeSlack's chat.postMessage. With push
    (docs/push.md), the queues polled only every 5 min: SageMaker jobs whose change is put on
    moto's EventBridge (a rule to an SQS queue the worker long-polls), and Modzy jobs whose end
    the simulator posts to the Job Completion webhook.
(d) Memory: peak RSS (VmHWM) of one `jobwatch serve` process polling five queues, one per
    provider, of 10k jobs each (3% live) on a 5 s interval, one subscribed channel per queue: the
    five baselines, then steady cycles in which 1% of each queue's jobs end (their alerts are
    folded into digests and posted). Simulators and FakeSlack run in another process.
(e) Delivery, head of line (`bench/delivery.py --slow`): 20 channels, one that Slack answers in
    4 s a post (12 alerts queued), one with a backlog of 500, and alerts committed to the 18 others
    at random moments for 30 s while the dispatcher ticks every second: the healthy channels'
    alerts/s and commit -> post latency, the backlog's rate. One row, "pass" only when every
    figure in it is within its bound.
(f) Quiet by default at scale (bench/quiet.py): five queues of 10k jobs (3% live for two days, old
    queued and running jobs far past their thresholds, a history of succeeded runs behind every
    family) through one real `jobwatch serve` on a 5 s interval; posts during the baselines and
    the poll after them, flags about jobs already past when first listed, then ~50 scripted changes
    over 60 s (ends, new jobs, jobs that cross the slow or stuck threshold after being listed):
    change (or crossing) -> post p50/p95, posts by kind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's bot/ and providers/, whatever the venv has installed

import httpx  # noqa: E402

from bench.serve import SECRET, TEAM, TOKEN, Serve, subscriptions  # noqa: E402
from bot.core.config import Settings, load_config  # noqa: E402
from bot.core.history import KEEP  # noqa: E402
from bot.demo import STORIES, Story  # noqa: E402
from bot.pipeline.limits import MAX_READS as MAX_LIMIT_READS  # noqa: E402
from bot.pipeline.tags import MAX_TAG_READS  # noqa: E402
from bot.runtime import Runtime, build_runtime, build_sources, command_client  # noqa: E402
from bot.sim.http import Request, Response  # noqa: E402
from bot.sim.modzy import ModzySim  # noqa: E402
from bot.sim.slack import FakeSlack  # noqa: E402
from bot.sim.slash import slash_command  # noqa: E402
from bot.slack.app import build_app  # noqa: E402
from bot.store.tables import Subscription  # noqa: E402
from bot.web import Background, WebApp  # noqa: E402

LIVE_SHARE = 0.03
CHANGED_SHARE = 0.01
PAGE = 100  # the naive poller's page size; every adapter's too except AiTEMS's (1000)
MODZY_KEY = "modzy-key.secret"


# -- a whole bot on the simulators (mirrors tests/harness.py) -----------------------------------


class BenchBot:
    """The real store, worker, Bolt app and WSGI server, pointed at simulators and FakeSlack."""

    def __init__(
        self, tmp: Path, slack: FakeSlack, config_text: str, env: dict[str, str], *, interval: float = 60
    ) -> None:
        path = tmp / "jobwatch.toml"
        path.write_text(config_text)
        self.settings = Settings(
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{tmp / 'bot.db'}",
            jobwatch_config=path,
            jobwatch_poll_interval=interval,
        )
        config = load_config(path)
        self.runtime: Runtime = build_runtime(self.settings, config=config, sources=build_sources(config, env=env))
        app = build_app(self.runtime.services, client=command_client(self.settings), signing_secret=SECRET)
        web = WebApp(app, signing_secret=SECRET, webhooks=self.runtime.webhooks)
        self.http = Background(web, threads=16)  # as bot.web.serve runs it in production
        self.slack = slack

    def subscribe(self, queue: str, channel: str = "C0001") -> None:
        with self.runtime.db.write() as session:
            session.add(
                Subscription(
                    team_id=TEAM, channel_id=channel, queue=queue, created_by="U0001", created_at=datetime.now(UTC)
                )
            )

    def close(self) -> None:
        self.http.close()
        self.runtime.worker.close()
        self.runtime.db.dispose()


def pipeline_runtime(db_path: Path, config_text: str, env: dict[str, str]) -> Runtime:
    """Store + adapters + worker without the HTTP side (what a poll cycle touches)."""
    path = db_path.with_suffix(".toml")
    path.write_text(config_text)
    settings = Settings(
        slack_bot_token=TOKEN,
        slack_api_url="http://127.0.0.1:9/api/",  # never called: nothing is delivered here
        database_url=f"sqlite:///{db_path}",
        jobwatch_config=path,
    )
    return build_runtime(settings, config=load_config(path), sources=build_sources(load_config(path), env=env))


def modzy_config(url: str) -> str:
    return f'[[queues]]\nname = "inference"\nprovider = "modzy"\nendpoint_url = "{url}"\napi_key_env = "BENCH_MODZY"\n'


def peak_rss_kb() -> int:
    """This process's peak RSS in KiB: VmHWM, else ru_maxrss.

    ru_maxrss is not used first because Linux carries the parent's high-water mark into a
    child across fork+exec (exec_mmap folds the old mm's hiwater into signal->maxrss), so a
    child of a big parent reports the parent's peak; VmHWM belongs to the new image only.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


# -- child processes speak one JSON line per command over stdin/stdout ------------------------


class Child:
    """`python bench/run.py --child <role> ...` driven line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.proc.args!r} died (rc={self.proc.wait()})")
        return dict(json.loads(line))

    def close(self) -> None:
        if self.proc.poll() is None:
            with suppress(RuntimeError, BrokenPipeError):
                self.ask({"op": "stop"})
        self.proc.wait(timeout=30)


def serve_commands(handler: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Child side: answer each stdin line with one stdout line until `stop`."""
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "stop":
            print(json.dumps({"ok": True}), flush=True)
            return
        print(json.dumps(handler(command) or {"ok": True}), flush=True)


def child_modzy_host(n: int) -> None:
    """A Modzy tenant with n jobs: 3% live, the rest ended two days ago; changes on request."""
    sim = ModzySim(api_key=MODZY_KEY)
    rng = random.Random(n)
    old = datetime.now(UTC) - timedelta(days=2)
    live: list[str] = []
    for i in range(n):
        created = old - timedelta(seconds=n - i)
        is_live = rng.random() < LIVE_SHARE
        job = sim.add(rng.choice(["ocr", "sentiment-analysis", "object-detection"]), when=created)
        if is_live:
            job.status = rng.choice(["SUBMITTED", "IN_PROGRESS"])
            live.append(job.ident)
        else:
            job.status, job.completed = "COMPLETED", job.total
    sim.start()

    def handle(command: dict[str, Any]) -> dict[str, Any] | None:
        if command["op"] == "url":
            return {"url": sim.url, "live": len(live)}
        if command["op"] == "change":  # live jobs move on: queued -> running, running -> completed
            count = int(command["count"])
            picked = rng.sample(live, min(count, len(live)))
            for ident in picked:
                sim.set(ident, "IN_PROGRESS" if sim.jobs[ident].status == "SUBMITTED" else "COMPLETED", completed=0)
            return {"changed": len(picked)}
        if command["op"] == "calls":
            with sim.lock:
                calls = dict(sim.calls)
                sim.calls.clear()
            return {"calls": calls}
        return None

    serve_commands(handle)
    sim.stop()


def child_cycle(db: str, url: str) -> None:
    """A fresh process: one quiet warm-up cycle, then on `go` the measured steady cycle."""
    rt = pipeline_runtime(Path(db), modzy_config(url), {"BENCH_MODZY": MODZY_KEY})
    worker = rt.worker
    setup_kb = peak_rss_kb()  # imports and the runtime

    def handle(command: dict[str, Any]) -> dict[str, Any] | None:
        if command["op"] == "warm":
            worker.renew()
            enqueued = worker.poll("inference")
            return {"enqueued": enqueued, "setup_kb": setup_kb, "rss_kb": peak_rss_kb()}
        if command["op"] == "go":
            wall, cpu = time.perf_counter(), time.process_time()
            enqueued = worker.poll("inference")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rss = peak_rss_kb()
            normal = worker._normal("inference")  # what the worker keeps of the history between cycles
            samples = sum(len(w) for w in normal.runs.values()) + len(normal.waits)
            kept = {"samples": samples, "families": len(normal.runs), "names": len(normal.names)}
            return {"wall": wall, "cpu": cpu, "rss_kb": rss, "enqueued": enqueued, "kept": kept}
        if command["op"] == "profile":
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile(
                time.process_time
            )  # CPU time: wall time on a shared box measures the neighbours
            profiler.enable()
            worker.poll("inference")
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(20)
            stats.sort_stats("cumulative").print_stats(r"bot|providers", 20)
            return {"profile": out.getvalue()}
        return None

    serve_commands(handle)
    worker.close()
    rt.db.dispose()


def child_slash(url: str) -> None:
    """Slack's side of (b), in its own process so its CPU does not share the bot's GIL."""
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=100))
    pool = ThreadPoolExecutor(max_workers=80)

    def send(text: str, hook: str) -> float:
        body, headers = slash_command(SECRET, text, response_url=hook)
        start = time.perf_counter()
        response = client.post(url, content=body, headers=headers)
        took = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        return took

    def handle(command: dict[str, Any]) -> dict[str, Any] | None:
        if command["op"] == "send":
            return {"latencies": list(pool.map(send, command["texts"], command["hooks"]))}
        if command["op"] == "stream":  # `at_once` senders, each sending its next command once acked
            with ThreadPoolExecutor(max_workers=command["at_once"]) as senders:
                return {"latencies": list(senders.map(send, command["texts"], command["hooks"]))}
        return None

    serve_commands(handle)
    pool.shutdown()
    client.close()


# -- (a) poll cycle ---------------------------------------------------------------------------


def naive_modzy(url: str) -> int:
    """A poller without a watermark: page through the whole history every cycle; returns requests."""
    requests = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"ApiKey {MODZY_KEY}"}, timeout=60) as client:
        for page in range(1, 1_000_000):
            response = client.get("/api/jobs/history", params={"page": page, "per-page": PAGE, "sort-by": "createdAt"})
            response.raise_for_status()
            requests += 1
            if len(response.json()) < PAGE:
                return requests
    return requests


@dataclass
class Row:
    metric: str
    measured: str
    target: str
    ok: bool | None  # None: informational

    @property
    def verdict(self) -> str:
        return "info" if self.ok is None else "pass" if self.ok else "**FAIL**"


def scale_modzy(n: int, tmp: Path, *, profile: bool) -> tuple[list[Row], str]:
    host = Child("modzy-host", str(n))
    try:
        info = host.ask({"op": "url"})
        url = str(info["url"])
        db = tmp / f"modzy-{n}.db"
        rt = pipeline_runtime(db, modzy_config(url), {"BENCH_MODZY": MODZY_KEY})
        with rt.db.write() as session:
            session.add(
                Subscription(
                    team_id=TEAM,
                    channel_id="C0001",
                    queue="inference",
                    created_by="U0001",
                    created_at=datetime.now(UTC),
                )
            )
        rt.worker.renew()
        base_wall, base_cpu = time.perf_counter(), time.process_time()
        rt.worker.poll("inference")  # the baseline, through the real pipeline
        base_wall, base_cpu = time.perf_counter() - base_wall, time.process_time() - base_cpu
        rt.worker.close()
        rt.db.dispose()
        host.ask({"op": "calls"})
        naive = naive_modzy(url)
        host.ask({"op": "calls"})
        child = Child("cycle", str(db), url)
        try:
            warm = child.ask({"op": "warm"})
            host.ask({"op": "calls"})
            changed = int(host.ask({"op": "change", "count": round(n * CHANGED_SHARE)})["changed"])
            got = child.ask({"op": "go"})
            calls = sum(host.ask({"op": "calls"})["calls"].values())
            profile_text = ""
            if profile:
                host.ask({"op": "change", "count": round(n * CHANGED_SHARE)})
                profile_text = str(child.ask({"op": "profile"})["profile"])
        finally:
            child.close()
    finally:
        host.close()
    size = f"{n // 1000}k"
    with sqlite3.connect(db) as conn:  # what keeping history costs in rows (bot/core/history.py)
        history_rows, families = conn.execute("SELECT count(*), count(DISTINCT family) FROM run_history").fetchone()
    cpu, wall, rss_mb = float(got["cpu"]), float(got["wall"]), int(got["rss_kb"]) / 1024
    ratio = naive / calls if calls else float("inf")
    big = n >= 100_000
    rows = [
        Row(
            f"(a) Modzy {size}: baseline poll CPU / wall (adapter, diff, snapshot commit)",
            f"{base_cpu * 1000:.0f} ms / {base_wall * 1000:.0f} ms",
            "—",
            None,
        ),
        Row(
            f"(a) Modzy {size} jobs, {changed} changed: cycle CPU / wall",
            f"{cpu * 1000:.0f} ms / {wall * 1000:.0f} ms ({got['enqueued']} alerts queued)",
            "< 500 ms CPU" if big else "—",
            cpu < 0.5 if big else None,
        ),
        Row(
            f"(a) Modzy {size}: peak RSS of the cycle process",
            f"{rss_mb:.0f} MB (after start-up {int(warm['setup_kb']) / 1024:.0f} MB, after warm-up cycle"
            f" {int(warm['rss_kb']) / 1024:.0f} MB)",
            "< 150 MB" if big else "—",
            rss_mb < 150 if big else None,
        ),
        Row(
            f"(a) Modzy {size}: history kept — run_history rows (families); the worker's windows between cycles",
            f"{history_rows} ({families}); {got['kept']['samples']} samples of {got['kept']['families']} families,"
            f" {got['kept']['names']} names → family cached",
            f"≤ {KEEP} per family",
            history_rows <= KEEP * max(families, 1),
        ),
        Row(
            f"(a) Modzy {size}: requests per steady cycle vs naive",
            f"{calls} vs {naive} ({ratio:.0f}× fewer)",
            "≥ 50× fewer" if n == 10_000 else "—",
            ratio >= 50 if n == 10_000 else None,
        ),
    ]
    return rows, profile_text


# -- (a') 10k jobs, 3% live, every provider: requests per steady cycle --------------------------


def populate(story: Story, n: int, rng: random.Random) -> list[str]:
    """n jobs of history in the story's simulator, 3% live; returns the live ids (for changes)."""
    sim: Any = story.sim  # type: ignore[attr-defined]
    old = datetime.now(UTC) - timedelta(days=2)
    live: list[str] = []
    name = type(story).__name__
    with_live = [rng.random() < LIVE_SHARE for _ in range(n)]
    for i, is_live in enumerate(with_live):
        when = old - timedelta(seconds=n - i)
        if name == "SageMakerStory":
            job = sim.add(f"train-{i:06d}", status="InProgress" if is_live else "Completed",
                          secondary="Training" if is_live else "Completed")  # fmt: skip
            job.created = job.modified = when
            (live if is_live else []).append(job.name)
        elif name == "BatchStory":
            job = sim.add(
                f"svc-{i:06d}", "RUNNING" if is_live else "SUCCEEDED", created_ms=int(when.timestamp() * 1000)
            )
            (live if is_live else []).append(job.job_id)
        elif name == "ModzyStory":
            job = sim.add("ocr", "IN_PROGRESS" if is_live else "COMPLETED", when=when)
            (live if is_live else []).append(job.ident)
        elif name == "PaiStory":
            run = sim.add(f"run-{i:06d}", "Running" if is_live else "Succeed", when=when)
            (live if is_live else []).append(run.source_id)
        elif name == "AitemsStory":
            # A train's type has one "recent" train; only that one can still be learning.
            kinds = ("personalRecommend", "relatedItem", "pop")
            train = sim.add(kinds[i % 3], "learning" if i >= n - 3 else "completed")
            if i >= n - 3:
                live.append(train.ident)
    return live


def change(story: Story, ident: str) -> None:
    sim: Any = story.sim  # type: ignore[attr-defined]
    name = type(story).__name__
    if name == "SageMakerStory":
        sim.set(ident, "Completed", "Completed")
    elif name == "BatchStory":
        sim.set(ident, "SUCCEEDED")
    elif name == "ModzyStory":
        sim.set(ident, "COMPLETED")
    elif name == "PaiStory":
        sim.set(ident, "Succeed")
    elif name == "AitemsStory":
        sim.set(ident, "completed")


def sim_calls(story: Story) -> int:
    sim: Any = story.sim  # type: ignore[attr-defined]
    with sim.lock:
        if hasattr(sim, "calls"):
            total = sum(sim.calls.values())
            sim.calls.clear()
        else:
            total = len(sim.requests)
            sim.requests.clear()
    return int(total)


def floor_of(story: Story, live: int) -> int:
    """The fewest requests that see every live job each cycle (docs/architecture.md §Performance targets)."""
    name = type(story).__name__
    if name == "BatchStory":
        from providers.aws_batch import LIVE_STATUSES as BATCH_LIVE

        # all live jobs sit in RUNNING here: that listing pages, the others answer empty
        return len(BATCH_LIVE) - 1 + max(1, math.ceil(live / PAGE))
    if name == "PaiStory":
        from providers.alibaba_pai import TRAINING_LIVE

        return len(TRAINING_LIVE) - 1 + max(1, math.ceil(live / PAGE)) + 1
    return 1  # SageMaker / Modzy: one incremental listing page; AiTEMS: one isRecent request


def providers_10k(n: int, tmp: Path) -> list[Row]:
    rows: list[Row] = []
    for make in STORIES:
        rng = random.Random(7)
        story = make(rng)
        story.start()
        name = type(story).__name__.removesuffix("Story")
        try:
            sim: Any = story.sim  # type: ignore[attr-defined]
            with sim.lock:  # drop the story's own demo jobs: this is a history of n
                for attr in ("jobs", "runs", "trains"):
                    if isinstance(getattr(sim, attr, None), dict):
                        getattr(sim, attr).clear()
            live = populate(story, n, rng)
            db = tmp / f"providers-{name}.db"
            rt = pipeline_runtime(db, story.config(), story.env())
            worker = rt.worker
            worker.renew()
            worker.poll(story.queue)  # baseline
            worker.poll(story.queue)  # first incremental cycle (caches warm)
            sim_calls(story)
            worker.poll(story.queue)
            quiet = sim_calls(story)
            for ident in rng.sample(live, min(len(live), round(n * CHANGED_SHARE))):
                change(story, ident)
            sim_calls(story)
            worker.poll(story.queue)
            changed = sim_calls(story)
            worker.close()
            rt.db.dispose()
        finally:
            story.stop()
        naive = math.ceil(n / PAGE)
        floor = floor_of(story, len(live))
        moved = min(len(live), round(n * CHANGED_SHARE))
        bound = 1.5 * floor + 1
        # Batch and PAI: a live job that left the live statuses is in no listing of them, and the
        # API looks such jobs up one at a time (left_lookups): the bound of a cycle in which
        # `moved` jobs ended adds one request per job to the listings' bound.
        changed_bound = bound + left_lookups(story, moved)
        strict = name in ("SageMaker", "Aitems", "Modzy")
        ok = quiet <= bound and changed <= changed_bound  # every figure of the row within its bound
        if strict:
            ok = ok and naive / max(quiet, 1) >= 50 and naive / max(changed, 1) >= 50
        note = " (AiTEMS: one live train per type, 3 live)" if name == "Aitems" else f" ({len(live)} live)"
        target = f"quiet ≤ 1.5×floor+1 = {bound:g}; changed ≤ {changed_bound:g}" + (
            f" (+{changed_bound - bound:g}: one lookup per ended job)" if changed_bound > bound else ""
        )
        rows.append(
            Row(
                f"(a) {name} 10k jobs{note}: requests per steady cycle",
                f"quiet {quiet}, 1% changed {changed}; naive {naive}, floor {floor}",
                ("both ≥ 50× fewer than naive; " if strict else "") + target,
                ok,
            )
        )
    return rows


def left_lookups(story: Story, ended: int) -> int:
    """Requests that no listing can save when `ended` live jobs of the history end between two polls.

    AWS Batch: a service job that left the live statuses shows only in a listing of every status
    (newest first, by creation) or through DescribeServiceJob, which takes one jobId (botocore model
    batch 2016-08-10; there is no multi-job describe for service jobs, unlike DescribeJobs for
    container jobs). PAI TrainingService: ListTrainingJobs filters by one Status or one
    TrainingJobId, and GetTrainingJob reads one job (paistudio 2022-01-12); DLC jobs are read 50 at
    a time by `JobIds`. When the ended jobs were created among thousands of older ones, as here, the
    listing finds about one of them per page, so the adapter stops it after one page and reads each.
    SageMaker, Modzy and AiTEMS list by modification time or recency: nothing to add.
    """
    name = type(story).__name__
    return ended + 1 if name in ("BatchStory", "PaiStory") else 0  # +1: the listing's page that did not pay


def counted_poll(story: Story, rt: Runtime) -> tuple[int, float]:
    """One poll of the story's queue: (requests the simulator answered, wall seconds)."""
    sim_calls(story)
    started = time.perf_counter()
    rt.worker.poll(story.queue)
    return sim_calls(story), time.perf_counter() - started


def aws_stories(n: int, *, seed: int) -> Iterator[tuple[str, Story, list[str]]]:
    """The SageMaker and the Batch story in turn, started, their simulator holding n jobs (3% live,
    `populate`): (name, story, live ids). The caller stops each story."""
    for make in STORIES:
        name = make.__name__.removesuffix("Story")
        if name not in ("SageMaker", "Batch"):
            continue
        rng = random.Random(seed)
        story = make(rng)
        story.start()
        sim: Any = story.sim  # type: ignore[attr-defined]
        with sim.lock:
            sim.jobs.clear()
        yield name, story, populate(story, n, rng)


def owner_tags_10k(n: int, tmp: Path) -> list[Row]:
    """Owners from tags (`owner_from = "tag:owner"`) on SageMaker and Batch at n jobs (3% live, every
    job tagged): provider requests of the baseline, of a cycle in which 1% new jobs appear, of a
    quiet cycle and of the first cycle after a restart, with and without the setting, both bots
    polling the same simulator in turn."""
    rows: list[Row] = []
    for name, story, live in aws_stories(n, seed=11):
        sim: Any = story.sim  # type: ignore[attr-defined]
        try:
            with sim.lock:
                for i, job in enumerate(sim.jobs.values()):
                    job.tags = {"owner": f"user{i % 50}", "team": "ml"}
            plain = story.config()
            tagged = plain.rstrip() + '\nowner_from = "tag:owner"\n'
            bots = {
                "without": pipeline_runtime(tmp / f"tags-{name}-without.db", plain, story.env()),
                "with": pipeline_runtime(tmp / f"tags-{name}-with.db", tagged, story.env()),
            }
            cost: dict[tuple[str, str], int] = {}
            wall: dict[str, float] = {}
            for key, rt in bots.items():
                rt.worker.renew()
                cost[("baseline", key)], _ = counted_poll(story, rt)
                cost[("next", key)], _ = counted_poll(story, rt)  # live jobs past the baseline's reads
            new = round(n * CHANGED_SHARE)
            for i in range(new):
                if name == "SageMaker":
                    sim.add(f"new-{i:04d}", status="InProgress", secondary="Training", tags={"owner": "alice"})
                else:
                    sim.add(f"new-{i:04d}", "RUNNING", tags={"owner": "alice"})
            for key, rt in bots.items():
                cost[("new", key)], wall[key] = counted_poll(story, rt)
            for key, rt in bots.items():
                cost[("quiet", key)], _ = counted_poll(story, rt)
            bots["with"].worker.close()
            bots["with"].db.dispose()
            bots["with"] = pipeline_runtime(tmp / f"tags-{name}-with.db", tagged, story.env())
            bots["with"].worker.renew()
            for key, rt in bots.items():
                cost[("restart", key)], _ = counted_poll(story, rt)
            for rt in bots.values():
                rt.worker.close()
                rt.db.dispose()
        finally:
            story.stop()
        extra = {w: cost[(w, "with")] - cost[(w, "without")] for w in ("baseline", "next", "new", "quiet", "restart")}
        ok = (
            extra["baseline"] == min(len(live), MAX_TAG_READS)
            and extra["baseline"] + extra["next"] == len(live)
            and (extra["new"], extra["quiet"], extra["restart"]) == (new, 0, 0)
        )
        if name == "Batch":  # the tag read reuses the runtime-limit read's DescribeServiceJob: nothing extra
            ok = all(v == 0 for v in extra.values())
        rows.append(
            Row(
                f"(a) {name} 10k jobs ({len(live)} live), owners from tags: provider requests with / without",
                f"baseline {cost[('baseline', 'with')]} / {cost[('baseline', 'without')]} (+{extra['baseline']}, "
                f"next cycle +{extra['next']}); cycle with {new} new jobs {cost[('new', 'with')]} / "
                f"{cost[('new', 'without')]} (+{extra['new']}, wall {wall['with'] * 1000:.0f} / "
                f"{wall['without'] * 1000:.0f} ms); quiet +{extra['quiet']}; after a restart +{extra['restart']}",
                "extra = 0: the DescribeServiceJob of the runtime-limit read answers the tags too"
                if name == "Batch"
                else f"extra = 1 per live job from the baseline on (≤ {MAX_TAG_READS} a cycle), 1 per new job, "
                "0 otherwise",
                ok,
            )
        )
    return rows


def runtime_limits_10k(n: int, tmp: Path) -> list[Row]:
    """Runtime limits (bot/pipeline/limits.py) on SageMaker and Batch at n jobs (3% live, every job
    declaring one): the DescribeTrainingJob / DescribeServiceJob requests of the baseline, of the next
    cycle, of a cycle in which 1% new jobs appear, of a quiet cycle and of the first cycle after a
    restart. PAI-DLC and Modzy read the limit from the listing they already make: no request."""
    rows: list[Row] = []
    for name, story, live in aws_stories(n, seed=13):
        sim: Any = story.sim  # type: ignore[attr-defined]
        try:
            with sim.lock:
                for job in sim.jobs.values():
                    if name == "SageMaker":
                        job.max_runtime = 86_400
                    else:
                        job.timeout_s = 86_400
            db = tmp / f"limits-{name}.db"
            rt = pipeline_runtime(db, story.config(), story.env())
            rt.worker.renew()
            cost: dict[str, int] = {}
            cost["baseline"] = describes(story, rt)
            cost["next"] = describes(story, rt)
            new = round(n * CHANGED_SHARE)
            for i in range(new):
                if name == "SageMaker":
                    sim.add(f"new-{i:04d}", status="InProgress", secondary="Training").max_runtime = 86_400
                else:
                    sim.add(f"new-{i:04d}", "RUNNING").timeout_s = 86_400
            cost["new"] = describes(story, rt)
            cost["quiet"] = describes(story, rt)
            rt.worker.close()
            rt.db.dispose()
            rt = pipeline_runtime(db, story.config(), story.env())
            rt.worker.renew()
            cost["restart"] = describes(story, rt)
            rt.worker.close()
            rt.db.dispose()
        finally:
            story.stop()
        ok = (
            cost["baseline"] == min(len(live), MAX_LIMIT_READS)
            and cost["baseline"] + cost["next"] == len(live)
            and (cost["new"], cost["quiet"], cost["restart"]) == (new, 0, 0)
        )
        rows.append(
            Row(
                f"(a) {name} 10k jobs ({len(live)} live), runtime limits: extra detail requests",
                f"baseline +{cost['baseline']}, next cycle +{cost['next']}, cycle with {new} new jobs "
                f"+{cost['new']}, quiet +{cost['quiet']}, after a restart +{cost['restart']}",
                f"1 per live job from the baseline on (≤ {MAX_LIMIT_READS} a cycle), 1 per new job, 0 otherwise",
                ok,
            )
        )
    return rows


def describes(story: Story, rt: Runtime) -> int:
    """One poll of the story's queue: the detail requests (SageMaker DescribeTrainingJob, Batch
    DescribeServiceJob) the simulator answered."""
    sim: Any = story.sim  # type: ignore[attr-defined]
    with sim.lock:
        if hasattr(sim, "calls"):
            sim.calls.clear()
        else:
            sim.requests.clear()
    rt.worker.poll(story.queue)
    with sim.lock:
        if hasattr(sim, "calls"):
            return int(sim.calls["describeservicejob"])
        return sum(1 for t in sim.requests if t.endswith(".DescribeTrainingJob"))


def aitems_full_listing(n: int) -> list[Row]:
    """AiTEMS has no time filter: its baseline (and hourly) listing pages every train. The adapter at
    limit 100 (before) and 1000 (now), alternated three times on one simulator; median wall time."""
    from unittest import mock

    from bot.sim.aitems import AitemsSim
    from providers import naver_aitems

    sim = AitemsSim().start()
    runs: dict[int, list[tuple[int, float]]] = {100: [], naver_aitems.PAGE_SIZE: []}
    try:
        for i in range(n):
            sim.add(("personalRecommend", "relatedItem", "pop")[i % 3], "completed")
        config = naver_aitems.AitemsQueue(
            name="bench", service_id=sim.service_id, endpoint_url=sim.url, access_key_env="AK", secret_key_env="SK"
        )
        for size in list(runs) * 3:
            with mock.patch.object(naver_aitems, "PAGE_SIZE", size):
                source = naver_aitems.AitemsSource(config, env={"AK": sim.access_key, "SK": sim.secret_key})
                sim_calls_before = sim.calls["trains"]
                start = time.perf_counter()
                assert len(source.list_jobs(since=None, live=[])) == n
                runs[size].append((sim.calls["trains"] - sim_calls_before, time.perf_counter() - start))
                source.close()
    finally:
        sim.stop()
    (before, after) = ((runs[s][0][0], pct([w for _, w in runs[s]], 50)) for s in runs)
    return [
        Row(
            f"(a) AiTEMS full listing (baseline, hourly) of {n // 1000}k trains: requests / wall",
            f"limit 1000: {after[0]} / {after[1] * 1000:.0f} ms; limit 100 (before): {before[0]} /"
            f" {before[1] * 1000:.0f} ms ({before[1] / after[1]:.1f}× slower)",
            "—",
            None,
        )
    ]


# -- (b) ack latency with slow providers -------------------------------------------------------


@contextmanager
def slowed(stories: Sequence[Story], delay: float) -> Iterator[None]:
    """Every simulator answers each request `delay` seconds late (wraps its HTTP handler)."""
    servers = [story.sim._server for story in stories]  # type: ignore[attr-defined]
    originals = [server.handler for server in servers]

    def late(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            time.sleep(delay)
            return handler(req)

        return run

    for server, original in zip(servers, originals, strict=True):
        server.handler = late(original)
    try:
        yield
    finally:
        for server, original in zip(servers, originals, strict=True):
            server.handler = original


def ack_latency(tmp: Path, rounds: int) -> list[Row]:
    slack = FakeSlack(tokens={TOKEN: TEAM}).start()
    stories = [make(random.Random(3)) for make in STORIES]
    for story in stories:
        story.start()
    env: dict[str, str] = {}
    for story in stories:
        env.update(story.env())
    bot = BenchBot(tmp, slack, "".join(s.config() for s in stories), env, interval=5)
    scheduler = None
    steady: list[float] = []  # rounds of 20, each after the previous round's replies came back
    burst: list[float] = []  # 4 rounds at once: 40 provider-backed commands in flight
    mixed: list[float] = []  # rounds of 25 status + 25 list, 10 in flight at a time
    replies = 0
    try:
        bot.runtime.worker.renew()
        bot.runtime.worker.poll_all()  # something to list, and jobs to ask about
        refs = {s.queue: next(iter(bot.runtime.services.recent(s.queue, status=None, limit=1)[0])).id for s in stories}
        with slowed(stories, 2.5):
            scheduler = bot.runtime.worker.start_background()  # polls now stall 2.5 s per request
            time.sleep(0.5)
            slack_side = Child("slash", bot.http.url + "/slack/events")
            sent = 0

            def send(texts: list[str], at_once: int | None = None) -> list[float]:
                nonlocal sent
                hooks = [slack.response_url(f"c{sent + i}") for i in range(len(texts))]
                sent += len(texts)
                ask = {"op": "send"} if at_once is None else {"op": "stream", "at_once": at_once}
                answer = slack_side.ask({**ask, "texts": texts, "hooks": hooks})
                return [float(x) for x in answer["latencies"]]

            def commands(count: int) -> list[str]:
                texts = []
                for i in range(count):
                    q = stories[i % len(stories)].queue
                    texts.append(f"list {q}" if i % 2 == 0 else f"status {q} {refs[q]}")
                return texts

            def settle(expected: int) -> None:
                deadline = time.monotonic() + 20
                while len(slack.responses) < expected and time.monotonic() < deadline:
                    time.sleep(0.05)

            try:
                for _ in range(rounds):
                    steady += send(commands(20))
                    settle(len(slack.responses) + 10)
                before = len(slack.responses)
                burst = send(commands(80))
                settle(before + 40)
                for _ in range(max(1, rounds // 2)):
                    before = len(slack.responses)
                    mixed += send(commands(50), at_once=10)  # alternating list and status: 25 of each
                    settle(before + 25)
            finally:
                slack_side.close()
            replies = len(slack.responses)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        bot.close()
        for story in stories:
            story.stop()
        slack.stop()
    rows = []
    for label, got, target in (
        (f"20 concurrent list/status, {rounds} rounds", steady, True),
        ("burst of 80 concurrent (40 status), a stress beyond the target's 20", burst, False),
        (f"25 status + 25 list, 10 at a time, {max(1, rounds // 2)} rounds", mixed, True),
    ):
        p50, p99 = pct(got, 50) * 1000, pct(got, 99) * 1000
        rows.append(
            Row(
                f"(b) `/jobs` ack, {label}, every provider 2.5 s slow (n={len(got)})",
                f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
                "p99 < 100 ms" if target else "—",
                p99 < 100 if target else None,
            )
        )
    rows[0].measured += f" ({replies} status replies via response_url in all)"
    return rows


# -- (c) detection latency ---------------------------------------------------------------------


def detection(tmp: Path, changes: int) -> list[Row]:
    interval = 5.0
    posted: dict[str, float] = {}

    def on_post(message: dict[str, Any]) -> None:
        posted.setdefault(str(message.get("text", "")).split(" ", 1)[0], time.monotonic())

    slack = FakeSlack(tokens={TOKEN: TEAM}, on_post=on_post).start()
    sim = ModzySim(api_key=MODZY_KEY).start()
    rng = random.Random(11)
    jobs = [sim.add("ocr").ident for _ in range(changes)]
    bot = BenchBot(tmp, slack, modzy_config(sim.url), {"BENCH_MODZY": MODZY_KEY}, interval=interval)
    bot.subscribe("inference")
    changed: dict[str, float] = {}
    scheduler = bot.runtime.worker.start_background()
    try:
        time.sleep(1.0)  # the baseline
        for ident in jobs:
            time.sleep(rng.uniform(0.5, interval + 1))
            sim.set(ident, "IN_PROGRESS", completed=0)
            changed[ident] = time.monotonic()
        deadline = time.monotonic() + 3 * interval
        while len(posted) < len(jobs) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        bot.close()
        sim.stop()
        slack.stop()
    lat = [posted[j] - changed[j] for j in jobs if j in posted]
    missing = len(jobs) - len(lat)
    p50, p95 = pct(lat, 50), pct(lat, 95)
    return [
        Row(
            f"(c) detection change → Slack post, poll interval {interval:g} s (n={len(jobs)})",
            f"p50 {p50:.2f} s, p95 {p95:.2f} s" + (f", {missing} never posted" if missing else ""),
            f"p95 ≤ {interval + 2:g} s",
            p95 <= interval + 2 and not missing,
        )
    ]


def detection_push(tmp: Path, changes: int) -> list[Row]:
    """Change -> Slack post while the queues are polled every 5 min and their changes are pushed."""
    import boto3
    from moto import mock_aws

    from bot.sim.sagemaker import SageMakerSim

    posted: dict[str, float] = {}

    def on_post(message: dict[str, Any]) -> None:
        posted.setdefault(str(message.get("text", "")).split(" ", 1)[0], time.monotonic())

    slack = FakeSlack(tokens={TOKEN: TEAM}, on_post=on_post).start()
    sagemaker = SageMakerSim().start()
    modzy = ModzySim(api_key=MODZY_KEY).start()
    rng = random.Random(12)
    trainings = [sagemaker.add(f"train-{i}", secondary="Training").name for i in range(changes)]
    inferences = [modzy.add("ocr", "IN_PROGRESS").ident for _ in range(changes)]
    changed: dict[str, float] = {}
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
        url = sqs.create_queue(QueueName="events", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Training Job State Change"]}
        events.put_rule(Name="jobwatch", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="jobwatch", Targets=[{"Id": "jobwatch", "Arn": arn}])
        config = (
            f'[[queues]]\nname = "ml"\nprovider = "sagemaker"\nregion = "us-east-1"\n'
            f'endpoint_url = "{sagemaker.url}"\nevents_queue_url = "{url}"\n\n'
            + modzy_config(modzy.url)
            + "webhook = true\n"
        )
        bot = BenchBot(tmp, slack, config, {"BENCH_MODZY": MODZY_KEY})
        modzy.webhook = (f"{bot.http.url}/webhooks/modzy/inference", None, None)
        bot.subscribe("ml", "C0001")
        bot.subscribe("inference", "C0002")  # one channel each: Slack's pace of a channel (1 post/s) is not measured
        scheduler = bot.runtime.worker.start_background()
        try:
            time.sleep(2.0)  # the baselines; the next polls in 5 minutes
            for name, ident in zip(trainings, inferences, strict=True):
                time.sleep(rng.uniform(0.5, 2.0))
                sagemaker.set(name, "Completed", "Completed")
                changed[name] = time.monotonic()
                event = sagemaker.event(name)
                entry = {"Source": event["source"], "DetailType": event["detail-type"]}
                entry |= {"Detail": json.dumps(event["detail"]), "Resources": event["resources"]}
                events.put_events(Entries=[entry])
                time.sleep(rng.uniform(0.5, 2.0))
                changed[ident] = time.monotonic()
                modzy.set(ident, "COMPLETED")  # the simulator posts the webhook
            deadline = time.monotonic() + 10
            while len(posted) < 2 * changes and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            scheduler.shutdown(wait=True)
            bot.close()
            sagemaker.stop()
            modzy.stop()
            slack.stop()
    rows = []
    for what, jobs in (("SageMaker, EventBridge → SQS", trainings), ("Modzy, Job Completion webhook", inferences)):
        lat = [posted[j] - changed[j] for j in jobs if j in posted]
        missing = len(jobs) - len(lat)
        p50, p95 = pct(lat, 50), pct(lat, 95)
        rows.append(
            Row(
                f"(c) detection with push: {what}, polled every 5 min (n={len(jobs)})",
                f"p50 {p50:.2f} s, p95 {p95:.2f} s" + (f", {missing} never posted" if missing else ""),
                "p95 ≤ 2 s",
                p95 <= 2 and not missing,
            )
        )
    return rows


# -- (d) memory: one serve process, five queues of 10k jobs ------------------------------------


def child_sims_host(n: int) -> None:
    """Every provider's simulator with n jobs (3% live) and FakeSlack, for the serve process of (d)."""
    rng = random.Random(5)
    slack = FakeSlack(tokens={TOKEN: TEAM}).start()
    stories = [make(rng) for make in STORIES]
    live: dict[str, list[str]] = {}
    for story in stories:
        story.start()
        sim: Any = story.sim  # type: ignore[attr-defined]
        with sim.lock:  # drop the story's own demo jobs: this is a history of n
            for attr in ("jobs", "runs", "trains"):
                if isinstance(getattr(sim, attr, None), dict):
                    getattr(sim, attr).clear()
        live[story.queue] = populate(story, n, rng)

    def handle(command: dict[str, Any]) -> dict[str, Any] | None:
        if command["op"] == "setup":
            env: dict[str, str] = {}
            for story in stories:
                env.update(story.env())
            return {
                "config": "".join(s.config() for s in stories),
                "env": env,
                "slack": slack.api_url,
                "live": {q: len(ids) for q, ids in live.items()},
            }
        if command["op"] == "change":  # 1% of each queue's jobs end (as many as are live)
            changed = 0
            for story in stories:
                ids = live[story.queue]
                for ident in rng.sample(ids, min(len(ids), round(n * CHANGED_SHARE))):
                    change(story, ident)
                    ids.remove(ident)
                    changed += 1
            return {"changed": changed}
        return None

    serve_commands(handle)
    for story in stories:
        story.stop()
    slack.stop()


def memory_serve(n: int, tmp: Path, *, steady: int) -> list[Row]:
    """Peak RSS of `jobwatch serve` (HTTP + scheduler + worker) polling five queues of n jobs.

    The bot is the real command in its own process (`python -m bot serve`); every provider
    simulator and FakeSlack run in another. The bench reads the serve process's VmHWM from
    /proc after the five baselines and after `steady` further polls of every queue.
    """
    sims = Child("sims-host", str(n))
    try:
        setup = sims.ask({"op": "setup"})
        queues = list(setup["live"])
        # One subscribed channel per queue: alerts, slow and stuck flags and digests are written and
        # posted to FakeSlack, as in production (without one, nothing is enqueued or delivered).
        config = "[bot]\npoll_interval = 5\n" + str(setup["config"]) + subscriptions(queues)
        with Serve(tmp, config, setup["env"], str(setup["slack"])) as serve:
            polled = serve.wait_polls(dict.fromkeys(queues, 1), 600)
            baseline_s = time.monotonic() - serve.started
            baseline = serve.status_kb()
            changed = 0
            for _ in range(steady):
                changed += int(sims.ask({"op": "change"})["changed"])
                polled = serve.wait_polls({q: polled[q] + 1 for q in queues}, 120)
            final = serve.status_kb()
    finally:
        sims.close()
    peak = final["VmHWM"] / 1024
    return [
        Row(
            f"(d) `jobwatch serve`, 5 queues (one per provider) × {n // 1000}k jobs, 3% live, one subscribed"
            " channel each: peak RSS",
            f"{peak:.0f} MB (after the 5 baselines, {baseline_s:.0f} s: peak {baseline['VmHWM'] / 1024:.0f} MB;"
            f" after {steady} steady cycles, {changed} jobs ended: RSS {final['VmRSS'] / 1024:.0f} MB)",
            "< 150 MB",
            peak < 150,
        )
    ]


# -- (e) delivery: one slow channel, one backlog, the others healthy ---------------------------


def delivery_head_of_line(channels: int) -> list[Row]:
    from bench.delivery import HEALTHY_P95, head_of_line, head_of_line_table

    r = head_of_line(channels)
    _, passed = head_of_line_table(r)
    return [
        Row(
            f"(e) delivery to {channels} channels, one answered in 4 s a post, one with a backlog of 500:"
            " healthy channels' alerts/s, commit → post p50 / p95; the backlog's rate; 429s",
            f"{r['delivered']} of {r['offered']} at {r['throughput']:.1f}/s, p50 {r['p50']:.2f} s,"
            f" p95 {r['p95']:.2f} s; backlog {r['backlog_rate']:.2f}/s; {r['rejected']} 429s",
            f"all, p95 ≤ {HEALTHY_P95:g} s; backlog ≥ 0.9/s; 0 429s",
            passed,
        )
    ]


# -- (f) quiet by default at scale: 5 x 10k through the real serve ----------------------------


def child_quiet(n: int) -> None:
    """The (f) scenario's simulators and FakeSlack (bench/quiet.py), driven over stdin."""
    from bench.quiet import Scenario, serve_scenario

    scenario = Scenario(n)
    serve_commands(lambda command: serve_scenario(scenario, command))
    scenario.close()


def quiet_at_scale(n: int, tmp: Path) -> list[Row]:
    from bench.quiet import INTERVAL, run

    host = Child("quiet", str(n))
    try:
        out = run(host, tmp, window=60)
    finally:
        host.close()
    bound = INTERVAL + 2
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(out.by_kind.items()))
    wrong = len(out.flags_past) + len(out.flags_missing) + len(out.flags_twice) + len(out.duplicates)
    return [
        Row(
            f"(f) 5 queues × {n // 1000}k jobs, 3% live for two days, through `jobwatch serve`: posts during"
            " the baselines and the poll after them",
            f"{out.baseline_posts} ({out.jobs} jobs stored, baselines {out.baseline_s:.0f} s)",
            "0",
            out.baseline_posts == 0,
        ),
        Row(
            "(f) flags: about jobs already past their threshold when first listed / crossers not flagged /"
            " flagged twice / alert ids posted twice",
            f"{len(out.flags_past)} / {len(out.flags_missing)} / {len(out.flags_twice)} / {len(out.duplicates)}",
            "0 / 0 / 0 / 0",
            wrong == 0,
        ),
        Row(
            f"(f) {out.owed} scripted posts over 60 s (ends, new jobs, slow and stuck crossings):"
            " change → post p50 / p95; posts by kind",
            f"{out.delivered} of {out.owed}; p50 {out.p(50):.2f} s, p95 {out.p(95):.2f} s; {kinds}",
            f"all; p95 ≤ interval + 2 s = {bound} s",
            out.delivered == out.owed and out.p(95) <= bound,
        ),
        Row(
            "(f) the same `jobwatch serve`, history, flags and every kind of post on: peak RSS",
            f"{out.peak_mb:.0f} MB",
            "< 150 MB",
            out.peak_mb < 150,
        ),
    ]


# -- main --------------------------------------------------------------------------------------


def table(rows: Sequence[Row]) -> str:
    lines = ["| metric | measured | target | result |", "|---|---|---|---|"]
    lines += [f"| {r.metric} | {r.measured} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1k and 10k only, fewer samples")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest cycle (to stderr)")
    parser.add_argument(
        "--only", choices=["a", "b", "c", "d", "e", "f"], action="append", help="run only these sections"
    )
    parser.add_argument("--sizes", help="(a) tracked-job sizes, comma-separated (default 1000,10000,100000)")
    parser.add_argument("--modzy-only", action="store_true", help="(a) only the Modzy cycle rows, per size")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        role, *rest = args.child
        if role == "modzy-host":
            child_modzy_host(int(rest[0]))
        elif role == "cycle":
            child_cycle(rest[0], rest[1])
        elif role == "slash":
            child_slash(rest[0])
        elif role == "sims-host":
            child_sims_host(int(rest[0]))
        elif role == "quiet":
            child_quiet(int(rest[0]))
        return 0
    import logging

    logging.basicConfig(level=logging.ERROR)
    sections = set(args.only or ["a", "b", "c", "d", "e", "f"])
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="jobwatch-bench-") as name:
        tmp = Path(name)
        if "a" in sections:
            for n in sizes:
                got, profile_text = scale_modzy(n, tmp, profile=args.profile and n == sizes[-1])
                rows += got
                if profile_text:
                    print(profile_text, file=sys.stderr)
            if not args.modzy_only:
                rows += providers_10k(10_000, tmp)
                rows += owner_tags_10k(10_000, tmp)
                rows += runtime_limits_10k(10_000, tmp)
                rows += aitems_full_listing(10_000)
        if "b" in sections:
            (tmp / "b").mkdir()
            rows += ack_latency(tmp / "b", rounds=2 if args.quick else 6)
        if "c" in sections:
            (tmp / "c").mkdir()
            rows += detection(tmp / "c", changes=8 if args.quick else 24)
            (tmp / "c-push").mkdir()
            rows += detection_push(tmp / "c-push", changes=8 if args.quick else 24)
        if "d" in sections:
            (tmp / "d").mkdir()
            rows += memory_serve(10_000, tmp / "d", steady=2 if args.quick else 4)
        if "e" in sections:
            rows += delivery_head_of_line(20)
        if "f" in sections:
            (tmp / "f").mkdir()
            rows += quiet_at_scale(10_000, tmp / "f")
    cmd = "python bench/run.py" + (" --quick" if args.quick else "") + "".join(f" --only {x}" for x in args.only or [])
    cmd += (f" --sizes {args.sizes}" if args.sizes else "") + (" --modzy-only" if args.modzy_only else "")
    print(f"Scale bench — `{cmd}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, SQLite\n")
    print(table(rows))
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
