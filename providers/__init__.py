"""Job providers: one adapter per service, all returning the canonical `Job`.

`SOURCES` maps a queue's `provider` key to its configuration model and adapter class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from providers.alibaba_pai import PaiQueue, PaiSource
from providers.aws_batch import BatchQueue, BatchSource
from providers.base import (
    JobSource,
    LogTail,
    LogTailing,
    QueueConfig,
    Stoppable,
    StopResult,
    Taggable,
    can_stop,
    reads_tags,
    stop_support,
    wants_log_tail,
)
from providers.errors import (
    AccessDeniedError,
    AuthError,
    BadResponseError,
    ConflictError,
    NotFoundError,
    ProviderError,
    ThrottledError,
    UnavailableError,
)
from providers.limits import LimitReading, limit_ends, limit_of
from providers.model import TERMINAL, Job, JobStatus
from providers.modzy import ModzyQueue, ModzySource
from providers.naver_aitems import AitemsQueue, AitemsSource
from providers.sagemaker import SageMakerQueue, SageMakerSource


@dataclass(frozen=True)
class ProviderSpec:
    """How to read one provider's queue table and build its adapter."""

    config: type[QueueConfig]
    build: Callable[..., JobSource]


SOURCES: dict[str, ProviderSpec] = {
    "sagemaker": ProviderSpec(SageMakerQueue, SageMakerSource),
    "batch": ProviderSpec(BatchQueue, BatchSource),
    "modzy": ProviderSpec(ModzyQueue, ModzySource),
    "aitems": ProviderSpec(AitemsQueue, AitemsSource),
    "pai": ProviderSpec(PaiQueue, PaiSource),
}


def log_tail_providers() -> tuple[str, ...]:
    """The providers whose adapters can read a failed job's log (the LogTailing capability)."""
    return tuple(name for name, spec in SOURCES.items() if callable(getattr(spec.build, "log_tail", None)))


def build_source(config: QueueConfig, *, env: Mapping[str, str] | None = None, **kwargs: Any) -> JobSource:
    """The adapter for one validated queue configuration."""
    return SOURCES[config.provider].build(config, env=env, **kwargs)


__all__ = [
    "SOURCES",
    "TERMINAL",
    "AccessDeniedError",
    "AuthError",
    "BadResponseError",
    "ConflictError",
    "Job",
    "JobSource",
    "JobStatus",
    "LimitReading",
    "LogTail",
    "LogTailing",
    "NotFoundError",
    "ProviderError",
    "ProviderSpec",
    "QueueConfig",
    "StopResult",
    "Stoppable",
    "Taggable",
    "ThrottledError",
    "UnavailableError",
    "build_source",
    "can_stop",
    "limit_ends",
    "limit_of",
    "log_tail_providers",
    "reads_tags",
    "stop_support",
    "wants_log_tail",
]
