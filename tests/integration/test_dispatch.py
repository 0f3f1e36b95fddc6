"""Emergency dispatch end to end on the local stack: the dev server plays the alarm-dispatch provider
(GET /dev/dispatches, POST /dev/dispatches/{id}/status sends its signed webhook to the service)."""

from __future__ import annotations

import json

import requests

from tests.conftest import new_phone, wait_for

PANIC = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}


def _dispatches(world, reference: str) -> list[dict]:
    found = requests.get(f"{world.stack.dev_url}/dev/dispatches", timeout=10).json()["dispatches"]
    return [d for d in found if d["reference"] == reference]


def _setup(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [3600]))
    return responder


def test_a_responder_dispatches_locations_follow_and_the_provider_reports_back(world):
    responder = _setup(world)
    shopper, callback = world.as_("shopper"), new_phone()
    incident = world.open_panic(shopper, callback_phone=callback)
    response = responder["api"].post(f"/v1/incidents/{incident['id']}/dispatch", json={"reason": "screaming"})
    assert response.status_code == 202, response.text
    dispatch = response.json()["dispatch"]
    assert dispatch["status"] == "requested" and dispatch["provider"] == "alarm-api"
    placed = wait_for(lambda: _dispatches(world, incident["reference"]), message="the provider's alarm")[0]
    assert placed["locations"][0]["lat"] == 37.77
    wait_for(lambda: "dispatch" in world.incident(incident["id"]), message="dispatch on the incident")
    shopper.post(f"/v1/incidents/{incident['id']}/locations", json={"lat": 37.78, "lng": -122.42})
    wait_for(lambda: len(_dispatches(world, incident["reference"])[0]["locations"]) == 2, message="location forwarded")

    for status in ("accepted", "psap_contacted"):
        played = requests.post(f"{world.stack.dev_url}/dev/dispatches/{placed['id']}/status", json={"status": status},
                               timeout=10)
        assert played.status_code == 200 and played.json()["webhook_status"] == 200, played.text
    shown = shopper.get(f"/v1/incidents/{incident['id']}").json()["incident"]
    assert shown["dispatch"]["status"] == "psap_contacted" and "911 has been contacted" in shown["shopper_message"]
    types = [e["type"] for e in world.timeline(incident["id"])]
    assert types.count("dispatch_requested") == 1 and types.count("dispatch_updated") == 2
    wait_for(lambda: any("911 has been contacted" in m["body"] for m in world.sms.to(callback)), message="shopper SMS")


def test_911_by_sms_a_second_dispatch_is_409_and_no_location_is_422(world):
    responder = _setup(world)
    incident = world.open_panic()
    world.sms.reply(responder["phone"], f"911 {incident['code']}")
    wait_for(lambda: _dispatches(world, incident["reference"]), message="the SMS dispatch")
    # The confirmation and the tier-1 page travel separately (the page through the queue): either may come last.
    wait_for(lambda: any(m["body"].startswith("Emergency dispatch requested") for m in world.sms.to(responder["phone"])),
             message="the responder's confirmation")
    second = responder["api"].post(f"/v1/incidents/{incident['id']}/dispatch", json={})
    assert second.status_code == 409 and second.json()["error"]["code"] == "dispatch_active"
    assert second.json()["error"]["dispatch"]["status"] in ("requested", "accepted")
    report = world.as_("shopper").post("/v1/incidents", json={"kind": "harassment"}).json()["incident"]
    no_location = responder["api"].post(f"/v1/incidents/{report['id']}/dispatch", json={})
    assert no_location.status_code == 422
    assert no_location.json()["error"]["details"][0]["field"] == "location"


def test_a_webhook_with_a_bad_signature_is_401_and_changes_nothing(world):
    responder = _setup(world)
    incident = world.open_panic()
    responder["api"].post(f"/v1/incidents/{incident['id']}/dispatch", json={})
    placed = wait_for(lambda: _dispatches(world, incident["reference"]), message="the alarm")[0]
    body = json.dumps({"event_id": "e-1", "alarm_id": placed["id"], "status": "closed", "at": "2026-12-02T00:00:00Z"})
    for signature in (None, "t=1,v1=00", "garbage"):
        headers = {"Content-Type": "application/json", **({"X-Dispatch-Signature": signature} if signature else {})}
        answer = requests.post(f"{world.stack.api_url}/v1/dispatch/webhook", data=body, headers=headers, timeout=10)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthenticated"
    assert world.incident(incident["id"])["dispatch"]["status"] == "requested"


def test_a_provider_outage_is_retried_then_recorded_and_the_responder_told(world):
    responder = _setup(world)
    incident = world.open_panic()
    world.stack.dispatch.fail_next(20, 503)
    try:
        assert responder["api"].post(f"/v1/incidents/{incident['id']}/dispatch", json={}).status_code == 202
        wait_for(lambda: world.incident(incident["id"])["dispatch"]["status"] == "failed", timeout=60, interval=0.5,
                 message="dispatch_failed after the retries")
    finally:
        world.stack.dispatch.fail_next(0)
    assert "dispatch_failed" in [e["type"] for e in world.timeline(incident["id"])]
    wait_for(lambda: any(m["body"].startswith("DISPATCH FAILED") for m in world.sms.to(responder["phone"])),
             message="the responder told to call 911")


def test_a_pin_cancel_stands_the_dispatch_down(world):
    responder = _setup(world)
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper, cancel_pin="2468")
    responder["api"].post(f"/v1/incidents/{incident['id']}/dispatch", json={})
    placed = wait_for(lambda: _dispatches(world, incident["reference"]), message="the alarm")[0]
    wait_for(lambda: (world.incident(incident["id"]).get("dispatch") or {}).get("status") == "requested",
             message="placed")
    assert shopper.post(f"/v1/incidents/{incident['id']}/cancel", json={"pin": "2468"}).status_code == 200
    wait_for(lambda: _dispatches(world, incident["reference"])[0]["status"] == "cancelled", message="provider cancel")
    assert world.incident(incident["id"])["dispatch"]["status"] == "cancelled"
    assert placed["id"]
