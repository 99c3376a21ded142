"""The audit trail's closed set: what became of one attempted change (bot/features/access.py
records every attempt, allowed or refused; bot/store/audit.py keeps it in the `audit` table)."""

from __future__ import annotations

from enum import StrEnum


class AuditOutcome(StrEnum):
    """The `outcome` column of an audit row: `ok` or `refused` for every change; a stop may also end
    as a duplicate of a standing request, on a job already finished or stopping, on a job not
    found, or with the provider's failure or silence (bot/features/stopping.py)."""

    OK = "ok"
    REFUSED = "refused"
    DUPLICATE = "duplicate"
    FINISHED = "finished"
    STOPPING = "stopping"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    UNANSWERED = "unanswered"


class Via(StrEnum):
    """Where a change came from, as its audit row's action says (`subscribe (button)`): a slash
    command, a button under an alert, the queues file's [[subscriptions]] (bot/features/routing.py), or
    a Workflow Builder step (bot/features/workflow.py)."""

    COMMAND = "command"
    BUTTON = "button"
    FILE = "file"
    STEP = "step"
