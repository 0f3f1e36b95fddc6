"""Unit tests for chalicelib.domain.clock: the one time format the service stores and shows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.clock import EARLIEST, LATEST, TimeFormatError, iso, parse_iso, plus_seconds, seconds_between

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T15:00:00Z", datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ("2026-11-25T15:00:00z", datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ("2026-11-25T15:00:00.123Z", datetime(2026, 11, 25, 15, 0, 0, 123000, tzinfo=UTC)),
        ("2026-11-25T15:00:00+00:00", datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ("2026-11-25T10:00:00-05:00", datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ("2026-11-26T00:30:00+09:30", datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ("2026-11-25T15:00:00", datetime(2026, 11, 25, 15, tzinfo=UTC)),  # naive is UTC
        (" 2026-11-25T15:00:00Z ", datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
    ],
)
def test_parse_iso_accepts_z_offsets_and_naive_times_as_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_iso(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_parse_iso_rejects_a_naive_time_when_told_naive_is_not_utc() -> None:
    with pytest.raises(TimeFormatError, match="offset"):
        parse_iso("2026-11-25T15:00:00", naive_is_utc=False)
    assert parse_iso("2026-11-25T15:00:00Z", naive_is_utc=False) == datetime(2026, 11, 25, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "not a date at all", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T25:00:00Z",
     "2026-11-25T15:00:00ZZ", "2026-11-25T15:00:00+25:00", "1" * 41, "2026-11", None, 1764082800, b"2026-11-25"],
)
def test_parse_iso_rejects_garbage_with_time_format_error(value: object) -> None:
    with pytest.raises(TimeFormatError):
        parse_iso(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:30",  # before year 1 in UTC: must not leak an OverflowError
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:30:00+01:00",  # 1969-12-31T23:30Z
        "9000-01-01T00:00:00Z",
        "9999-12-31T23:59:59",
        "9999-12-31T23:59:59-01:00",  # past year 9999 in UTC
    ],
)
def test_parse_iso_rejects_times_before_1970_and_from_9000_on(value: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_iso(value)


_iso_like = st.from_regex(
    r"\A[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?([+-][01][0-9]:[0-5][0-9]|Z)?\Z")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=45), _iso_like))
def test_parse_iso_returns_an_aware_time_in_range_or_raises_time_format_error(value: str) -> None:
    try:
        parsed = parse_iso(value)
    except TimeFormatError:
        return
    assert parsed.utcoffset() == timedelta(0)
    assert EARLIEST <= parsed < LATEST


def test_parse_iso_accepts_the_edges_of_the_range() -> None:
    assert parse_iso("1970-01-01T00:00:00Z") == EARLIEST
    assert parse_iso("8999-12-31T23:59:59.999Z") < LATEST


def test_time_format_error_is_a_value_error() -> None:
    assert issubclass(TimeFormatError, ValueError)


def test_iso_is_fixed_width_utc_with_milliseconds_and_z() -> None:
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"
    assert iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))) == "2026-01-02T08:04:05.000Z"


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(8999, 12, 30), timezones=st.just(UTC)),
       st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(8999, 12, 30), timezones=st.just(UTC)))
def test_stored_times_compare_as_strings_like_the_instants_they_name(a: datetime, b: datetime) -> None:
    a, b = a.replace(microsecond=a.microsecond // 1000 * 1000), b.replace(microsecond=b.microsecond // 1000 * 1000)
    assert parse_iso(iso(a)) == a
    assert (iso(a) < iso(b)) == (a < b)


def test_seconds_between_is_rounded_and_none_when_an_end_is_missing() -> None:
    assert seconds_between("2026-11-25T15:00:00.000Z", "2026-11-25T15:01:01.2345Z") == 61.234
    assert seconds_between("2026-11-25T15:00:10Z", "2026-11-25T15:00:00Z") == -10.0
    assert seconds_between(None, "2026-11-25T15:00:00Z") is None
    assert seconds_between("2026-11-25T15:00:00Z", "") is None


def test_plus_seconds_returns_a_stored_time() -> None:
    assert plus_seconds("2026-11-25T23:59:30.000Z", 45.5) == "2026-11-26T00:00:15.500Z"
