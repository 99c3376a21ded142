"""Failure causes: one rule table per provider, from the reason strings the providers document.

A failed or timed-out job gets one category (CAUSES) from its `reason`; the first rule of its
provider's table that matches wins, so specific rules come before the generic prefixes (an
`AlgorithmError: ... out of memory` is out_of_memory, not user_code). No rule matching: a
timed-out job is `timeout`, anything else `unknown`. Each rule quotes the reason it was built
from and where that string is published; docs/causes.md lists them and tests/providers/
test_causes.py checks every rule against its own example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from providers.model import Job, JobStatus

CAUSES: tuple[str, ...] = (
    "out_of_memory",
    "spot_interruption",
    "capacity",
    "quota",
    "image_pull",
    "permissions",
    "bad_input",
    "user_code",
    "timeout",
    "stopped_by_user",
    "unknown",
)
ALIASES: Mapping[str, str] = {"oom": "out_of_memory", "spot": "spot_interruption", "code": "user_code"}
CAUSED = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})


@dataclass(frozen=True)
class Rule:
    """`pattern` (searched, case-insensitive) in a reason means `cause`; `example` is a real reason
    string and `source` where it is published."""

    cause: str
    pattern: str
    example: str
    source: str

    def matches(self, reason: str) -> bool:
        """Whether this rule applies to `reason`."""
        return re.search(self.pattern, reason, re.IGNORECASE) is not None


ECS_ERRORS = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html"
ECS_OOM = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/out-of-memory.html"
BATCH_RETRIES = "https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html"
BATCH_CAPACITY = "https://docs.aws.amazon.com/batch/latest/userguide/sm_job_stuck_in_runnable_capacity.html"
SM_ERRORS = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html"
SM_SPOT = "https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html"
SM_LIMITS = "https://docs.aws.amazon.com/sagemaker/latest/dg/regions-quotas.html"
PAI_DLC = "https://www.alibabacloud.com/help/en/pai/developer-reference/api-pai-dlc-2020-12-03-getjob"
MODZY_JOBS = "https://docs.modzy.com/reference/get-job-details"

_OOM = Rule(
    "out_of_memory",
    r"out ?of ?memory|OOMKilled|killed due to memory",
    "OutOfMemoryError: Container killed due to memory usage",
    ECS_OOM,
)

SAGEMAKER: tuple[Rule, ...] = (
    Rule("out_of_memory", _OOM.pattern, "AlgorithmError: CUDA out of memory (GPU 0; 15.78 GiB)", SM_ERRORS),
    Rule(
        "capacity",
        r"^CapacityError\b",
        "CapacityError: Unable to provision requested ML compute capacity. "
        "Please retry using a different ML instance type.",
        BATCH_CAPACITY,
    ),
    Rule(
        "quota",
        r"ResourceLimitExceeded|service limit|quota",
        "ResourceLimitExceeded: The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances",
        SM_LIMITS,
    ),
    Rule(
        "spot_interruption",
        r"spot",
        "InternalServerError: Spot instance interrupted and the maximum wait time was exceeded",
        SM_SPOT,
    ),
    Rule(
        "image_pull",
        r"(pull|download|find)\w* (the )?(training )?image|CannotPullContainer",
        "ClientError: Unable to pull the training image 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest",
        SM_ERRORS,
    ),
    Rule(
        "permissions",
        r"AccessDenied|Access Denied|not authorized|403 Forbidden",
        "ClientError: Data download failed:failed to download data. 403 Forbidden (403): Forbidden",
        SM_ERRORS,
    ),
    Rule("bad_input", r"^ClientError\b", "ClientError: Data download failed:Failed to download data.", SM_ERRORS),
    Rule("user_code", r"^AlgorithmError\b", "AlgorithmError: ExecuteUserScriptError", SM_ERRORS),
    Rule("timeout", r"MaxRuntimeExceeded|maximum allowed runtime", "MaxRuntimeExceeded", SM_ERRORS),
)

BATCH: tuple[Rule, ...] = (
    _OOM,
    Rule(
        "spot_interruption",
        r"^Host EC2 \(instance [^)]*\) terminated",
        "Host EC2 (instance i-0abc) terminated.",
        BATCH_RETRIES,
    ),
    Rule(
        "capacity",
        r"CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY|^CapacityError\b",
        "Terminated by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        BATCH_CAPACITY,
    ),
    Rule(
        "image_pull",
        r"CannotPullContainerError|CannotPullImage",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): manifest unknown",
        ECS_ERRORS,
    ),
    Rule(
        "permissions",
        r"AccessDenied|not authorized|ResourceInitializationError: unable to pull secrets",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed",
        ECS_ERRORS,
    ),
    Rule(
        "timeout",
        r"Job attempt duration exceeded timeout|MaxRuntimeExceeded",
        "Job attempt duration exceeded timeout",
        BATCH_RETRIES,
    ),
    Rule(
        "user_code",
        r"^AlgorithmError\b|Essential container in task exited",
        "Essential container in task exited",
        BATCH_RETRIES,
    ),
    Rule("bad_input", r"^ClientError\b", "ClientError: Data download failed:Failed to download data.", SM_ERRORS),
)

PAI: tuple[Rule, ...] = (
    Rule("out_of_memory", _OOM.pattern, "JobFailed: Worker 0 exited with code 137 (OOMKilled)", PAI_DLC),
    Rule("spot_interruption", r"preempt|spot|bid", "JobPreempted: the spot instance was reclaimed", PAI_DLC),
    Rule(
        "capacity",
        r"InsufficientResource|ResourceNotEnough|no enough resource",
        "InsufficientResource: no enough resource in quota",
        PAI_DLC,
    ),
    Rule("quota", r"Quota", "QuotaExceeded: the resource quota of the workspace is used up", PAI_DLC),
    Rule("image_pull", r"ImagePull|ErrImagePull|pull image", "ImagePullBackOff: failed to pull image", PAI_DLC),
    Rule(
        "permissions", r"NoPermission|Forbidden|AccessDenied", "NoPermission: the RAM user is not authorized", PAI_DLC
    ),
    Rule("stopped_by_user", r"StoppedByUser|stopped by user", "StoppedByUser", PAI_DLC),
    Rule("user_code", r"^JobFailed\b|exited with code", "JobFailed: Worker 0 exited with code 1", PAI_DLC),
)

MODZY: tuple[Rule, ...] = (Rule("bad_input", r"^\d+ of \d+ inputs failed$", "3 of 10 inputs failed", MODZY_JOBS),)

AITEMS: tuple[Rule, ...] = ()  # AiTEMS reports no failure reason

RULES: Mapping[str, tuple[Rule, ...]] = {
    "sagemaker": SAGEMAKER,
    "batch": BATCH,
    "pai": PAI,
    "modzy": MODZY,
    "aitems": AITEMS,
}


def classify(provider: str, status: JobStatus, reason: str | None) -> str:
    """The cause of a failed or timed-out job of `provider` from its reason."""
    text = (reason or "").strip()
    for rule in RULES.get(provider, ()):
        if text and rule.matches(text):
            return rule.cause
    return "timeout" if status is JobStatus.TIMED_OUT else "unknown"


def with_cause(provider: str, job: Job) -> Job:
    """`job` with `extra["cause"]` set when it failed or timed out (unchanged otherwise)."""
    if job.status not in CAUSED:
        return job
    cause = classify(provider, job.status, job.reason)
    if job.extra.get("cause") == cause:
        return job
    return job.model_copy(update={"extra": {**job.extra, "cause": cause}})


def parse_causes(text: str) -> tuple[str, ...]:
    """`oom,user_code` as canonical causes; ValueError naming the first unknown one."""
    out: list[str] = []
    for word in (w.strip().lower() for w in text.split(",")):
        if not word:
            continue
        cause = ALIASES.get(word, word)
        if cause not in CAUSES:
            raise ValueError(f"unknown cause {word!r}; use: {', '.join(CAUSES)} (or oom, spot)")
        out.append(cause)
    if not out:
        raise ValueError("name at least one cause")
    return tuple(dict.fromkeys(out))
