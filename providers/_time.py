"""Time parsing shared by the adapters: everything becomes an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def from_epoch_ms(value: object) -> datetime | None:
    """Epoch milliseconds (int, float or numeric string) -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not an epoch-ms value: {value!r}")
    return datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)


def parse_iso(value: object, *, default_tz: tzinfo = UTC) -> datetime | None:
    """An ISO-8601 string (with or without zone, `Z` allowed) -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp string: {value!r}")
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed.astimezone(UTC)


def aware(value: datetime | None) -> datetime | None:
    """A datetime from an SDK, made aware (naive values are taken as UTC)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
