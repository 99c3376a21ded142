"""Stage 2, pure: previous snapshot vs observed jobs -> snapshots to write and transitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.alert_ids import transition_id
from bot.core.snapshot import Prior, fingerprint
from providers import Job, JobStatus
from providers.attempts import attempt_of
from providers.events import stale


@dataclass(frozen=True)
class Transition:
    """A change of canonical status (old is None for a job first seen after the baseline)."""

    job: Job
    old: JobStatus | None

    @property
    def alert_id(self) -> str:
        """Deterministic id: the same change always gets the same id, across crashes and re-polls."""
        updated = self.job.updated_at.isoformat() if self.job.updated_at else ""
        return transition_id(self.job.queue, self.job.id, self.old or "", self.job.status, updated)

    @property
    def quiet(self) -> bool:
        """A change within a provider's retry (a job on attempt 2 or later going back to queued, or
        running again; a stop or an unknown status still alerts): stored and recorded, never a
        channel alert; the failed attempt is a note in
        the job's thread instead (providers/attempts.py) and the final outcome an ordinary alert."""
        cycle = (JobStatus.QUEUED, JobStatus.RUNNING)
        return self.old in cycle and self.job.status in cycle and attempt_of(self.job) > 1


@dataclass(frozen=True)
class DiffResult:
    """Jobs whose stored data must change, and the transitions to announce."""

    upserts: list[Job]
    transitions: list[Transition]


def ended_before(job: Job, cutoff: datetime | None) -> bool:
    """A finished job whose last known time is before `cutoff` (old history, not news)."""
    if cutoff is None or not job.status.terminal:
        return False
    last = job.ended_at or job.updated_at or job.created_at
    return last is not None and last < cutoff


def diff(
    previous: Mapping[str, Prior], observed: Iterable[Job], *, baseline: bool, forgotten_before: datetime | None = None
) -> DiffResult:
    """Compare on canonical status.

    A baseline stores without announcing; a terminal job never moves back; a move into
    `unknown` (an unmapped native status) is stored but not announced. A job the store does
    not know that finished before `forgotten_before` (the retention cutoff) is old history
    whose snapshot was pruned and the provider listed again: stored, not announced.
    """
    upserts: list[Job] = []
    transitions: list[Transition] = []
    for job in observed:
        prior = previous.get(job.id)
        if prior is None:
            upserts.append(job)
            if not baseline and job.status is not JobStatus.UNKNOWN and not ended_before(job, forgotten_before):
                transitions.append(Transition(job, None))
            continue
        if prior.status.terminal and not job.status.terminal:
            continue  # eventual consistency or a replica behind: never un-finish a job
        if prior.fingerprint != fingerprint(job):
            upserts.append(job)
        if prior.status != job.status and job.status is not JobStatus.UNKNOWN:
            transitions.append(Transition(job, prior.status))
    return DiffResult(upserts, transitions)


@dataclass(frozen=True)
class Guarded:
    """A diff brought up to date with the store (`against_stored`), and the jobs it dropped as stale."""

    result: DiffResult
    stale: list[str]


def against_stored(
    result: DiffResult, stored: Mapping[str, Job], *, native_order: Sequence[str] = (), baseline: bool = False
) -> Guarded:
    """The diff as the commit's own transaction must write it: `stored` is each upserted job as
    the store holds it now, which may be newer than what the diff compared with (a pushed event
    and a poll of the same queue run at once, and events come in any order).

    A job older than the stored one (providers/events.py `stale`) is dropped with its transition:
    never a step back. A job whose stored status changed since the diff read it gets its
    transition from the stored status (none when it is the same: the other writer announced it).
    So poll and push, in any order, announce each change once.
    """
    changed = {t.job.id: t for t in result.transitions}
    upserts: list[Job] = []
    transitions: list[Transition] = []
    dropped: list[str] = []
    for job in result.upserts:
        now = stored.get(job.id)
        found = changed.get(job.id)
        if now is not None and stale(job, now, native_order):
            dropped.append(job.id)
            continue
        upserts.append(job)
        if now is None or (found is not None and found.old == now.status):
            if found is not None:
                transitions.append(found)
            continue
        if not baseline and now.status != job.status and job.status is not JobStatus.UNKNOWN:
            transitions.append(Transition(job, now.status))
    return Guarded(DiffResult(upserts, transitions), dropped)
