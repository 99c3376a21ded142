"""Where a log-tail request stands (bot/pipeline/logtail.py): the `state` column of
bot/store/tables.py LogTailRequest holds one of these as its text (no migration: a `StrEnum` equals
the stored string).

    pending -> done      the notes were written
    pending -> failed    given up (or the queue no longer tails logs); a note says why when it can
"""

from __future__ import annotations

from enum import StrEnum


class LogTailState(StrEnum):
    """A log-tail request: owed, settled with its notes, or given up."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
