"""NAVER Cloud Platform API Gateway signature v2 (docs/providers.md §AiTEMS signature v2).

Three headers on every request:

    x-ncp-apigw-timestamp     epoch milliseconds (UTC), decimal string
    x-ncp-iam-access-key      the access key id
    x-ncp-apigw-signature-v2  base64(HMAC-SHA256(secret key, string to sign))

String to sign, no trailing newline, no host, no body hash:

    "{METHOD} {path?query}\\n{timestamp}\\n{accessKey}"

The path and query are the bytes on the wire: `signer` reads them from the finished
`httpx.Request` (`url.raw_path`), so what is signed is exactly what is sent. The gateway
rejects a timestamp 5 minutes or more away from its clock (401, errorCode 200).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import httpx

TIMESTAMP = "x-ncp-apigw-timestamp"
ACCESS_KEY = "x-ncp-iam-access-key"
SIGNATURE = "x-ncp-apigw-signature-v2"
MAX_SKEW_MS = 5 * 60 * 1000


def string_to_sign(method: str, path_and_query: str, timestamp: str, access_key: str) -> str:
    """The exact message the gateway signs."""
    return f"{method.upper()} {path_and_query}\n{timestamp}\n{access_key}"


def signature(secret_key: str, method: str, path_and_query: str, timestamp: str, access_key: str) -> str:
    """base64(HMAC-SHA256(secret, string to sign)), standard alphabet with padding."""
    message = string_to_sign(method, path_and_query, timestamp, access_key)
    digest = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_headers(
    method: str, path_and_query: str, *, access_key: str, secret_key: str, timestamp_ms: int
) -> dict[str, str]:
    """The three headers for one request (the timestamp string is the one signed)."""
    stamp = str(timestamp_ms)
    return {
        TIMESTAMP: stamp,
        ACCESS_KEY: access_key,
        SIGNATURE: signature(secret_key, method, path_and_query, stamp, access_key),
    }


def signer(
    access_key: str, secret_key: str, *, clock: Callable[[], float] = time.time
) -> Callable[[httpx.Request], None]:
    """A `Requester` sign hook: fresh timestamp per attempt, signs the request's raw path+query."""

    def sign(request: httpx.Request) -> None:
        path = request.url.raw_path.decode("ascii")
        stamp_ms = int(clock() * 1000)
        request.headers.update(
            sign_headers(request.method, path, access_key=access_key, secret_key=secret_key, timestamp_ms=stamp_ms)
        )

    return sign


def verify(
    method: str,
    path_and_query: str,
    headers: Mapping[str, str],
    *,
    secrets: Mapping[str, str],
    now_ms: int,
    max_skew_ms: int = MAX_SKEW_MS,
) -> str | None:
    """Check a signed request as the gateway does; None when valid, else why it is refused.

    `headers` must have lower-case names; `secrets` maps access key -> secret key.
    """
    stamp, access_key, given = headers.get(TIMESTAMP), headers.get(ACCESS_KEY), headers.get(SIGNATURE)
    if not stamp or not access_key or not given:
        return "missing signature headers"
    if not stamp.isdigit():
        return "timestamp is not epoch milliseconds"
    if abs(now_ms - int(stamp)) >= max_skew_ms:
        return "timestamp outside the allowed window"
    secret = secrets.get(access_key)
    if secret is None:
        return "unknown access key"
    expected = signature(secret, method, path_and_query, stamp, access_key)
    if not hmac.compare_digest(expected, given):
        return "signature mismatch"
    return None
