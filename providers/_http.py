"""httpx plumbing every HTTP adapter shares: a client with timeouts and no redirects, retries
with backoff and jitter honouring Retry-After, one error mapping, strict JSON decoding.

Signing adapters pass `sign`, called on the exact request before every attempt (fresh
timestamp and nonce each time).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from providers.errors import (
    AccessDeniedError,
    AuthError,
    BadResponseError,
    ConflictError,
    NotFoundError,
    ProviderError,
    ThrottledError,
    UnavailableError,
    mentions_state,
)

log = logging.getLogger(__name__)

MAX_BODY = 20 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
Signer = Callable[[httpx.Request], None]


def make_client(
    base_url: str,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 20,
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Client:
    """A client bound to one provider host: timeouts, no redirects (no cross-host surprises)."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        follow_redirects=False,
        transport=transport,
        headers={"Accept": "application/json", "User-Agent": "jobwatch/0.1", **(headers or {})},
    )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (`Retry-After`, or Alibaba's `x-acs-retry-after` in ms)."""
    value = response.headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    acs = response.headers.get("x-acs-retry-after")
    if acs is not None and acs.isdigit() and int(acs) > 0:
        return int(acs) / 1000.0
    return None


# Alibaba Cloud answers refused credentials and throttling with 400/403/404 and a `Code` in the
# JSON body (docs/providers.md §PAI errors and throttling); these prefixes are matched on it.
ACS_AUTH_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "SignatureNonceUsed",
    "Forbidden",
    "NoPermission",
)
ACS_THROTTLE_CODES = ("Throttling", "ServiceUnavailable.Throttling")


def body_code(response: httpx.Response) -> str:
    """An error body's `Code` (Alibaba) or `code`, or ''."""
    try:
        data = json.loads(response.content) if response.content else None
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    return str(data.get("Code") or data.get("code") or "")


def error_for(response: httpx.Response, *, what: str) -> ProviderError:
    """Map a non-2xx response to our error tree; the provider's message is kept, clipped."""
    detail = response.text[:300].replace("\n", " ")
    text = f"{what}: HTTP {response.status_code} {detail}".strip()
    if response.status_code in (400, 401, 403, 404):  # InvalidAccessKeyId.NotFound comes as 404
        code = body_code(response)
        if code.startswith(ACS_THROTTLE_CODES):
            return ThrottledError(text, retry_after=retry_after(response))
        if code.startswith(ACS_AUTH_CODES):
            return AuthError(text)
    if response.status_code == 429:
        return ThrottledError(text, retry_after=retry_after(response))
    if response.status_code in (401, 403):
        return AuthError(text)
    if response.status_code == 404:
        return NotFoundError(text)
    if response.status_code >= 500:
        return UnavailableError(text, retry_after=retry_after(response))
    return BadResponseError(text)


# Alibaba's codes for a RAM user without the permission (the key itself is fine).
ACS_DENIED_CODES = ("Forbidden", "NoPermission")


def body_message(response: httpx.Response) -> str:
    """An error body's `Message` (Alibaba) or `message` (Modzy), else the start of the body."""
    try:
        data = json.loads(response.content) if response.content else None
    except ValueError:
        data = None
    if isinstance(data, dict) and (data.get("Message") or data.get("message")):
        return str(data.get("Message") or data.get("message"))[:300]
    return response.text[:300].replace("\n", " ")


def refusal_for(response: httpx.Response, *, what: str, permission: str) -> ProviderError:
    """Map a non-2xx answer to an action (a stop) in plain words: permission, state, throttling."""
    code, said = body_code(response), body_message(response)
    detail = f"{code}: {said}" if code else said
    status = response.status_code
    if status == 429 or code.startswith(ACS_THROTTLE_CODES):
        return ThrottledError(
            f"{what}: the provider is throttling requests, try again in a minute ({detail})",
            retry_after=retry_after(response),
        )
    if status == 403 or code.startswith(ACS_DENIED_CODES):
        return AccessDeniedError(f"{what}: not allowed, the bot's credentials need {permission} ({detail})")
    if status == 401 or code.startswith(ACS_AUTH_CODES):
        return error_for(response, what=what)
    if status == 409 or (status == 400 and mentions_state(f"{code} {said}")):
        return ConflictError(f"{what}: refused, the job cannot be stopped in its current state ({detail})")
    if status == 404:
        return NotFoundError(f"{what}: the job no longer exists ({detail})")
    return error_for(response, what=what)


def decode_json(response: httpx.Response, *, what: str) -> Any:
    """The body as JSON, or BadResponseError (HTML with 200, truncated JSON, oversized body)."""
    ctype = response.headers.get("content-type", "")
    if "html" in ctype:
        raise BadResponseError(f"{what}: HTML instead of JSON (HTTP {response.status_code})")
    if len(response.content) > MAX_BODY:
        raise BadResponseError(f"{what}: response body over {MAX_BODY} bytes")
    try:
        return json.loads(response.content)
    except ValueError as err:
        raise BadResponseError(f"{what}: malformed JSON: {err}") from None


class Requester:
    """Sends GETs with retries; returns decoded JSON or raises a ProviderError."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        what: str,
        attempts: int = 4,
        backoff: float = 0.5,
        backoff_max: float = 20.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.what = what
        self.attempts = attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_wait = max_wait
        self.sleep = sleep
        self.jitter = jitter
        self.sent = 0  # requests put on the wire, retries included (benchmarks count these)

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        sign: Signer | None = None,
        what: str | None = None,
    ) -> Any:
        """GET `path` and decode JSON; retries 429, 5xx and transport errors with backoff."""
        label = what or self.what
        last: ProviderError | None = None
        for attempt in range(self.attempts):
            if attempt:
                self._wait(attempt, last)
            request = self.client.build_request("GET", path, params=_wire(params))
            if sign is not None:
                sign(request)
            self.sent += 1
            try:
                response = self.client.send(request)
            except httpx.TimeoutException as err:
                last = UnavailableError(f"{label}: timeout ({type(err).__name__})")
                continue
            except httpx.TransportError as err:
                last = UnavailableError(f"{label}: {type(err).__name__}: {err}")
                continue
            if response.status_code in RETRY_STATUSES:
                last = error_for(response, what=label)
                continue
            if response.status_code >= 300:
                refused = error_for(response, what=label)
                if isinstance(refused, ThrottledError):  # a 400 with a throttling code (Alibaba)
                    last = refused
                    continue
                raise refused
            return decode_json(response, what=label)
        assert last is not None
        raise last

    def act(
        self,
        method: str,
        path: str,
        *,
        permission: str,
        timeout: float,
        sign: Signer | None = None,
        what: str | None = None,
    ) -> Any:
        """One action request (a stop): never retried, answered within `timeout` seconds or
        UnavailableError; a refusal is mapped by `refusal_for`. The decoded JSON body, or None
        when the body is empty."""
        label = what or self.what
        request = self.client.build_request(method, path, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
        if sign is not None:
            sign(request)
        self.sent += 1
        try:
            response = self.client.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise UnavailableError(
                f"{label}: the provider could not be reached ({type(err).__name__}); nothing was sent"
            ) from None
        except httpx.TimeoutException:
            raise UnavailableError(
                f"{label}: no answer within {timeout:g}s; the stop may still have been applied, check the job"
            ) from None
        except httpx.TransportError as err:
            raise UnavailableError(
                f"{label}: {type(err).__name__}: {err}; the stop may or may not have been applied"
            ) from None
        if response.status_code >= 300:
            raise refusal_for(response, what=label, permission=permission)
        if not response.content.strip():
            return None
        return decode_json(response, what=label)

    def _wait(self, attempt: int, last: ProviderError | None) -> None:
        asked = last.retry_after if last is not None else None
        if asked is not None:
            if asked > self.max_wait:
                raise ThrottledError(f"{self.what}: asked to wait {asked:.0f}s", retry_after=asked)
            delay = asked
        else:
            delay = min(self.backoff_max, self.backoff * 2 ** (attempt - 1)) * (0.5 + self.jitter() / 2)
        log.info("provider_retry what=%s attempt=%d delay=%.2f error=%s", self.what, attempt, delay, last)
        self.sleep(delay)


def _wire(params: Mapping[str, str | int | bool] | None) -> dict[str, str] | None:
    """Query values as the wire sees them: booleans lower-case."""
    if params is None:
        return None
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in params.items()}
