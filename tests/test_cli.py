"""The `jobwatch` command as an operator runs it: real subprocesses, clear one-line errors."""

from __future__ import annotations

import itertools
import os
import random
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from sqlmodel import select

from bot.core.clock import utcnow
from bot.core.config import load_config
from bot.features.access import Actor
from bot.features.channel_settings import ChannelSettings
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.db import Database
from bot.store.shards import ShardKeeper, shard_name
from bot.store.tables import Lease, QueueState
from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parent.parent


def process_env(env: dict[str, str]) -> dict[str, str]:
    """This environment without any jobwatch, Slack, AWS or database setting, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JOBWATCH_", "AWS_", "DATABASE_"))}
    return {**clean, "PYTHONPATH": str(ROOT), **env}


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=process_env(env), cwd=cwd, capture_output=True, text=True, timeout=60
    )


def start(*args: str, env: dict[str, str], cwd: Path, log: IO[str] | None = None) -> subprocess.Popen[str]:
    """`python -m bot ARGS` in the background, stderr captured (or written to `log`, to read while it runs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        env=process_env(env),
        cwd=cwd,
        stderr=subprocess.PIPE if log is None else log,
        text=True,
    )


def serve_env(tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, port: int, **extra: str) -> dict[str, str]:
    """A whole bot's environment: the fake Slack, a SQLite file and one SageMaker queue polled every 5 s."""
    config = queue_file(tmp_path, sagemaker.url)
    config.write_text(config.read_text().replace('region = "us-east-1"', 'region = "us-east-1"\npoll_interval = 5'))
    return {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": "serve-secret",
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "JOBWATCH_CONFIG": str(config),
        "PORT": str(port),
        "K": "k",
        "S": "s",
        **extra,
    }


def queue_file(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "jobwatch.toml"
    path.write_text(
        f"""[[queues]]
name = "ml"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{endpoint}"
access_key_env = "K"
secret_key_env = "S"
"""
    )
    return path


def test_serve_without_token_says_what_is_missing(tmp_path: Path) -> None:
    result = run("serve", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_broken_queues_file_names_file_queue_and_key(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[[queues]]\nname = "ml"\nprovider = "sagemaker"\nregoin = "x"\n')
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "JOBWATCH_CONFIG": str(path)}
    result = run("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert str(path) in result.stderr and "queue 'ml'" in result.stderr and "key regoin" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_value_is_named(tmp_path: Path) -> None:
    result = run("serve", env={"JOBWATCH_POLL_INTERVAL": "often"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "JOBWATCH_POLL_INTERVAL" in result.stderr


def test_poll_interval_under_one_second_is_refused_by_name(tmp_path: Path, sagemaker: SageMakerSim) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "K": "k", "S": "s"}
    result = run("check", env={**env, "JOBWATCH_POLL_INTERVAL": "0.5"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "JOBWATCH_POLL_INTERVAL: Input should be greater than or equal to 1" in result.stderr
    path = queue_file(tmp_path, sagemaker.url)
    path.write_text(path.read_text() + "poll_interval = 0\n")
    result = run("serve", env={**env, "JOBWATCH_CONFIG": str(path)}, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}: queue 'ml': key poll_interval: Input should be greater than or equal to 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_accepts_a_one_second_interval(tmp_path: Path, sagemaker: SageMakerSim) -> None:
    path = queue_file(tmp_path, sagemaker.url)
    path.write_text("[bot]\npoll_interval = 1\n" + path.read_text() + "poll_interval = 1\n")
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "JOBWATCH_CONFIG": str(path), "K": "k", "S": "s"}
    result = run("check", env={**env, "JOBWATCH_POLL_INTERVAL": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "all checks passed" in result.stdout


def test_check_reports_each_queue(tmp_path: Path, sagemaker: SageMakerSim) -> None:
    sagemaker.add("one")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "JOBWATCH_CONFIG": str(queue_file(tmp_path, sagemaker.url)),
        "K": "k",
        "S": "s",
    }
    ok = run("check", env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "ml (sagemaker): OK, 1 job(s) listed" in ok.stdout
    assert "stop from Slack: off: nobody may stop jobs" in ok.stdout
    path = queue_file(tmp_path, sagemaker.url)
    path.write_text('[access]\noperators = ["U0OPS"]\n' + path.read_text() + 'operators = ["U0ML1", "U0ML2"]\n')
    operators = run("check", env=env, cwd=tmp_path)
    assert "stop from Slack: on for U0ML1, U0ML2 (the queue's operators)" in operators.stdout, operators.stdout
    broken = run("check", env={**env, "JOBWATCH_CONFIG": str(queue_file(tmp_path, "http://127.0.0.1:9"))}, cwd=tmp_path)
    assert broken.returncode == 1
    assert "queue 'ml' (sagemaker): UnavailableError" in broken.stderr
    missing_key = run("check", env={k: v for k, v in env.items() if k != "K"}, cwd=tmp_path)
    assert missing_key.returncode == 1 and "environment variable K is not set" in missing_key.stderr


def test_check_counts_the_shard_scopes(tmp_path: Path, sagemaker: SageMakerSim) -> None:
    """Two queues of one account: one scope by account, so a second worker would poll nothing."""
    path = queue_file(tmp_path, sagemaker.url)
    text = path.read_text()
    path.write_text('[bot]\nshard_by = "account"\n' + text + text.replace('name = "ml"', 'name = "nlp"'))
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "JOBWATCH_CONFIG": str(path), "K": "k", "S": "s"}
    result = run("check", env={**env, "JOBWATCH_SHARDED": "true"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sharded polling by account: 1 scope(s); workers beyond 1 poll nothing" in result.stdout
    path.write_text(path.read_text().replace('shard_by = "account"', 'shard_by = "queue"'))
    assert (
        "sharded polling by queue: 2 scope(s)"
        in run("check", env={**env, "JOBWATCH_SHARDED": "true"}, cwd=tmp_path).stdout
    )


def test_check_follows_serves_rule_for_slack_credentials(tmp_path: Path, sagemaker: SageMakerSim) -> None:
    """A client id and secret (install mode) stand in for SLACK_BOT_TOKEN; both at once is refused."""
    env = {
        "SLACK_CLIENT_ID": "111.222",
        "SLACK_CLIENT_SECRET": "client-secret",
        "SLACK_SIGNING_SECRET": "s",
        "JOBWATCH_CONFIG": str(queue_file(tmp_path, sagemaker.url)),
        "K": "k",
        "S": "s",
    }
    install = run("check", env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    assert "all checks passed" in install.stdout and "SLACK_BOT_TOKEN" not in install.stderr
    both = run("check", env={**env, "SLACK_BOT_TOKEN": "xoxb-1"}, cwd=tmp_path)
    assert both.returncode == 1 and "not both" in both.stderr
    half = run("check", env={k: v for k, v in env.items() if k != "SLACK_CLIENT_SECRET"}, cwd=tmp_path)
    assert half.returncode == 1
    assert "SLACK_BOT_TOKEN is not set" in half.stderr and "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET" in half.stderr


def test_poll_once_takes_a_baseline_then_alerts(tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "JOBWATCH_CONFIG": str(queue_file(tmp_path, sagemaker.url)),
        "K": "k",
        "S": "s",
    }
    assert run("poll", "--once", env=env, cwd=tmp_path).returncode == 0
    assert slack.posts() == []
    # subscribe through the same service `/jobs subscribe` uses; the next poll delivers a change
    db = Database(env["DATABASE_URL"])
    changes = ChannelSettings(config=load_config(Path(env["JOBWATCH_CONFIG"])), db=db)
    changes.subscribe(Actor("T0001", "C1", "U1"), "ml", statuses=(), match=None)
    db.dispose()
    sagemaker.set("bert", "Completed", "Completed")
    result = run("poll", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (post,) = slack.posts()
    assert post["channel"] == "C1" and "bert" in post["text"] and "Completed" in post["text"]


def test_sharded_poll_once_polls_only_the_scopes_it_takes(
    tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack, database_url: str
) -> None:
    """With JOBWATCH_SHARDED `poll --once` is one more worker for one renewal: a running worker holds
    account A, so it polls the queues of account B only, says so, and releases B when it is done."""
    if not database_url.startswith("postgresql"):
        pytest.skip("sharded polling is PostgreSQL only")
    config = tmp_path / "jobwatch.toml"
    config.write_text(
        '[bot]\nshard_by = "account"\n'
        + "".join(
            f'[[queues]]\nname = "{q}"\nprovider = "sagemaker"\nregion = "us-east-1"\n'
            f'endpoint_url = "{sagemaker.url}"\n'
            f'access_key_env = "TEAM_{q[0].upper()}_KEY"\nsecret_key_env = "S"\nname_contains = "{q}-"\n'
            for q in ("a0", "a1", "b0", "b1")
        )
    )
    scope = {q.name: q.account_scope() for q in load_config(config).queues}
    db = Database(database_url)
    db.upgrade()
    running = ShardKeeper(db, ttl=timedelta(seconds=600), owner="running-worker")
    assert set(running.renew([scope["a0"]])) == {scope["a0"]}  # a worker that polls account A
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "JOBWATCH_CONFIG": str(config),
        "JOBWATCH_SHARDED": "true",
        **{"TEAM_A_KEY": "AKIAA", "TEAM_B_KEY": "AKIAB", "S": "s"},
    }
    result = run("poll", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sharded by account: polling 2 of 4 queue(s) in the 1 scope(s) taken: b0, b1" in result.stdout
    assert scope["b0"] in result.stdout
    try:
        with db.read() as session:
            polled = {s.queue for s in session.exec(select(QueueState)).all() if s.last_poll_at is not None}
            rows = {r.name: r for r in session.exec(select(Lease)).all()}
        assert polled == {"b0", "b1"}
        released = rows[shard_name(scope["b0"])]
        assert released.owner != "running-worker" and released.expires_at < utcnow()  # handed back at the end
        assert rows[shard_name(scope["a0"])].owner == "running-worker"
    finally:
        db.dispose()


PORT_BAND = 500
_next_port = itertools.count(random.randrange(PORT_BAND))  # two runs at once on one machine: other ports


def free_port() -> int:
    """A port for a child process to listen on, free when it is handed out.

    Not bind(0): that takes the port from the kernel's ephemeral range (32768 and up), and once we
    close it a server or an outgoing connection of another test process (pytest-xdist) may be given
    it before the child binds it. These come from below that range instead, from a band of 500
    ports per xdist worker (20000-20499 for gw0, ...; 24 bands, then they repeat), never the same
    one twice in a process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    band = 20_000 + PORT_BAND * (int(worker.removeprefix("gw")) % 24)  # 24 bands end below 32768
    for _ in range(PORT_BAND):
        port = band + next(_next_port) % PORT_BAND
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # something of this machine listens there: the next one
                continue
            return port
    raise RuntimeError(f"no free port in {band}-{band + PORT_BAND - 1}")


def test_serve_answers_slack_and_runs_the_worker(tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack) -> None:
    import time

    import httpx

    from bot.sim.slash import slash_command

    sagemaker.add("bert", status="InProgress", secondary="Training")
    port = free_port()
    proc = start("serve", env=serve_env(tmp_path, slack, sagemaker, port), cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "serve did not come up"
                time.sleep(0.1)
        assert health.status_code == 200
        body, headers = slash_command("serve-secret", "subscribe ml", channel="C9", response_url=slack.response_url())
        reply = httpx.post(base + "/slack/events", content=body, headers=headers, timeout=5)
        assert reply.status_code == 200 and "Subscribed" in reply.json()["text"] + str(reply.json()["blocks"])
        while True:  # wait for the first (baseline) poll before the job moves
            body, headers = slash_command("serve-secret", "queues", response_url=slack.response_url())
            queues = httpx.post(base + "/slack/events", content=body, headers=headers, timeout=5).json()
            if "ok · last poll" in str(queues["blocks"]):
                break
            assert time.monotonic() < deadline, queues
            time.sleep(0.2)
        sagemaker.set("bert", "Completed", "Completed")
        deadline = time.monotonic() + 20
        while not slack.posts("C9"):
            assert time.monotonic() < deadline, "no alert from the in-process worker"
            time.sleep(0.2)
        assert "bert" in slack.posts("C9")[0]["text"]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_web_and_worker_split(tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack) -> None:
    """`serve --no-worker` answers Slack and polls nothing; `worker` polls, posts and serves /metrics."""
    import time

    import httpx

    from bot.sim.slash import slash_command

    sagemaker.add("bert", status="InProgress", secondary="Training")
    web_port, worker_port = free_port(), free_port()
    env = serve_env(tmp_path, slack, sagemaker, web_port)
    procs = [
        start(*args, env=env, cwd=tmp_path)
        for args in (["serve", "--no-worker"], ["worker", "--port", str(worker_port)])
    ]
    web, worker = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{worker_port}"
    try:
        deadline = time.monotonic() + 30
        for base in (web, worker):
            while True:
                try:
                    assert httpx.get(base + "/healthz", timeout=1).status_code == 200
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "did not come up"
                    time.sleep(0.1)
        ready = httpx.get(web + "/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["worker"] is False, ready.text
        body, headers = slash_command("serve-secret", "subscribe ml", channel="C9", response_url=slack.response_url())
        assert httpx.post(web + "/slack/events", content=body, headers=headers, timeout=5).status_code == 200
        assert httpx.get(worker + "/slack/events", timeout=5).status_code == 404  # the worker answers no Slack
        while 'jobwatch_polls_total{outcome="ok",queue="ml"}' not in httpx.get(worker + "/metrics", timeout=5).text:
            assert time.monotonic() < deadline, "the worker did not poll"
            time.sleep(0.2)
        sagemaker.set("bert", "Completed", "Completed")
        while not slack.posts("C9"):
            assert time.monotonic() < deadline, "no alert from the worker process"
            time.sleep(0.2)
        web_metrics = httpx.get(web + "/metrics", timeout=5).text
        assert "jobwatch_polls_total{" not in web_metrics  # the web process never polled
        assert 'jobwatch_command_duration_seconds_count{subcommand="subscribe"} 1.0' in web_metrics
        ready = httpx.get(worker + "/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["worker"] is True, ready.text
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.communicate(timeout=15)


def test_serve_polls_every_second_with_a_one_second_interval(
    tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack
) -> None:
    """JOBWATCH_POLL_INTERVAL=1 (self-hosted providers, local rigs): the real scheduler lists the queue
    about once a second."""
    import time

    sagemaker.add("bert")
    env = serve_env(tmp_path, slack, sagemaker, free_port(), JOBWATCH_POLL_INTERVAL="1")
    config = Path(env["JOBWATCH_CONFIG"])
    config.write_text(config.read_text().replace("poll_interval = 5\n", ""))  # the environment's interval

    def listings() -> int:
        return sum(target.endswith(".ListTrainingJobs") for target in list(sagemaker.requests))

    proc = start("serve", env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while listings() == 0:  # the first poll runs at start-up
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start polling"
            time.sleep(0.05)
        first = listings()
        time.sleep(4.0)
        polls = listings() - first
        assert 3 <= polls <= 6, f"{polls} listings in 4 s with a 1 s interval"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
