"""Times as the service stores and shows them: ISO 8601 UTC strings with millisecond precision and a Z.

One fixed width means stored times also compare correctly as strings (DynamoDB sort keys and conditions rely on it).
Pure: the current time is always passed in; `services` own the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# The range every time the API accepts must stay in, so that adding or subtracting the longest period the service
# ever uses (60 days of review range, 180 days of retention) cannot overflow datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)


class TimeFormatError(ValueError):
    """A string that is not an ISO 8601 time, or one outside [EARLIEST, LATEST)."""


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str, *, naive_is_utc: bool = True, bounded: bool = True) -> datetime:
    """An aware UTC datetime from an ISO 8601 string ("Z" or an offset; a naive time is UTC unless told otherwise).

    Raises TimeFormatError for anything else, including (when `bounded`) times outside the service's range; a time
    someone else stamped (a provider's event time) may be any valid one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise TimeFormatError("must be an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise TimeFormatError("must be an ISO 8601 time") from exc
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise TimeFormatError("must include a UTC offset")
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError as exc:
        raise TimeFormatError("is out of range") from exc
    if bounded and not EARLIEST <= moment < LATEST:
        raise TimeFormatError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one stored time to another (3 decimals); None if either is missing."""
    if not start or not end:
        return None
    return round((parse_iso(end) - parse_iso(start)).total_seconds(), 3)


def plus_seconds(at: str, seconds: float) -> str:
    return iso(parse_iso(at) + timedelta(seconds=seconds))
