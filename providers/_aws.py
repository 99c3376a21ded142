"""AWS client factory (explicit retry mode and timeouts) and botocore error mapping."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from pydantic import Field

from providers.base import QueueConfig, default_env, env_secret
from providers.errors import (
    AccessDeniedError,
    AuthError,
    BadResponseError,
    ConflictError,
    NotFoundError,
    ProviderError,
    ThrottledError,
    UnavailableError,
    mentions_state,
)

# botocore's standard retry mode treats these as throttles (botocore/retries/standard.py).
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
    }
)
AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "AuthFailure",
        "MissingAuthenticationTokenException",
    }
)

# Valid credentials, action not allowed by IAM (AWS JSON and REST-JSON services answer 400/403).
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
# Codes under which a service refuses an action for the resource's state (the message says which).
CONFLICT_CODES = frozenset({"ValidationException", "ClientException", "ConflictException"})


SQS_URL = r"^https?://[^\s/]+(:\d+)?/\d{12}/[A-Za-z0-9_-]{1,80}$"  # https://sqs.<region>.amazonaws.com/<account>/<name>


class AwsQueue(QueueConfig):
    """A queue on an AWS service: a region, and the default boto3 credential chain unless the
    queue names its own key variables. `log_tail`: post the last lines of a failed job's log in
    its thread (bot/pipeline/logtail.py); `logs_endpoint_url`: CloudWatch Logs' base URL for that (default:
    boto3's, which honours AWS_ENDPOINT_URL_CLOUDWATCH_LOGS). `events_queue_url`: the SQS queue an
    EventBridge rule sends the queue's state-change events to (docs/push.md); with it the queue
    is polled only to reconcile, every `[bot] reconcile_interval`; `events_endpoint_url`: SQS's
    base URL for it (default: boto3's, which honours AWS_ENDPOINT_URL_SQS)."""

    region: str
    log_tail: bool = Field(default=False, strict=True)
    logs_endpoint_url: str | None = None
    events_queue_url: str | None = Field(default=None, pattern=SQS_URL)
    events_endpoint_url: str | None = None


@cache
def _data_loader() -> botocore.loaders.Loader:
    """The process's one botocore data loader, which parses and caches the service models.

    Each client gets its own session (its own credential chain and settings), but sessions
    share this loader: a session of its own would parse the models again, and SageMaker's
    alone is about 17 MB of Python objects (AWS Batch's 3 MB, endpoints and partitions 5 MB).
    """
    return botocore.loaders.create_loader()


def make_client(
    service: str,
    queue: AwsQueue,
    *,
    env: Mapping[str, str] | None = None,
    connect_timeout: float = 5,
    read_timeout: float = 20,
    max_attempts: int = 5,
) -> Any:
    """A botocore client (what boto3.client returns) with standard retries and timeouts; keys from
    the named env vars if given, else the default AWS credential chain."""
    env = env if env is not None else default_env()
    config = Config(
        region_name=queue.region,
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    kwargs: dict[str, Any] = {"config": config}
    if queue.endpoint_url:
        kwargs["endpoint_url"] = queue.endpoint_url
    if queue.access_key_env or queue.secret_key_env:
        kwargs["aws_access_key_id"] = env_secret(
            env, queue.access_key_env or "AWS_ACCESS_KEY_ID", queue=queue.name
        ).get_secret_value()
        kwargs["aws_secret_access_key"] = env_secret(
            env, queue.secret_key_env or "AWS_SECRET_ACCESS_KEY", queue=queue.name
        ).get_secret_value()
    session = botocore.session.get_session()
    session.register_component("data_loader", _data_loader())
    client: Any = session.create_client(service, **kwargs)  # Any: the stubs type no service's methods
    return client


def events_client(queue: AwsQueue, *, env: Mapping[str, str] | None = None, wait_s: float = 20) -> Any:
    """The SQS client that reads the queue's events (`events_queue_url`): the queue's region and
    credentials, `events_endpoint_url`, and a read timeout longer than a long poll's wait."""
    sqs = queue.model_copy(update={"endpoint_url": queue.events_endpoint_url})
    return make_client("sqs", sqs, env=env, read_timeout=wait_s + 10)


def error_code(err: ClientError) -> str:
    """The AWS error code of a ClientError ("" if absent)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def map_aws_error(err: Exception, *, what: str) -> ProviderError:
    """Translate a botocore exception into our error tree, decided once here."""
    if isinstance(err, NoCredentialsError):
        return AuthError(f"{what}: no AWS credentials found")
    if isinstance(err, ClientError):
        code = error_code(err)
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = str(err.response.get("Error", {}).get("Message", ""))[:300]
        text = f"{what}: {code or status} {message}".strip()
        if code in THROTTLE_CODES or status == 429:
            return ThrottledError(text)
        if code in AUTH_CODES or status in (401, 403):
            return AuthError(text)
        if status >= 500:
            return UnavailableError(text)
        return BadResponseError(text)
    if isinstance(err, BotoCoreError):
        return UnavailableError(f"{what}: {type(err).__name__}: {err}")
    return BadResponseError(f"{what}: {type(err).__name__}: {err}")


def map_aws_stop_error(err: Exception, *, what: str, permission: str) -> ProviderError:
    """A refused or unanswered stop, in plain words: permission, state, throttling, deadline."""
    if isinstance(err, ClientError):
        code = error_code(err)
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        said = str(err.response.get("Error", {}).get("Message", ""))[:300]
        if code in THROTTLE_CODES or status == 429:
            return ThrottledError(f"{what}: AWS is throttling requests, try again in a minute ({code}: {said})")
        if code in DENIED_CODES or (status == 403 and code not in AUTH_CODES):
            return AccessDeniedError(f"{what}: not allowed, the bot's AWS identity needs {permission} ({said})")
        if code == "ResourceNotFound" or "not found" in said.lower() or "does not exist" in said.lower():
            return NotFoundError(f"{what}: the job no longer exists ({said})")
        if code in CONFLICT_CODES and mentions_state(said):
            return ConflictError(f"{what}: refused, the job cannot be stopped in its current state ({said})")
    if isinstance(err, ReadTimeoutError):
        return UnavailableError(f"{what}: no answer in time; the stop may still have been applied, check the job")
    if isinstance(err, (ConnectTimeoutError, EndpointConnectionError)):
        return UnavailableError(f"{what}: AWS could not be reached; nothing was stopped")
    return map_aws_error(err, what=what)
