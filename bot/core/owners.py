"""A job's owner: where it comes from (`owner_from` on a queue), who they are in Slack (`[owners]`),
and what they hear (a mention in the job's thread when it fails or times out; a DM when it ends).

`owner_from` takes one of:

- `name:<regular expression>`: the named group `owner` of a search in the job's name
  (`name:^(?P<owner>[a-z]+)-` reads `alice` from `alice-bert-7`); any provider.
- `field`: the owner field the provider's listing already returns, so no extra request: an
  Alibaba PAI run's `UserId` (else `OwnerId`), a Modzy job's `submittedBy` (else
  `accountIdentifier`). The adapters keep these in `Job.extra` (`user_id`, `owner_id`,
  `submitted_by`, `account`).
- `tag:<key>`: the value of the job's tag `<key>` (`tag:owner`), for providers whose listing lacks
  tags but who answer them in one request per job: SageMaker (ListTags) and AWS Batch service jobs
  (DescribeServiceJob). The tags are read once per job, by bot/pipeline/tags.py, and only the owner (and
  whether the read was done) is kept with the job.

The owner value is stored with the job (`Job.extra["owner"]`) before the diff, so a job listed
again fingerprints the same. It is provider text: it only ever serves as a key to look up, and is
escaped wherever it is shown. A Slack user is mentioned only through an id that the queues file
gave (`[owners]`, validated as a user id) or that `users.lookupByEmail` returned (validated again).

An owner value that `[owners]` does not name and that is an e-mail address is looked up with
`users.lookupByEmail` (bot/features/directory.py: where, when and how it is cached); `known_users` and
`owned_values` read that cache together with the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from bot.core.ids import USER_RE
from providers import SOURCES, Job, JobStatus, reads_tags

OWNER_KEY = "owner"
OWNER_MAX = 200  # characters of an owner value kept
# An address worth asking Slack about: one @, a dot in the domain, nothing Slack would read as markup.
EMAIL_RE = re.compile(r"^[^@\s<>&|*`]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MENTION_ON = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})


class OwnerNotify(StrEnum):
    """What an owner hears (`[owners] notify`): a thread mention on failure and a DM when the job
    ends; the mention only; nothing."""

    DM = "dm"
    THREAD = "thread"
    OFF = "off"


# Per provider, the `Job.extra` keys that `owner_from = "field"` reads, first present wins.
FIELDS: Mapping[str, tuple[str, ...]] = {"pai": ("user_id", "owner_id"), "modzy": ("submitted_by", "account")}
# Providers whose adapter reads a job's tags (providers.base.Taggable).
TAGGED = frozenset(name for name, spec in SOURCES.items() if reads_tags(spec.build))
TAG_KEY_MAX = 128  # characters of a tag key on AWS (SageMaker and Batch alike)


def check_owner_from(value: str, provider: str) -> str:
    """`value` if it is a usable `owner_from` for `provider`, else ValueError saying why."""
    if value == "field":
        if provider not in FIELDS:
            raise ValueError(
                f"owner_from 'field' is for providers whose listing names the owner ({', '.join(sorted(FIELDS))}); "
                f"{provider} does not: use 'name:<regex>'"
            )
        return value
    if value.startswith("name:"):
        try:
            pattern = re.compile(value[5:])
        except re.error as err:
            raise ValueError(f"owner_from: not a valid regular expression: {err}") from None
        if "owner" not in pattern.groupindex:
            raise ValueError("owner_from: the regular expression needs a named group (?P<owner>...)")
        return value
    if value.startswith("tag:"):
        key = value[4:]
        if provider not in TAGGED:
            raise ValueError(
                f"owner_from 'tag:' is for providers whose jobs carry tags ({', '.join(sorted(TAGGED))}); "
                f"{provider} has none: use 'name:<regex>'" + (" or 'field'" if provider in FIELDS else "")
            )
        if not key or len(key) > TAG_KEY_MAX or key != key.strip():
            raise ValueError(
                f"owner_from: 'tag:' needs a tag key of 1 to {TAG_KEY_MAX} characters, such as 'tag:owner'"
            )
        return value
    raise ValueError(f"owner_from must be 'field', 'name:<regex with (?P<owner>...)>' or 'tag:<key>', not {value!r}")


def tag_key(owner_from: str | None) -> str | None:
    """The tag key an `owner_from` reads (`tag:owner` -> `owner`), or None when it reads no tag."""
    return owner_from[4:] if owner_from and owner_from.startswith("tag:") else None


def clipped(value: object) -> str | None:
    """An owner value as kept: text, stripped, at most OWNER_MAX characters; None when empty."""
    text = str(value).strip()[:OWNER_MAX] if value is not None else ""
    return text or None


def owner_of(job: Job, owner_from: str | None, provider: str) -> str | None:
    """The job's owner value as `owner_from` reads it, or None (a tag owner is the one stored)."""
    if not owner_from:
        return None
    found: object = None
    if owner_from == "field":
        found = next((job.extra[k] for k in FIELDS.get(provider, ()) if job.extra.get(k)), None)
    elif owner_from.startswith("name:"):
        match = re.search(owner_from[5:], job.name)
        found = match.group("owner") if match else None
    elif owner_from.startswith("tag:"):
        found = job.extra.get(OWNER_KEY)  # read from the tags by bot/pipeline/tags.py, kept with the job
    return clipped(found)


def with_owner(job: Job, owner_from: str | None, provider: str) -> Job:
    """`job` with its owner value in `extra["owner"]` (unchanged when it has none)."""
    owner = owner_of(job, owner_from, provider)
    if owner is None or job.extra.get(OWNER_KEY) == owner:
        return job
    return job.model_copy(update={"extra": {**job.extra, OWNER_KEY: owner}})


def slack_user(owner: str | None, table: Mapping[str, str]) -> str | None:
    """The Slack user id the `[owners]` table gives an owner value (keys compare case-insensitively)."""
    if not owner:
        return None
    user = table.get(owner) or table.get(owner.lower())
    return user if user and USER_RE.match(user) else None


def owned_by(user: str, table: Mapping[str, str]) -> set[str]:
    """The owner values (lower case) the `[owners]` table maps to `user`."""
    return {value.lower() for value, who in table.items() if who == user}


def email_of(owner: str | None, table: Mapping[str, str]) -> str | None:
    """The owner value (lower case) if it is an e-mail address the `[owners]` table does not name."""
    if not owner or slack_user(owner, table) is not None:
        return None
    value = owner.strip().lower()
    return value if len(value) <= 254 and EMAIL_RE.match(value) else None


def is_owner(job: Job, values: set[str]) -> bool:
    """Whether the job's stored owner value is one of `values` (lower case)."""
    owner = job.extra.get(OWNER_KEY)
    return isinstance(owner, str) and owner.lower() in values
