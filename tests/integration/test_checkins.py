"""Check-ins over HTTP: a timer per check-in on Step Functions, and a missed one opens an incident."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import wait_for


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_missed_check_in_opens_a_paged_incident_at_the_last_location(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [3600]))
    shopper = world.as_("shopper")
    created = shopper.post("/v1/check-ins", json={"due_in_s": 5, "location": {"lat": 40.7, "lng": -74.0},
                                                  "note": "long wait at the door"},
                           headers={"Idempotency-Key": "ci-1"})
    assert created.status_code == 201, created.text
    check_in = created.json()["check_in"]
    assert check_in["status"] == "active"
    assert shopper.post(f"/v1/check-ins/{check_in['id']}/locations", json={"lat": 40.71, "lng": -74.01}).status_code == 201
    missed = wait_for(lambda: (lambda c: c if c["status"] == "missed" else None)(
        shopper.get(f"/v1/check-ins/{check_in['id']}").json()["check_in"]), timeout=30, message="the missed check-in")
    incident = world.incident(missed["incident_id"])
    assert incident["kind"] == "missed_check_in" and incident["severity"] == "sev2"
    assert incident["check_in_id"] == check_in["id"] and incident["location"]["lat"] == 40.71
    assert _at(incident["created_at"]) >= _at(check_in["due_at"])
    wait_for(lambda: world.sms.to(responder["phone"]), message="the page")
    assert "missed_check_in" in world.sms.to(responder["phone"])[0]["body"]
    again = shopper.post("/v1/check-ins", json={"due_in_s": 5, "location": {"lat": 40.7, "lng": -74.0},
                                                "note": "long wait at the door"}, headers={"Idempotency-Key": "ci-1"})
    assert again.status_code == 201 and again.json()["check_in"]["id"] == check_in["id"]


def test_a_completed_check_in_opens_nothing_and_bad_input_is_422(world):
    shopper = world.as_("shopper")
    check_in = shopper.post("/v1/check-ins", json={"due_in_s": 5}).json()["check_in"]
    done = shopper.post(f"/v1/check-ins/{check_in['id']}/complete")
    assert done.status_code == 200 and done.json()["check_in"]["status"] == "completed"
    for due in (4, 86401, "10", 1.5):
        answer = shopper.post("/v1/check-ins", json={"due_in_s": due})
        assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == "due_in_s"
    other = world.as_("shopper")
    assert other.get(f"/v1/check-ins/{check_in['id']}").status_code == 403
    assert other.post(f"/v1/check-ins/{check_in['id']}/complete").status_code == 403
    assert shopper.get("/v1/check-ins/chk_nope").status_code == 404
