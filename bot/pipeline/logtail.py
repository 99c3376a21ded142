"""Log tails: the last lines of a failed job's log, in the failure's thread, never in the poll's way.

For a queue with `log_tail = true` (SageMaker and AWS Batch: the adapters with the LogTailing
capability), the poll's commit writes one `log_tail` row beside each failure or time-out alert it
enqueues (bot/pipeline/enqueue.py), in the same transaction. Nothing else happens in the poll: no
request, no wait. The worker's `log_tails` job (every EVERY seconds, behind the poller lease) takes
the due rows and reads each tail through the adapter (two requests at most) in a thread pool, with a
deadline of DEADLINE seconds. Then, in one transaction behind the lease's fence, it writes one outbox
note per channel that got the alert, keyed `logs:<alert id>` (unique per channel, so a note is
written once even if a crash makes us read the tail again), and marks the row done. Delivery posts
the note in the job's thread, after the alert (a thread-only note waits for its alert; one whose
alert went into a digest or a mute is dropped: bot/pipeline/send.py).

A failed read (throttling, a timeout, a 5xx, an unexpected answer) is tried again after BACKOFF
(30 s, 2 min, 8 min): TRIES reads in all. A read the provider refuses for good (the bot's identity
may not read the logs) is not retried. Either way the row then ends `failed` with a short note in
the thread saying that the tail could not be read and why: whoever turned `log_tail` on expects a
tail under each failure, and a silent gap would look like a bug, while the reason (a missing IAM
permission, say) tells the operator what to fix. A job that wrote no log gets a one-line note too.
The alert itself never waits for any of this: it is already in the outbox when the row is written.

The log text is untrusted: each line is cleaned (terminal colour codes and carriage-return
progress bars removed, control characters dropped), clipped to LINE_MAX characters, escaped for
Slack mrkdwn (`&`, `<`, `>`, so `<!channel>` in a log pings nobody) with backticks neutralised (a
line cannot close the code block), and the oldest lines are dropped until the block fits TAIL_MAX
characters, far below a section's 3,000.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as DeadlineExceeded
from datetime import timedelta

from bot.blocks import render
from bot.core.alert_ids import logs_id
from bot.core.clock import Clock, utcnow
from bot.core.log_tails import LogTailState
from bot.core.outbox import OutboxRow, TextPayload
from bot.store import log_tails, outbox
from bot.store.db import Database
from bot.store.lease import Fence
from bot.store.tables import LogTailRequest
from providers import Job, JobSource, LogTail, LogTailing, ProviderError, wants_log_tail

log = logging.getLogger(__name__)

LINES = 20  # log lines asked for
LINE_MAX = 240  # characters kept of one line
TAIL_MAX = 2_400  # characters of (escaped) log text in one note
DEADLINE = 15.0  # seconds one read may take (its two requests and connecting)
TRIES = 4
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=8))
EVERY = 5  # seconds between rounds of the worker job
BATCH = 8  # rows per round, all read at once: the round lasts at most DEADLINE
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(line: str) -> str:
    """One log line as a person would have seen it in a terminal, without control characters."""
    text = _ANSI.sub("", line.rstrip("\r\n"))
    if "\r" in text:  # a progress bar redrawn in place: its last state
        text = [part for part in text.split("\r") if part.strip()][-1] if text.strip() else ""
    return _CONTROL.sub("", text.replace("\t", "    "))


def tail_block(lines: tuple[str, ...], *, limit: int = TAIL_MAX) -> tuple[str, int]:
    """The lines as the body of a mrkdwn code block (newest last), and how many old lines were dropped."""
    shown = [render.escape(render.clip(clean_line(line), LINE_MAX).replace("`", "'")) for line in lines]
    size = sum(len(line) + 1 for line in shown)
    dropped = 0
    while shown and size > limit:
        size -= len(shown.pop(0)) + 1
        dropped += 1
    return "\n".join(shown), dropped


def tail_text(job: Job, tail: LogTail | None) -> str:
    """The thread note for a tail that was read (None: the job has no log)."""
    name = render.safe(job.name)
    if tail is None or not tail.lines:
        return f":scroll: No log lines found for *{name}*: it ended before it wrote any."
    body, dropped = tail_block(tail.lines)
    count = len(tail.lines) - dropped
    more = f" ({dropped} earlier line(s) left out to fit)" if dropped else ""
    where = render.safe(tail.source, 300)
    return f":scroll: Last {count} log line(s) of *{name}*{more}, from `{where}`:\n```\n{body}\n```"


def failure_text(job: Job, err: BaseException, tries: int) -> str:
    """The thread note after giving up on a tail."""
    name = render.safe(job.name)
    if isinstance(err, ProviderError) and not err.retryable:
        why = f"the provider refused ({render.safe(str(err), 300)})"
    else:
        if isinstance(err, DeadlineExceeded):
            last = "no answer in time"
        else:
            last = f"{type(err).__name__}: {render.safe(str(err), 200)}"
        why = f"{tries} tries failed, the last with {last}"
    return f":scroll: Could not read the log tail of *{name}*: {why}"


class LogTails:
    """The worker's log-tail job: reads due tails and writes their notes."""

    def __init__(
        self,
        *,
        db: Database,
        sources: Mapping[str, JobSource],
        clock: Clock = utcnow,
        deadline: float = DEADLINE,
        lines: int = LINES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.sources = sources
        self.clock = clock
        self.deadline = deadline
        self.lines = lines
        self.monotonic = monotonic
        self._reads = ThreadPoolExecutor(max_workers=BATCH, thread_name_prefix="logtail")

    @property
    def wanted(self) -> bool:
        """Whether any queue asks for log tails (else the worker does not schedule the job)."""
        return any(wants_log_tail(s) for s in self.sources.values())

    def run_once(self, fence: Fence | None) -> int:
        """Read every due tail (in parallel, each with its deadline) and settle it; returns rows settled."""
        now = self.clock()
        with self.db.read() as session:
            due = log_tails.due(session, now, BATCH)
        reads: list[tuple[LogTailRequest, Job, Future[LogTail | None] | None]] = []
        for row in due:
            job = Job.stored(row.job)
            source = self.sources.get(row.queue)
            if source is None or not wants_log_tail(source):  # gone from the file, or log_tail turned off
                reads.append((row, job, None))
                continue
            assert isinstance(source, LogTailing)  # wants_log_tail() said so
            reads.append((row, job, self._reads.submit(source.log_tail, job, lines=self.lines)))
        settled = 0
        end = self.monotonic() + self.deadline
        for row, job, future in reads:
            if future is None:
                settled += self._settle(
                    row, fence, state=LogTailState.FAILED, text=None, error="queue has no log tail now"
                )
                continue
            try:
                tail = future.result(timeout=max(0.0, end - self.monotonic()))
            except Exception as err:  # every failure of a read is counted and retried, or given up on
                settled += self._failed(row, job, err, fence)
                continue
            settled += self._settle(row, fence, state=LogTailState.DONE, text=tail_text(job, tail), error=None)
        return settled

    def _failed(self, row: LogTailRequest, job: Job, err: BaseException, fence: Fence | None) -> int:
        tries = row.attempts + 1
        error = f"{type(err).__name__}: {err}"[:500]
        log.warning("log_tail_failed queue=%s job_id=%s try=%d error=%s", row.queue, row.job_id, tries, error)
        final = tries >= TRIES or (isinstance(err, ProviderError) and not err.retryable)
        if final:
            return self._settle(row, fence, state=LogTailState.FAILED, text=failure_text(job, err, tries), error=error)
        with self.db.write() as session:
            if fence is not None:
                fence.check(session)
            stored = log_tails.pending(session, row.id)
            if stored is None:
                return 0
            log_tails.retry_later(
                session, stored, tries=tries, error=error, at=self.clock() + BACKOFF[min(tries, len(BACKOFF)) - 1]
            )
        return 0

    def _settle(
        self, row: LogTailRequest, fence: Fence | None, *, state: LogTailState, text: str | None, error: str | None
    ) -> int:
        """Mark the row settled and write the note to each channel that got its alert, in one transaction."""
        now = self.clock()
        with self.db.write() as session:
            if fence is not None:
                fence.check(session)
            stored = log_tails.pending(session, row.id)
            if stored is None:
                return 0
            log_tails.settle(session, stored, state, error)
            if text is None:
                return 1
            alerts = outbox.told(session, row.alert_id)  # the channels that got, or will get, the alert
            note = TextPayload(text, thread_only=True, after=row.alert_id)  # in the alert's thread, after it
            outbox.insert(
                session,
                (
                    OutboxRow.note(
                        logs_id(row.alert_id),
                        note,
                        team_id=team,
                        channel_id=channel,
                        queue=row.queue,
                        job_id=row.job_id,
                        status=status,
                        now=now,
                    )
                    for team, channel, status in alerts
                ),
            )
        return 1

    def close(self) -> None:
        """Stop taking reads (a read still running ends at its own timeouts)."""
        self._reads.shutdown(wait=False, cancel_futures=True)
