"""Logging, configured once by the CLI: JSON lines when stderr is not a TTY, a human format on a TTY,
and every record redacted (Slack tokens, webhook and response URLs, AWS secrets, Authorization
values, and the value of every secret this process read) before it is written anywhere."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

MASK = "[redacted]"
MIN_SECRET = 6  # shorter "secrets" (test values like "s") would mask ordinary words

_URL_CHARS = r"[^\s\"'<>&,;)}\]]"
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack tokens: bot, user, app-level, legacy and refresh tokens
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), MASK),
    # incoming webhooks and response_url (also URL-encoded, as in a logged form body)
    (re.compile(r"https?://" + _URL_CHARS + r"*?/(?:hooks|commands|actions|services)/" + _URL_CHARS + "*"), MASK),
    (re.compile(r"https?%3A%2F%2F[^\s\"'&]*", re.IGNORECASE), MASK),
    (re.compile(r"(?i)(response_url[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"), r"\1" + MASK),
    # Authorization header values, Bearer/Basic credentials
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\n,}]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # AWS: access key ids, secret keys (40 chars of base64 with both cases), key=value forms
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (
        re.compile(
            r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]*[a-z])(?=[A-Za-z0-9/+=]*[A-Z])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
        ),
        MASK,
    ),
    (re.compile(r"(?i)((?:secret|password|api_?key|token)[\w-]*[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"), r"\1" + MASK),
)

# LogRecord attributes that are not "extra" fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class Redactor:
    """Masks secrets in text: fixed patterns plus the exact values registered with `add`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, values: Iterable[str | None]) -> None:
        """Mask these exact values from now on (too-short ones are ignored)."""
        with self._lock:
            known = set(self._secrets) | {v for v in values if v and len(v) >= MIN_SECRET}
            self._secrets = tuple(sorted(known, key=len, reverse=True))  # longest first

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, replacement in PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class RedactFilter(logging.Filter):
    """Redacts a record's message (with its args merged in), extra fields and traceback text."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is, still redacted
            message = f"{record.msg} {record.args}"
        record.msg = self.redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, extra fields, exc."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return self.redact(json.dumps(entry, ensure_ascii=False, default=str))  # a last pass over everything


class TextFormatter(logging.Formatter):
    """The human format, redacted as a whole as well."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def configure(
    level: int | str = logging.INFO, *, stream: TextIO | None = None, json_lines: bool | None = None
) -> Redactor:
    """Replace the root handlers with one redacting handler on `stream` (stderr); JSON unless a TTY.
    Returns the Redactor, to register the secrets read later (`Redactor.add`)."""
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not (hasattr(stream, "isatty") and stream.isatty())
    redact = Redactor()
    handler = logging.StreamHandler(stream)
    handler.set_name("jobwatch")
    handler.addFilter(RedactFilter(redact))
    handler.setFormatter(JsonFormatter(redact) if json_lines else TextFormatter(redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "jobwatch" or (isinstance(old, logging.StreamHandler) and old.stream is stream):
            root.removeHandler(old)  # configured once: a second call replaces, never duplicates
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return redact
