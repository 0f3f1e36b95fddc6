"""Unit tests for chalicelib.domain.schedules."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.schedules import (
    Override,
    Rotation,
    Schedule,
    ScheduleError,
    on_call,
    shift_bounds,
    validate_schedule,
)

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
PEOPLE = ("alice", "bob", "carol")


def make(
    shift_hours: int = 24,
    handoff: datetime = datetime(2026, 1, 5, 9, 0),
    responders: tuple[str, ...] = PEOPLE,
    tz: str = "America/New_York",
    overrides: tuple[Override, ...] = (),
) -> Schedule:
    rotation = Rotation(responders, shift_hours, handoff)
    return Schedule(id="sched-1", time_zone=tz, rotation=rotation, overrides=overrides)


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- basic rotations -------------------------------------------------------------------------------------------


def test_daily_rotation_hands_off_at_local_handoff_time() -> None:
    s = make()
    assert on_call(s, ny(2026, 1, 5, 9, 0)) == "alice"
    assert on_call(s, ny(2026, 1, 6, 8, 59)) == "alice"
    assert on_call(s, ny(2026, 1, 6, 9, 0)) == "bob"
    assert on_call(s, ny(2026, 1, 7, 12, 0)) == "carol"
    assert on_call(s, ny(2026, 1, 8, 9, 0)) == "alice"  # wraps around
    assert shift_bounds(s, ny(2026, 1, 6, 15, 0)) == (utc(2026, 1, 6, 14), utc(2026, 1, 7, 14))


def test_at_in_other_time_zone_is_converted() -> None:
    s = make()
    # 2026-01-06 13:59 UTC is 08:59 EST: still alice's shift.
    assert on_call(s, utc(2026, 1, 6, 13, 59)) == "alice"
    assert on_call(s, datetime(2026, 1, 6, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))) == "bob"


def test_twelve_hour_rotation() -> None:
    s = make(shift_hours=12, responders=("day", "night"))
    assert on_call(s, ny(2026, 1, 5, 9, 0)) == "day"
    assert on_call(s, ny(2026, 1, 5, 20, 59)) == "day"
    assert on_call(s, ny(2026, 1, 5, 21, 0)) == "night"
    assert on_call(s, ny(2026, 1, 6, 8, 59)) == "night"
    assert on_call(s, ny(2026, 1, 6, 9, 0)) == "day"
    assert shift_bounds(s, ny(2026, 1, 6, 3, 0)) == (utc(2026, 1, 6, 2), utc(2026, 1, 6, 14))


def test_weekly_rotation() -> None:
    s = make(shift_hours=168, handoff=datetime(2026, 1, 5, 9, 0))  # a Monday
    assert on_call(s, ny(2026, 1, 11, 23, 0)) == "alice"
    assert on_call(s, ny(2026, 1, 12, 8, 59)) == "alice"
    assert on_call(s, ny(2026, 1, 12, 9, 0)) == "bob"
    assert on_call(s, ny(2026, 1, 19, 9, 0)) == "carol"
    assert on_call(s, ny(2026, 1, 26, 9, 0)) == "alice"
    assert shift_bounds(s, ny(2026, 1, 14)) == (utc(2026, 1, 12, 14), utc(2026, 1, 19, 14))


def test_single_responder_is_always_on_call() -> None:
    s = make(responders=("solo",), shift_hours=5)
    assert {on_call(s, ny(2026, 2, d, h)) for d in range(1, 28) for h in range(24)} == {"solo"}


def test_before_first_handoff_nobody_is_on_call() -> None:
    s = make()
    assert on_call(s, ny(2026, 1, 5, 8, 59, 59)) is None
    assert on_call(s, ny(2025, 6, 1)) is None
    assert shift_bounds(s, ny(2026, 1, 5, 8, 59)) is None
    assert on_call(s, ny(2026, 1, 5, 9, 0)) == "alice"
    fixed = make(shift_hours=8)
    assert on_call(fixed, ny(2026, 1, 5, 8, 59)) is None
    assert shift_bounds(fixed, ny(2026, 1, 5, 8, 59)) is None


def test_handoff_five_years_ago_is_fast_and_correct() -> None:
    handoff = datetime(2021, 3, 1, 9, 0)
    daily = make(handoff=handoff)
    hourly = make(shift_hours=1, handoff=handoff)
    at = ny(2026, 3, 1, 10, 30)
    days = (at.date() - handoff.date()).days  # 1826
    started = time.perf_counter()
    assert on_call(daily, at) == PEOPLE[days % 3]
    # 1-hour shifts are real hours since the handoff instant, so count elapsed real time.
    first_utc = handoff.replace(tzinfo=NY).astimezone(UTC)
    hours = int((at.astimezone(UTC) - first_utc) / timedelta(hours=1))
    assert on_call(hourly, at) == PEOPLE[hours % 3]
    for _ in range(200):
        on_call(daily, at)
        on_call(hourly, at)
    assert time.perf_counter() - started < 1.0


# --- overrides -------------------------------------------------------------------------------------------------


def test_override_wins_and_then_ends() -> None:
    o = Override("dave", ny(2026, 1, 6, 12, 0), ny(2026, 1, 6, 18, 0))
    s = make(overrides=(o,))
    assert on_call(s, ny(2026, 1, 6, 11, 59)) == "bob"
    assert on_call(s, ny(2026, 1, 6, 12, 0)) == "dave"
    assert on_call(s, ny(2026, 1, 6, 17, 59, 59)) == "dave"
    assert on_call(s, ny(2026, 1, 6, 18, 0)) == "bob"  # end is exclusive
    # Overrides do not change the underlying rotation shift.
    assert shift_bounds(s, ny(2026, 1, 6, 13, 0)) == (utc(2026, 1, 6, 14), utc(2026, 1, 7, 14))


def test_override_before_first_handoff_applies() -> None:
    o = Override("dave", ny(2026, 1, 1), ny(2026, 1, 2))
    s = make(overrides=(o,))
    assert on_call(s, ny(2026, 1, 1, 12)) == "dave"
    assert on_call(s, ny(2026, 1, 2, 12)) is None


def test_overlapping_overrides_latest_start_wins() -> None:
    long = Override("dave", ny(2026, 1, 6, 10), ny(2026, 1, 6, 20))
    short = Override("erin", ny(2026, 1, 6, 12), ny(2026, 1, 6, 14))
    for overrides in ((long, short), (short, long)):  # list order must not matter
        s = make(overrides=overrides)
        assert on_call(s, ny(2026, 1, 6, 11)) == "dave"
        assert on_call(s, ny(2026, 1, 6, 12)) == "erin"
        assert on_call(s, ny(2026, 1, 6, 13, 59)) == "erin"
        assert on_call(s, ny(2026, 1, 6, 14)) == "dave"
        assert on_call(s, ny(2026, 1, 6, 20)) == "bob"


def test_overrides_compared_as_instants_across_fall_back() -> None:
    # 01:30 EDT (fold=0) happens an hour before 01:10 EST (fold=1): the EST one started later and must win.
    first = Override("dave", ny(2026, 11, 1, 1, 30, fold=0), ny(2026, 11, 1, 5))
    later = Override("erin", ny(2026, 11, 1, 1, 10, fold=1), ny(2026, 11, 1, 4))
    s = make(overrides=(later, first))
    assert on_call(s, utc(2026, 11, 1, 6, 15)) == "erin"  # 01:15 EST
    assert on_call(s, utc(2026, 11, 1, 5, 45)) == "dave"  # 01:45 EDT


# --- DST -------------------------------------------------------------------------------------------------------


def test_daily_shift_across_spring_forward_is_23_hours() -> None:
    s = make(handoff=datetime(2026, 3, 1, 9, 0))  # alice 3/1, bob 3/2, ... 3/7 is shift 6 -> alice
    start, end = shift_bounds(s, ny(2026, 3, 8, 3, 30))
    assert start == utc(2026, 3, 7, 14)  # 09:00 EST
    assert end == utc(2026, 3, 8, 13)  # 09:00 EDT
    assert end - start == timedelta(hours=23)
    assert end.astimezone(NY).hour == 9
    assert on_call(s, ny(2026, 3, 8, 8, 59)) == "alice"
    assert on_call(s, ny(2026, 3, 8, 9, 0)) == "bob"
    nxt = shift_bounds(s, ny(2026, 3, 8, 9, 0))
    assert nxt == (utc(2026, 3, 8, 13), utc(2026, 3, 9, 13))


def test_daily_shift_across_fall_back_is_25_hours() -> None:
    s = make(handoff=datetime(2026, 10, 25, 9, 0))  # 10/31 is shift 6 -> alice
    start, end = shift_bounds(s, ny(2026, 11, 1, 1, 30, fold=1))
    assert start == utc(2026, 10, 31, 13)  # 09:00 EDT
    assert end == utc(2026, 11, 1, 14)  # 09:00 EST
    assert end - start == timedelta(hours=25)
    assert on_call(s, ny(2026, 11, 1, 8, 59)) == "alice"
    assert on_call(s, ny(2026, 11, 1, 9, 0)) == "bob"


def test_eight_hour_shifts_are_real_durations_across_spring_forward() -> None:
    s = make(shift_hours=8, handoff=datetime(2026, 3, 7, 9, 0))  # 14:00 UTC
    expected = [
        (utc(2026, 3, 7, 14), "alice"),
        (utc(2026, 3, 7, 22), "bob"),
        (utc(2026, 3, 8, 6), "carol"),  # 01:00 EST, the gap is inside this shift
        (utc(2026, 3, 8, 14), "alice"),  # 10:00 EDT: the wall-clock handoff moved by an hour
    ]
    for start, who in expected:
        assert shift_bounds(s, start) == (start, start + timedelta(hours=8))
        assert on_call(s, start) == who
        assert on_call(s, start + timedelta(hours=7, minutes=59)) == who
    assert ny(2026, 3, 8, 10, 0).astimezone(UTC) == utc(2026, 3, 8, 14)
    assert on_call(s, ny(2026, 3, 8, 9, 30)) == "carol"


def test_eight_hour_shifts_are_real_durations_across_fall_back() -> None:
    s = make(shift_hours=8, handoff=datetime(2026, 10, 31, 9, 0))  # 13:00 UTC (EDT)
    assert shift_bounds(s, utc(2026, 11, 1, 6)) == (utc(2026, 11, 1, 5), utc(2026, 11, 1, 13))
    assert on_call(s, ny(2026, 11, 1, 1, 30, fold=0)) == "carol"
    assert on_call(s, ny(2026, 11, 1, 1, 30, fold=1)) == "carol"
    assert on_call(s, ny(2026, 11, 1, 7, 59)) == "carol"
    assert on_call(s, ny(2026, 11, 1, 8, 0)) == "alice"  # 13:00 UTC is 08:00 EST
    assert shift_bounds(s, ny(2026, 11, 1, 8, 0)) == (utc(2026, 11, 1, 13), utc(2026, 11, 1, 21))


def test_nonexistent_handoff_time_uses_fold_zero() -> None:
    # 02:30 on 2026-03-08 does not exist in New York; zoneinfo (fold=0) reads it with the EST offset -> 07:30 UTC.
    fixed = make(shift_hours=6, handoff=datetime(2026, 3, 8, 2, 30))
    assert shift_bounds(fixed, utc(2026, 3, 8, 8)) == (utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 13, 30))
    assert on_call(fixed, utc(2026, 3, 8, 7, 29)) is None
    daily = make(handoff=datetime(2026, 3, 7, 2, 30))
    assert shift_bounds(daily, utc(2026, 3, 8, 8)) == (utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30))


def test_ambiguous_handoff_time_uses_first_occurrence() -> None:
    daily = make(handoff=datetime(2026, 10, 31, 1, 30))
    # 01:30 on 11/1 happens twice; fold=0 is the EDT one at 05:30 UTC.
    assert shift_bounds(daily, utc(2026, 11, 1, 6)) == (utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30))
    assert on_call(daily, utc(2026, 11, 1, 5, 29)) == "alice"
    assert on_call(daily, utc(2026, 11, 1, 5, 30)) == "bob"


def test_multi_day_wall_clock_shifts() -> None:
    s = make(shift_hours=48, handoff=datetime(2026, 3, 6, 9, 0))
    assert shift_bounds(s, ny(2026, 3, 9)) == (utc(2026, 3, 8, 13), utc(2026, 3, 10, 13))
    assert on_call(s, ny(2026, 3, 8, 8, 59)) == "alice"
    assert on_call(s, ny(2026, 3, 8, 9, 0)) == "bob"


# --- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (make(tz="Mars/Olympus_Mons"), "unknown time zone"),
        (make(tz=""), "time zone"),
        (make(tz="/etc/passwd"), "unknown time zone"),
        (make(responders=()), "at least one responder"),
        (make(responders=("alice", "")), "non-empty"),
        (make(shift_hours=0), "shift_hours"),
        (make(shift_hours=-24), "shift_hours"),
        (make(handoff=datetime(2026, 1, 5, 9, tzinfo=UTC)), "naive"),
        (make(overrides=(Override("dave", ny(2026, 1, 6), ny(2026, 1, 6)),)), "must be after start"),
        (make(overrides=(Override("dave", ny(2026, 1, 6), ny(2026, 1, 5)),)), "must be after start"),
        (make(overrides=(Override("dave", datetime(2026, 1, 6), datetime(2026, 1, 7)),)), "timezone-aware"),
        # Same wall-clock, but fold=1 is an hour later: the end is really after the start, so only reversed fails.
        (make(overrides=(Override("dave", ny(2026, 11, 1, 1, 30, fold=1), ny(2026, 11, 1, 1, 45)),)),
         "must be after start"),
    ],
)
def test_invalid_schedules_raise(schedule: Schedule, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        validate_schedule(schedule)
    with pytest.raises(ScheduleError):
        on_call(schedule, ny(2026, 2, 1))
    with pytest.raises(ScheduleError):
        shift_bounds(schedule, ny(2026, 2, 1))


def test_schedule_error_is_value_error_and_names_schedule() -> None:
    with pytest.raises(ValueError, match="sched-1"):
        validate_schedule(make(shift_hours=0))


def test_valid_schedule_passes_validation() -> None:
    validate_schedule(make())
    validate_schedule(make(shift_hours=1, overrides=(Override("dave", ny(2026, 11, 1, 1, 45),
                                                              ny(2026, 11, 1, 1, 30, fold=1)),)))


def test_naive_at_is_rejected() -> None:
    s = make()
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call(s, datetime(2026, 1, 6, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        shift_bounds(s, datetime(2026, 1, 6, 12))


def test_shift_bounds_are_utc() -> None:
    start, end = shift_bounds(make(), ny(2026, 1, 6, 12))
    assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)


# --- property tests --------------------------------------------------------------------------------------------

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
         "America/Santiago", "Pacific/Chatham", "America/Havana"]

schedules = st.builds(
    make,
    shift_hours=st.one_of(st.integers(1, 100), st.sampled_from([24, 48, 72, 168, 336])),
    handoff=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31)),
    responders=st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=6).map(tuple),
    tz=st.sampled_from(ZONES),
)
offsets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3 * 365))


def first_handoff(s: Schedule) -> datetime:
    # fold=0, as zoneinfo resolves nonexistent/ambiguous local times; both rotation kinds start shift 0 here.
    return s.rotation.handoff.replace(tzinfo=ZoneInfo(s.time_zone), fold=0).astimezone(UTC)


@settings(max_examples=150, deadline=None)
@given(schedules, offsets)
def test_prop_on_call_is_a_rotation_member_after_first_handoff(s: Schedule, offset: timedelta) -> None:
    at = first_handoff(s) + offset
    assert on_call(s, at) in s.rotation.responders


@settings(max_examples=150, deadline=None)
@given(schedules, offsets)
def test_prop_shift_bounds_contain_at(s: Schedule, offset: timedelta) -> None:
    at = first_handoff(s) + offset
    start, end = shift_bounds(s, at)
    assert start <= at < end
    hours = s.rotation.shift_hours
    if hours % 24:
        assert end - start == timedelta(hours=hours)
    else:
        # Wall-clock shifts drift from the nominal length by at most a DST shift (Lord Howe is 30 min).
        assert abs((end - start) - timedelta(hours=hours)) <= timedelta(hours=1)
    # The shift starting at `start` is the same shift.
    assert shift_bounds(s, start) == (start, end)


@settings(max_examples=150, deadline=None)
@given(schedules, offsets)
def test_prop_consecutive_shifts_advance_by_one(s: Schedule, offset: timedelta) -> None:
    at = first_handoff(s) + offset
    responders = s.rotation.responders
    start, end = shift_bounds(s, at)
    nxt_start, _ = shift_bounds(s, end)
    assert nxt_start == end  # shifts tile time with no gaps
    index = responders.index(on_call(s, at)) if len(set(responders)) == len(responders) else None
    if index is not None:
        assert on_call(s, end) == responders[(index + 1) % len(responders)]
    if start > first_handoff(s):
        prev_start, prev_end = shift_bounds(s, start - timedelta(microseconds=1))
        assert prev_end == start


@settings(max_examples=100, deadline=None)
@given(schedules, st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=400)))
def test_prop_before_first_handoff_is_none(s: Schedule, before: timedelta) -> None:
    at = first_handoff(s) - before
    assert on_call(s, at) is None
    assert shift_bounds(s, at) is None


def reference_on_call(s: Schedule, at: datetime) -> str | None:
    """Slow reference: walk every shift from the handoff."""
    zone = ZoneInfo(s.time_zone)
    hours = s.rotation.shift_hours
    handoff = s.rotation.handoff.replace(fold=0)
    n = 0
    if hours % 24 == 0:
        def start(k: int) -> datetime:
            return (handoff + timedelta(days=k * hours // 24)).replace(tzinfo=zone).astimezone(UTC)
    else:
        first = handoff.replace(tzinfo=zone).astimezone(UTC)

        def start(k: int) -> datetime:
            return first + timedelta(hours=k * hours)
    if at < start(0):
        return None
    while at >= start(n + 1):
        n += 1
    return s.rotation.responders[n % len(s.rotation.responders)]


@settings(max_examples=150, deadline=None)
@given(schedules, st.timedeltas(min_value=timedelta(days=-5), max_value=timedelta(days=60)))
def test_prop_matches_slow_reference(s: Schedule, offset: timedelta) -> None:
    at = first_handoff(s) + offset
    assert on_call(s, at) == reference_on_call(s, at)


@settings(max_examples=100, deadline=None)
@given(
    schedules,
    offsets,
    st.lists(st.tuples(st.text("xyz", min_size=1, max_size=3), st.timedeltas(timedelta(hours=-48), timedelta(hours=48)),
                       st.timedeltas(timedelta(minutes=1), timedelta(hours=72))), max_size=4),
)
def test_prop_override_responder_when_covered(s: Schedule, offset: timedelta, raw: list) -> None:
    at = first_handoff(s) + offset
    overrides = tuple(Override(who, at + delta, at + delta + length) for who, delta, length in raw)
    s = make(s.rotation.shift_hours, s.rotation.handoff, s.rotation.responders, s.time_zone, overrides)
    covering = [o for o in overrides if o.start <= at < o.end]
    result = on_call(s, at)
    if covering:
        latest = max(o.start for o in covering)
        assert result in {o.responder for o in covering if o.start == latest}
    else:
        assert result in s.rotation.responders
