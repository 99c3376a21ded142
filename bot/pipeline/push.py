"""Pushed changes: the EventBridge events of SageMaker and AWS Batch, read from an SQS queue.

An EventBridge rule in each account and Region sends the "SageMaker Training Job State Change" and
"Batch Service Job State Change" events to a standard SQS queue (docs/push.md). `EventConsumer`
long-polls that queue and, for each message:

1. reads the body as an EventBridge event and asks each queue that names this SQS queue
   (`events_queue_url`) to turn it into a Job with its adapter's own parser
   (providers.base.EventReading); every queue whose scope matches gets it;
2. applies each Job through `apply` (the worker's `apply_pushed`: the poll's diff and enqueue,
   in one transaction, with the guard that drops a state older than the stored one);
3. deletes the messages it applied, in one DeleteMessageBatch, and checks its `Failed` entries (a
   message whose delete failed comes back and is a duplicate, which changes nothing).

Standard queues deliver at least once and in no particular order
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html);
the guard makes both harmless. A message that is not JSON, not an event, or an event no queue
wants is logged, counted and left alone: it comes back after the visibility timeout and the SQS
queue's redrive policy moves it to a dead-letter queue after `maxReceiveCount` receives, so it is
never retried for ever nor lost without trace. A message whose apply failed (the store, a lost
lease) is not deleted either and is applied again when it comes back.

ReceiveMessage: at most 10 messages, long polling with WaitTimeSeconds up to 20
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html);
DeleteMessageBatch: at most 10 entries, each of which may fail while the call succeeds
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.clock import Clock, utcnow
from bot.pipeline.enqueue import Pushed
from providers import Job, ProviderError
from providers.base import EventReading
from providers.events import envelope

log = logging.getLogger(__name__)

MAX_MESSAGES = 10  # ReceiveMessage's and DeleteMessageBatch's limit
MAX_WAIT = 20  # ReceiveMessage's longest WaitTimeSeconds
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between receives after failures in a row

Apply = Callable[[str, Job], "Pushed | None"]


class PushHooks(Protocol):
    """What the consumer reports (bot/ops/metrics.py `Metrics` has these)."""

    def push_message(self, channel: str, outcome: str) -> None: ...

    def push_event(self, queue: str, outcome: str) -> None: ...

    def push_lag(self, queue: str, seconds: float) -> None: ...


class NoHooks:
    """Reports nothing."""

    def push_message(self, channel: str, outcome: str) -> None:
        return None

    def push_event(self, queue: str, outcome: str) -> None:
        return None

    def push_lag(self, queue: str, seconds: float) -> None:
        return None


@dataclass(frozen=True)
class Route:
    """A jobwatch queue that reads the events of an SQS queue, with its adapter's parser."""

    queue: str
    reader: EventReading


def outcome_of(pushed: Pushed, job_id: str) -> str:
    """What applying one job's pushed state did: applied, stale, duplicate, or early (no baseline yet)."""
    if not pushed.ready:
        return "early"
    if job_id in pushed.applied:
        return "applied"
    return "stale" if job_id in pushed.stale else "duplicate"


class EventConsumer:
    """Long-polls one SQS queue and applies the events it holds (see the module's docstring)."""

    def __init__(
        self,
        *,
        url: str,
        client: Any,
        routes: Sequence[Route],
        apply: Apply,
        hooks: PushHooks | None = None,
        clock: Clock = utcnow,
        wait_s: int = MAX_WAIT,
    ) -> None:
        self.url = url
        self.client = client
        self.routes = tuple(routes)
        self.apply = apply
        self.hooks = hooks or NoHooks()
        self.clock = clock
        self.wait_s = max(0, min(MAX_WAIT, wait_s))
        self.channel = "sqs:" + url.rstrip("/").rsplit("/", 1)[-1]

    def receive_once(self, stop: threading.Event | None = None) -> int:
        """One long poll, the apply of what it brought and its deletion; returns messages deleted."""
        answer = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=MAX_MESSAGES,
            WaitTimeSeconds=self.wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = answer.get("Messages") or []
        done: list[Mapping[str, Any]] = []
        for message in messages:
            if stop is not None and stop.is_set():
                break  # not applied, not deleted: it comes back after the visibility timeout
            if self.handle(message):
                done.append(message)
        return self.delete(done)

    def handle(self, message: Mapping[str, Any]) -> bool:
        """Apply one message; True when it may be deleted (applied, or nothing left to do with it)."""
        self.hooks.push_message(self.channel, "received")
        received = (message.get("Attributes") or {}).get("ApproximateReceiveCount", "?")
        try:
            event = json.loads(message.get("Body") or "")
            head = envelope(event)
            jobs = [(r.queue, job) for r in self.routes if (job := r.reader.job_from_event(event)) is not None]
        except (ValueError, ProviderError) as err:  # json.JSONDecodeError is a ValueError
            self.hooks.push_message(self.channel, "malformed")
            log.warning(
                "push_malformed channel=%s message_id=%s receives=%s error=%s",
                self.channel,
                message.get("MessageId"),
                received,
                str(err)[:300],
            )
            return False
        if not jobs:
            self.hooks.push_message(self.channel, "foreign")
            log.warning(
                "push_foreign channel=%s message_id=%s receives=%s source=%s detail_type=%s region=%s",
                self.channel,
                message.get("MessageId"),
                received,
                head.source,
                head.detail_type,
                head.region,
            )
            return False
        for queue, job in jobs:
            try:
                pushed = self.apply(queue, job)
            except Exception:
                self.hooks.push_event(queue, "error")
                log.exception("push_apply_failed queue=%s job_id=%s event_id=%s", queue, job.id, head.id)
                return False
            if pushed is None:  # the lease went: another worker applies it when it comes back
                return False
            outcome = outcome_of(pushed, job.id)
            self.hooks.push_event(queue, outcome)
            if outcome == "applied" and head.time is not None:
                self.hooks.push_lag(queue, max(0.0, (self.clock() - head.time).total_seconds()))
            log.info(
                "push_applied queue=%s job_id=%s status=%s outcome=%s event_id=%s",
                queue,
                job.id,
                job.status.value,
                outcome,
                head.id,
            )
        return True

    def delete(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """DeleteMessageBatch, 10 at a time; a failed entry is logged and counted (the message
        comes back, and applying it again changes nothing). Returns messages deleted."""
        deleted = 0
        for start in range(0, len(messages), MAX_MESSAGES):
            part = messages[start : start + MAX_MESSAGES]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(part)]
            answer = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            failed = answer.get("Failed") or []
            for entry in failed:
                self.hooks.push_message(self.channel, "delete_failed")
                log.warning(
                    "push_delete_failed channel=%s id=%s code=%s sender_fault=%s message=%s",
                    self.channel,
                    entry.get("Id"),
                    entry.get("Code"),
                    entry.get("SenderFault"),
                    entry.get("Message"),
                )
            deleted += len(answer.get("Successful") or [])
        return deleted

    def run(self, stop: threading.Event, *, holding: Callable[[], bool] = lambda: True) -> None:
        """Receive until `stop` is set, while `holding()` (the worker holds the lease); a failed
        receive or delete is logged and counted, and the next waits a little longer."""
        failures = 0
        while not stop.is_set():
            if not holding():
                stop.wait(1.0)
                continue
            try:
                self.receive_once(stop)
                failures = 0
            except Exception as err:
                self.hooks.push_message(self.channel, "receive_failed")
                log.warning("push_receive_failed channel=%s error=%s: %s", self.channel, type(err).__name__, err)
                stop.wait(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1
