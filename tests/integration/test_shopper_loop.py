"""The shopper is never left alone (contract 4.2), over HTTP on the local stack: pressing again, status messages
and SMS, 911 guidance on exhaustion, duress, acknowledgements that expire."""

from __future__ import annotations

from tests.conftest import new_phone, wait_for

PANIC = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}


def _emergency(world, phone: str, reference: str) -> list[dict]:
    return [m for m in world.sms.to(phone) if reference in m["body"] and "EMERGENCY" in m["body"]]


def test_pressing_again_joins_the_open_incident_and_escalates_at_once(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [3600, 3600]))
    shopper = world.as_("shopper")
    opened = shopper.post("/v1/incidents", json=PANIC)
    assert opened.status_code == 201
    incident = opened.json()["incident"]
    wait_for(lambda: _emergency(world, first["phone"], incident["reference"]), message="tier-1 page")
    again = shopper.post("/v1/incidents", json={**PANIC, "location": {"lat": 37.8, "lng": -122.5}},
                         headers={"Idempotency-Key": "second-press"})
    assert again.status_code == 200 and again.json()["incident"]["id"] == incident["id"]
    # Tier 2 is paged now, not after tier 1's hour, at the new location.
    page = wait_for(lambda: _emergency(world, second["phone"], incident["reference"]), message="tier-2 page at once")
    assert "q=37.8,-122.5" in page[0]["body"]
    retried = shopper.post("/v1/incidents", json={**PANIC, "location": {"lat": 37.8, "lng": -122.5}},
                           headers={"Idempotency-Key": "second-press"})
    assert retried.status_code == 200 and retried.json()["incident"]["id"] == incident["id"]
    assert [e["type"] for e in world.timeline(incident["id"])].count("pressed_again") == 1


def test_the_shopper_is_told_each_stage_and_to_call_911_when_nobody_answers(world):
    responder = world.responder("Nia")
    world.route_all_to(world.policy([[responder]], [1]))
    shopper, callback = world.as_("shopper"), new_phone()
    incident = world.open_panic(shopper, callback_phone=callback)
    assert "alerting our safety team" in incident["shopper_message"]
    wait_for(lambda: world.sms.to(callback), timeout=20, message="the exhausted SMS to the shopper")
    assert "call 911" in world.sms.to(callback)[0]["body"]
    shown = shopper.get(f"/v1/incidents/{incident['id']}").json()["incident"]
    assert shown["escalation"]["exhausted"] and "Call 911 now" in shown["shopper_message"]
    world.sms.reply(responder["phone"], f"ACK {incident['code']}")
    wait_for(lambda: len(world.sms.to(callback)) == 2, message="the acknowledged SMS")
    assert world.sms.to(callback)[1]["body"].startswith("Help is coming: Nia")
    assert "Nia from our safety team is on it" in shopper.get(f"/v1/incidents/{incident['id']}").json()["incident"]["shopper_message"]
    world.sms.reply(responder["phone"], f"RES {incident['code']} walked her to the car")
    wait_for(lambda: len(world.sms.to(callback)) == 3, message="the resolved SMS")
    assert "resolved" in world.sms.to(callback)[2]["body"]


def test_a_duress_pin_shows_the_shopper_a_cancelled_incident_and_pages_on(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [2, 3600]))
    shopper, callback = world.as_("shopper"), new_phone()
    incident = world.open_panic(shopper, cancel_pin="1234", duress_pin="9876", callback_phone=callback)
    wait_for(lambda: _emergency(world, first["phone"], incident["reference"]), message="tier-1 page")
    answer = shopper.post(f"/v1/incidents/{incident['id']}/cancel", json={"pin": "9876"})
    assert answer.status_code == 200 and answer.json()["incident"]["status"] == "cancelled"
    assert "duress" not in answer.json()["incident"]
    staff = world.incident(incident["id"])
    assert staff["status"] == "triggered" and staff["duress"] is True and staff["severity"] == "sev1"
    wait_for(lambda: any(m["body"].startswith("DURESS") for m in world.sms.to(first["phone"])), message="duress notice")
    tier2 = wait_for(lambda: _emergency(world, second["phone"], incident["reference"]), message="tier 2 goes on")
    assert tier2[0]["body"].startswith("DURESS EMERGENCY")
    assert shopper.get(f"/v1/incidents/{incident['id']}").json()["incident"]["status"] == "cancelled"
    assert not any("cancelled by the reporter" in m["body"] for m in world.sms.to(first["phone"]))
    assert world.sms.to(callback) == []


def test_an_acknowledgement_not_resolved_in_time_reminds_then_returns_to_the_team(world):
    first, second = world.responder(), world.responder()
    policy_id = world.policy([[first], [second]], [3600, 3600])
    body = world.admin.get(f"/v1/escalation-policies/{policy_id}").json()["policy"]
    body = {k: v for k, v in body.items() if k not in ("id", "updated_at")}
    assert world.admin.put(f"/v1/escalation-policies/{policy_id}", json={**body, "ack_timeout_s": 2}).status_code == 200
    world.route_all_to(policy_id)
    incident = world.open_panic()
    wait_for(lambda: _emergency(world, first["phone"], incident["reference"]), message="tier-1 page")
    world.sms.reply(first["phone"], f"ACK {incident['code']}")
    wait_for(lambda: any(m["body"].startswith("Reminder:") for m in world.sms.to(first["phone"])), timeout=15,
             message="the reminder")
    wait_for(lambda: _emergency(world, second["phone"], incident["reference"]), timeout=15,
             message="tier 2 once the acknowledgement expired")
    events = [e["type"] for e in world.timeline(incident["id"])]
    assert events.index("acknowledged") < events.index("ack_reminded") < events.index("ack_expired")
    assert world.incident(incident["id"])["status"] == "triggered"
