"""The `/jobs` commands as values: one frozen dataclass per subcommand, their union `Command`, the
usage text of each subcommand and `UsageError`, which carries the usage that applies.
bot/slack/grammar.py turns the typed text into these."""

from __future__ import annotations

from dataclasses import dataclass

from providers import JobStatus

DEFAULT_LIMIT = 10

USAGE = {
    "help": "/jobs help",
    "queues": "/jobs queues",
    "list": "/jobs list <queue> [status] [mine] [--limit N] | /jobs list mine",
    "status": "/jobs status <queue> <job>",
    "subscribe": "/jobs subscribe <queue> [status|slow|stuck ...] [--match PATTERN] [--cause CAUSE,...]"
    " [--quiet HH:MM-HH:MM [--quiet-tz ZONE] [--quiet-all]] [--owner <@USER>] [--no-recovery]"
    " [--follow-up 30m] [--dry-run]",
    "stats": "/jobs stats <queue> [family]",
    "open": "/jobs open [queue]",
    "unsubscribe": "/jobs unsubscribe <queue>",
    "subscriptions": "/jobs subscriptions [export]",
    "mute": "/jobs mute <queue> [job] <duration>  (e.g. 30m, 2h, 1d)",
    "unmute": "/jobs unmute <queue> [job]",
    "stop": "/jobs stop <queue> <job> [reason ...]",
    "watch": "/jobs watch <queue> <job>",
    "unwatch": "/jobs unwatch <queue> <job>",
    "watching": "/jobs watching",
    "digest": "/jobs digest <queue> daily HH:MM | weekly mon HH:MM | off  [--tz ZONE]",
}


class UsageError(Exception):
    """The text is not a valid command; `usage` is the syntax that applies."""

    def __init__(self, problem: str, usage: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage


@dataclass(frozen=True)
class Help:
    """Show usage."""


@dataclass(frozen=True)
class Queues:
    """List configured queues."""


@dataclass(frozen=True)
class ListJobs:
    """Most recent jobs of a queue."""

    queue: str
    status: str | None = None
    limit: int = DEFAULT_LIMIT
    mine: bool = False  # only the person's watched and owned jobs; queue "" with it: every queue


@dataclass(frozen=True)
class ShowJob:
    """One job in detail."""

    queue: str
    job: str


@dataclass(frozen=True)
class Subscribe:
    """Subscribe this channel to a queue."""

    queue: str
    statuses: tuple[JobStatus, ...] = ()
    match: str | None = None
    dry_run: bool = False  # count what the filter would have posted over the last 24 h; subscribe nothing
    quiet: tuple[str, str] | None = None  # quiet hours (bot/core/quiet.py): ("20:00", "08:00")
    quiet_tz: str | None = None
    quiet_all: bool = False
    owner: str | None = None  # a Slack user id: only that person's jobs (bot/core/owners.py)
    flags: tuple[str, ...] = ()  # slow, stuck (bot/pipeline/usual.py)
    causes: tuple[str, ...] = ()  # failure causes (providers/causes.py)
    recovery: bool = True  # a family's first success after failures passes the status filter
    follow_up: int | None = None  # seconds: an unclaimed failure gets one follow-up after that long


@dataclass(frozen=True)
class Unsubscribe:
    """Remove this channel's subscription."""

    queue: str


@dataclass(frozen=True)
class Subscriptions:
    """This channel's subscriptions."""


@dataclass(frozen=True)
class ExportSubscriptions:
    """This channel's subscriptions as [[subscriptions]] tables for the queues file."""


@dataclass(frozen=True)
class Mute:
    """Hold back this channel's alerts of a queue (or one job of it) for a while."""

    queue: str
    job: str | None
    seconds: int


@dataclass(frozen=True)
class Unmute:
    """End a mute now."""

    queue: str
    job: str | None = None


@dataclass(frozen=True)
class Stop:
    """Ask the provider to stop one job."""

    queue: str
    job: str
    reason: str = ""


@dataclass(frozen=True)
class Watch:
    """Direct-message the person when one job first runs and when it ends."""

    queue: str
    job: str


@dataclass(frozen=True)
class Unwatch:
    """Remove one of the person's watches."""

    queue: str
    job: str


@dataclass(frozen=True)
class Watching:
    """The person's watches."""


@dataclass(frozen=True)
class Digest:
    """Schedule this channel's digest of a queue (bot/features/schedules.py); cadence `off` removes it."""

    queue: str
    cadence: str  # daily | weekly | off
    weekday: int | None = None  # 0 = Monday, when weekly
    at: str = ""  # "HH:MM"
    tz: str | None = None


@dataclass(frozen=True)
class Stats:
    """Run and wait percentiles, success rate and count of a queue (or one job family) over 30 days."""

    queue: str
    family: str | None = None


@dataclass(frozen=True)
class OpenFailures:
    """The failures of the last 24 h nobody has claimed, of one queue or (None) every queue."""

    queue: str | None = None


Command = (
    Stats
    | OpenFailures
    | Help
    | Queues
    | ListJobs
    | ShowJob
    | Subscribe
    | Unsubscribe
    | Subscriptions
    | ExportSubscriptions
    | Mute
    | Unmute
    | Stop
    | Watch
    | Unwatch
    | Watching
    | Digest
)
