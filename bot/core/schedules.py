"""How often a scheduled digest is owed (bot/features/schedules.py): the `cadence` column of
bot/store/tables.py DigestSchedule holds one of these as its text (no migration: a `StrEnum` equals
the stored string)."""

from __future__ import annotations

from enum import StrEnum


class DigestCadence(StrEnum):
    """One digest a day, or one a week (on the schedule's weekday)."""

    DAILY = "daily"
    WEEKLY = "weekly"
