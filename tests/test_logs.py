"""Logs: JSON lines off a TTY, and no secret or response_url in them, even at DEBUG in a full run."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.ops import logs
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.sim.slash import slash_command
from tests.test_cli import free_port, serve_env, start

BOT_TOKEN = "xoxb-1111111111-2222222222-AbCdEfGhIjKlMnOpQrStUvWx"
APP_TOKEN = "xapp-1-A0123456789-1234567890-abcdefabcdef"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_redactor_masks_patterns_and_known_values() -> None:
    redact = logs.Redactor()
    redact.add(["my-provider-api-key-42", "s", None])
    text = redact(
        "token=xoxb-1-2-abc app xapp-1-A-2-x hook https://hooks.slack.com/commands/T1/2/abc "
        "url http://127.0.0.1:9/hooks/r1 form response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2Fx "
        f"{AWS_KEY} {AWS_SECRET} key my-provider-api-key-42 s\nAuthorization: Bearer abcdefghijk"
    )
    for leak in ("xoxb-", "xapp-", "hooks", "abcdefghijk", AWS_KEY, AWS_SECRET, "my-provider-api-key-42"):
        assert leak not in text, text
    assert " s\n" in text  # too short to be a secret: ordinary text is left alone


def test_json_lines_carry_extra_fields_and_redacted_tracebacks() -> None:
    out = io.StringIO()
    logger = logging.getLogger("jobwatch.test_logs")
    redact = logs.configure(logging.INFO, stream=out, json_lines=True)
    try:
        redact.add(["hunter2-hunter2"])
        logger.info("posted channel=%s token=%s", "C1", BOT_TOKEN, extra={"queue": "ml", "url": "http://x/hooks/1"})
        try:
            raise RuntimeError("failed with hunter2-hunter2")
        except RuntimeError:
            logger.exception("crash")
    finally:
        logging.getLogger().removeHandler(next(h for h in logging.getLogger().handlers if h.get_name() == "jobwatch"))
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "jobwatch.test_logs" and first["queue"] == "ml"
    assert first["message"].startswith("posted channel=C1 token=") and "xoxb" not in first["message"]
    assert "hooks" not in first["url"] and "time" in first
    assert "RuntimeError" in second["exc"] and "hunter2" not in second["exc"]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack(tokens={BOT_TOKEN: "T0001"}).start()
    yield server
    server.stop()


def test_a_full_debug_run_logs_json_and_no_secret(tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    port = free_port()
    env = serve_env(
        tmp_path,
        slack,
        sagemaker,
        port,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING,
        SLACK_APP_TOKEN=APP_TOKEN,
        JOBWATCH_LOG_LEVEL="DEBUG",
        K=AWS_KEY,
        S=AWS_SECRET,
    )
    # stderr goes to a file: a DEBUG run writes more than a pipe holds, and a full pipe would stall the
    # process until the test read it at the end
    log = (tmp_path / "serve.log").open("w")
    proc = start("serve", env=env, cwd=tmp_path, log=log)
    base = f"http://127.0.0.1:{port}"

    def command(text: str, name: str) -> httpx.Response:
        body, headers = slash_command(SIGNING, text, channel="C9", response_url=slack.response_url(name))
        return httpx.post(base + "/slack/events", content=body, headers=headers, timeout=5)

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "serve did not come up"
                time.sleep(0.1)
        assert command("subscribe ml", "r1").status_code == 200
        while "ok · last poll" not in str(command("queues", "r2").json()["blocks"]):
            assert time.monotonic() < deadline, "no baseline poll"
            time.sleep(0.2)
        assert command("status ml bert", "r3").status_code == 200  # answered through response_url
        assert command("bogus words", "r4").status_code == 200
        sagemaker.set("bert", "Completed", "Completed")
        while not slack.posts("C9") or not any(name == "r3" for name, _ in slack.responses):
            assert time.monotonic() < deadline, "no alert or no response_url reply"
            time.sleep(0.2)
        assert httpx.get(base + "/readyz", timeout=5).status_code == 200
        metrics = httpx.get(base + "/metrics", timeout=5).text
        assert 'jobwatch_polls_total{outcome="ok",queue="ml"}' in metrics
        assert 'jobwatch_command_duration_seconds_count{subcommand="status"} 1.0' in metrics
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    stderr = (tmp_path / "serve.log").read_text()

    lines = stderr.splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    levels = {r["level"] for r in records}
    assert "DEBUG" in levels and "INFO" in levels, levels
    assert any(r["message"].startswith("poll_done queue=ml") for r in records)
    assert "Sending a request - url: [redacted]" in stderr  # the response_url call was logged, masked
    for leak in (BOT_TOKEN, "xoxb-", APP_TOKEN, "xapp-", SIGNING, AWS_KEY, AWS_SECRET, "hooks/", "hooks%2F"):
        assert leak not in stderr, f"{leak!r} found in the logs"
