"""The AWS clients know only the operations jobwatch calls (providers/_aws.py OPERATIONS), and speak
them exactly as with botocore's whole service models."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.loaders
import pytest
from botocore import xform_name
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from providers._aws import OPERATIONS, make_client, trimmed_model
from providers.aws_batch import BatchQueue

ROOT = Path(__file__).resolve().parents[2]
# The modules that call each service's client, and how they name it.
CALLERS = {"sagemaker": "providers/sagemaker.py", "batch": "providers/aws_batch.py", "logs": "providers/_logs.py"}
CALL = re.compile(r"\b(?:self\._client|self\._stop_client|client)\.([a-z_]+)\(")

PARAMS: dict[str, dict[str, Any]] = {
    "ListTrainingJobs": {
        "MaxResults": 100,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "LastModifiedTimeAfter": datetime(2026, 12, 1, tzinfo=UTC),
        "NextToken": "page-2",
    },
    "DescribeTrainingJob": {"TrainingJobName": "train-1"},
    "ListTags": {"ResourceArn": "arn:aws:sagemaker:us-east-1:1:training-job/train-1", "NextToken": "t"},
    "StopTrainingJob": {"TrainingJobName": "train-1"},
    "ListServiceJobs": {
        "jobQueue": "gpu",
        "maxResults": 100,
        "filters": [{"name": "AFTER_CREATED_AT", "values": ["0"]}],
        "nextToken": "n",
    },
    "DescribeServiceJob": {"jobId": "abc"},
    "TerminateServiceJob": {"jobId": "abc", "reason": "stopped from jobwatch"},
    "DescribeLogStreams": {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": "train-1/"},
    "GetLogEvents": {"logGroupName": "g", "logStreamName": "s", "limit": 20, "startFromHead": False},
}
ANSWERS: dict[str, dict[str, Any]] = {
    "ListServiceJobs": {
        "jobSummaryList": [
            {
                "jobId": "abc",
                "jobName": "svc",
                "serviceJobType": "SAGEMAKER_TRAINING",
                "status": "FAILED",
                "createdAt": 1764547200000,
                "isTerminated": True,
                "latestAttempt": {"serviceResourceId": {"name": "TrainingJobArn", "value": "arn:x"}},
                "capacityUsage": [{"capacityUnit": "ml.g5.xlarge", "quantity": 2.0}],
            }
        ],
        "nextToken": "n2",
    },
    "DescribeTrainingJob": {
        "TrainingJobName": "train-1",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/train-1",
        "TrainingJobStatus": "Failed",
        "SecondaryStatus": "Failed",
        "FailureReason": "OOM",
        "CreationTime": 1764547200.5,
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/k"},
    },
    "GetLogEvents": {"events": [{"timestamp": 1, "message": "boom", "ingestionTime": 2}], "nextForwardToken": "f"},
}


def whole(service: str) -> dict[str, Any]:
    return dict(botocore.loaders.create_loader().load_service_model(service, "service-2"))


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_the_adapters_call_only_the_operations_their_clients_know(service: str) -> None:
    called = set(CALL.findall((ROOT / CALLERS[service]).read_text())) - {"close"}
    known = {xform_name(op) for op in OPERATIONS[service]}
    assert called, CALLERS[service]
    assert called <= known, f"{CALLERS[service]} calls {sorted(called - known)}: add them to OPERATIONS"
    assert set(whole(service)["operations"]) >= OPERATIONS[service]


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_trimmed_models_serialise_requests_and_parse_answers_as_the_whole_ones(service: str) -> None:
    full = whole(service)
    models = [ServiceModel(full, service), ServiceModel(trimmed_model(full, OPERATIONS[service]), service)]
    assert len(json.dumps(trimmed_model(full, OPERATIONS[service]))) < len(json.dumps(full)) / 5
    for op in sorted(OPERATIONS[service]):
        requests = []
        for model in models:
            serializer = create_serializer(model.metadata["protocol"])
            request = serializer.serialize_to_request(PARAMS[op], model.operation_model(op))
            requests.append((request["method"], request["url_path"], request["query_string"], request["body"]))
        assert requests[0] == requests[1], op
        if op in ANSWERS:
            parsed = []
            for model in models:
                operation = model.operation_model(op)
                assert operation.output_shape is not None
                answer = {"status_code": 200, "headers": {}, "body": json.dumps(ANSWERS[op]).encode()}
                parsed.append(create_parser(model.metadata["protocol"]).parse(answer, operation.output_shape))
            assert parsed[0] == parsed[1], op
            assert parsed[0] and "Error" not in parsed[0], op


def test_clients_are_made_from_the_trimmed_models() -> None:
    queue = BatchQueue(name="q", region="us-east-1", job_queue="gpu", access_key_env="K", secret_key_env="S")
    env = {"K": "key", "S": "secret"}
    for service, operations in OPERATIONS.items():
        client = make_client(service, queue, env=env)
        try:
            assert set(client.meta.service_model.operation_names) == operations
            assert all(callable(getattr(client, xform_name(op))) for op in operations)
        finally:
            client.close()


def test_the_endpoints_data_is_let_go_once_a_client_is_made_and_read_again_for_the_next() -> None:
    queue = BatchQueue(name="q", region="eu-west-1", job_queue="gpu", access_key_env="K", secret_key_env="S")
    env = {"K": "key", "S": "secret"}
    first = make_client("batch", queue, env=env)
    second = make_client("sagemaker", queue, env=env)
    try:
        assert first.meta.endpoint_url == "https://batch.eu-west-1.amazonaws.com"
        assert second.meta.endpoint_url == "https://api.sagemaker.eu-west-1.amazonaws.com"
        assert first.meta.region_name == second.meta.region_name == "eu-west-1"
    finally:
        first.close()
        second.close()
