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


_LOCAL_FORMATS = ("%Y%m%d%H%M%S", "%Y.%m.%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d")


def parse_timestamp(value: object, *, default_tz: tzinfo = UTC) -> datetime | None:
    """A timestamp of unconfirmed format -> aware UTC datetime; naive values are in `default_tz`.

    Accepts ISO-8601 with or without zone (`T` or space, `Z`, `+09:00` or `+0900`, fractions),
    epoch seconds or milliseconds (number or all-digit string of 10 or 13 digits), and a few
    common local layouts (`20210114110250`, `2021.01.14 11:02:50`, `2021/01/14 11:02:50`).
    Raises ValueError for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return _epoch(float(value))
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.isdigit() and len(text) in (10, 13):
        return _epoch(float(text))
    try:
        return parse_iso(text, default_tz=default_tz)
    except ValueError:
        pass
    for layout in _LOCAL_FORMATS:
        try:
            parsed = datetime.strptime(text, layout)
        except ValueError:
            continue
        return parsed.replace(tzinfo=default_tz).astimezone(UTC)
    raise ValueError(f"unrecognised timestamp: {value!r}")


def _epoch(number: float) -> datetime:
    """Epoch seconds, or milliseconds when the number is too large to be seconds."""
    return datetime.fromtimestamp(number / 1000.0 if abs(number) >= 1e11 else number, tz=UTC)
