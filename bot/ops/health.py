"""Readiness (/readyz): the store answers, Slack answers auth.test, and the worker's polls are fresh."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bot.core.clock import Clock, utcnow
from bot.slackapi.errors import classify
from bot.store import stats as store_stats
from bot.store.db import Database

log = logging.getLogger(__name__)

SLACK_TTL = 30.0  # seconds an auth.test answer is trusted: probes must not hammer Slack
SLACK_FAILURE_TTL = 5.0  # a failure is retried sooner
STALE_FACTOR = 3.0  # a queue is stale when its last good poll is older than this many intervals


@dataclass(frozen=True)
class Report:
    """One readiness answer."""

    ready: bool
    body: dict[str, Any]


class Readiness:
    """Checks for /readyz. With `intervals` (a process running the worker) stale polls fail it too."""

    def __init__(
        self,
        db: Database,
        slack: WebClient,
        *,
        intervals: Mapping[str, float] | None,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        slack_ttl: float = SLACK_TTL,
        stale_factor: float = STALE_FACTOR,
    ) -> None:
        self.db = db
        self.slack = slack
        self.intervals = dict(intervals) if intervals is not None else None
        self.clock = clock
        self.monotonic = monotonic
        self.slack_ttl = slack_ttl
        self.stale_factor = stale_factor
        self.started = clock()
        self._lock = threading.Lock()
        self._slack: tuple[float, str | None] | None = None  # (checked at, error or None)

    def slack_error(self) -> str | None:
        """None when auth.test answered ok recently, else the error code (cached)."""
        with self._lock:
            now = self.monotonic()
            if self._slack is not None:
                stamp, error = self._slack
                if now - stamp < (self.slack_ttl if error is None else min(self.slack_ttl, SLACK_FAILURE_TTL)):
                    return error
            try:
                # Install mode has no process-wide token: then api.test tells that Slack answers.
                response = self.slack.auth_test() if self.slack.token else self.slack.api_test()
                error = None if response.get("ok") else str(response.get("error") or "not ok")
            except Exception as err:
                error = classify(err).code
            if error is not None:
                log.warning("readiness_slack_failed error=%s", error)
            self._slack = (now, error)
            return error

    def __call__(self) -> Report:
        """Check everything; the body names what is wrong."""
        problems: list[str] = []
        ages: dict[str, float | None] = {}
        database = True
        try:
            polls = store_stats.polls(self.db)
        except Exception as err:
            log.warning("readiness_database_failed error=%s", type(err).__name__)
            database = False
            problems.append(f"database: {type(err).__name__}")
            polls = {}
        now = self.clock()
        slack = self.slack_error()
        if slack is not None:
            problems.append(f"slack: {slack}")
        if database:
            for queue, interval in sorted((self.intervals or {}).items()):
                last = polls[queue].last_success_at if queue in polls else None
                ages[queue] = round((now - last).total_seconds(), 1) if last is not None else None
                since = last if last is not None else self.started  # grace from start-up to the first poll
                if (now - since).total_seconds() > self.stale_factor * interval:
                    problems.append(f"queue {queue}: no successful poll for {(now - since).total_seconds():.0f}s")
        body: dict[str, Any] = {
            "status": "ok" if not problems else "unavailable",
            "database": database,
            "slack": slack is None,
            "last_poll_age_s": ages,
            "worker": self.intervals is not None,
        }
        if problems:
            body["reason"] = "; ".join(problems)
        return Report(not problems, body)
