"""Prometheus metrics of one process, on its own registry (several Runtimes in one test never collide).

Counters and histograms are fed by hooks the worker, the listeners and the Slack client call;
gauges about the store (outbox depth and age, what each channel is owed and for how long, last
successful poll) are read at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from bot.core.clock import Clock, utcnow
from bot.core.outbox import OutboxState
from bot.slackapi.errors import classify
from bot.store import stats as store_stats

if TYPE_CHECKING:
    from bot.pipeline.deliver import Stats
    from bot.store.db import Database

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
LAG_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300)
COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The metrics of one process and the hooks that feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "jobwatch_polls",
            "Polls of a queue by outcome (ok, failed, lost_lease, error).",
            ["queue", "outcome"],
            registry=r,
        )
        self.poll_duration = Histogram(
            "jobwatch_poll_duration_seconds",
            "Time to list a queue and commit the result.",
            ["queue"],
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.poll_failures = Counter(
            "jobwatch_poll_failures", "Failed polls (provider error or adapter crash).", ["queue"], registry=r
        )
        self.enqueued = Counter("jobwatch_alerts_enqueued", "Outbox rows a poll enqueued.", ["queue"], registry=r)
        self.alerts = Counter(
            "jobwatch_alerts", "Delivery outcomes: sent, retried, dead, ambiguous, recovered.", ["outcome"], registry=r
        )
        self.slack_calls = Counter("jobwatch_slack_api_calls", "Slack Web API calls by method.", ["method"], registry=r)
        self.slack_errors = Counter(
            "jobwatch_slack_api_errors",
            "Failed Slack Web API calls by method and error code.",
            ["method", "error"],
            registry=r,
        )
        self.push_messages = Counter(
            "jobwatch_push_messages",
            "Pushed messages by channel (sqs:<queue>, webhook:<queue>) and outcome: received, malformed, "
            "foreign, delete_failed, receive_failed.",
            ["channel", "outcome"],
            registry=r,
        )
        self.push_events = Counter(
            "jobwatch_push_events",
            "Pushed job states by queue and outcome: applied, stale, duplicate, early (before the baseline), error.",
            ["queue", "outcome"],
            registry=r,
        )
        self.push_lags = Histogram(
            "jobwatch_push_lag_seconds",
            "From the provider's event time to the commit of the change it pushed.",
            ["queue"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.delivery_buckets = Gauge(
            "jobwatch_delivery_buckets_held",
            "Delivery buckets this worker holds (sharded delivery; 0 without JOBWATCH_SHARDED).",
            registry=r,
        )
        self.command_duration = Histogram(
            "jobwatch_command_duration_seconds",
            "Time to answer one /jobs command, by subcommand.",
            ["subcommand"],
            buckets=COMMAND_BUCKETS,
            registry=r,
        )

    # -- hooks -----------------------------------------------------------------------------

    def poll_done(self, queue: str, outcome: str, seconds: float, *, enqueued: int = 0) -> None:
        """One poll of `queue` ended."""
        self.polls.labels(queue, outcome).inc()
        self.poll_duration.labels(queue).observe(seconds)
        if outcome == "failed":
            self.poll_failures.labels(queue).inc()
        if enqueued:
            self.enqueued.labels(queue).inc(enqueued)

    def delivered(self, stats: Stats) -> None:
        """One delivery round's counts."""
        for outcome in ("sent", "retried", "dead", "ambiguous", "recovered"):
            count = getattr(stats, outcome)
            if count:
                self.alerts.labels(outcome).inc(count)

    def buckets_held(self, count: int) -> None:
        """How many delivery buckets this worker holds after a renewal."""
        self.delivery_buckets.set(count)

    def slack_call(self, method: str, error: str | None) -> None:
        """One Slack Web API call, and its error code if it failed."""
        self.slack_calls.labels(method).inc()
        if error is not None:
            self.slack_errors.labels(method, error).inc()

    def push_message(self, channel: str, outcome: str) -> None:
        """One pushed message received, or what was wrong with it (bot/pipeline/push.py)."""
        self.push_messages.labels(channel, outcome).inc()

    def push_event(self, queue: str, outcome: str) -> None:
        """What applying one pushed job state did."""
        self.push_events.labels(queue, outcome).inc()

    def push_lag(self, queue: str, seconds: float) -> None:
        """Seconds from a provider's event to the commit of its change."""
        self.push_lags.labels(queue).observe(seconds)

    def command(self, subcommand: str, seconds: float) -> None:
        """One slash command answered."""
        self.command_duration.labels(subcommand).observe(seconds)

    # -- store gauges and exposition -------------------------------------------------------

    def watch_store(self, db: Database, queues: Sequence[str], *, clock: Clock = utcnow) -> None:
        """Add gauges read from the store at every scrape."""
        self.registry.register(StoreCollector(db, queues, clock=clock))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class StoreCollector(Collector):
    """Outbox depth by state, oldest pending age and last successful poll age, read at scrape time."""

    def __init__(self, db: Database, queues: Sequence[str], *, clock: Clock = utcnow) -> None:
        self.db = db
        self.queues = tuple(queues)
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # no describe-time DB read; names are checked when collected

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("jobwatch_store_up", "1 when the store answered the last scrape.")
        try:
            outbox = store_stats.outbox(self.db)
            polls = store_stats.polls(self.db)
            now = self.clock()
            channels = store_stats.due_by_channel(self.db, now)
        except Exception as err:  # a scrape must not fail because the store is down: say so
            log.warning("metrics_store_unreachable error=%s", type(err).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("jobwatch_outbox_items", "Outbox rows by state.", labels=["state"])
        for state in sorted({s.value for s in OutboxState} | set(outbox.by_state)):
            depth.add_metric([state], outbox.by_state.get(state, 0))
        yield depth
        oldest = GaugeMetricFamily(
            "jobwatch_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row (0 when none)."
        )
        oldest.add_metric([], max(0.0, (now - outbox.oldest_pending).total_seconds()) if outbox.oldest_pending else 0.0)
        yield oldest
        yield from self._channels(channels, now)
        age = GaugeMetricFamily(
            "jobwatch_last_successful_poll_age_seconds",
            "Seconds since the last complete poll of a queue (absent until its first).",
            labels=["queue"],
        )
        failures = GaugeMetricFamily(
            "jobwatch_queue_consecutive_failures", "Failed polls of a queue since its last success.", labels=["queue"]
        )
        for queue in self.queues:
            seen = polls.get(queue)
            if seen is not None and seen.last_success_at is not None:
                age.add_metric([queue], max(0.0, (now - seen.last_success_at).total_seconds()))
            failures.add_metric([queue], seen.consecutive_failures if seen else 0)
        yield age
        yield failures

    @staticmethod
    def _channels(channels: dict[str, store_stats.ChannelDue], now: datetime) -> Iterator[Metric]:
        """Per channel with rows due: how long the oldest has waited since it was due (a channel that
        is starved, or held by Slack, shows here), and how many wait."""
        waited = GaugeMetricFamily(
            "jobwatch_channel_oldest_due_age_seconds",
            "Seconds since the oldest pending row of a channel (a DM: the person) became due (absent: none due).",
            labels=["channel"],
        )
        count = GaugeMetricFamily(
            "jobwatch_channel_due_items", "Pending rows of a channel due now (absent: none).", labels=["channel"]
        )
        for channel, due in sorted(channels.items()):
            waited.add_metric([channel], max(0.0, (now - due.since).total_seconds()))
            count.add_metric([channel], due.count)
        yield waited
        yield count


class InstrumentedWebClient(WebClient):
    """A WebClient that reports every Web API call, and the error code of each failed one."""

    def __init__(self, *args: Any, on_call: Callable[[str, str | None], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_call = on_call

    def api_call(self, api_method: str, *args: Any, **kwargs: Any) -> SlackResponse:
        try:
            response = super().api_call(api_method, *args, **kwargs)
        except Exception as err:
            self.on_call(api_method, classify(err).code)
            raise
        self.on_call(api_method, None)
        return response
