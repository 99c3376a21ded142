"""(f) Quiet by default at scale: five queues of n jobs through one real `jobwatch serve`.

Each provider's simulator holds n jobs (3% live) with a history that makes the thresholds known:
every succeeded run took RUN seconds and waited WAIT seconds (where the provider tells when a job
started), so with the queues' `slow_factor = 1.5`, `slow_floor = 30` and `stuck_floor = 60` a
running job is slow SLOW_AFTER seconds after it started (or was created, where the listing has no
start) and a queued job is stuck STUCK_AFTER seconds after its creation. The live jobs are two days
old: every one of them is far past its threshold when jobwatch starts.

Then, after the baselines and one more poll of every queue, a script plays for `window` seconds at
random moments, per queue (AiTEMS: one train ends):
- old live jobs end (two succeed, one fails): a status alert each;
- new jobs are submitted: a status alert each;
- a job first listed now but created (and started) two days ago: an alert, never a flag;
- new jobs that cross the slow threshold (and, where the provider gives waits, the stuck one)
  some seconds after they are listed: an alert when listed, one flag when they cross.

What it checks: no post during the baselines and the poll after them; no flag about a job that was
already past its threshold when first listed; every crosser flagged exactly once; no alert id
posted twice; and the time from each change (or crossing) to its post, p50 and p95, against the
poll interval + 2 s. Posts are counted by outbox kind (the bot's SQLite store, read afterwards).

The scenario runs in the bench's child process (`bench/run.py --only f`, 5 x 10,000) or in the
test's process (tests/test_quiet_scale.py, 5 x 1,000); the bot always runs as `python -m bot serve`.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bench.serve import TEAM, TOKEN, Serve, subscriptions
from bot.demo import STORIES, Story
from bot.sim.slack import FakeSlack

RUN = 60.0  # every succeeded run of the history took this long...
WAIT = 20.0  # ...after waiting this long in the queue (where the provider tells)
SLOW_FACTOR, SLOW_FLOOR, STUCK_FLOOR = 1.5, 30, 60
SLOW_AFTER = max(SLOW_FACTOR * RUN, RUN + SLOW_FLOOR)  # 90 s: bot/core/history.py slow_after
STUCK_AFTER = float(STUCK_FLOOR)  # 60 s: 1.0 x the p95 wait (20 s) is below the floor
OLD = timedelta(days=2)
LIVE_SHARE = 0.03
INTERVAL = 5  # the queues' poll interval, seconds
# What a change owes its channel: a status alert, or (a crosser's crossing) a flag.
ALERT, FLAG = "alert", "flag"


@dataclass
class Change:
    """One scripted change: the job it is about (the provider's id, as the outbox's job_id), what it
    owes its channel, and when (epoch seconds) it happened or (a crossing) will happen."""

    queue: str
    job_id: str
    what: str  # "end", "new", "past" (first listed, already past), "slow", "stuck"
    owes: str  # ALERT | FLAG
    at: float


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class Provider:
    """How the scenario writes one provider's jobs into its simulator (ids as the adapter's Job.id)."""

    def __init__(self, story: Story) -> None:
        self.story = story
        self.sim: Any = story.sim  # type: ignore[attr-defined]
        self.kind = type(story).__name__.removesuffix("Story")
        self.counter = 0
        self.keys: dict[str, str] = {}  # the adapter's job id -> what the simulator's set() takes

    @property
    def has_waits(self) -> bool:
        """Whether the queue has waits, hence a stuck threshold: AWS Batch lists when a job started;
        Modzy's start is its submission (every wait 0 s: the floor decides). SageMaker's and PAI's
        listings tell no start: their jobs run from their creation, and are never stuck."""
        return self.kind in ("Batch", "Modzy")

    @property
    def lead(self) -> float:
        """Seconds from a job's creation to its start, as the bot will see them."""
        return WAIT if self.kind == "Batch" else 0.0

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:06d}"

    def history(self, created: datetime, *, live: str | None) -> str | None:
        """One job of the history created at `created`: ended (a succeeded run of RUN seconds after
        WAIT, or 1 in 10 failed), or still `live` ("running" / "queued") since then."""
        failed = live is None and random.random() < 0.1
        return self.job(created, live=live, failed=failed, started=created + timedelta(seconds=self.lead))

    def job(
        self,
        created: datetime,
        *,
        live: str | None,
        failed: bool = False,
        started: datetime | None = None,
        touched: datetime | None = None,
    ) -> str | None:
        """A job created at `created`: live ("running" since `started`, or "queued") or ended RUN
        seconds after `started`; `touched` is its last modification (default: its last event).
        Returns the id the adapter gives the job, or None for AiTEMS (whose trains are made apart)."""
        sim, k = self.sim, self.kind
        started = started or created
        ended = started + timedelta(seconds=RUN)
        last = touched or (ended if live is None else started if live == "running" else created)
        if k == "SageMaker":
            status, secondary = {
                None: ("Failed", "Failed") if failed else ("Completed", "Completed"),
                "running": ("InProgress", "Training"),
                "queued": ("InProgress", "Starting"),
            }[live]
            job = sim.add(self._name("train"), status=status, secondary=secondary)
            job.created, job.modified = created, last
            job.started = started if live != "queued" else None
            job.ended = ended if live is None else None
            self.keys[job.arn] = job.name
            return str(job.arn)
        if k == "Batch":
            status = {None: "FAILED" if failed else "SUCCEEDED", "running": "RUNNING", "queued": "RUNNABLE"}[live]
            job = sim.add(self._name("svc"), status, created_ms=_ms(created))
            if live != "queued":
                job.started_ms = _ms(started)
                resource = {"name": "TrainingJobArn", "value": job.training_arn(1)}
                job.attempts.append({"serviceResourceId": resource, "startedAt": _ms(started)})
            if live is None:
                job.stopped_ms = _ms(ended)
                job.attempts[-1]["stoppedAt"] = _ms(ended)
            self.keys[job.arn] = job.job_id
            return str(job.arn)
        if k == "Modzy":
            status = {None: "ERROR" if failed else "COMPLETED", "running": "IN_PROGRESS", "queued": "SUBMITTED"}[live]
            job = sim.add("ocr", status, when=created)
            job.updated = last
            self.keys[job.ident] = job.ident
            return str(job.ident)
        if k == "Pai":
            status = {None: "Failed" if failed else "Succeed", "running": "Running", "queued": "Submitted"}[live]
            run = sim.add(self._name("run"), status, when=created)
            run.modified = sim.jobs[run.source_id].modified = last
            self.keys[run.ident] = run.source_id
            return str(run.ident)
        return None

    def end(self, job_id: str, *, failed: bool) -> None:
        """A live job ends now."""
        k, job_id = self.kind, self.keys.get(job_id, job_id)
        if k == "SageMaker":
            self.sim.set(job_id, *(("Failed", "Failed") if failed else ("Completed", "Completed")))
        elif k == "Batch":
            self.sim.set(job_id, "FAILED" if failed else "SUCCEEDED")
        elif k == "Modzy":
            self.sim.set(job_id, "ERROR" if failed else "COMPLETED")
        elif k == "Pai":
            self.sim.set(job_id, "Failed" if failed else "Succeed")
        else:
            self.sim.set(job_id, "failed" if failed else "completed")


class Scenario:
    """The five simulators with n jobs each, FakeSlack, and the script (see the module docstring)."""

    def __init__(
        self,
        n: int,
        *,
        interval: int = INTERVAL,
        cross: tuple[float, float] = (8, 30),
        each: int = 2,
        seed: int = 7,
    ) -> None:
        self.interval = interval  # the queues' poll interval, seconds
        self.each = each  # per queue: `each` new jobs and crossers of each kind, `each` + 1 ends
        self.cross = cross  # a crosser crosses its threshold this many seconds (at random) after it is listed
        self.rng = random.Random(seed)
        random.seed(seed)  # the simulators draw ids from the module's generator
        self.slack = FakeSlack(tokens={TOKEN: TEAM})
        self.slack.on_post = self._posted
        self.slack.start()
        self.posts: list[dict[str, Any]] = []
        self.changes: list[Change] = []
        self._lock = threading.Lock()
        self.providers: list[Provider] = []
        self.live: dict[str, list[str]] = {}
        now = datetime.now(UTC)
        for make in STORIES:
            story = make(self.rng)
            story.start()
            provider = Provider(story)
            sim = provider.sim
            with sim.lock:  # drop the story's own demo jobs: this is a history of n
                for attr in ("jobs", "runs", "trains"):
                    if isinstance(getattr(sim, attr, None), dict):
                        getattr(sim, attr).clear()
            self.providers.append(provider)
            self.live[story.queue] = self._fill(provider, n, now)
        self._player: threading.Thread | None = None

    def _fill(self, p: Provider, n: int, now: datetime) -> list[str]:
        live: list[str] = []
        if p.kind == "Aitems":  # a train type has one "recent" train: only that one can be learning
            kinds = ("personalRecommend", "relatedItem", "pop")
            for i in range(n):
                train = p.sim.add(kinds[i % 3], "learning" if i >= n - 3 else "completed")
                if i >= n - 3:
                    live.append(train.ident)
            return live
        for i in range(n):
            if self.rng.random() < LIVE_SHARE:  # live for two days: far past any threshold
                state = "running" if self.rng.random() < 0.5 else "queued"
                ident = p.job(now - OLD - timedelta(seconds=i), live=state)
                if state == "running" and ident:
                    live.append(ident)
            else:
                p.history(now - OLD - timedelta(hours=1, seconds=(n - i) * 10), live=None)
        return live

    # -- what the bot gets -------------------------------------------------------------------

    def setup(self) -> dict[str, Any]:
        """The bot's config (every queue with the thresholds above, one channel each) and env."""
        env: dict[str, str] = {}
        config = f"[bot]\npoll_interval = {self.interval}\n"
        for p in self.providers:
            env.update(p.story.env())
            config += p.story.config() + (
                f"slow_factor = {SLOW_FACTOR}\nslow_floor = {SLOW_FLOOR}\nstuck_floor = {STUCK_FLOOR}\n"
            )
        queues = [p.story.queue for p in self.providers]
        return {
            "config": config + subscriptions(queues),
            "env": env,
            "slack": self.slack.api_url,
            "queues": queues,
            "interval": self.interval,
            "live": {q: len(ids) for q, ids in self.live.items()},
        }

    def _posted(self, message: dict[str, Any]) -> None:
        meta = message.get("metadata") or {}
        payload = meta.get("event_payload") or {} if isinstance(meta, dict) else {}
        with self._lock:
            self.posts.append(
                {
                    "at": time.time(),
                    "channel": message["channel"],
                    "alert_id": str(payload.get("alert_id", "")),
                    "reply": bool(message.get("thread_ts")),
                }
            )

    # -- the script --------------------------------------------------------------------------

    def play(self, window: float) -> int:
        """Start the script on a thread (it plays for `window` seconds); returns how many changes
        it owes the channels."""
        steps: list[tuple[float, int, Callable[[], list[Change]]]] = []  # (when, posts owed, what)
        for p in self.providers:
            q = p.story.queue
            ends = self.rng.sample(self.live[q], min(len(self.live[q]), 1 if p.kind == "Aitems" else self.each + 1))
            for i, ident in enumerate(ends):  # the last one fails
                steps.append((self.rng.uniform(0, window), 1, self._ender(p, ident, failed=i == self.each)))
            if p.kind == "Aitems":
                continue
            for _ in range(self.each):
                steps.append((self.rng.uniform(0, window), 1, self._adder(p, "new")))
            steps.append((self.rng.uniform(0, window), 1, self._adder(p, "past")))
            for what in ("slow", "stuck") if p.has_waits else ("slow",):
                for _ in range(self.each):  # listed at some moment, crossing some seconds later, inside the window
                    listed = self.rng.uniform(0, window - self.cross[1])
                    steps.append((listed, 2, self._crosser(p, what, self.rng.uniform(*self.cross))))
        steps.sort(key=lambda s: s[0])

        def run() -> None:
            start = time.time()
            for offset, _, fn in steps:
                time.sleep(max(0.0, start + offset - time.time()))
                done = fn()
                with self._lock:
                    self.changes.extend(done)

        self._player = threading.Thread(target=run, name="quiet-script", daemon=True)
        self._player.start()
        return sum(owed for _, owed, _ in steps)

    def _ender(self, p: Provider, ident: str, *, failed: bool) -> Callable[[], list[Change]]:
        def end() -> list[Change]:
            p.end(ident, failed=failed)
            return [Change(p.story.queue, ident, "end", ALERT, time.time())]

        return end

    def _adder(self, p: Provider, what: str) -> Callable[[], list[Change]]:
        def add() -> list[Change]:
            now = datetime.now(UTC)
            if what == "new":
                ident = p.job(now, live="queued", touched=now)
            else:  # first listed now, but running (or queued) for two days: past every threshold
                ident = p.job(now - OLD, live="running", touched=now)
            assert ident is not None
            return [Change(p.story.queue, ident, what, ALERT, now.timestamp())]

        return add

    def _crosser(self, p: Provider, what: str, after: float) -> Callable[[], list[Change]]:
        def cross() -> list[Change]:
            now = datetime.now(UTC)
            crossing = now + timedelta(seconds=after)
            if what == "slow":
                start = crossing - timedelta(seconds=SLOW_AFTER)
                ident = p.job(start - timedelta(seconds=p.lead), live="running", started=start, touched=now)
            else:
                ident = p.job(crossing - timedelta(seconds=STUCK_AFTER), live="queued", touched=now)
            assert ident is not None
            q = p.story.queue
            return [Change(q, ident, what, ALERT, now.timestamp()), Change(q, ident, what, FLAG, crossing.timestamp())]

        return cross

    def report(self) -> dict[str, Any]:
        """The changes played so far and every post FakeSlack received."""
        if self._player is not None:
            self._player.join()
        with self._lock:
            return {"changes": [asdict(c) for c in self.changes], "posts": list(self.posts)}

    def close(self) -> None:
        for p in self.providers:
            p.story.stop()
        self.slack.stop()


# -- the parent: run the bot against a scenario and judge what it posted ----------------------


class Host(Protocol):
    """A scenario in this process or in a child process: `ask` answers one command."""

    def ask(self, command: dict[str, Any]) -> dict[str, Any]: ...


def serve_scenario(scenario: Scenario, command: dict[str, Any]) -> dict[str, Any] | None:
    """One command to a scenario (the child's side of bench/run.py's line protocol)."""
    if command["op"] == "setup":
        return scenario.setup()
    if command["op"] == "play":
        return {"owed": scenario.play(float(command["window"]))}
    if command["op"] == "report":
        return scenario.report()
    return None


class InProcess:
    """A scenario served in this process (the test)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        return serve_scenario(self.scenario, command) or {"ok": True}


@dataclass
class Outcome:
    """What one run of the scenario measured."""

    jobs: int
    baseline_s: float
    baseline_posts: int
    owed: int
    delivered: int
    latencies: list[float]
    by_kind: Counter[str]
    flags_past: list[str]  # flags about jobs that were past their threshold when first listed (old live, "past")
    flags_missing: list[str]  # crossers never flagged
    flags_twice: list[str]
    duplicates: list[str]  # alert ids posted more than once
    unposted: list[str] = field(default_factory=list)  # changes whose post never came
    by_change: list[tuple[str, str, str, float]] = field(default_factory=list)  # (what, owes, queue, latency)
    peak_mb: float = 0.0  # the serve process's peak RSS

    def p(self, q: float) -> float:
        """The q-th percentile of the latencies (nearest rank), NaN without any."""
        from bench.run import pct

        return pct(self.latencies, q) if self.latencies else float("nan")


def outbox_rows(db: Path) -> dict[str, tuple[str, str, str, str]]:
    """alert_id -> (kind, queue, job_id, the alert id of the digest that folded it, or "")."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT o.alert_id, o.kind, o.queue, o.job_id, COALESCE(d.alert_id, '') FROM outboxitem o"
            " LEFT JOIN outboxitem d ON d.id = o.parent_id"
        ).fetchall()
    return {str(a): (str(k), str(q), str(j), str(d)) for a, k, q, j, d in rows}


def run(host: Host, tmp: Path, *, window: float, wait: float = 60) -> Outcome:
    """Start `jobwatch serve` on the scenario, wait for the baselines and one more poll of every
    queue, play the script, wait for its posts, stop the bot and judge (see the module docstring)."""
    setup = host.ask({"op": "setup"})
    queues = list(setup["queues"])
    jobs = 0
    with Serve(tmp, str(setup["config"]), setup["env"], str(setup["slack"])) as serve:
        polled = serve.wait_polls(dict.fromkeys(queues, 1), 900)
        baseline_s = time.monotonic() - serve.started
        serve.wait_polls({q: polled[q] + 1 for q in queues}, 300)
        before = host.ask({"op": "report"})["posts"]
        owed = int(host.ask({"op": "play", "window": window})["owed"])
        time.sleep(window + int(setup["interval"]) + 2)
        deadline = time.monotonic() + wait  # a slow machine: give the last posts time, then judge
        while True:
            got = host.ask({"op": "report"})
            if len(got["changes"]) >= owed and _matched(got, outbox_rows(serve.db)) >= owed:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        peak_mb = serve.status_kb()["VmHWM"] / 1024
    rows = outbox_rows(serve.db)
    with sqlite3.connect(serve.db) as conn:
        jobs = int(conn.execute("SELECT COUNT(*) FROM jobsnapshot").fetchone()[0])
    out = judge(got, rows, baseline_posts=len(before), baseline_s=baseline_s, owed=owed, jobs=jobs)
    out.peak_mb = peak_mb
    return out


def _first_posts(got: dict[str, Any], rows: dict[str, tuple[str, str, str, str]]) -> dict[tuple[str, str, str], float]:
    """(queue, job_id, kind) -> when its first post (or the digest that folded it) arrived."""
    posted: dict[str, float] = {}
    for post in got["posts"]:
        posted.setdefault(post["alert_id"], post["at"])
    first: dict[tuple[str, str, str], float] = {}
    for alert_id, (kind, queue, job_id, digest) in rows.items():
        at = posted.get(alert_id, posted.get(digest)) if digest else posted.get(alert_id)
        if at is None or not job_id:
            continue
        key = (queue, job_id, kind)
        first[key] = min(at, first.get(key, at))
    return first


def _matched(got: dict[str, Any], rows: dict[str, tuple[str, str, str, str]]) -> int:
    first = _first_posts(got, rows)
    return sum(1 for c in got["changes"] if _post_of(first, c) is not None)


def _post_of(first: dict[tuple[str, str, str], float], change: dict[str, Any]) -> float | None:
    """When the post a change owes arrived: for an alert, the first alert about the job after the
    change (the job's earlier alerts, if any, do not count); for a crossing, the job's flag."""
    at = first.get((change["queue"], change["job_id"], change["owes"]))
    return at if at is not None and at >= change["at"] - 1 else None


def judge(
    got: dict[str, Any],
    rows: dict[str, tuple[str, str, str, str]],
    *,
    baseline_posts: int,
    baseline_s: float,
    owed: int,
    jobs: int,
) -> Outcome:
    """Hold what FakeSlack received against the script and the outbox."""
    first = _first_posts(got, rows)
    changes = got["changes"]
    latencies, unposted = [], []
    by_change: list[tuple[str, str, str, float]] = []
    for change in changes:
        at = _post_of(first, change)
        if at is None:
            unposted.append(f"{change['what']} {change['owes']} {change['queue']}/{change['job_id']}")
        else:
            latencies.append(max(0.0, at - change["at"]))
            by_change.append((change["what"], change["owes"], change["queue"], round(at - change["at"], 2)))
    crossers = {(c["queue"], c["job_id"]) for c in changes if c["owes"] == FLAG}
    # jobs the script made that were not past any threshold when listed: a flag when one crosses later is right
    fresh = {(c["queue"], c["job_id"]) for c in changes if c["what"] in ("new", "slow", "stuck")}
    by_kind: Counter[str] = Counter()
    flagged: Counter[tuple[str, str]] = Counter()
    seen: Counter[str] = Counter()
    for post in got["posts"]:
        seen[post["alert_id"]] += 1
        kind, queue, job_id, _ = rows.get(post["alert_id"], ("?", "", "", ""))
        by_kind[kind + (" (thread reply)" if post["reply"] else "")] += 1
        if kind == FLAG:
            flagged[(queue, job_id)] += 1
    return Outcome(
        jobs=jobs,
        baseline_s=baseline_s,
        baseline_posts=baseline_posts,
        owed=owed,
        delivered=len(latencies),
        latencies=latencies,
        by_kind=by_kind,
        flags_past=sorted(f"{q}/{j}" for q, j in flagged if (q, j) not in fresh),
        flags_missing=sorted(f"{q}/{j}" for q, j in crossers if (q, j) not in flagged),
        flags_twice=sorted(f"{q}/{j}" for (q, j), k in flagged.items() if k > 1),
        duplicates=sorted(a for a, k in seen.items() if k > 1),
        unposted=unposted,
        by_change=by_change,
    )
