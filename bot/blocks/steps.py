"""What jobwatch's Workflow Builder steps hand back (docs/slack-native.md §Workflow Builder steps):
the outputs of "Get job status" and "Wait for job to finish", as plain values, not mrkdwn (a
workflow puts them where it likes). Their names and types are the `output_parameters` of the
steps in manifest.yml; tests/bot/test_steps.py holds the two to each other."""

from __future__ import annotations

from typing import Any

from bot.blocks.text import clip, duration
from providers import Job

REASON_MAX = 1_000
STEP_ERROR_MAX = 1_000

# name -> manifest type; the first three are always given, the others when the job has them
OUTPUTS: dict[str, str] = {
    "status": "string",
    "native_status": "string",
    "job_name": "string",
    "job_id": "string",
    "duration": "string",
    "duration_seconds": "integer",
    "reason": "string",
    "failure_cause": "string",
    "console_link": "string",
}
REQUIRED = ("status", "native_status", "job_name", "job_id")


def step_outputs(job: Job) -> dict[str, Any]:
    """The outputs of a job's status step: canonical and native status, name and id always;
    duration, reason, failure cause (providers/causes.py) and console link when known."""
    out: dict[str, Any] = {
        "status": job.status.value,
        "native_status": job.native_status,
        "job_name": clip(job.name, 500),
        "job_id": job.id,
    }
    took = job.duration_seconds
    if took is not None:
        out["duration"] = duration(took)
        out["duration_seconds"] = int(took)
    if job.reason:
        out["reason"] = clip(job.reason, REASON_MAX)
    cause = job.extra.get("cause")
    if cause:
        out["failure_cause"] = str(cause)
    if job.url:
        out["console_link"] = job.url
    return out


def step_error(problem: str) -> str:
    """The words a failed step shows its workflow's runner (functions.completeError `error`)."""
    return clip(f"jobwatch: {problem}", STEP_ERROR_MAX)
