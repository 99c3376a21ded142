"""A channel's subscription as the rest of the bot sees it: where it points, what it lets through
(one `SubscriptionFilter`, parsed once from the stored columns and written back once), its quiet
hours and whether it is paused.

The filter is the one rule for every kind of message about a job: a status alert (`wants`), a slow
or stuck flag (`wants_flag`) and a retry note (`wants_name`), at enqueue, when a subscription
changes and its owed rows are withdrawn, and in `/jobs subscribe --dry-run`.

- `statuses`: canonical statuses; empty with no `flags` either means every status change.
- `flags`: the events beside statuses a subscription may name (`slow`, `stuck`). A subscription that
  names any status or flag gets only those: naming only `slow` turns status alerts off.
- `match`: a job-name glob, compared case-insensitively.
- `causes`: failure causes (providers/causes.py); only failures are filtered by them.
- `owner`: a Slack user id; only the jobs whose owner maps to that person.
- `recovery`: the first success of a job family after a streak of failures (bot/core/history.py
  `recovered_after`) is told even to a subscription whose statuses leave successes out; False
  (`--no-recovery`, `recovery = false`) opts out. Owner and name filters still apply.
- `follow_up`: seconds after which a failure told to the channel that nobody has claimed gets one
  reply in its thread mentioning its owner or `[bot] follow_up_group` (bot/pipeline/followup.py);
  None: no follow-up. Not a filter of what is told, but stored and changed with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase

from bot.core.history import recovered_after
from bot.core.quiet import QuietHours
from providers import Job, JobStatus
from providers.causes import CAUSED


class FlagKind(StrEnum):
    """A slow or stuck job: an event beside the status changes (bot/pipeline/usual.py)."""

    SLOW = "slow"
    STUCK = "stuck"


class SubscriptionSource(StrEnum):
    """Where a subscription was made: `/jobs subscribe` in chat, or a [[subscriptions]] entry of the
    queues file (bot/features/routing.py), which chat may not change."""

    CHAT = "chat"
    FILE = "file"


def _words(column: str | None) -> list[str]:
    return [w for w in (column or "").split(",") if w]


@dataclass(frozen=True)
class SubscriptionFilter:
    """What a subscription lets through; see the module docstring. Order is kept as given."""

    statuses: tuple[JobStatus, ...] = ()
    flags: tuple[FlagKind, ...] = ()
    match: str | None = None
    causes: tuple[str, ...] = ()
    owner: str | None = None
    recovery: bool = True
    follow_up: int | None = None

    @classmethod
    def from_columns(
        cls,
        *,
        statuses: str | None,
        match: str | None = None,
        causes: str | None = "",
        owner: str | None = None,
        recovery: bool = True,
        follow_up: int | None = None,
    ) -> SubscriptionFilter:
        """The filter a subscription row stores (comma-separated `statuses` and `causes`). A word that
        is neither a status nor a flag kind names nothing, so the filter still lets nothing else
        through."""
        words = _words(statuses)
        kinds = {k.value for k in FlagKind}
        known = {s.value for s in JobStatus}
        return cls(
            statuses=tuple(JobStatus(w) for w in words if w in known),
            flags=tuple(FlagKind(w) for w in words if w in kinds),
            match=match or None,
            causes=tuple(_words(causes)),
            owner=owner or None,
            recovery=recovery,
            follow_up=follow_up or None,
            _names=tuple(words),
        )

    @classmethod
    def from_words(
        cls,
        words: Iterable[str],
        *,
        match: str | None = None,
        causes: Iterable[str] = (),
        owner: str | None = None,
        recovery: bool = True,
        follow_up: int | None = None,
    ) -> SubscriptionFilter:
        """The filter that names `words` (statuses and flag kinds, in the order given) with the other
        filters: what `/jobs subscribe` and a [[subscriptions]] entry ask for, as it will be stored."""
        return cls.from_columns(
            statuses=",".join(words),
            match=match,
            causes=",".join(causes),
            owner=owner,
            recovery=recovery,
            follow_up=follow_up,
        )

    # every word of the stored statuses column, in order (unknown ones too): what `restricts` reads
    _names: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._names:
            object.__setattr__(self, "_names", (*(s.value for s in self.statuses), *(f.value for f in self.flags)))

    def columns(self) -> dict[str, str | None]:
        """The stored columns: `statuses` (statuses then flags), `match`, `causes`, `owner`, and
        `recovery` ("" when on, the default; "off" when opted out)."""
        causes = ",".join(self.causes)
        return {
            "statuses": self.statuses_column,
            "match": self.match,
            "causes": causes,
            "owner": self.owner,
            "recovery": "" if self.recovery else "off",
            "follow_up": str(self.follow_up) if self.follow_up else "",
        }

    @property
    def statuses_column(self) -> str:
        """Statuses then flag kinds, comma-separated, as the `statuses` column keeps them."""
        return ",".join(self._names)

    @property
    def names(self) -> tuple[str, ...]:
        """The statuses and flag kinds named, in order."""
        return self._names

    @property
    def restricts(self) -> bool:
        """Whether any status or flag is named (else every status change goes through)."""
        return bool(self._names)

    def wants_name(self, name: str) -> bool:
        """Whether the job name glob (if any) takes `name`."""
        return not self.match or fnmatchcase(name.lower(), self.match.lower())

    def wants_owner(self, owner: str | None) -> bool:
        """Whether `owner` (the Slack user id a job's owner maps to, if known) passes the owner filter."""
        return not self.owner or owner == self.owner

    def wants(self, job: Job, owner: str | None = None) -> bool:
        """Whether a status alert about `job` (its new status, name, cause and `owner`) goes through;
        a recovery passes the status filter unless the subscription opted out."""
        recovering = self.recovery and recovered_after(job) > 0
        if self.restricts and job.status.value not in self._names and not recovering:
            return False
        if not self.wants_owner(owner):
            return False
        if self.causes and job.status in CAUSED and job.extra.get("cause", "unknown") not in self.causes:
            return False
        return self.wants_name(job.name)

    def wants_flag(self, kind: FlagKind, job: Job, owner: str | None = None) -> bool:
        """Whether a flag of `kind` about `job` goes through: every flag without a status filter,
        else only the kinds named; then the owner and name filters."""
        if self.restricts and kind.value not in self._names:
            return False
        return self.wants_owner(owner) and self.wants_name(job.name)


@dataclass(frozen=True)
class Subscribed:
    """One channel subscribed to one queue, as the pipeline and the features read it."""

    id: int
    team_id: str
    channel_id: str
    queue: str
    filter: SubscriptionFilter
    quiet: QuietHours | None = None
    paused_reason: str | None = None
    source: SubscriptionSource = SubscriptionSource.CHAT
    created_by: str = ""
    created_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Not paused (a paused subscription is owed nothing new)."""
        return self.paused_reason is None
