"""AWS client factory (explicit retry mode and timeouts) and botocore error mapping."""

from __future__ import annotations

import gc
import os
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
from botocore.loaders import instance_cache
from pydantic import Field

from providers.base import QueueConfig, default_env, env_secret, identity_digest
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

    def account_scope(self) -> str:
        """SageMaker and AWS Batch throttle per account and Region (each service its own budget):
        the service, the Region, and a digest of the identity as configured, that is the endpoint
        URL and the variable the access key id is read from (none: the default credential chain,
        the same for every such queue of the process; `make_client`)."""
        named = self.access_key_env or self.secret_key_env
        keys = (self.access_key_env or "AWS_ACCESS_KEY_ID") if named else None
        return f"{self.provider}:{self.region}:{identity_digest(self.endpoint_url, keys)}"


# The operations jobwatch calls, per service (botocore's names): the only ones its clients know.
# A call to any other is an AttributeError, which tests/providers/test_aws_models.py rules out by
# reading every `client.<operation>(` call of the adapters.
OPERATIONS: dict[str, frozenset[str]] = {
    "sagemaker": frozenset({"ListTrainingJobs", "DescribeTrainingJob", "ListTags", "StopTrainingJob"}),
    "batch": frozenset({"ListServiceJobs", "DescribeServiceJob", "TerminateServiceJob"}),
    "logs": frozenset({"DescribeLogStreams", "GetLogEvents"}),
}


def trimmed_model(model: dict[str, Any], operations: frozenset[str]) -> dict[str, Any]:
    """A botocore service model cut down to `operations` and the shapes they reach (input, output,
    errors, and every member, list member, map key and value under them), without documentation.

    Requests and answers of those operations are (de)serialised from these shapes alone, so they
    are the same as with the whole model.
    """
    shapes = model["shapes"]
    keep: set[str] = set()
    todo: list[str] = []
    for name in operations:
        operation = model["operations"][name]
        todo += [operation[k]["shape"] for k in ("input", "output") if k in operation]
        todo += [error["shape"] for error in operation.get("errors", [])]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        shape = shapes[name]
        todo += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        todo += [member["shape"] for member in shape.get("members", {}).values()]
    cut: dict[str, Any] = _undocumented(
        {
            **model,
            "operations": {name: model["operations"][name] for name in operations},
            "shapes": {name: shapes[name] for name in keep},
        }
    )
    return cut


def _undocumented(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _undocumented(v) for k, v in value.items() if k not in ("documentation", "documentationUrl")}
    if isinstance(value, list):
        return [_undocumented(v) for v in value]
    return value


class TrimmedLoader(botocore.loaders.Loader):
    """botocore's data loader, but the service models of OPERATIONS' services are kept cut down to
    the operations jobwatch calls (`trimmed_model`).

    The whole SageMaker model is about 9 MB of Python objects once parsed (3,260 shapes of 434
    operations), AWS Batch's 1.4 MB and CloudWatch Logs' 2 MB, kept for as long as a client lives;
    the four SageMaker operations reach 182 shapes, 0.2 MB. The whole model is parsed once, then
    dropped from the loader's cache.
    """

    @instance_cache
    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        model = super().load_service_model(service_name, type_name, api_version)
        operations = OPERATIONS.get(service_name)
        if type_name != "service-2" or operations is None:
            return model
        version = api_version or self.determine_latest_version(service_name, type_name)
        # Forget the whole model: the base class cached it, and the file's data under its path.
        cached: dict[tuple[object, ...], Any] = self._cache  # type: ignore[attr-defined]  # instance_cache's
        cached.pop(("load_service_model", service_name, type_name, api_version), None)
        cached.pop(("load_data_with_path", os.path.join(service_name, version, type_name)), None)
        return trimmed_model(model, operations)

    def forget_endpoints(self) -> None:
        """Drop the parsed endpoints data (about 7 MB of Python objects) from the cache: botocore
        reads it only while it makes a client, and a client keeps what it needs of it. The rare
        later client (a stop, a first log tail) parses the file again, in about 0.1 s."""
        self._cache.pop(("load_data_with_path", "endpoints"), None)  # type: ignore[attr-defined]


@cache
def _data_loader() -> TrimmedLoader:
    """The process's one botocore data loader, which parses and caches the service models.

    Each client gets its own session (its own credential chain and settings), but sessions
    share this loader: a session of its own would parse the models again. The models of the
    services jobwatch calls are kept trimmed to its operations, and the endpoints data only while
    a client is made (TrimmedLoader).
    """
    return TrimmedLoader()


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
    loader = _data_loader()
    session.register_component("data_loader", loader)
    client: Any = session.create_client(service, **kwargs)  # Any: the stubs type no service's methods
    loader.forget_endpoints()
    del session  # its endpoint resolver holds the data in reference cycles: collect them now
    gc.collect()
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
