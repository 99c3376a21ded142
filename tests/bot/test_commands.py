import pytest

from bot.slack.grammar import (
    ExportSubscriptions,
    Help,
    ListJobs,
    Queues,
    ShowJob,
    Subscribe,
    Subscriptions,
    Unsubscribe,
    UsageError,
    parse,
)
from providers import JobStatus


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help", Help()),
        ("queues", Queues()),
        ("list ml", ListJobs("ml")),
        ("list ml failed --limit 5", ListJobs("ml", "failed", 5)),
        ("list ml InProgress --limit=50", ListJobs("ml", "InProgress", 50)),
        ("status ml bert-001", ShowJob("ml", "bert-001")),
        ("subscribe ml", Subscribe("ml")),
        (
            "subscribe ml failed timed_out --match 'nightly-*'",
            Subscribe("ml", (JobStatus.FAILED, JobStatus.TIMED_OUT), "nightly-*"),
        ),
        ("unsubscribe ml", Unsubscribe("ml")),
        ("subscriptions", Subscriptions()),
        ("subscriptions export", ExportSubscriptions()),
        ("subscribe ml failed --dry-run", Subscribe("ml", (JobStatus.FAILED,), None, dry_run=True)),
    ],
)
def test_parses(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem", "usage"),
    [
        ("frobnicate", "unknown command", "/jobs help"),
        ("list", "name one queue", "/jobs list <queue>"),
        ("list ml --limit 51", "--limit takes a number from 1 to 50", "/jobs list"),
        ("status ml", "name a queue and a job", "/jobs status"),
        ("subscribe ml bogus", "unknown status", "/jobs subscribe"),
        ("subscribe <!channel>", "queue names are", "/jobs subscribe"),
        ("subscribe <@U123>", "queue names are", "/jobs subscribe"),
        ("unsubscribe", "name the queue", "/jobs unsubscribe"),
        ("list ml\u202e", "control or invisible character", ""),
        ("list ml\x00", "control or invisible character", ""),
        ("list ml\u200b", "control or invisible character", ""),
        ("x" * 501, "too long", ""),
        ("list 'ml", "unbalanced quotes", ""),
    ],
)
def test_rejects_with_usage(text: str, problem: str, usage: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(text)
    assert problem in info.value.problem
    assert usage in info.value.usage
