"""Requests as Slack sends them, to the real HTTP app: signed, forged, stale, malformed."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
from slack_bolt import BoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlmodel import select

from bot.core.config import AppConfig, load_config
from bot.sim.slack import FakeSlack
from bot.sim.slash import block_action, event, sign, signed_headers, slash_command
from bot.slack.listeners import PROVIDER_THREADS
from bot.store.db import Database
from bot.store.tables import AuditEntry, Subscription
from bot.web import signed_by_slack
from providers import Job, JobStatus, QueueConfig
from tests.conftest import SECRET
from tests.harness import Bot, text_of

CONFIG = """
[[queues]]
name = "ml"
provider = "sagemaker"
region = "us-east-1"
access_key_env = "K"
secret_key_env = "S"
"""


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, CONFIG, env={"K": "k", "S": "s"}, database_url=database_url)
    yield b
    b.close()


def subscriptions(db: Database) -> int:
    with db.read() as session:
        return len(session.exec(select(Subscription)).all())


def audit_rows(db: Database) -> int:
    with db.read() as session:
        return len(session.exec(select(AuditEntry)).all())


def test_help_and_healthz(bot: Bot) -> None:
    assert "/jobs subscribe" in text_of(bot.command(""))
    response = httpx.get(bot.url + "/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.sqlite_only
def test_bad_command_gets_usage(bot: Bot) -> None:
    reply = bot.command("subscribe ml sometimes")
    assert reply["response_type"] == "ephemeral"
    assert "unknown status" in text_of(reply) and "Usage: /jobs subscribe" in text_of(reply)


Headers = dict[str, str | bytes]
Tamper = Callable[[bytes, Headers], tuple[bytes, Headers]]


def signed_as(stamp: bytes, body: bytes) -> bytes:
    """A v0 signature made with the real secret over `stamp` as the server decodes header bytes
    (ISO-8859-1, PEP 3333): only the timestamp's form can make such a request fail."""
    return sign(SECRET, stamp.decode("latin-1"), body).encode()


def stamped(stamp: Callable[[], bytes]) -> Tamper:
    """Replace the timestamp with `stamp()` and sign the request with the real secret."""

    def tamper(body: bytes, headers: Headers) -> tuple[bytes, Headers]:
        value = stamp()
        return body, {**headers, "X-Slack-Request-Timestamp": value, "X-Slack-Signature": signed_as(value, body)}

    return tamper


def now_in(digits: str) -> Callable[[], bytes]:
    """The current time written with the digits 0-9 of `digits`, UTF-8 encoded."""
    return lambda: "".join(digits[int(d)] for d in str(int(time.time()))).encode()


def now(prefix: str) -> Callable[[], bytes]:
    return lambda: f"{prefix}{int(time.time())}".encode()


def without(name: str) -> Tamper:
    return lambda body, headers: (body, {k: v for k, v in headers.items() if k != name})


def const(value: bytes) -> Callable[[], bytes]:
    return lambda: value


FORGED: dict[str, Tamper] = {
    "no Slack headers": lambda body, headers: (body, {k: v for k, v in headers.items() if not k.startswith("X-Slack")}),
    "no timestamp": without("X-Slack-Request-Timestamp"),
    "no signature": without("X-Slack-Signature"),
    "empty timestamp": stamped(const(b"")),
    "whitespace timestamp": stamped(const(b" ")),
    "padded timestamp": stamped(now(" ")),  # int() accepts it (if the server kept the space)
    "plus-signed timestamp": stamped(now("+")),
    "minus-signed timestamp": stamped(now("-")),
    "letters": stamped(const(b"abc")),
    "fraction": stamped(const(b"1700000000.5")),
    "superscript digits": stamped(const(b"\xb9\xb2\xb3")),  # latin-1 ¹²³: str.isdigit(), not int()
    "Arabic-Indic digits": stamped(now_in("\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")),
    "fullwidth digits": stamped(now_in("\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")),
    "timestamp beyond float": stamped(const(b"9" * 400)),
    "timestamp beyond int()": stamped(const(b"9" * 5000)),
    "signature of another body": lambda body, headers: (body.replace(b"subscribe", b"subscribf"), headers),
    "signature in upper case": lambda body, headers: (
        body,
        {**headers, "X-Slack-Signature": str(headers["X-Slack-Signature"]).upper()},
    ),
    "empty signature": lambda body, headers: (body, {**headers, "X-Slack-Signature": ""}),
    "non-ASCII signature": lambda body, headers: (body, {**headers, "X-Slack-Signature": b"v0=" + b"\xe9" * 64}),
    "JSON body Bolt cannot parse": lambda body, headers: (
        b"{not json",
        {**headers, "Content-Type": "application/json"},
    ),
    "payload Bolt cannot parse": lambda body, headers: (b"payload=%7Bnot+json", headers),
}


def raw_post(url: str, body: bytes, headers: Headers) -> tuple[int, bytes]:
    """POST to /slack/events with header bytes as given (httpx refuses some of these forms)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("POST", "/slack/events")
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("tamper", FORGED.values(), ids=FORGED.keys())
def test_forged_or_malformed_requests_are_refused_and_cause_nothing(bot: Bot, tamper: Tamper) -> None:
    body, headers = slash_command(SECRET, "subscribe ml", response_url=bot.slack.response_url("forged"))
    forged_body, forged_headers = tamper(body, dict[str, str | bytes](headers))
    status, answer = raw_post(bot.url, forged_body, forged_headers)
    assert status == 401, answer
    assert subscriptions(bot.runtime.db) == 0 and audit_rows(bot.runtime.db) == 0
    time.sleep(0.2)  # a reply through response_url would come from another thread
    assert bot.slack.calls == [] and bot.slack.responses == [] and bot.slack.messages == []


@pytest.mark.parametrize(
    "digits",
    [
        "0123456789",
        "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",  # Arabic-Indic: int() reads them
        "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",  # fullwidth: int() reads them
        "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079",  # superscript: int() refuses them
    ],
    ids=["ASCII", "Arabic-Indic", "fullwidth", "superscript"],
)
def test_only_ascii_digit_timestamps_verify(digits: str) -> None:
    """A WSGI server may hand on any text as a header: only ASCII digits make a timestamp, even
    when the rest is signed with the right secret."""
    body = b"command=%2Fjobs&text=subscribe+ml"
    stamp = "".join(digits[int(d)] for d in str(int(time.time())))
    verdict = signed_by_slack(
        SignatureVerifier(SECRET), timestamp=stamp, signature=sign(SECRET, stamp, body), body=body
    )
    assert verdict is (digits == "0123456789")


@pytest.mark.sqlite_only
def test_a_signed_body_bolt_cannot_parse_is_a_bad_request(bot: Bot) -> None:
    body = b"{not json"
    headers = signed_headers(SECRET, body, content_type="application/json")
    response = bot.post(body, headers)
    assert response.status_code == 400 and "body" in response.json()["error"]
    assert bot.slack.calls == []


@pytest.mark.sqlite_only
def test_the_error_handler_answers_only_verified_requests(bot: Bot) -> None:
    """Bolt's own verification raising (an empty timestamp reaching the app) must not make the
    error handler post to the response_url of the unverified body; a verified command that fails
    still gets its apology there."""
    body, headers = slash_command(SECRET, "subscribe ml", response_url=bot.slack.response_url("unverified"))
    unverified: dict[str, str | Sequence[str]] = {
        **headers,
        "X-Slack-Request-Timestamp": "",
        "X-Slack-Signature": sign(SECRET, "", body),
    }
    refused = bot.app.dispatch(BoltRequest(body=body.decode(), headers=unverified))
    assert refused.status == 401
    time.sleep(0.2)
    assert bot.slack.responses == [] and subscriptions(bot.runtime.db) == 0

    with bot.runtime.db.write() as session:  # the store breaks under a verified command
        session.execute(text("DROP TABLE subscription"))
    reply = bot.command("subscriptions")
    assert "something went wrong on our side" in text_of(reply)


# 301 s in the past is stale at once; in the future, leave room for the clock to tick before
# the server verifies (Slack's window is 300 s either way).
@pytest.mark.sqlite_only
@pytest.mark.parametrize("skew", [-301, 305])
def test_stale_requests_are_refused(bot: Bot, skew: int) -> None:
    body, headers = slash_command(SECRET, "subscribe ml", timestamp=int(time.time()) + skew)
    assert bot.post(body, headers).status_code == 401
    assert subscriptions(bot.runtime.db) == 0


@pytest.mark.sqlite_only
def test_oversized_body_is_refused(bot: Bot) -> None:
    body, headers = slash_command(SECRET, "x" * 70_000)
    assert bot.post(body, headers).status_code == 413


def test_replayed_subscribe_is_idempotent(bot: Bot) -> None:
    body, headers = slash_command(SECRET, "subscribe ml")
    for _ in range(5):
        assert bot.post(body, headers).status_code == 200
    assert subscriptions(bot.runtime.db) == 1
    assert "Updated the subscription" in text_of(bot.command("subscribe ml failed"))
    assert "failed" in text_of(bot.command("subscriptions"))
    assert "Unsubscribed" in text_of(bot.command("unsubscribe ml"))
    assert "was not subscribed" in text_of(bot.command("unsubscribe ml"))


class SlowSource:
    """A queue whose detail call answers only once the test opens the gate, as a slow provider's would."""

    provider: ClassVar[str] = "slow"

    def __init__(self, config: QueueConfig) -> None:
        self._config = config
        self.job = Job(queue=config.name, id="j1", name="train", status=JobStatus.RUNNING, native_status="Running")
        self.gate = threading.Event()
        self.waiting = 0  # detail calls under way, waiting for the gate
        self._lock = threading.Lock()

    @property
    def config(self) -> QueueConfig:
        return self._config

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        return [self.job]

    def get_job(self, job_id: str) -> Job | None:
        with self._lock:
            self.waiting += 1
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        return self.job

    def close(self) -> None:
        pass


@pytest.mark.sqlite_only
def test_twenty_concurrent_commands_with_a_slow_provider_all_ack_before_it_answers(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    """Every ack arrives while the provider has not answered anyone (Slack's limit is 3 s; a provider
    can take longer), and the slow calls then run side by side, not one after another."""
    config = load_config_text(tmp_path, CONFIG)
    slow = SlowSource(config.queues[0])
    bot = Bot(tmp_path, slack, CONFIG, env={}, sources={"ml": slow}, database_url=database_url)
    try:
        bot.cycle()  # the job is in the store, so `status` goes on to the (slow) provider
        requests = [
            slash_command(SECRET, "status ml train", response_url=slack.response_url(f"s{i}")) for i in range(20)
        ]
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda request: bot.post(*request).status_code, requests))
        assert statuses == [200] * 20
        assert not slow.gate.is_set() and slack.responses == []  # no answer yet: each ack came first
        together = min(20, PROVIDER_THREADS)  # provider calls in flight at once; the rest wait their turn
        deadline = time.monotonic() + 30
        while slow.waiting < together:
            assert time.monotonic() < deadline, f"only {slow.waiting} of {together} provider calls under way together"
            time.sleep(0.01)
        slow.gate.set()
        answers = [bot.response(f"s{i}") for i in range(20)]
        assert all("train" in text_of(a) for a in answers)
    finally:
        slow.gate.set()
        bot.close()


def load_config_text(tmp_path: Path, text: str) -> AppConfig:
    path = tmp_path / "probe.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("skew", [0, -301])
def test_forged_or_stale_button_presses_change_nothing(bot: Bot, skew: int) -> None:
    assert "Subscribed" in text_of(bot.command("subscribe ml"))
    body, headers = block_action(SECRET, action_id="unsubscribe", value="ml", timestamp=int(time.time()) + skew)
    if skew == 0:
        headers["X-Slack-Signature"] = sign("wrong-secret", headers["X-Slack-Request-Timestamp"], body)
    assert bot.post(body, headers).status_code == 401
    assert subscriptions(bot.runtime.db) == 1
    body, headers = event(SECRET, {"type": "app_home_opened", "user": "U1", "tab": "home"})
    assert bot.post(body.replace(b"U1", b"U2"), headers).status_code == 401
    assert bot.slack.views == []


def test_app_home_shows_queues_subscriptions_and_recent_alerts(bot: Bot) -> None:
    assert "Subscribed" in text_of(bot.command("subscribe ml failed --match train-*", channel="C1"))
    bot.cycle()  # the provider is unreachable here: the queue shows as failing
    view = bot.open_home(user="U42")
    shown = text_of({"blocks": view["blocks"]})
    assert view["type"] == "home" and view["blocks"][0]["text"]["text"] == "jobwatch"
    assert "*ml* — sagemaker" in shown and "last poll" in shown
    assert "<#C1> · *ml* — failed · jobs matching `train-*`" in shown
    assert "Slack shows the names of the channels you can see" in shown
    assert "No alerts yet." in shown
    assert bot.slack.problems() == []


@pytest.mark.sqlite_only
def test_refused_and_served_requests_never_log_bodies_or_response_urls(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_url = "https://hooks.slack.com/commands/T0001/99/capability-token"
    body, headers = slash_command(SECRET, "subscribe ml", response_url=secret_url)
    assert bot.post(body, {**headers, "X-Slack-Signature": "v0=" + "0" * 64}).status_code == 401
    assert bot.post(body, headers).status_code == 200
    assert "capability-token" not in caplog.text and "legacy-verification-token" not in caplog.text
