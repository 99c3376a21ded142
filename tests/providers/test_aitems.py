"""NAVER AiTEMS training list against the local service: signing, clock skew, statuses, dates, paging."""

from __future__ import annotations

import json
import logging
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.core.config import ConfigError, parse_config
from bot.sim.aitems import AitemsSim
from providers import AuthError, BadResponseError, JobStatus
from providers._http import Requester, make_client
from providers._time import parse_timestamp
from providers.naver_aitems import FULL_EVERY, PAGE_SIZE, AitemsQueue, AitemsSource
from providers.naver_signing import ACCESS_KEY, SIGNATURE, TIMESTAMP, signature, signer, verify

# Computed independently of this code base:
#   printf 'GET /api/v1/services/svc-1/trains?isRecent=false&offset=0&limit=100\n1700000000000\nAKIDEXAMPLE' \
#     | openssl dgst -sha256 -hmac 'secretEXAMPLE' -binary | base64
KNOWN_PATH = "/api/v1/services/svc-1/trains?isRecent=false&offset=0&limit=100"
KNOWN_SIGNATURE = "xFpwOlBwIiSAriC6WrOCaPk3FRMoT24y9+d4T+WR9vA="


@pytest.fixture
def sim() -> Iterator[AitemsSim]:
    s = AitemsSim().start()
    yield s
    s.stop()


def source(
    sim: AitemsSim,
    *,
    secret: str | None = None,
    clock: Callable[[], float] = time.time,
    status_map: dict[str, Any] | None = None,
    timezone: str = "Asia/Seoul",
) -> AitemsSource:
    config = AitemsQueue.model_validate(
        {
            "name": "reco",
            "service_id": sim.service_id,
            "endpoint_url": sim.url,
            "access_key_env": "AK",
            "secret_key_env": "SK",
            "status_map": status_map or {},
            "timezone": timezone,
        }
    )
    requester = Requester(make_client(sim.url), what="aitems reco", attempts=2, sleep=lambda _s: None)
    env = {"AK": sim.access_key, "SK": secret or sim.secret_key}
    return AitemsSource(config, env=env, requester=requester, clock=clock)


# --- signing -------------------------------------------------------------------------------


def test_signature_known_answer() -> None:
    assert signature("secretEXAMPLE", "GET", KNOWN_PATH, "1700000000000", "AKIDEXAMPLE") == KNOWN_SIGNATURE


def test_signer_signs_the_raw_path_and_query_sent() -> None:
    client = httpx.Client(base_url="https://aitems.apigw.ntruss.com")
    request = client.build_request(
        "GET", "/api/v1/services/svc-1/trains", params={"isRecent": "false", "offset": "0", "limit": "100"}
    )
    signer("AKIDEXAMPLE", "secretEXAMPLE", clock=lambda: 1_700_000_000.0)(request)
    assert request.url.raw_path.decode() == KNOWN_PATH
    assert request.headers[TIMESTAMP] == "1700000000000"
    assert request.headers[ACCESS_KEY] == "AKIDEXAMPLE"
    assert request.headers[SIGNATURE] == KNOWN_SIGNATURE


def test_signer_covers_percent_encoded_queries() -> None:
    request = httpx.Client(base_url="http://h").build_request("GET", "/p", params={"q": "a b/é&x"})
    signer("AK", "SK", clock=lambda: 1_700_000_000.0)(request)
    raw = request.url.raw_path.decode()
    assert "%" in raw
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert verify("GET", raw, headers, secrets={"AK": "SK"}, now_ms=1_700_000_000_000) is None
    assert verify("GET", "/p?q=a b/é&x", headers, secrets={"AK": "SK"}, now_ms=1_700_000_000_000) is not None


@pytest.mark.parametrize(("skew_s", "ok"), [(-299, True), (299, True), (-300, False), (300, False), (-3600, False)])
def test_verify_window_is_five_minutes(skew_s: int, ok: bool) -> None:
    stamp = 1_700_000_000_000
    headers = {
        TIMESTAMP: str(stamp),
        ACCESS_KEY: "AK",
        SIGNATURE: signature("SK", "GET", "/x", str(stamp), "AK"),
    }
    why = verify("GET", "/x", headers, secrets={"AK": "SK"}, now_ms=stamp + skew_s * 1000)
    assert (why is None) is ok


def test_local_clock_skew_is_refused_with_a_hint(sim: AitemsSim) -> None:
    sim.add()
    with pytest.raises(AuthError, match="local clock") as info:
        source(sim, clock=lambda: time.time() - 6 * 60).list_jobs(since=None, live=[])
    assert "Authentication Failed" in str(info.value)
    assert sim.refused == ["timestamp outside the allowed window"]
    assert len(source(sim, clock=lambda: time.time() + 4 * 60).list_jobs(since=None, live=[])) == 1


def test_server_clock_skew_is_refused(sim: AitemsSim) -> None:
    sim.add()
    sim.now = lambda: time.time() + 10 * 60
    with pytest.raises(AuthError):
        source(sim).list_jobs(since=None, live=[])


def test_wrong_secret_is_an_auth_error_without_the_secret(sim: AitemsSim) -> None:
    sim.add()
    with pytest.raises(AuthError) as info:
        source(sim, secret="wrong-secret-123").list_jobs(since=None, live=[])
    assert "wrong-secret-123" not in str(info.value)
    assert sim.refused == ["signature mismatch"]


def test_missing_keys_name_the_variable(sim: AitemsSim) -> None:
    config = AitemsQueue(name="reco", service_id="s")
    assert config.endpoint_url == "https://aitems.apigw.ntruss.com"
    with pytest.raises(AuthError, match="NCP_ACCESS_KEY"):
        AitemsSource(config, env={})
    with pytest.raises(AuthError, match="NCP_SECRET_KEY"):
        AitemsSource(config, env={"NCP_ACCESS_KEY": "a"})


# --- statuses and identity -----------------------------------------------------------------


def test_identity_name_and_extra(sim: AitemsSim) -> None:
    train = sim.add("relatedItem", "learning", version="20261125120000")
    sim.set(train.ident, "completed")  # the simulator marks inference results ready
    (job,) = source(sim).list_jobs(since=None, live=[])
    assert job.id == "relatedItem/20261125120000" and job.name == "relatedItem 20261125120000"
    assert job.status is JobStatus.SUCCEEDED and job.native_status == "completed"
    assert job.extra == {
        "service_id": sim.service_id,
        "type": "relatedItem",
        "version": train.version,
        "inference": True,
    }


def test_status_map_overrides_and_extends_the_default(sim: AitemsSim) -> None:
    learning = sim.add(status="LEARNING").ident
    done = sim.add("pop", status="trainDone").ident
    jobs = {
        j.id: j
        for j in source(sim, status_map={"learning": "queued", "TRAINDONE": "succeeded"}).list_jobs(since=None, live=[])
    }
    assert jobs[learning].status is JobStatus.QUEUED
    assert jobs[done].status is JobStatus.SUCCEEDED
    assert jobs[done].native_status == "trainDone"


def test_status_map_in_the_queues_file() -> None:
    text = """
[[queues]]
name = "reco"
provider = "aitems"
service_id = "svc"
status_map = { learning = "running", completed = "succeeded" }
"""
    (queue,) = parse_config(Path("jobwatch.toml"), tomllib.loads(text)).queues
    assert isinstance(queue, AitemsQueue)
    assert queue.statuses()["completed"] is JobStatus.SUCCEEDED
    bad = text.replace('"succeeded"', '"done"')
    with pytest.raises(ConfigError, match="status_map"):
        parse_config(Path("jobwatch.toml"), tomllib.loads(bad))
    with pytest.raises(ConfigError, match="timezone"):
        parse_config(Path("jobwatch.toml"), tomllib.loads(text + 'timezone = "Mars/Olympus"\n'))


def test_unknown_status_is_unknown_and_logged_once(sim: AitemsSim, caplog: pytest.LogCaptureFixture) -> None:
    sim.add(status="quantumTraining")
    src = source(sim)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            (job,) = src.list_jobs(since=None, live=[])
            assert job.status is JobStatus.UNKNOWN and job.native_status == "quantumTraining"
    assert sum("quantumtraining" in r.getMessage() for r in caplog.records) == 1


# --- dates ---------------------------------------------------------------------------------

AT = datetime(2026, 11, 25, 3, 4, 5, tzinfo=UTC)  # 12:04:05 in Seoul


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-25T12:04:05",
        "2026-11-25 12:04:05",
        "2026-11-25T12:04:05.000",
        "2026-11-25T12:04:05+09:00",
        "2026-11-25T12:04:05.000+0900",
        "2026-11-25T03:04:05Z",
        "20261125120405",
        "2026.11.25 12:04:05",
        int(AT.timestamp() * 1000),
        str(int(AT.timestamp() * 1000)),
    ],
)
def test_created_date_formats(sim: AitemsSim, value: object) -> None:
    sim.date_format = lambda _at: value
    sim.add()
    (job,) = source(sim).list_jobs(since=None, live=[])
    assert job.created_at == AT and job.created_at.tzinfo is UTC


def test_naive_dates_follow_the_queue_timezone() -> None:
    assert parse_timestamp("2026-11-25T03:04:05", default_tz=UTC) == AT
    sim = AitemsSim(date_format=lambda _at: "2026-11-25T04:04:05").start()
    try:
        sim.add()
        (job,) = source(sim, timezone="Europe/Paris").list_jobs(since=None, live=[])
        assert job.created_at == AT
    finally:
        sim.stop()


@pytest.mark.parametrize("value", ["yesterday", "2026-13-45", {"date": 1}])
def test_an_unreadable_date_is_none_not_a_failed_listing(sim: AitemsSim, value: object) -> None:
    sim.date_format = lambda _at: value
    sim.add()
    (job,) = source(sim).list_jobs(since=None, live=[])
    assert job.created_at is None


# --- paging --------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "requests"), [(0, 1), (1, 1), (PAGE_SIZE, 2), (PAGE_SIZE + 1, 2)])
def test_paging_boundaries(sim: AitemsSim, count: int, requests: int) -> None:
    for n in range(count):
        sim.add(version=f"v{n}")
    assert len(source(sim).list_jobs(since=None, live=[])) == count
    assert sim.calls["trains"] == requests


def _mock_source(handler: Callable[[httpx.Request], httpx.Response]) -> AitemsSource:
    client = make_client("https://aitems.test", transport=httpx.MockTransport(handler))
    config = AitemsQueue(name="reco", service_id="svc", endpoint_url="https://aitems.test")
    requester = Requester(client, what="aitems reco", attempts=1, sleep=lambda _s: None)
    return AitemsSource(config, env={"NCP_ACCESS_KEY": "a", "NCP_SECRET_KEY": "s"}, requester=requester)


def _train(n: int) -> dict[str, Any]:
    return {"type": "pop", "version": f"v{n}", "status": "completed", "createdDate": "2026-11-25T12:00:00"}


def test_a_full_listing_pages_at_the_api_limit_of_1000(sim: AitemsSim) -> None:
    for n in range(2500):
        sim.add(version=f"v{n}")
    assert len(source(sim).list_jobs(since=None, live=[])) == 2500
    assert sim.calls["trains"] == 3  # 1000 a page: 10,000 trains are 10 requests, not 100


def test_a_limit_over_1000_is_refused(sim: AitemsSim) -> None:
    sign = signer(sim.access_key, sim.secret_key)
    with httpx.Client(base_url=sim.url) as client:
        for limit, status in ((1000, 200), (1001, 400)):
            request = client.build_request("GET", f"/api/v1/services/{sim.service_id}/trains?limit={limit}")
            sign(request)
            assert client.send(request).status_code == status


def test_a_server_that_serves_smaller_pages_than_asked_is_followed_to_the_end(sim: AitemsSim) -> None:
    sim.cap = 100  # serves and echoes `limit: 100` whatever we ask
    for n in range(250):
        sim.add(version=f"v{n}")
    assert len(source(sim).list_jobs(since=None, live=[])) == 250
    assert sim.calls["trains"] == 3


def test_a_server_that_ignores_paging_is_read_once() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        assert request.headers[SIGNATURE]
        return httpx.Response(200, json={"trains": [_train(n) for n in range(PAGE_SIZE * 3)]})

    assert len(_mock_source(handler).list_jobs(since=None, live=[])) == PAGE_SIZE * 3
    assert len(calls) == 1


def test_an_echoed_offset_that_differs_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"trains": [_train(n) for n in range(PAGE_SIZE)], "offset": 0})

    with pytest.raises(BadResponseError, match="offset"):
        _mock_source(handler).list_jobs(since=None, live=[])


@pytest.mark.parametrize(
    "body", [[], {"offset": 0}, {"trains": {"a": 1}}, {"trains": [{"type": "pop"}]}, {"trains": ["x"]}]
)
def test_unexpected_bodies_are_errors(body: object) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    with pytest.raises(BadResponseError):
        _mock_source(handler).list_jobs(since=None, live=[])


def test_a_stuck_offset_is_an_error(sim: AitemsSim) -> None:
    for n in range(PAGE_SIZE + 1):
        sim.add(version=f"v{n}")
    sim.faults.append("repeat_token")
    with pytest.raises(BadResponseError, match="repeats"):
        source(sim).list_jobs(since=None, live=[])


# --- steady cycles -------------------------------------------------------------------------


def test_steady_cycle_is_one_recent_request(sim: AitemsSim) -> None:
    for n in range(PAGE_SIZE * 2 + 50):
        sim.set(sim.add(version=f"old{n}").ident, "completed")
    live = sim.add("pop", "learning").ident
    src = source(sim)
    baseline = src.list_jobs(since=None, live=[])
    assert len(baseline) == PAGE_SIZE * 2 + 51 and sim.calls["trains"] == 3
    sim.set(live, "completed")
    since = datetime.now(UTC)
    changed = {j.id: j for j in src.list_jobs(since=since, live=[j for j in baseline if not j.status.terminal])}
    assert changed[live].status is JobStatus.SUCCEEDED
    assert sim.calls == {"trains": 3, "recent": 1}


def test_a_superseded_live_train_falls_back_to_the_full_listing(sim: AitemsSim) -> None:
    first = sim.add("pop", "learning").ident
    src = source(sim)
    baseline = src.list_jobs(since=None, live=[])
    sim.set(first, "failed")
    second = sim.add("pop", "requested").ident  # now the latest pop train: isRecent hides `first`
    jobs = {j.id: j for j in src.list_jobs(since=datetime.now(UTC), live=baseline)}
    assert jobs[first].status is JobStatus.FAILED and second in jobs
    assert sim.calls == {"trains": 2, "recent": 1}


def test_a_full_listing_at_least_every_full_every(sim: AitemsSim) -> None:
    sim.add()
    src = source(sim)
    start = datetime.now(UTC)
    src.list_jobs(since=None, live=[])
    src.list_jobs(since=start + timedelta(minutes=1), live=[])
    src.list_jobs(since=start + FULL_EVERY + timedelta(minutes=1), live=[])
    assert sim.calls == {"trains": 2, "recent": 1}


def test_get_job(sim: AitemsSim) -> None:
    old = sim.add("pop", "failed").ident
    sim.add("pop", "learning")
    src = source(sim)
    job = src.get_job(old)
    assert job is not None and job.status is JobStatus.FAILED
    assert src.get_job("pop/nope") is None
    assert sim.calls["train"] == 2 and sim.calls["trains"] == 0


def test_the_full_listing_never_sends_is_recent_false(sim: AitemsSim) -> None:
    sim.add("pop", "completed")
    latest = sim.add("pop", "learning").ident
    assert latest in {j.id for j in source(sim).list_jobs(since=None, live=[])}
