"""Owner e-mail addresses -> Slack users, through `users.lookupByEmail`, cached in the store.

An owner value (bot/core/owners.py) that the `[owners]` table does not name and that is an e-mail
address is looked up with Slack's `users.lookupByEmail` (scope `users:read.email`; the method's
page at docs.slack.dev puts it in rate-limit Tier 3, 50+ calls a minute per workspace). The
answer is kept in the table `email_user`, which the Slack handlers read too (`/jobs list mine`,
the App Home, bot/store/owners.py `known_users`):

- a user: kept HIT_TTL, then asked again (people change address rarely);
- `users_not_found` (or an answer that is no user id, or a deleted user): remembered MISS_TTL, so
  an owner who is not in the workspace costs one call per MISS_TTL, never one per alert;
- `missing_scope`: the app was installed without `users:read.email`; remembered SCOPE_TTL for the
  whole workspace (no call at all meanwhile), logged once per process, and reported by
  `jobwatch check`. Reinstalling with the scope makes the next lookup after SCOPE_TTL work;
- `ratelimited`: nothing is asked of that workspace until Retry-After has passed; other errors
  (5xx, timeouts): nothing for FAIL_PAUSE. Neither is remembered in the store.

Where the lookup happens, and why there: in the worker, before the poll's commit
(bot/worker.py), outside any store transaction, and not at delivery. The owner has to be known
when the commit decides which alert rows to write (a subscription's `--owner` filter, the
owner's thread mention, the owner's DM); deciding it at delivery would mean writing rows that may
turn out to be unwanted. The calls run in a small thread pool of their own: the poll waits for
them at most `deadline` (1.5 s) and only for owners of jobs that changed status in this poll; a
lookup still running then finishes in the background and fills the cache for later polls. Every
owner is looked up when its job is first seen (any listed job, not only changed ones), hours
before the job usually ends, so the failure that needs the mention finds the answer cached. A
slow or failing Slack therefore delays a poll's alerts by at most `deadline`, and only while it
is also failing those lookups (FAIL_PAUSE stops the waiting); what is lost then is the owner's
mention or DM for a job that changed during that time, never a channel alert (with an `--owner`
filter, an owner not known yet does not match).

Every id Slack returns is checked against bot/core/ids.py USER_RE before it is stored, so only a
validated id is ever mentioned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from slack_sdk import WebClient

from bot.core import owners
from bot.core.clock import Clock, utcnow
from bot.core.ids import USER_RE
from bot.core.lookups import LookupOutcome
from bot.slackapi.errors import classify
from bot.slackapi.pace import Pace
from bot.store import email_users
from bot.store.db import Database
from bot.store.email_users import SCOPE_KEY
from bot.store.owners import known_users
from bot.store.session import Session

log = logging.getLogger(__name__)

HIT_TTL = timedelta(hours=12)
MISS_TTL = timedelta(hours=1)
SCOPE_TTL = timedelta(hours=1)
FAIL_PAUSE = 60.0  # seconds without lookups (and without waiting) after a transient failure
DEADLINE = 1.5  # seconds a poll waits for lookups of owners whose jobs changed
TIER3_RATE = 50 / 60  # users.lookupByEmail: Tier 3, 50+ per minute per workspace
TIER3_BURST = 10.0
TTL = {
    LookupOutcome.OK: HIT_TTL,
    LookupOutcome.USERS_NOT_FOUND: MISS_TTL,
    LookupOutcome.NOT_A_USER: MISS_TTL,
    LookupOutcome.MISSING_SCOPE: SCOPE_TTL,
}


class EmailDirectory:
    """Looks owner e-mail addresses up in Slack for the worker, with the cache described above."""

    def __init__(
        self,
        db: Database,
        client_for: Callable[[str], WebClient],
        *,
        clock: Clock = utcnow,
        deadline: float = DEADLINE,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        token_team: Callable[[], str] | None = None,
    ) -> None:
        self.db = db
        self.token_team = token_team  # one bot token: its workspace (auth.test), for a queue nobody subscribed
        self._token_team = ""
        self.client_for = client_for
        self.clock = clock
        self.deadline = deadline
        self.monotonic = monotonic
        self.sleep = sleep
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lookup-by-email")
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], Future[str | None]] = {}
        self._paces: dict[str, Pace] = {}
        self._turns: dict[str, threading.Lock] = {}  # one lookup at a time per workspace
        self._paused: dict[str, float] = {}  # team -> monotonic time before which nothing is asked
        self._scope_logged: set[str] = set()

    def users(
        self, team: str, values: Iterable[str], table: Mapping[str, str], *, urgent: Iterable[str] = ()
    ) -> dict[str, str]:
        """Owner value -> validated Slack user id, for `values` that `[owners]` names or that are
        e-mail addresses Slack knows. Uncached addresses are looked up in the background; the call
        waits up to `deadline` for those among `urgent` (owners of jobs that changed). `team` "":
        the one bot token's workspace."""
        values = set(values)
        team = team or self._default_team()
        with self.db.read() as session:
            found = known_users(session, team, values, table)
            emails = {e: v for v in values - set(found) if (e := owners.email_of(v, table)) is not None}
            if not emails:
                return found
            fresh = self._fresh(session, team, [*emails, SCOPE_KEY])
        if SCOPE_KEY in fresh:
            self._log_scope(team)
            return found
        todo = {e: self._submit(team, e) for e in emails if e not in fresh}
        urgent_emails = {owners.email_of(v, table) for v in urgent}
        waiting = [f for e, f in todo.items() if e in urgent_emails]
        if waiting and not self._is_paused(team):
            wait(waiting, timeout=self.deadline)
        for email, future in todo.items():
            if future.done() and future.exception() is None and (user := future.result()) is not None:
                found[emails[email]] = user
        return found

    def _default_team(self) -> str:
        """The bot token's workspace, asked once (auth.test; "" until it answers, or in install mode)."""
        if not self._token_team and self.token_team is not None:
            try:
                self._token_team = self.token_team()
            except Exception as err:  # asked again at the next poll
                log.warning("lookup_by_email_no_team error=%s", err)
        return self._token_team

    def _fresh(self, session: Session, team: str, emails: list[str]) -> set[str]:
        """The addresses whose remembered answer has not expired."""
        now = self.clock()
        rows = email_users.remembered(session, team, emails)
        return {r.email for r in rows if r.checked_at > now - TTL.get(r.outcome, MISS_TTL)}

    def _is_paused(self, team: str) -> bool:
        with self._lock:
            return self._paused.get(team, 0.0) > self.monotonic()

    def _submit(self, team: str, email: str) -> Future[str | None]:
        """The running lookup of `email`, or a new one (one at a time per address)."""
        with self._lock:
            running = self._running.get((team, email))
            if running is None or running.done():
                running = self._running[(team, email)] = self._pool.submit(self._lookup, team, email)
            return running

    def _lookup(self, team: str, email: str) -> str | None:
        """Ask Slack once (one call at a time per workspace, paced to Tier 3, never while paused or
        after `missing_scope`); remember the answer."""
        with self._lock:
            turn = self._turns.setdefault(team, threading.Lock())
        with turn:
            return self._ask(team, email)

    def _ask(self, team: str, email: str) -> str | None:
        if self._is_paused(team):
            return None
        with self._lock:
            pace = self._paces.setdefault(team, Pace(TIER3_RATE, TIER3_BURST))
        delay = pace.wait(self.monotonic())
        if delay > 0:
            self.sleep(delay)
        try:
            response = self.client_for(team).users_lookupByEmail(email=email)
        except Exception as err:  # classified: remembered, paused or logged
            failure = classify(err)
            if failure.code in (LookupOutcome.USERS_NOT_FOUND, LookupOutcome.MISSING_SCOPE):
                scope = failure.code == LookupOutcome.MISSING_SCOPE
                self._remember(team, SCOPE_KEY if scope else email, None, LookupOutcome(failure.code))
                if scope:
                    with self._lock:  # the other addresses waiting for their turn ask nothing
                        self._paused[team] = self.monotonic() + SCOPE_TTL.total_seconds()
                    self._log_scope(team)
                return None
            pause = failure.retry_after or FAIL_PAUSE
            with self._lock:
                self._paused[team] = self.monotonic() + pause
            log.warning("lookup_by_email_failed team=%s code=%s pause_s=%.0f", team, failure.code, pause)
            return None
        user = response.get("user") or {}
        user_id = str(user.get("id") or "")
        if not USER_RE.match(user_id) or user.get("deleted"):
            log.warning("lookup_by_email_not_a_user team=%s", team)
            self._remember(team, email, None, LookupOutcome.NOT_A_USER)
            return None
        self._remember(team, email, user_id, LookupOutcome.OK)
        return user_id

    def _remember(self, team: str, email: str, user_id: str | None, outcome: LookupOutcome) -> None:
        with self.db.write() as session:
            email_users.remember(session, team, email, user_id, outcome, self.clock())

    def _log_scope(self, team: str) -> None:
        with self._lock:
            if team in self._scope_logged:
                return
            self._scope_logged.add(team)
        log.warning(
            "lookup_by_email_missing_scope team=%s: the app lacks users:read.email, so owners given as "
            "e-mail addresses are not looked up; reinstall the app with that scope, or map them in [owners]",
            team,
        )

    def close(self) -> None:
        """Stop the lookup threads (a running call ends on its own)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def missing_scope(db: Database, now: datetime) -> list[str]:
    """The workspaces whose last lookup said `missing_scope` (within SCOPE_TTL), for `jobwatch check`."""
    with db.read() as session:
        return email_users.scope_missing(session, now - SCOPE_TTL)
