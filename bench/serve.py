"""One real `jobwatch serve` process (`python -m bot serve`) for the benches that run the whole bot.

The bot runs as it does in production, in its own process with the HTTP app, the scheduler and the
worker, against the simulators and FakeSlack (bot/sim) that another process (or thread) serves on
127.0.0.1. The bench reads its `/metrics` page to know when polls have happened and `/proc` for
its memory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-test"
TEAM = "T0001"
SECRET = "bench-signing-secret"


def proc_status_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of another process, in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def polls_ok(metrics: str, queues: Sequence[str]) -> dict[str, int]:
    """Successful polls per queue, from a /metrics page; raises if a poll failed or crashed."""
    counts = dict.fromkeys(queues, 0)
    for line in metrics.splitlines():
        if not line.startswith("jobwatch_polls_total{"):
            continue
        labels, value = line[len("jobwatch_polls_total{") :].rsplit("} ", 1)
        fields = dict(part.split("=", 1) for part in labels.split(","))
        queue, outcome = fields["queue"].strip('"'), fields["outcome"].strip('"')
        if outcome != "ok" and float(value) > 0:
            raise RuntimeError(f"serve: {float(value):.0f} poll(s) of {queue} ended {outcome}")
        if outcome == "ok":
            counts[queue] = int(float(value))
    return counts


def subscriptions(queues: Sequence[str]) -> str:
    """One subscribed channel per queue (C0000, C0001, ...), as `[[subscriptions]]` entries."""
    return "".join(
        f'\n[[subscriptions]]\nchannel = "C{i:04d}"\nqueue = "{q}"\nteam = "{TEAM}"\n' for i, q in enumerate(queues)
    )


class Serve:
    """`python -m bot serve` with `config` (written to tmp/jobwatch.toml), a SQLite store in tmp,
    the simulators' `env` and FakeSlack at `slack_url`; stopped (SIGTERM) on exit."""

    def __init__(self, tmp: Path, config: str, env: Mapping[str, str], slack_url: str) -> None:
        self.tmp = tmp
        self.db = tmp / "bot.db"
        (tmp / "jobwatch.toml").write_text(config)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JOBWATCH_", "AWS_", "DATABASE_"))}
        self.env = {
            **clean,
            **env,
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack_url,
            "DATABASE_URL": f"sqlite:///{self.db}",
            "JOBWATCH_CONFIG": str(tmp / "jobwatch.toml"),
            "JOBWATCH_LOG_LEVEL": "ERROR",
            "PORT": str(port),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def __enter__(self) -> Serve:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], env=self.env, cwd=self.tmp, stdout=subprocess.DEVNULL
        )
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, and wait for the clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def status_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM of the serve process."""
        assert self.proc is not None
        return proc_status_kb(self.proc.pid)

    def wait_polls(self, at_least: Mapping[str, int], deadline_s: float) -> dict[str, int]:
        """Wait until each queue has at least `at_least[queue]` successful polls; returns the counts."""
        deadline = time.monotonic() + deadline_s
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited (rc={self.proc.returncode})")
            with suppress(httpx.TransportError):
                counts = polls_ok(httpx.get(self.metrics_url, timeout=5).text, list(at_least))
                if all(counts[q] >= at_least[q] for q in at_least):
                    return counts
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve: polls did not complete in {deadline_s:g} s")
            time.sleep(0.2)
