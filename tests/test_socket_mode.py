"""`jobwatch serve --socket` as an operator runs it, against a local stand-in of Slack's Socket Mode:
`apps.connections.open` hands out a ws:// URL on 127.0.0.1 (bot/sim/socket_mode.py), envelopes go
down the WebSocket and the acks come back on it; a dropped connection is opened again."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.sim.slash import action_payload, command_payload, event_payload
from bot.sim.socket_mode import SocketModeServer
from tests.test_cli import free_port, serve_env, start


def wait_for(check: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def socket_of(slack: FakeSlack) -> SocketModeServer:
    wait_for(lambda: slack.socket is not None, "apps.connections.open was never called")
    assert slack.socket is not None
    return slack.socket


@pytest.fixture
def served(tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack) -> Iterator[tuple[subprocess.Popen[str], str]]:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    port = free_port()
    env = serve_env(tmp_path, slack, sagemaker, port, SLACK_APP_TOKEN="xapp-test", JOBWATCH_SOCKET_PING="0.5")
    del env["SLACK_SIGNING_SECRET"]  # Socket Mode needs no signing secret
    log = (tmp_path / "serve.log").open("w")
    proc = start("serve", "--socket", env=env, cwd=tmp_path, log=log)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_socket_mode_answers_a_command_a_button_an_event_and_steps_and_reconnects(
    served: tuple[subprocess.Popen[str], str], slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    proc, base = served
    socket = socket_of(slack)
    socket.wait_connected(1)
    assert slack.count("apps.connections.open") == 1

    def healthy() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, "no /healthz in Socket Mode")
    health = httpx.get(base + "/healthz", timeout=2).json()
    assert health["status"] == "ok" and health["socket_mode"] is True and health["worker"] is True
    wait_for(lambda: httpx.get(base + "/readyz", timeout=5).status_code == 200, "/readyz never ready")
    assert httpx.get(base + "/readyz", timeout=5).json()["socket_mode"] is True
    assert httpx.post(base + "/slack/events", content=b"{}", timeout=2).status_code == 404  # no HTTP door to Slack

    # a slash command: its answer is the ack's payload
    envelope = socket.send(
        "slash_commands", command_payload("subscribe ml", channel="C9"), accepts_response_payload=True
    )
    ack = socket.ack(envelope)
    assert "Subscribed this channel to `ml`" in json.dumps(ack["payload"])

    # a button: acked empty, answered through its response_url
    value = "ml"
    payload = action_payload(action_id="unsubscribe", value=value, channel="C9", response_url=slack.response_url("b1"))
    envelope = socket.send("interactive", payload)
    assert not socket.ack(envelope).get("payload")
    wait_for(lambda: any(name == "b1" for name, _ in slack.responses), "the button was not answered")
    (answer,) = [p for name, p in slack.responses if name == "b1"]
    assert "Unsubscribed from `ml`" in answer["text"]

    # an event: the App Home is published
    inner = {"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "home"}
    envelope = socket.send("events_api", event_payload(inner))
    socket.ack(envelope)
    wait_for(lambda: len(slack.views) == 1, "the App Home was not published")

    # workflow steps: a status at once, a wait completed by the worker when the job ends
    def polled() -> bool:
        envelope = socket.send("slash_commands", command_payload("queues", channel="C9"), accepts_response_payload=True)
        return "ok · last poll" in str(socket.ack(envelope)["payload"])

    wait_for(polled, "no poll of the queue")
    status = slack.function_executed("get_job_status", {"queue": "ml", "job": "bert"})
    socket.ack(socket.send("events_api", event_payload(status)))
    waiting = slack.function_executed("wait_for_job", {"queue": "ml", "job": "bert"})
    socket.ack(socket.send("events_api", event_payload(waiting)))
    wait_for(lambda: slack.completed(status["function_execution_id"]), "Get job status never completed")
    (done,) = slack.completed(status["function_execution_id"])
    assert done["ok"] and done["outputs"]["status"] == "running"
    time.sleep(1)
    assert slack.completed(waiting["function_execution_id"]) == []
    sagemaker.set("bert", "Completed", "Completed")
    wait_for(lambda: slack.completed(waiting["function_execution_id"]), "the wait never completed", timeout=30)
    (done,) = slack.completed(waiting["function_execution_id"])
    assert done["ok"] and done["outputs"]["status"] == "succeeded"

    # the connection drops: the app opens a new one (a new URL) and answers on it
    socket.drop()
    wait_for(lambda: slack.count("apps.connections.open") >= 2, "no new apps.connections.open after the drop")
    socket.wait_connected(2)
    envelope = socket.send("slash_commands", command_payload("queues", channel="C9"), accepts_response_payload=True)
    assert "ml" in json.dumps(socket.ack(envelope)["payload"])

    # Slack asks for a refresh: the app reconnects again
    socket.disconnect()
    socket.wait_connected(3)
    envelope = socket.send("slash_commands", command_payload("help", channel="C9"), accepts_response_payload=True)
    assert "/jobs subscribe" in json.dumps(socket.ack(envelope)["payload"])
    assert proc.poll() is None
