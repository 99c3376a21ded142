"""What one outbox row looks like in Slack: `message_for` renders a row by its kind
(bot/core/outbox.py OutboxKind, one case each), and `metadata` carries the row's alert id in the
message, so that recovery (bot/pipeline/recover.py) can find a post whose answer was lost."""

from __future__ import annotations

from typing import Any, assert_never

from bot.blocks import render
from bot.core.outbox import DigestPartPayload, DigestPayload, OutboxKind, TextPayload
from bot.store.tables import OutboxItem
from providers import Job, JobStatus

EVENT_TYPE = "jobwatch_alert"


class UnknownKind(ValueError):
    """A stored row of a kind this code does not know (written by a newer version, or by hand): it
    is an error, never shown as an alert."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown kind: {kind}")
        self.kind = kind


class NotAMessage(ValueError):
    """A row that is no message: a workflow step's completion is a call of its own
    (bot/pipeline/steps.py, sent by bot/pipeline/send.py before anything is rendered)."""


def metadata(alert_id: str) -> dict[str, Any]:
    """The message metadata that lets recovery find a post again."""
    return {"event_type": EVENT_TYPE, "event_payload": {"alert_id": alert_id, "v": 1}}


def message_for(item: OutboxItem, *, stop_by: str = "") -> tuple[render.Message, Job | None]:
    """Render an outbox row (`stop_by`: the provider that can stop the alert's job, if any), with
    the job when the row is a status change (its thread parent is then brought up to date);
    UnknownKind for a kind that is no OutboxKind, NotAMessage for a `step` row."""
    try:
        kind = OutboxKind(item.kind)
    except ValueError:
        raise UnknownKind(item.kind) from None
    match kind:
        case OutboxKind.NOTICE:
            return render.notice_message(TextPayload.load(item.payload).text), None
        case OutboxKind.NOTE:  # a claim's note carries the card its thread parent shows next
            note = TextPayload.load(item.payload)
            return render.note_message(note.text), Job.stored(note.card) if note.card else None
        case OutboxKind.DIGEST:
            body = DigestPayload.load(item.payload)
            causes = {status: dict(by) for status, by in (body.causes or {}).items()}
            message = render.digest_message(
                dict(body.counts), body.queues, title=body.title, notes=body.notes, causes=causes, flags=body.flags
            )
            return message, None
        case OutboxKind.DIGEST_PART:
            part = DigestPartPayload.load(item.payload)
            return render.digest_lines(part.lines, part=part.part, parts=part.parts), None
        case OutboxKind.DM:
            return render.dm_message(Job.stored(item.payload), _old(item)), None
        case OutboxKind.FLAG:  # a slow or stuck job (bot/pipeline/usual.py): the card stays as it is
            return render.flag_message(Job.stored(item.payload)), None
        case OutboxKind.ALERT:
            job = Job.stored(item.payload)
            return render.alert_message(job, _old(item), stop_by=stop_by), job
        case OutboxKind.STEP:
            raise NotAMessage(f"a {kind} row completes a workflow step; it is no message (outbox id {item.id})")
        case _:
            assert_never(kind)


def _old(item: OutboxItem) -> JobStatus | None:
    return JobStatus(item.old_status) if item.old_status else None
