"""Unit tests for chalicelib.domain.checkins: complete, miss and locate a check-in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.checkins import (
    ACTIVE,
    COMPLETED,
    MAX_DUE_IN_S,
    MIN_DUE_IN_S,
    MISSED,
    CheckIn,
    add_location,
    complete,
    miss,
    view,
)
from chalicelib.domain.errors import InvalidTransition

CREATED = "2026-11-25T15:00:00.000Z"
DUE = "2026-11-25T15:10:00.000Z"
NOW = "2026-11-25T15:05:00.000Z"
LOCATION = {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}


def _check_in(**changes: object) -> CheckIn:
    return replace(CheckIn("ci_1", "s1", ACTIVE, CREATED, DUE), **changes)


def test_due_in_bounds_are_five_seconds_to_a_day() -> None:
    assert (MIN_DUE_IN_S, MAX_DUE_IN_S) == (5, 86_400)


def test_complete_an_active_check_in_records_when() -> None:
    completed = complete(_check_in(), NOW)
    assert (completed.status, completed.completed_at) == (COMPLETED, NOW)


def test_completing_twice_changes_nothing() -> None:
    assert complete(_check_in(status=COMPLETED, completed_at=CREATED), NOW) is None


def test_completing_a_missed_check_in_raises_invalid_transition_naming_the_incident() -> None:
    missed = _check_in(status=MISSED, missed_at=DUE, incident_id="inc_42")
    with pytest.raises(InvalidTransition) as caught:
        complete(missed, NOW)
    assert "inc_42" in caught.value.message
    assert caught.value.extra == {"incident_id": "inc_42"}


def test_miss_an_active_check_in_records_when_and_the_incident_it_opened() -> None:
    missed = miss(_check_in(), "inc_42", DUE)
    assert (missed.status, missed.missed_at, missed.incident_id) == (MISSED, DUE, "inc_42")


@pytest.mark.parametrize("status", [COMPLETED, MISSED])
def test_miss_of_a_check_in_no_longer_active_changes_nothing(status: str) -> None:
    assert miss(_check_in(status=status), "inc_43", DUE) is None


def test_add_location_replaces_the_last_known_location_while_active() -> None:
    located = add_location(_check_in(location={"lat": 1.0, "lng": 2.0}), LOCATION)
    assert located.location == LOCATION


@pytest.mark.parametrize("status", [COMPLETED, MISSED])
def test_add_location_refuses_a_check_in_no_longer_active(status: str) -> None:
    with pytest.raises(InvalidTransition, match=status):
        add_location(_check_in(status=status), LOCATION)


def test_view_shows_only_what_is_set() -> None:
    assert view(_check_in()) == {"id": "ci_1", "status": "active", "created_at": CREATED, "due_at": DUE}
    missed = _check_in(status=MISSED, missed_at=DUE, incident_id="inc_42", location=LOCATION, order_id="o1",
                       note="walking home", request_hash="h")
    assert view(missed) == {"id": "ci_1", "status": "missed", "created_at": CREATED, "due_at": DUE,
                            "order_id": "o1", "missed_at": DUE, "incident_id": "inc_42", "location": LOCATION,
                            "note": "walking home"}
