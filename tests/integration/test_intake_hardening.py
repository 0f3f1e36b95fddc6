"""Intake as an adversary tries it: an old key for a new emergency, a raced PIN lockout, loose and absurd input."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import unique

PANIC = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}


@pytest.fixture()
def routed(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [3600]))
    return responder


def test_a_key_reused_for_a_new_emergency_after_a_cancel_is_409(world, routed):
    shopper = world.as_("shopper")
    key = unique("order-777-panic")
    first = shopper.post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key}).json()["incident"]
    assert shopper.post(f"/v1/incidents/{first['id']}/cancel", json={}).status_code == 200
    medical = {"kind": "medical", "location": {"lat": 40.0, "lng": -73.0}}
    answer = shopper.post("/v1/incidents", json=medical, headers={"Idempotency-Key": key})
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "idempotency_key_reused"
    same = shopper.post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key})
    assert same.status_code == 201 and same.json()["incident"]["id"] == first["id"]
    assert same.json()["incident"]["status"] == "cancelled"


def test_thirty_one_concurrent_cancels_cannot_beat_the_pin_lockout(world, routed):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper, cancel_pin="4321")
    pins = ["0000"] * 30 + ["4321"]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(
            lambda pin: shopper.post(f"/v1/incidents/{incident['id']}/cancel", json={"pin": pin}).status_code, pins))
    checked = statuses[403] + statuses[200]
    assert checked <= 5 and statuses[429] == 31 - checked, statuses
    cancelled = world.incident(incident["id"])["status"] == "cancelled"
    assert cancelled == (statuses[200] == 1)
    rejected = [e for e in world.timeline(incident["id"]) if e["type"] == "cancel_rejected"]
    assert len(rejected) == statuses[403]


@pytest.mark.parametrize("body, field", [
    ({"kind": "panic", "location": {"lat": True, "lng": False}}, "location.lat"),
    ({**PANIC, "cancel_pin": "\u0661\u0662\u0663\u0664"}, "cancel_pin"),
    ({**PANIC, "cancel_pin": "1234", "duress_pin": "1234"}, "duress_pin"),
    ({**PANIC, "location": {"lat": "37.7", "lng": -122.4}}, "location.lat"),
])
def test_loose_input_is_422_naming_the_field(world, routed, body, field):
    answer = world.as_("shopper").post("/v1/incidents", json=body)
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["error"]["details"]]


def test_a_body_nested_three_thousand_deep_is_400(world, routed):
    deep = "[" * 3000 + "]" * 3000
    answer = requests.post(f"{world.stack.api_url}/v1/incidents", data=f'{{"kind": "panic", "x": {deep}}}',
                           headers={**world.as_("shopper").session.headers, "Content-Type": "application/json"},
                           timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("path", ["/v1/incidents", "/v1/review/metrics", "/v1/review/export"])
@pytest.mark.parametrize("until", ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "2026-13-45T99:00:00"])
def test_absurd_dates_are_422(world, path, until):
    answer = world.reviewer.get(path, params={"until": until})
    assert answer.status_code == 422, (path, until, answer.text)
    assert answer.json()["error"]["details"][0]["field"] in ("until", "since")


def test_attachments_are_capped_with_a_422(world, routed):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    body = {"filename": "photo.jpg", "content_type": "image/jpeg", "size_bytes": 1000}
    statuses = [shopper.post(f"/v1/incidents/{incident['id']}/attachments", json=body).status_code for _ in range(21)]
    assert statuses == [201] * 20 + [422]


def test_a_long_sms_is_answered(world, routed):
    world.sms.reply(routed["phone"], "please " * 400)
    assert world.sms.to(routed["phone"])[-1]["body"].startswith("Commands:")
    assert json.dumps(world.sms.to(routed["phone"])[-1])
