"""Where the memory of bench row (d) goes: per pipeline stage, in one process.

Run from the repository root: `python bench/stages.py` (add `--rss` for VmHWM per stage instead of
tracemalloc, `--jobs 2000` for a smaller history). The setup is row (d)'s: every provider simulator
with 10k jobs (3% live) and FakeSlack in another process (`bench/run.py --child sims-host`); this
process builds what `jobwatch serve` builds (runtime, Bolt app, web app) with its imports, polls the
five queues' baselines one after the other (as the worker's baseline turns do), then `--cycles`
steady cycles in which 1% of each queue's jobs end, each followed by a delivery round and the log
tails. Every queue has one subscribed channel, so alerts, flags and digests are written and posted.

Each stage is a function of the pipeline wrapped here (a bench may wrap what it measures; the tests
never do). For every stage the table gives, over its calls in the baselines and in the steady
cycles: the traced Python allocations at its peak above what was allocated when it started
("peak +"), and what it left allocated when it returned ("kept +"). Stages nest (the commit holds
the snapshot write, the history, the outbox rows); a parent's peak includes its children's.
With `--rss`, the process's VmHWM after each stage instead (no tracemalloc, which costs memory of
its own): where the high-water mark was reached.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def status_kb(key: str = "VmHWM") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Stat:
    calls: int = 0
    peak: int = 0  # bytes above entry, the largest over the calls
    kept: int = 0  # bytes left allocated at exit, the largest over the calls
    hwm_kb: int = 0  # VmHWM after the stage (--rss)


@dataclass
class Frame:
    name: str
    start: int
    peak: int = 0


@dataclass
class Tracer:
    rss: bool
    phase: str = "baseline"
    stats: dict[tuple[str, str], Stat] = field(default_factory=lambda: defaultdict(Stat))
    stack: list[Frame] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.rss:
            try:
                yield
            finally:
                stat = self.stats[(self.phase, name)]
                stat.calls += 1
                stat.hwm_kb = max(stat.hwm_kb, status_kb())
            return
        current, peak = tracemalloc.get_traced_memory()
        if self.stack:
            self.stack[-1].peak = max(self.stack[-1].peak, peak)
        tracemalloc.reset_peak()
        frame = Frame(name, current)
        self.stack.append(frame)
        try:
            yield
        finally:
            self.stack.pop()
            current, peak = tracemalloc.get_traced_memory()
            frame.peak = max(frame.peak, peak)
            if self.stack:
                self.stack[-1].peak = max(self.stack[-1].peak, frame.peak)
            tracemalloc.reset_peak()
            stat = self.stats[(self.phase, name)]
            stat.calls += 1
            stat.peak = max(stat.peak, frame.peak - frame.start)
            stat.kept = max(stat.kept, current - frame.start)

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, attr)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(owner, attr, wrapped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rss", action="store_true", help="VmHWM after each stage instead of tracemalloc")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per queue (default 10000)")
    parser.add_argument("--cycles", type=int, default=3, help="steady cycles after the baselines (default 3)")
    args = parser.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.ERROR)
    before_kb = status_kb("VmRSS")
    # What `jobwatch serve` imports (bot/cli.py _serve), and nothing of the bench or the simulators.
    import waitress  # noqa: F401

    import bot.cli
    import bot.runtime
    import bot.slack.app
    import bot.slack.install
    import bot.web

    imports_kb = status_kb("VmRSS")

    from bench.run import Child
    from bench.serve import SECRET, TOKEN
    from bot.core.config import Settings, load_config
    from bot.pipeline import enqueue, usual
    from bot.store import history, outbox, snapshots
    from bot.worker import Worker

    sims = Child("sims-host", str(args.jobs))
    tracer = Tracer(rss=args.rss)
    if not args.rss:
        tracemalloc.start()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="jobwatch-stages-") as name:
        tmp = Path(name)
        setup = sims.ask({"op": "setup"})
        queues = list(setup["live"])
        subs = "".join(
            f'\n[[subscriptions]]\nchannel = "C{i:04d}"\nqueue = "{q}"\nteam = "T0001"\n' for i, q in enumerate(queues)
        )
        config_path = tmp / "jobwatch.toml"
        config_path.write_text("[bot]\npoll_interval = 5\n" + str(setup["config"]) + subs)
        settings = Settings(
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=str(setup["slack"]),
            database_url=f"sqlite:///{tmp / 'bot.db'}",
            jobwatch_config=config_path,
        )
        import os

        os.environ.update(setup["env"])
        config = load_config(config_path)
        bot.runtime.limit_malloc_arenas()
        with tracer.stage("start-up: runtime, app"):
            rt = bot.runtime.build_runtime(settings, config=config)
            bot.slack.app.build_app(
                rt.services, client=bot.runtime.command_client(settings), signing_secret=SECRET, timing=None
            )
        import bot.worker as worker_module

        for module, attr, label in (
            (worker_module, "queue_view", "queue view: stored live jobs"),
            (worker_module, "poll_queue", "listing (adapter: pages, parse)"),
            (worker_module, "priors", "priors load"),
            (worker_module, "diff", "diff"),
            (worker_module, "enrich", "enrich (detail calls)"),
            (worker_module, "with_causes", "causes"),
            (worker_module, "commit_poll", "commit (one transaction)"),
            (snapshots, "write", "  snapshot write"),
            (snapshots, "record_changes", "  transition history"),
            (enqueue, "apply_normal", "  usual: history, flags"),
            (enqueue, "owed", "  outbox rows owed"),
            (outbox, "insert", "  outbox insert"),
            (enqueue, "_fold_bursts", "  digest fold"),
            (usual.Normal, "load", "  usual: history windows load"),
            (history, "record", "  run_history write"),
        ):
            tracer.wrap(module, attr, label)
        for attr, label in (
            ("_tag_owners", "owner tags"),
            ("_owner_users", "owners' Slack users"),
            ("_found", "after the listing: priors to commit input"),
            ("deliver", "delivery round"),
            ("log_tails", "log tails"),
        ):
            tracer.wrap(Worker, attr, label)
        worker = rt.worker
        worker.renew()
        started = time.monotonic()
        try:
            for queue in queues:
                with tracer.stage("poll (whole)"):
                    worker.poll(queue)
            for _ in range(5):
                worker.deliver()
            baseline_s = time.monotonic() - started
            tracer.phase = "steady"
            for _ in range(args.cycles):
                sims.ask({"op": "change"})
                for queue in queues:
                    with tracer.stage("poll (whole)"):
                        worker.poll(queue)
                for _ in range(3):
                    worker.deliver()
                worker.log_tails()
        finally:
            worker.close()
            rt.db.dispose()
            sims.close()
    hwm = status_kb()
    print(
        f"{args.jobs} jobs x {len(queues)} queues; RSS before imports {before_kb / 1024:.0f} MB, after serve's imports"
        f" {imports_kb / 1024:.0f} MB; baselines {baseline_s:.0f} s; VmHWM at the end {hwm / 1024:.0f} MB"
        + (" (tracemalloc on: it adds its own)" if not args.rss else "")
        + "\n"
    )
    order: list[str] = []
    for _, name in tracer.stats:
        if name not in order:
            order.append(name)
    if args.rss:
        print("| stage | VmHWM after, baselines (MB) | VmHWM after, steady (MB) |\n|---|---|---|")
        for name in order:
            b, s = tracer.stats.get(("baseline", name)), tracer.stats.get(("steady", name))
            print(
                f"| {name} | {b.hwm_kb / 1024:.0f} |" if b else f"| {name} | — |",
                f" {s.hwm_kb / 1024:.0f} |" if s else " — |",
            )
        return 0
    print("| stage | baselines: peak + / kept + (MB) | steady cycles: peak + / kept + (MB) |\n|---|---|---|")
    for name in order:
        cells = []
        for phase in ("baseline", "steady"):
            st = tracer.stats.get((phase, name))
            cells.append("—" if st is None else f"{st.peak / 2**20:.1f} / {st.kept / 2**20:.1f} ({st.calls}×)")
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
