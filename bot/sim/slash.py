"""Build slash-command requests exactly as Slack sends them: a form body signed with v0."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slash_command(
    secret: str,
    text: str,
    *,
    team: str = "T0001",
    channel: str = "C0001",
    user: str = "U0001",
    response_url: str = "https://hooks.slack.com/commands/T0001/1/x",
    command: str = "/jobs",
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The form body and headers of a signed `/jobs` request."""
    fields = command_payload(text, team=team, channel=channel, user=user, response_url=response_url, command=command)
    body = urlencode(fields).encode()
    return body, signed_headers(secret, body, timestamp=timestamp)


def command_payload(
    text: str,
    *,
    team: str = "T0001",
    channel: str = "C0001",
    user: str = "U0001",
    response_url: str = "https://hooks.slack.com/commands/T0001/1/x",
    command: str = "/jobs",
) -> dict[str, str]:
    """The fields of a `/jobs` request: a form over HTTP, the payload of a `slash_commands`
    envelope in Socket Mode."""
    return dict(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "jobs",
            "user_id": user,
            "user_name": "someone",
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "response_url": response_url,
            "trigger_id": f"{time.time():.6f}",
        }
    )


def signed_headers(
    secret: str, body: bytes, *, timestamp: int | None = None, content_type: str = "application/x-www-form-urlencoded"
) -> dict[str, str]:
    """The headers Slack sends with `body`: content type, timestamp and v0 signature."""
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body),
    }


def block_action(
    secret: str,
    *,
    action_id: str,
    value: str,
    team: str = "T0001",
    channel: str = "C0001",
    user: str = "U0001",
    response_url: str = "https://hooks.slack.com/actions/T0001/1/x",
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A signed `block_actions` interaction (a button pressed on a message): form field `payload=` JSON."""
    payload = action_payload(
        action_id=action_id, value=value, team=team, channel=channel, user=user, response_url=response_url
    )
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return body, signed_headers(secret, body, timestamp=timestamp)


def action_payload(
    *,
    action_id: str,
    value: str,
    team: str = "T0001",
    channel: str = "C0001",
    user: str = "U0001",
    response_url: str = "https://hooks.slack.com/actions/T0001/1/x",
) -> dict[str, Any]:
    """A `block_actions` payload: the form field `payload` over HTTP, an `interactive` envelope's
    payload in Socket Mode."""
    return {
        "type": "block_actions",
        "team": {"id": team, "domain": "example"},
        "user": {"id": user, "team_id": team},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "container": {"type": "message", "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{time.time():.6f}",
        "channel": {"id": channel, "name": "jobs"},
        "message": {"type": "message", "ts": "1700000000.000001"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "alert_actions",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def event(
    secret: str, inner: dict[str, Any], *, team: str = "T0001", timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A signed Events API `event_callback` carrying `inner` (e.g. app_home_opened)."""
    body = json.dumps(event_payload(inner, team=team)).encode()
    return body, signed_headers(secret, body, timestamp=timestamp, content_type="application/json")


def event_payload(inner: dict[str, Any], *, team: str = "T0001") -> dict[str, Any]:
    """An Events API `event_callback` carrying `inner`: the JSON body over HTTP, an `events_api`
    envelope's payload in Socket Mode."""
    return dict(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "api_app_id": "A0001",
            "event": inner,
            "type": "event_callback",
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
        }
    )
