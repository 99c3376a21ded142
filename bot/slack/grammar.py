"""Parse `/jobs` text into a command (bot/slack/commands.py); pure, and rejects junk with a message
and the usage."""

from __future__ import annotations

import re
import shlex
import unicodedata

from bot.core.clock import WEEKDAYS
from bot.core.config import EVENTS, SUBSCRIPTION_GLOB, follow_up_seconds
from bot.core.ids import USER_RE
from bot.core.quiet import check_zone, parse_window
from bot.slack.commands import (
    DEFAULT_LIMIT,
    USAGE,
    Command,
    Digest,
    ExportSubscriptions,
    Help,
    ListJobs,
    Mute,
    OpenFailures,
    Queues,
    ShowJob,
    Stats,
    Stop,
    Subscribe,
    Subscriptions,
    Unmute,
    Unsubscribe,
    Unwatch,
    UsageError,
    Watch,
    Watching,
)
from providers import JobStatus
from providers.causes import parse_causes

__all__ = [  # the command values, importable from here as before
    "COMMAND_PATTERN",
    "DEFAULT_LIMIT",
    "JOB_MAX",
    "QUEUE_RE",
    "USAGE",
    "Command",
    "Digest",
    "ExportSubscriptions",
    "Help",
    "ListJobs",
    "Mute",
    "Queues",
    "ShowJob",
    "Stats",
    "Stop",
    "Subscribe",
    "Subscriptions",
    "Unmute",
    "Unsubscribe",
    "Unwatch",
    "UsageError",
    "Watch",
    "Watching",
    "check_text",
    "duration",
    "parse",
]

COMMAND_PATTERN = re.compile(r"^/[a-z0-9_-]+$")  # the name is set in manifest.yml, `/jobs` by default
MAX_TEXT = 500
QUEUE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
GLOB_RE = re.compile(SUBSCRIPTION_GLOB)
MAX_LIMIT = 50

DURATION_RE = re.compile(r"^(\d{1,5})([mhd])$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
MAX_MUTE = 30 * 86400
JOB_MAX = 300
REASON_MAX = 200
FLAG_KINDS = EVENTS
STATUSES = ", ".join([*(s.value for s in JobStatus), *FLAG_KINDS])


_BAD_CATEGORIES = {"Cc", "Cf", "Co", "Cs"}  # control, format (bidi, zero-width), private, surrogate


def check_text(text: str) -> str:
    """Length and character checks common to every command."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"that command is too long ({len(text)} characters; at most {MAX_TEXT})")
    for ch in text:
        if ch not in "\t" and unicodedata.category(ch) in _BAD_CATEGORIES:
            raise UsageError(f"the command contains a control or invisible character (U+{ord(ch):04X})")
    return text.replace("\t", " ").strip()


def _queue(word: str, verb: str) -> str:
    if not QUEUE_RE.match(word):
        raise UsageError("queue names are lowercase letters, digits, - and _", USAGE[verb])
    return word


def _status(word: str, verb: str) -> JobStatus:
    try:
        return JobStatus(word.lower())
    except ValueError:
        raise UsageError(f"unknown status; use one of: {STATUSES}", USAGE[verb]) from None


def _parse_list(args: list[str]) -> ListJobs:
    limit = DEFAULT_LIMIT
    rest: list[str] = []
    it = iter(args)
    for word in it:
        if word.startswith("--limit"):
            value = word.split("=", 1)[1] if "=" in word else next(it, "")
            if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
                raise UsageError(f"--limit takes a number from 1 to {MAX_LIMIT}", USAGE["list"])
            limit = int(value)
        else:
            rest.append(word)
    mine = "mine" in (w.lower() for w in rest[1:]) or [w.lower() for w in rest] == ["mine"]
    if mine:
        rest = [rest[0]] + [w for w in rest[1:] if w.lower() != "mine"] if len(rest) > 1 else []
        if not rest:
            return ListJobs("", None, limit, mine=True)
    if not rest or len(rest) > 2:
        raise UsageError("name one queue, and optionally one status", USAGE["list"])
    status = rest[1] if len(rest) == 2 else None
    if status is not None and not re.match(r"^[A-Za-z_ ()-]{1,60}$", status):
        raise UsageError("that status is not valid", USAGE["list"])
    return ListJobs(_queue(rest[0], "list"), status, limit, mine=mine)


def _parse_subscribe(args: list[str]) -> Subscribe:
    match: str | None = None
    dry_run = False
    quiet: tuple[str, str] | None = None
    quiet_tz: str | None = None
    quiet_all = False
    recovery = True
    follow_up: int | None = None
    owner: str | None = None
    causes: tuple[str, ...] = ()
    words: list[str] = []
    it = iter(args)
    for word in it:
        if word.lower() == "--dry-run":
            dry_run = True
        elif word.startswith("--owner"):
            owner = _owner(word.split("=", 1)[1] if "=" in word else next(it, ""))
        elif word.startswith("--match"):
            match = word.split("=", 1)[1] if "=" in word else next(it, "")
            if not GLOB_RE.match(match):
                raise UsageError("--match takes a job-name pattern such as train-*", USAGE["subscribe"])
        elif word.startswith("--cause"):
            try:
                causes = parse_causes(word.split("=", 1)[1] if "=" in word else next(it, ""))
            except ValueError as err:
                raise UsageError(f"--cause: {err}", USAGE["subscribe"]) from None
        elif word.lower() == "--quiet-all":
            quiet_all = True
        elif word.lower() == "--no-recovery":
            recovery = False
        elif word.startswith("--follow-up"):
            try:
                follow_up = follow_up_seconds(word.split("=", 1)[1] if "=" in word else next(it, ""))
            except ValueError as err:
                raise UsageError(f"--follow-up: {err}".replace("follow_up: ", ""), USAGE["subscribe"]) from None
        elif word.startswith("--quiet-tz"):
            zone = word.split("=", 1)[1] if "=" in word else next(it, "")
            try:
                quiet_tz = check_zone(zone)
            except ValueError as err:
                raise UsageError(f"--quiet-tz: {err}", USAGE["subscribe"]) from None
        elif word.startswith("--quiet"):
            window = word.split("=", 1)[1] if "=" in word else next(it, "")
            try:
                quiet = parse_window(window)
            except ValueError as err:
                raise UsageError(f"--quiet: {err}", USAGE["subscribe"]) from None
        else:
            words.append(word)
    if not words:
        raise UsageError("name the queue to subscribe to", USAGE["subscribe"])
    if quiet is None and (quiet_all or quiet_tz):
        raise UsageError("--quiet-all and --quiet-tz go with --quiet HH:MM-HH:MM", USAGE["subscribe"])
    if dry_run and owner:
        raise UsageError("--dry-run does not take --owner (past transitions do not keep the owner)", USAGE["subscribe"])
    flags = tuple(dict.fromkeys(w.lower() for w in words[1:] if w.lower() in FLAG_KINDS))
    statuses = tuple(dict.fromkeys(_status(w, "subscribe") for w in words[1:] if w.lower() not in FLAG_KINDS))
    return Subscribe(
        _queue(words[0], "subscribe"),
        statuses,
        match,
        dry_run=dry_run,
        quiet=quiet,
        quiet_tz=quiet_tz,
        quiet_all=quiet_all,
        owner=owner,
        flags=flags,
        causes=causes,
        recovery=recovery,
        follow_up=follow_up,
    )


MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]{2,40})(\|[^>]*)?>$")


def _owner(word: str) -> str:
    """The user id of `--owner <@U…>` (a mention as Slack escapes it, `<@U…|name>`, or the bare id)."""
    found = MENTION_RE.match(word)
    user = found.group(1) if found else word
    if USER_RE.match(user):
        return user
    if not word:
        problem = "--owner needs a person: a mention <@U0123ABCD> or a member id U0123ABCD"
    elif word.startswith("@"):
        problem = (
            f"--owner {word[:40]!r}: a display name is not an id; give the member id U0123ABCD "
            "(profile → ⋯ → Copy member ID) or a mention <@U0123ABCD>"
        )
    else:
        problem = f"--owner {word[:40]!r} is not a Slack user: give a mention <@U0123ABCD> or a member id U0123ABCD"
    raise UsageError(problem, USAGE["subscribe"])


def duration(word: str) -> int:
    """`30m`, `2h`, `1d` as seconds (1 minute to 30 days), or UsageError."""
    found = DURATION_RE.match(word.lower())
    seconds = int(found.group(1)) * UNIT_SECONDS[found.group(2)] if found else 0
    if not 60 <= seconds <= MAX_MUTE:
        raise UsageError("give the mute a duration from 1m to 30d, such as 30m, 2h or 1d", USAGE["mute"])
    return seconds


def _job(word: str, verb: str) -> str:
    if len(word) > JOB_MAX:
        raise UsageError("that job name is too long", USAGE[verb])
    return word


def _parse_mute(args: list[str]) -> Mute:
    if len(args) not in (2, 3):
        raise UsageError("name a queue, optionally a job, and a duration", USAGE["mute"])
    job = _job(args[1], "mute") if len(args) == 3 else None
    return Mute(_queue(args[0], "mute"), job, duration(args[-1]))


def _parse_unmute(args: list[str]) -> Unmute:
    if len(args) not in (1, 2):
        raise UsageError("name a queue, and optionally a job", USAGE["unmute"])
    return Unmute(_queue(args[0], "unmute"), _job(args[1], "unmute") if len(args) == 2 else None)


def _parse_stop(args: list[str]) -> Stop:
    if len(args) < 2:
        raise UsageError("name a queue and a job, and optionally why", USAGE["stop"])
    reason = " ".join(args[2:])
    if len(reason) > REASON_MAX:
        raise UsageError(f"keep the reason under {REASON_MAX} characters", USAGE["stop"])
    return Stop(_queue(args[0], "stop"), _job(args[1], "stop"), reason)


DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _parse_digest(args: list[str]) -> Digest:
    tz: str | None = None
    words: list[str] = []
    it = iter(args)
    for word in it:
        if word.startswith("--tz"):
            zone = word.split("=", 1)[1] if "=" in word else next(it, "")
            try:
                tz = check_zone(zone)
            except ValueError as err:
                raise UsageError(f"--tz: {err}", USAGE["digest"]) from None
        else:
            words.append(word.lower())
    if len(words) < 2:
        raise UsageError("name a queue and daily HH:MM, weekly DAY HH:MM, or off", USAGE["digest"])
    queue, cadence, rest = _queue(words[0], "digest"), words[1], words[2:]
    if cadence == "off" and not rest and tz is None:
        return Digest(queue, "off")
    weekday = None
    if cadence == "weekly" and rest:
        if rest[0] not in WEEKDAYS and rest[0] not in DAY_NAMES:
            raise UsageError(f"unknown day {rest[0]!r}; use one of: {', '.join(WEEKDAYS)}", USAGE["digest"])
        weekday, rest = WEEKDAYS.index(rest[0][:3]), rest[1:]
    if cadence not in ("daily", "weekly") or len(rest) != 1 or (cadence == "weekly" and weekday is None):
        raise UsageError("say daily HH:MM, weekly DAY HH:MM, or off", USAGE["digest"])
    if not TIME_RE.match(rest[0]):
        raise UsageError(f"the time is HH:MM in 24-hour time, such as 09:00 (got {rest[0]!r})", USAGE["digest"])
    return Digest(queue, cadence, weekday, rest[0], tz)


def parse(text: str) -> Command:
    """Turn the slash command's text into a Command, or raise UsageError."""
    clean = check_text(text)
    try:
        words = shlex.split(clean)
    except ValueError:
        raise UsageError("unbalanced quotes") from None
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return Help()
    verb, args = words[0].lower(), words[1:]
    if verb == "queues" and not args:
        return Queues()
    if verb == "subscriptions" and not args:
        return Subscriptions()
    if verb == "subscriptions" and [a.lower() for a in args] == ["export"]:
        return ExportSubscriptions()
    if verb == "list":
        return _parse_list(args)
    if verb == "status":
        if len(args) != 2:
            raise UsageError("name a queue and a job", USAGE["status"])
        return ShowJob(_queue(args[0], "status"), _job(args[1], "status"))
    if verb == "subscribe":
        return _parse_subscribe(args)
    if verb == "stats":
        if len(args) not in (1, 2):
            raise UsageError("name a queue, and optionally a job family", USAGE["stats"])
        return Stats(_queue(args[0], "stats"), _job(args[1], "stats").lower() if len(args) == 2 else None)
    if verb == "unsubscribe":
        if len(args) != 1:
            raise UsageError("name the queue to unsubscribe from", USAGE["unsubscribe"])
        return Unsubscribe(_queue(args[0], "unsubscribe"))
    if verb == "mute":
        return _parse_mute(args)
    if verb == "unmute":
        return _parse_unmute(args)
    if verb == "stop":
        return _parse_stop(args)
    if verb == "watching" and not args:
        return Watching()
    if verb == "open":
        if len(args) > 1:
            raise UsageError("name at most one queue", USAGE["open"])
        return OpenFailures(_queue(args[0], "open") if args else None)
    if verb in ("watch", "unwatch"):
        if len(args) != 2:
            raise UsageError("name a queue and a job", USAGE[verb])
        kind = Watch if verb == "watch" else Unwatch
        return kind(_queue(args[0], verb), _job(args[1], verb))
    if verb == "digest":
        return _parse_digest(args)
    if verb in USAGE:
        raise UsageError(f"`{verb}` takes different arguments", USAGE[verb])
    raise UsageError("unknown command", "/jobs help")
