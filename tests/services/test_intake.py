"""Opening incidents: idempotency at any age, pressing again, and never an old incident for a new emergency."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import IdempotencyKeyReused
from chalicelib.services.access import Principal
from tests.services.harness import Harness


@pytest.fixture()
def h() -> Harness:
    h = Harness()
    h.responder("a")
    h.responder("b")
    h.policy([["a"], ["b"]], [60, 60])
    return h


def test_same_key_and_body_returns_the_same_incident_even_after_days(h: Harness):
    first, status = h.open(key="order-777-panic")
    h.clock.advance(3 * 24 * 3600)
    again, again_status = h.open(key="order-777-panic")
    assert (status, again_status) == (201, 201)
    assert again["incident"]["id"] == first["incident"]["id"]
    assert len(h.store.incidents) == 1


def test_a_new_emergency_under_an_old_cancelled_key_is_409_not_the_old_incident(h: Harness):
    """The incident id derives from owner and key: a different body under the same key, at any age, must be refused
    rather than answered with the old (cancelled) incident while nobody is paged."""
    shopper = h.shopper()
    first, _ = h.open(shopper, key="order-777-panic")
    h.services.intake.cancel(shopper, first["incident"]["id"], None, "mistap")
    h.clock.advance(2 * 24 * 3600)
    with pytest.raises(IdempotencyKeyReused):
        h.open(shopper, key="order-777-panic", kind="medical", location={"lat": 1.0, "lng": 2.0})
    assert len(h.store.incidents) == 1


def test_forty_presses_by_one_shopper_are_one_incident_that_escalates(h: Harness):
    shopper = h.shopper()
    first, status = h.open(shopper)
    incident_id = first["incident"]["id"]
    h.claim_step(incident_id, 0, incident_id)
    statuses = [h.open(shopper, location={"lat": 37.0 + i / 100, "lng": -122.0})[1] for i in range(39)]
    assert status == 201 and statuses == [200] * 39
    assert list(h.store.incidents) == [incident_id]
    assert h.events(incident_id).count("pressed_again") == 39
    # Escalated at once: an ESC execution for the next step (one per step: same name, started once).
    assert f"{incident_id}-press-0-1" in h.workflows.escalations
    assert h.store.personal(incident_id)["location"]["lat"] == pytest.approx(37.38)


def test_a_second_press_after_the_incident_closed_opens_a_new_one(h: Harness):
    shopper = h.shopper()
    first, _ = h.open(shopper)
    h.services.intake.cancel(shopper, first["incident"]["id"], None, None)
    second, status = h.open(shopper)
    assert status == 201 and second["incident"]["id"] != first["incident"]["id"]


def test_a_second_press_after_30_minutes_opens_a_new_one(h: Harness):
    shopper = h.shopper()
    first, _ = h.open(shopper)
    h.clock.advance(31 * 60)
    second, status = h.open(shopper)
    assert status == 201 and second["incident"]["id"] != first["incident"]["id"]


def test_a_retried_press_that_joined_returns_the_joined_incident_again(h: Harness):
    shopper = h.shopper()
    first, _ = h.open(shopper, key="k1")
    joined, status = h.open(shopper, key="k2")
    again, again_status = h.open(shopper, key="k2")
    assert (status, again_status) == (200, 200)
    assert joined["incident"]["id"] == again["incident"]["id"] == first["incident"]["id"]
    assert h.events(first["incident"]["id"]).count("pressed_again") == 1


def test_other_kinds_are_not_joined(h: Harness):
    shopper = h.shopper()
    h.open(shopper)
    report, status = h.open(shopper, kind="harassment", location=None)
    assert status == 201 and len(h.store.incidents) == 2


def test_routing_without_a_policy_says_so_on_the_incident_and_its_timeline():
    h = Harness()
    view, _ = h.open()
    incident = h.incident(view["incident"]["id"])
    assert incident.escalation_exhausted and view["incident"]["escalation"]["exhausted"] is True
    assert h.events(incident.incident_id) == ["created", "escalation_exhausted"]


def test_a_shopper_cannot_open_a_test_incident_and_admins_only_test_ones(h: Harness):
    from chalicelib.domain.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        h.open(kind="test", test_responder="a", location=None)
    view, status = h.services.intake.open(Principal("admin", "ops"), __import__(
        "chalicelib.schemas", fromlist=["IncidentCreate"]).IncidentCreate(kind="test", test_responder="a"), None)
    plan = h.incident(view["incident"]["id"]).escalation
    assert status == 201 and [list(t["responders"]) for t in plan["tiers"]] == [["a"]]
