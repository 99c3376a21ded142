"""What the store keeps of a job between polls, as the diff compares it: its status and a
fingerprint of everything else, so a job listed again unchanged costs no write."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from providers import Job, JobStatus


@dataclass(frozen=True)
class Prior:
    """What the store knows of a job: its canonical status and a fingerprint of its data."""

    status: JobStatus
    fingerprint: str


def fingerprint(job: Job) -> str:
    """A short hash of everything stored about a job, to skip writes when nothing changed."""
    return hashlib.sha256(job.model_dump_json().encode()).hexdigest()[:16]
