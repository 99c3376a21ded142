"""Alibaba Cloud V3 request signing (`ACS3-HMAC-SHA256`), as the official SDK does it.

Reference: https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature
and `alibabacloud_tea_openapi/utils.py` (`get_authorization`, `get_canonical_query_string`,
`get_canonicalized_headers`); docs/providers.md §PAI request signing. The signer works on the
`httpx.Request` that goes on the wire, so what is signed is exactly what is sent: the query is
read back from the URL (decoded, then re-encoded RFC 3986 style: space `%20`, `~` kept).

We sign `host`, `content-type` (when present) and every `x-acs-*` header, as the docs require;
the SDK signs every header it sends. The verifier honours whatever `SignedHeaders` lists, so
it accepts both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import httpx

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def acs_date(now: datetime) -> str:
    """`x-acs-date`: ISO 8601 UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(text: str) -> str:
    return quote(text, safe="~", encoding="utf-8")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted by key (then value), key=value RFC 3986 encoded, joined with `&`."""
    encoded = sorted((_encode(k), _encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The decoded pairs of a query string as sent (`+` and `%20` both mean space)."""
    return parse_qsl(raw_query, keep_blank_values=True)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """The headers V3 requires signing: host, content-type and every x-acs-*, lower-case, sorted."""
    names = {k.lower() for k in headers}
    return sorted(n for n in names if n in ("host", "content-type") or n.startswith("x-acs-"))


def canonical_request(
    method: str, path: str, pairs: Iterable[tuple[str, str]], headers: Mapping[str, str], signed: Sequence[str]
) -> str:
    """METHOD, URI, query, `name:value` lines, SignedHeaders, payload hash; joined by newlines."""
    lower = {k.lower(): str(v).strip() for k, v in headers.items()}
    lines = "".join(f"{name}:{lower.get(name, '')}\n" for name in signed)
    payload = lower.get("x-acs-content-sha256", EMPTY_SHA256)
    uri = quote(path or "/", safe="/~", encoding="utf-8")
    return f"{method.upper()}\n{uri}\n{canonical_query(pairs)}\n{lines}\n{';'.join(signed)}\n{payload}"


def signature(secret: str, canonical: str) -> str:
    """hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\\n" + hex(SHA-256(canonical request))))."""
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    access_key_id: str,
    secret: str,
    *,
    method: str,
    path: str,
    pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed: Sequence[str] | None = None,
) -> str:
    """The `Authorization` value for a request; `signed` defaults to `signed_header_names`."""
    names = list(signed) if signed is not None else signed_header_names(headers)
    sig = signature(secret, canonical_request(method, path, pairs, headers, names))
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={sig}"


class AcsSigner:
    """Signs one API's requests: sets the `x-acs-*` headers, then `Authorization`.

    Call it on the exact `httpx.Request` before each attempt (fresh date and nonce each time).
    """

    def __init__(
        self,
        access_key_id: str,
        secret: str,
        *,
        action: str,
        version: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = secret
        self.action = action
        self.version = version
        self.clock = clock
        self.nonce = nonce

    def for_action(self, action: str, version: str) -> AcsSigner:
        """The same credentials for another API action."""
        return AcsSigner(
            self.access_key_id, self._secret, action=action, version=version, clock=self.clock, nonce=self.nonce
        )

    def __call__(self, request: httpx.Request) -> None:
        body = request.content if request.method not in ("GET", "HEAD") else b""
        request.headers["x-acs-action"] = self.action
        request.headers["x-acs-version"] = self.version
        request.headers["x-acs-date"] = acs_date(self.clock())
        request.headers["x-acs-signature-nonce"] = self.nonce()
        request.headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
        request.headers["Authorization"] = authorization(
            self.access_key_id,
            self._secret,
            method=request.method,
            path=request.url.path,
            pairs=query_pairs(request.url.query.decode("ascii")),
            headers=dict(request.headers),
        )

    def __repr__(self) -> str:
        return f"AcsSigner({self.access_key_id!r}, action={self.action!r})"


def verify(
    *,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets_by_key: Mapping[str, str],
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
    seen_nonces: set[str] | None = None,
) -> str | None:
    """Check a received request's V3 signature; None when valid, else Alibaba's error code.

    `raw_path` is the path and query exactly as received; the query is decoded and re-encoded.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization", "")
    if not auth.startswith(ALGORITHM + " "):
        return "IncompleteSignature"
    fields: dict[str, str] = {}
    for part in auth[len(ALGORITHM) + 1 :].split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    key_id, signed_list, given = fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature")
    if not key_id or not signed_list or not given:
        return "IncompleteSignature"
    secret = secrets_by_key.get(key_id)
    if secret is None:
        return "InvalidAccessKeyId.NotFound"
    signed = signed_list.split(";")
    required = {"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-action", "x-acs-version"}
    if not required <= set(signed) or not all(n in lower for n in signed):
        return "IncompleteSignature"
    if lower["x-acs-content-sha256"] != hashlib.sha256(body).hexdigest():
        return "ContentSHA256Mismatch"
    try:
        stamp = datetime.strptime(lower["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "InvalidTimeStamp.Format"
    if abs((now or datetime.now(UTC)) - stamp) > max_skew:
        return "InvalidTimeStamp.Expired"
    parts = urlsplit(raw_path)
    expected = signature(
        secret, canonical_request(method, unquote(parts.path), query_pairs(parts.query), lower, signed)
    )
    if not hmac.compare_digest(expected, given):
        return "SignatureDoesNotMatch"
    if seen_nonces is not None:
        nonce = lower["x-acs-signature-nonce"]
        if nonce in seen_nonces:
            return "SignatureNonceUsed"
        seen_nonces.add(nonce)
    return None
