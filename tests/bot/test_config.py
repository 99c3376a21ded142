from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

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
        ("[[queues]\n", r"not valid TOML"),
        ("[extra]\n", r"unknown table\(s\): extra"),
    ],
)
def test_bad_file_names_file_queue_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
