"""What a Slack Web API failure means for an outbox row: decided once, here (docs/reliability.md §Slack errors)."""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass
from enum import Enum

from slack_sdk.errors import SlackApiError

CHANNEL_GONE = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "ekm_access_denied",
    }
)
BAD_PAYLOAD = frozenset(
    {
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_blocks",
        "invalid_arguments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "invalid_arg_name",
        "invalid_form_data",
        "invalid_charset",
    }
)
TOKEN = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
    }
)


class Kind(Enum):
    """How to treat a failed call."""

    CHANNEL_GONE = "channel_gone"  # dead row, pause the subscription
    BAD_PAYLOAD = "bad_payload"  # dead row after one plain-text fallback
    TOKEN = "token"  # keep the row, stop sending for this workspace
    RETRY = "retry"  # nothing was posted: retry later (Retry-After honoured)
    AMBIGUOUS = "ambiguous"  # the post may have happened: look it up before any repost


@dataclass(frozen=True)
class Failure:
    """A classified failure."""

    kind: Kind
    code: str
    retry_after: float | None = None


def classify(err: BaseException) -> Failure:
    """Classify an exception raised by a WebClient call."""
    if isinstance(err, SlackApiError):
        status = getattr(err.response, "status_code", 200)
        code = str(err.response.get("error", "") or f"http_{status}")
        if status == 429 or code in ("ratelimited", "rate_limited"):
            header = err.response.headers.get("Retry-After") or err.response.headers.get("retry-after") or "1"
            try:
                wait = float(header[0] if isinstance(header, list) else header)
            except ValueError:
                wait = 1.0
            return Failure(Kind.RETRY, "ratelimited", retry_after=max(wait, 1.0))
        if code in CHANNEL_GONE:
            return Failure(Kind.CHANNEL_GONE, code)
        if code in BAD_PAYLOAD:
            return Failure(Kind.BAD_PAYLOAD, code)
        if code in TOKEN:
            return Failure(Kind.TOKEN, code)
        if status >= 500 or code in ("internal_error", "fatal_error"):
            return Failure(Kind.AMBIGUOUS, code)
        # Transient and unrecognised codes: nothing was posted; retry with backoff, capped.
        return Failure(Kind.RETRY, code)
    if isinstance(err, urllib.error.URLError) and isinstance(err.reason, ConnectionRefusedError):
        return Failure(Kind.RETRY, "connection_refused")  # the request never left
    return Failure(Kind.AMBIGUOUS, type(err).__name__)
