from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.core.config import ConfigError, Settings, load_config

GOOD = """
[bot]
digest_threshold = 5
ops_channel = "COPS01"

[access]
admins = ["U1"]

[[queues]]
name = "ml-training"
provider = "sagemaker"
region = "eu-west-1"
name_contains = "bert"
poll_interval = 30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobwatch.toml"
    path.write_text(text)
    return path


def test_good_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.bot.digest_threshold == 5
    assert config.access.admins == ("U1",)
    (queue,) = config.queues
    assert queue.name == "ml-training" and queue.poll_interval == 30
    assert queue.scope_text() == "region eu-west-1, name contains 'bert'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[queues]]\nname = "a"\nprovider = "sagemaker"\n', r"queue 'a': key region: Field required"),
        ('[[queues]]\nname = "a"\nprovider = "nope"\n', r"queue 'a': key provider: 'nope' is not one of"),
        ('[[queues]]\nname = "Bad Name"\nprovider = "sagemaker"\nregion = "x"\n', r"key name: String should match"),
        ('[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nregoin = "y"\n', r"key regoin: Extra inputs"),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\n'
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "y"\n',
            r"queue 'a': key name: duplicate",
        ),
        ("[bot]\ndigest_threshold = 0\n", r"\[bot\]: key digest_threshold"),
        ("[bot]\ndelivery_threads = 0\n", r"\[bot\]: key delivery_threads: Input should be greater than or equal to 1"),
        ("[bot]\ndelivery_turn = 0.5\n", r"\[bot\]: key delivery_turn: Input should be greater than or equal to 1"),
        ('[bot]\nshard_by = "region"\n', r"\[bot\]: key shard_by: Input should be 'queue' or 'account'"),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nfamily = "^(team-[a-z+"\n',
            r"queue 'a': key family: .*not a valid regular expression: unterminated character set",
        ),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nslow_factor = 1.0\n',
            r"queue 'a': key slow_factor: Input should be greater than 1",
        ),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nslow_floor = 0\n',
            r"queue 'a': key slow_floor: Input should be greater than or equal to 1",
        ),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nstuck_floor = 700000\n',
            r"queue 'a': key stuck_floor: Input should be less than or equal to 604800",
        ),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nstuck_floor = "10 min"\n',
            r"queue 'a': key stuck_floor: Input should be a valid number",
        ),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nstuck_factor = 0.5\n',
            r"queue 'a': key stuck_factor: Input should be greater than or equal to 1",
        ),
        (
            '[[queues]]\nname = "a"\nprovider = "sagemaker"\nregion = "x"\nstuck_factor = nan\n',
            r"queue 'a': key stuck_factor: Input should be a finite number",
        ),
        ("[[queues]\n", r"not valid TOML"),
        ("[extra]\n", r"unknown table\(s\): extra"),
    ],
)
def test_bad_file_names_file_queue_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_slow_and_stuck_keys(tmp_path: Path) -> None:
    text = GOOD + "slow_factor = 2\nslow_floor = 60\nstuck_factor = 1.5\nstuck_floor = 90.5\n"
    (queue,) = load_config(write(tmp_path, text)).queues
    assert (queue.slow_factor, queue.slow_floor, queue.stuck_factor, queue.stuck_floor) == (2.0, 60.0, 1.5, 90.5)
    (default,) = load_config(write(tmp_path, GOOD)).queues
    assert (default.slow_factor, default.slow_floor, default.stuck_factor, default.stuck_floor) == (1.5, 300, 1, 600)
    for bad in ("true", "-5", "inf", '"600"'):
        path = write(tmp_path, GOOD + f"slow_floor = {bad}\n")
        with pytest.raises(ConfigError, match="queue 'ml-training': key slow_floor: ") as info:
            load_config(path)
        assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")


QUEUE = '[[queues]]\nname = "a"\nprovider = "modzy"\nendpoint_url = "http://127.0.0.1:9"\n'


def test_poll_interval_of_one_second_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Self-hosted providers and local rigs are polled every second or two."""
    monkeypatch.setenv("JOBWATCH_POLL_INTERVAL", "1")
    settings = Settings()
    config = load_config(write(tmp_path, f"[bot]\npoll_interval = 2\n{QUEUE}poll_interval = 1.5\n"))
    assert settings.jobwatch_poll_interval == 1
    assert config.bot.poll_interval == 2
    assert config.interval(config.queues[0], settings) == 1.5
    default = load_config(write(tmp_path, "[bot]\npoll_interval = 1\n" + QUEUE))
    assert default.interval(default.queues[0], settings) == 1


@pytest.mark.parametrize("value", ["0.5", "0", "-1", "nan", "inf", "often", ""])
def test_poll_interval_below_one_second_or_not_a_number_is_refused_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("JOBWATCH_POLL_INTERVAL", value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [("jobwatch_poll_interval",)]


@pytest.mark.parametrize("value", ["0.5", "0", "-3", "nan", "inf", "true", '"30"'])
@pytest.mark.parametrize("table", ["bot", "queue"])
def test_poll_interval_below_one_second_or_not_a_number_is_refused_in_the_file(
    tmp_path: Path, value: str, table: str
) -> None:
    text = f"[bot]\npoll_interval = {value}\n{QUEUE}" if table == "bot" else f"{QUEUE}poll_interval = {value}\n"
    where = r"\[bot\]" if table == "bot" else "queue 'a'"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=f"{where}: key poll_interval: ") as info:
        load_config(path)
    assert str(path) in str(info.value)


PUSHED = (
    '[[queues]]\nname = "ml"\nprovider = "sagemaker"\nregion = "us-east-1"\n'
    'events_queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/jobwatch-events"\n'
)


def test_a_queue_whose_changes_are_pushed_is_polled_to_reconcile(tmp_path: Path) -> None:
    settings = Settings()
    config = load_config(write(tmp_path, "[bot]\npoll_interval = 30\n" + PUSHED))
    assert config.interval(config.queues[0], settings) == 300  # [bot] reconcile_interval's default
    config = load_config(write(tmp_path, "[bot]\nreconcile_interval = 120\n" + PUSHED))
    assert config.interval(config.queues[0], settings) == 120
    config = load_config(write(tmp_path, PUSHED + "poll_interval = 60\n"))
    assert config.interval(config.queues[0], settings) == 60  # the queue's own interval wins


def test_events_queue_url_must_be_an_sqs_queue_url(tmp_path: Path) -> None:
    text = PUSHED.replace("https://sqs.us-east-1.amazonaws.com/123456789012/jobwatch-events", "jobwatch-events")
    with pytest.raises(ConfigError, match="queue 'ml': key events_queue_url"):
        load_config(write(tmp_path, text))


def test_shard_scope_is_the_queue_or_its_account(tmp_path: Path) -> None:
    """`[bot] shard_by`: "queue" (the default) keeps one scope per queue, "account" one per account."""
    queues = "".join(
        f'[[queues]]\nname = "{name}"\nprovider = "sagemaker"\nregion = "{region}"\n'
        for name, region in (("a", "us-east-1"), ("b", "us-east-1"), ("c", "eu-west-1"))
    )
    by_queue = load_config(write(tmp_path, queues))
    assert by_queue.bot.shard_by == "queue"
    assert [by_queue.shard_scope(q) for q in by_queue.queues] == ["a", "b", "c"]
    by_account = load_config(write(tmp_path, '[bot]\nshard_by = "account"\n' + queues))
    a, b, c = (by_account.shard_scope(q) for q in by_account.queues)
    assert a == b != c and a.startswith("sagemaker:us-east-1:") and c.startswith("sagemaker:eu-west-1:")
