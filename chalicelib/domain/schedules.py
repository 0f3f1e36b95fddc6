"""On-call schedules: who is on call for a schedule at a given instant.

Rotations follow GoAlert semantics: shifts whose length is a whole number of days hand off at the same local
wall-clock time (so a shift spanning a DST change is 23 or 25 real hours); any other length is a fixed real
duration counted from the handoff instant. Overrides temporarily replace the rotation's responder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "Override",
    "Rotation",
    "Schedule",
    "ScheduleError",
    "on_call",
    "shift_bounds",
    "validate_schedule",
]

_HOURS_PER_DAY = 24


@dataclass(frozen=True)
class Override:
    """A responder who replaces the rotation during ``[start, end)`` (both timezone-aware)."""

    responder: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Rotation:
    """Responders taking turns in shifts of ``shift_hours``.

    ``handoff`` is a naive local wall-clock time in the schedule's time zone: when ``responders[0]``'s first
    shift starts.
    """

    responders: tuple[str, ...]
    shift_hours: int
    handoff: datetime


@dataclass(frozen=True)
class Schedule:
    """A rotation in an IANA time zone, plus optional overrides."""

    id: str
    time_zone: str
    rotation: Rotation
    overrides: tuple[Override, ...] = ()


class ScheduleError(ValueError):
    """Raised when a schedule is invalid."""


def _is_aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


def _zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for ``name`` or raise ScheduleError."""
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"time zone must be a non-empty IANA name, got {name!r}")
    try:
        return ZoneInfo(name)
    # ZoneInfo raises ValueError (not ZoneInfoNotFoundError) for malformed keys such as absolute paths.
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc


def validate_schedule(schedule: Schedule) -> None:
    """Raise ScheduleError with a human-readable message if ``schedule`` is invalid."""
    prefix = f"schedule {schedule.id!r}"
    try:
        _zone(schedule.time_zone)
    except ScheduleError as exc:
        raise ScheduleError(f"{prefix}: {exc}") from exc.__cause__

    rotation = schedule.rotation
    if not rotation.responders:
        raise ScheduleError(f"{prefix}: rotation needs at least one responder")
    for responder in rotation.responders:
        if not isinstance(responder, str) or not responder:
            raise ScheduleError(f"{prefix}: responder ids must be non-empty strings, got {responder!r}")
    # bool is an int subclass; True would silently mean a 1-hour shift.
    if isinstance(rotation.shift_hours, bool) or not isinstance(rotation.shift_hours, int):
        raise ScheduleError(f"{prefix}: shift_hours must be an integer, got {rotation.shift_hours!r}")
    if rotation.shift_hours < 1:
        raise ScheduleError(f"{prefix}: shift_hours must be at least 1, got {rotation.shift_hours}")
    if not isinstance(rotation.handoff, datetime):
        raise ScheduleError(f"{prefix}: handoff must be a datetime, got {rotation.handoff!r}")
    # The handoff is a wall-clock time in schedule.time_zone; an attached tzinfo would be ambiguous.
    if rotation.handoff.tzinfo is not None:
        raise ScheduleError(f"{prefix}: rotation handoff must be a naive local time in {schedule.time_zone}")

    for index, override in enumerate(schedule.overrides):
        where = f"{prefix}: override #{index} for {override.responder!r}"
        if not isinstance(override.responder, str) or not override.responder:
            raise ScheduleError(f"{prefix}: override #{index} responder must be a non-empty string")
        if not _is_aware(override.start) or not _is_aware(override.end):
            raise ScheduleError(f"{where}: start and end must be timezone-aware")
        # Compare in UTC: aware datetimes sharing one tzinfo compare by wall time, ignoring fold.
        if _utc(override.end) <= _utc(override.start):
            raise ScheduleError(f"{where}: end {override.end.isoformat()} must be after start "
                                f"{override.start.isoformat()}")


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _require_aware(at: datetime) -> datetime:
    if not isinstance(at, datetime) or not _is_aware(at):
        raise ValueError(f"'at' must be a timezone-aware datetime, got {at!r}")
    return _utc(at)


def _local_to_utc(day: date, rotation: Rotation, zone: ZoneInfo) -> datetime:
    """The UTC instant of the handoff wall-clock time on ``day`` (fold=0 for gaps and repeats, as zoneinfo does)."""
    local = datetime.combine(day, rotation.handoff.time().replace(fold=0), tzinfo=zone)
    return _utc(local)


def _shift(schedule: Schedule, at_utc: datetime) -> tuple[int, datetime, datetime] | None:
    """Return ``(n, start_utc, end_utc)`` of the rotation shift containing ``at_utc``, or None before the handoff."""
    zone = ZoneInfo(schedule.time_zone)
    rotation = schedule.rotation

    if rotation.shift_hours % _HOURS_PER_DAY == 0:
        days = rotation.shift_hours // _HOURS_PER_DAY
        first_day = rotation.handoff.date()

        def start_of(k: int) -> datetime:
            return _local_to_utc(first_day + timedelta(days=k * days), rotation, zone)

        if at_utc < start_of(0):
            return None
        # Estimate from local calendar dates (O(1)), then nudge by a step or two: the estimate is one too high when
        # `at` is earlier in its day than the handoff time, and DST changes at midnight can shift local dates.
        local_day = at_utc.astimezone(zone).date()
        n = max(0, (local_day - first_day).days // days)
        while n > 0 and at_utc < start_of(n):
            n -= 1
        while at_utc >= start_of(n + 1):
            n += 1
        return n, start_of(n), start_of(n + 1)

    # Fixed real durations: plain arithmetic on UTC instants.
    length = timedelta(hours=rotation.shift_hours)
    first = _utc(rotation.handoff.replace(tzinfo=zone, fold=0))
    if at_utc < first:
        return None
    n = (at_utc - first) // length
    start = first + n * length
    return n, start, start + length


def _covering_override(schedule: Schedule, at_utc: datetime) -> Override | None:
    """The override covering ``at_utc`` that started latest; on equal starts the later-listed one wins."""
    best: Override | None = None
    best_start: datetime | None = None
    for override in schedule.overrides:
        # Normalise to UTC so overrides sharing a zone compare as instants, not wall times, around DST.
        start = _utc(override.start)
        if start <= at_utc < _utc(override.end) and (best_start is None or start >= best_start):
            best, best_start = override, start
    return best


def on_call(schedule: Schedule, at: datetime) -> str | None:
    """Return the responder on call at ``at`` (timezone-aware), or None before the first handoff with no override."""
    at_utc = _require_aware(at)
    validate_schedule(schedule)
    override = _covering_override(schedule, at_utc)
    if override is not None:
        return override.responder
    shift = _shift(schedule, at_utc)
    if shift is None:
        return None
    responders = schedule.rotation.responders
    return responders[shift[0] % len(responders)]


def shift_bounds(schedule: Schedule, at: datetime) -> tuple[datetime, datetime] | None:
    """Return the ``[start, end)`` in UTC of the rotation shift containing ``at``; None before the first handoff.

    Overrides are ignored: this describes the underlying rotation.
    """
    at_utc = _require_aware(at)
    validate_schedule(schedule)
    shift = _shift(schedule, at_utc)
    if shift is None:
        return None
    return shift[1], shift[2]
