"""Build slash-command requests exactly as Slack sends them: a form body signed with v0."""

from __future__ import annotations

import hashlib
import hmac
import time
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
    body = urlencode(
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
    ).encode()
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body),
    }
    return body, headers
