"""Failure causes: every rule classifies the real reason string it was built from."""

from __future__ import annotations

import pytest

from providers.causes import CAUSES, RULES, Rule, classify, parse_causes, with_cause
from providers.model import Job, JobStatus

ALL = [(provider, rule) for provider, table in RULES.items() for rule in table]


@pytest.mark.parametrize(("provider", "rule"), ALL, ids=[f"{p}-{r.cause}-{i}" for i, (p, r) in enumerate(ALL)])
def test_each_rule_classifies_its_own_example(provider: str, rule: Rule) -> None:
    assert rule.cause in CAUSES
    assert rule.source.startswith("https://")
    assert classify(provider, JobStatus.FAILED, rule.example) == rule.cause


@pytest.mark.parametrize(
    ("provider", "reason", "cause"),
    [
        # specific rules win over the generic SageMaker prefixes
        ("sagemaker", "AlgorithmError: CUDA out of memory (GPU 0; 15.78 GiB)", "out_of_memory"),
        ("sagemaker", "AlgorithmError: ExecuteUserScriptError", "user_code"),
        (
            "sagemaker",
            "ClientError: Data download failed:failed to download data. 403 Forbidden (403): Forbidden",
            "permissions",
        ),
        ("sagemaker", "CapacityError: Unable to provision requested ML compute capacity.", "capacity"),
        ("batch", "Host EC2 (instance i-04b17daec78ef4a0b) terminated.", "spot_interruption"),
        ("batch", "Essential container in task exited", "user_code"),
        ("batch", "OutOfMemoryError: Container killed due to memory usage", "out_of_memory"),
        ("pai", "JobFailed: Worker 0 exited with code 137 (OOMKilled)", "out_of_memory"),
        ("modzy", "3 of 10 inputs failed", "bad_input"),
    ],
)
def test_real_reasons(provider: str, reason: str, cause: str) -> None:
    assert classify(provider, JobStatus.FAILED, reason) == cause


def test_no_rule_means_timeout_or_unknown() -> None:
    assert classify("sagemaker", JobStatus.FAILED, "something new") == "unknown"
    assert classify("sagemaker", JobStatus.FAILED, None) == "unknown"
    assert classify("aitems", JobStatus.TIMED_OUT, None) == "timeout"
    assert classify("no-such-provider", JobStatus.FAILED, "OutOfMemoryError") == "unknown"


def test_with_cause_only_on_failures() -> None:
    job = Job(queue="q", id="1", name="n", status=JobStatus.FAILED, native_status="Failed", reason="AlgorithmError: x")
    assert with_cause("sagemaker", job).extra["cause"] == "user_code"
    ok = job.model_copy(update={"status": JobStatus.SUCCEEDED})
    assert "cause" not in with_cause("sagemaker", ok).extra


def test_parse_causes() -> None:
    assert parse_causes("oom,user_code,oom") == ("out_of_memory", "user_code")
    with pytest.raises(ValueError, match="unknown cause 'gremlins'"):
        parse_causes("oom,gremlins")
    with pytest.raises(ValueError, match="at least one"):
        parse_causes(",")
