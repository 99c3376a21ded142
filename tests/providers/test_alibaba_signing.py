"""ACS3-HMAC-SHA256 against the official SDK as oracle (docs/providers.md §PAI SDK as a test oracle).

The official `alibabacloud-aiworkspace20210204` client sends a ListRuns request to a local
server; our canonicalisation and signature, fed the very request it sent (its nonce, date and
signed-header list), must reproduce its Authorization header byte for byte, and our verifier
(the one the fake uses) must accept it. The stop requests are checked the same way against
`alibabacloud-paistudio20220112` (StopTrainingJob) and `alibabacloud-pai-dlc20201203` (StopJob).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from alibabacloud_aiworkspace20210204 import models as ws_models
from alibabacloud_aiworkspace20210204.client import Client as WorkspaceClient
from alibabacloud_pai_dlc20201203.client import Client as DlcClient
from alibabacloud_paistudio20220112.client import Client as TrainingClient
from alibabacloud_tea_openapi import utils_models

from bot.sim.http import LocalServer, Request, Response
from providers.alibaba_pai import PaiQueue, PaiSource
from providers.alibaba_signing import AcsSigner, authorization, query_pairs, verify
from providers.model import ExtraValue, Job, JobStatus

AK, SECRET = "LTAI5tOracleKey", "oracle-secret-value"
RUNS = {"requestId": "r-1", "Runs": [{"RunId": "run-1", "SourceId": "job-1"}], "TotalCount": 1, "NextPageToken": 0}


@pytest.fixture
def captured() -> Iterator[tuple[str, list[Request]]]:
    seen: list[Request] = []

    def handle(req: Request) -> Response:
        seen.append(req)
        return Response.json(RUNS)

    server = LocalServer(handle).start()
    yield server.url, seen
    server.stop()


def sdk_list_runs(url: str) -> ws_models.ListRunsResponse:
    host = urlsplit(url).netloc
    client = WorkspaceClient(
        utils_models.Config(access_key_id=AK, access_key_secret=SECRET, endpoint=host, protocol="http")
    )
    request = ws_models.ListRunsRequest(
        workspace_id="12345",
        experiment_id="exp-9",
        max_results=50,
        page_token=100,
        order_by="GmtCreateTime DESC",
        verbose=True,
        name="résumé ~ a/b*c",
    )
    return client.list_runs(request)


def test_our_signer_reproduces_the_sdk_authorization(captured: tuple[str, list[Request]]) -> None:
    url, seen = captured
    response = sdk_list_runs(url)
    assert response.body.runs[0].run_id == "run-1"
    (req,) = seen
    sent = req.headers["authorization"]
    assert sent.startswith("ACS3-HMAC-SHA256 Credential=" + AK + ",SignedHeaders=")
    signed = sent.split("SignedHeaders=")[1].split(",")[0].split(";")
    parts = urlsplit(req.raw_path)
    ours = authorization(
        AK,
        SECRET,
        method=req.method,
        path=parts.path,
        pairs=query_pairs(parts.query),
        headers=req.headers,
        signed=signed,
    )
    assert ours == sent
    assert req.headers["x-acs-action"] == "ListRuns" and req.headers["x-acs-version"] == "2021-02-04"


def test_verifier_accepts_the_sdk_and_refuses_tampering(captured: tuple[str, list[Request]]) -> None:
    url, seen = captured
    sdk_list_runs(url)
    (req,) = seen
    ok = verify(method="GET", raw_path=req.raw_path, headers=req.headers, body=req.body, secrets_by_key={AK: SECRET})
    assert ok is None
    tampered = req.raw_path.replace("MaxResults=50", "MaxResults=51")
    bad = verify(method="GET", raw_path=tampered, headers=req.headers, body=req.body, secrets_by_key={AK: SECRET})
    assert bad == "SignatureDoesNotMatch"
    wrong = verify(method="GET", raw_path=req.raw_path, headers=req.headers, body=req.body, secrets_by_key={AK: "x"})
    assert wrong == "SignatureDoesNotMatch"


def test_our_wire_request_signs_like_the_sdk_for_the_same_nonce_and_date(captured: tuple[str, list[Request]]) -> None:
    """Same query, same x-acs-* values, same signed headers: the same signature as the SDK's."""
    url, seen = captured
    sdk_list_runs(url)
    (sdk,) = seen
    stamp = datetime.strptime(sdk.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    signer = AcsSigner(
        AK,
        SECRET,
        action="ListRuns",
        version="2021-02-04",
        clock=lambda: stamp,
        nonce=lambda: sdk.headers["x-acs-signature-nonce"],
    )
    with httpx.Client(base_url=url) as client:
        request = client.build_request("GET", "/api/v1/runs", params=dict(query_pairs(urlsplit(sdk.raw_path).query)))
        signer(request)
        client.send(request)
    ours = seen[1]
    for name in ("host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-action"):
        assert ours.headers[name] == sdk.headers[name]
    # Our signer signs host + x-acs-* (the documented minimum; the SDK adds accept, user-agent and
    # its own x-acs-credentials-provider): re-sign the SDK's request with our list, they must agree.
    signed = ours.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ]
    sdk_parts = urlsplit(sdk.raw_path)
    expected = authorization(
        AK,
        SECRET,
        method="GET",
        path=sdk_parts.path,
        pairs=query_pairs(sdk_parts.query),
        headers=sdk.headers,
        signed=signed,
    )
    assert ours.headers["authorization"] == expected
    assert (
        verify(method="GET", raw_path=ours.raw_path, headers=ours.headers, body=b"", secrets_by_key={AK: SECRET})
        is None
    )


def test_reused_nonce_and_old_date_are_refused(captured: tuple[str, list[Request]]) -> None:
    url, seen = captured
    signer = AcsSigner(AK, SECRET, action="ListRuns", version="2021-02-04", nonce=lambda: "fixed")
    with httpx.Client(base_url=url) as client:
        for _ in range(2):
            request = client.build_request("GET", "/api/v1/runs", params={"MaxResults": 1})
            signer(request)
            client.send(request)
    nonces: set[str] = set()
    first, second = seen
    args = {"method": "GET", "body": b"", "secrets_by_key": {AK: SECRET}, "seen_nonces": nonces}
    assert verify(raw_path=first.raw_path, headers=first.headers, **args) is None  # type: ignore[arg-type]
    assert verify(raw_path=second.raw_path, headers=second.headers, **args) == "SignatureNonceUsed"  # type: ignore[arg-type]
    late = datetime(2000, 1, 1, tzinfo=UTC)
    assert (
        verify(
            method="GET",
            raw_path=first.raw_path,
            headers=first.headers,
            body=b"",
            secrets_by_key={AK: SECRET},
            now=late,
        )
        == "InvalidTimeStamp.Expired"
    )


# -- stop requests: the official paistudio (TrainingService) and pai-dlc SDKs as oracles -------

STOP_IDS = {"TrainingService": "train76rcaupa2cz", "DLC": "dlc-20210126170216-abcdef"}


@pytest.fixture
def stop_captured() -> Iterator[tuple[str, list[Request]]]:
    seen: list[Request] = []

    def handle(req: Request) -> Response:
        seen.append(req)
        return Response.json({"RequestId": "473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E", "JobId": STOP_IDS["DLC"]})

    server = LocalServer(handle).start()
    yield server.url, seen
    server.stop()


def sdk_stop(url: str, kind: str) -> None:
    config = utils_models.Config(
        access_key_id=AK, access_key_secret=SECRET, endpoint=urlsplit(url).netloc, protocol="http"
    )
    if kind == "TrainingService":
        TrainingClient(config).stop_training_job(STOP_IDS[kind])
    else:
        DlcClient(config).stop_job(STOP_IDS[kind])


def our_stop(url: str, kind: str) -> None:
    queue = PaiQueue(
        name="pai", region="cn-shanghai", workspace_id="1", endpoint_url=url, access_key_env="A", secret_key_env="S"
    )
    source = PaiSource(queue, env={"A": AK, "S": SECRET})
    extra: dict[str, ExtraValue] = {"source_type": kind, "source_id": STOP_IDS[kind]}
    run = Job(queue="pai", id="run-1", name="run-1", status=JobStatus.RUNNING, native_status="Running", extra=extra)
    assert source.stop_job(run, reason="U1: stop").accepted
    source.close()


@pytest.mark.parametrize(
    ("kind", "method", "path", "action", "version"),
    [
        ("TrainingService", "PUT", "/api/v1/trainingjobs/train76rcaupa2cz/stop", "StopTrainingJob", "2022-01-12"),
        ("DLC", "POST", "/api/v1/jobs/dlc-20210126170216-abcdef/stop", "StopJob", "2020-12-03"),
    ],
)
def test_our_stop_request_is_the_sdks(
    stop_captured: tuple[str, list[Request]], kind: str, method: str, path: str, action: str, version: str
) -> None:
    """Method, path, query, action/version headers, body and payload hash as the SDK sends them; our
    canonicalisation reproduces the SDK's signature, and the verifier accepts both requests."""
    url, seen = stop_captured
    sdk_stop(url, kind)
    our_stop(url, kind)
    sdk, ours = seen
    for req in (sdk, ours):
        parts = urlsplit(req.raw_path)
        assert (req.method, parts.path, parts.query) == (method, path, "")
        assert (req.headers["x-acs-action"], req.headers["x-acs-version"]) == (action, version)
        assert (
            verify(
                method=req.method,
                raw_path=req.raw_path,
                headers=req.headers,
                body=req.body,
                secrets_by_key={AK: SECRET},
            )
            is None
        )
    assert ours.body == sdk.body
    assert ours.headers["x-acs-content-sha256"] == sdk.headers["x-acs-content-sha256"]
    signed = sdk.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    resigned = authorization(
        AK, SECRET, method=sdk.method, path=path, pairs=query_pairs(""), headers=sdk.headers, signed=signed
    )
    assert resigned == sdk.headers["authorization"]
