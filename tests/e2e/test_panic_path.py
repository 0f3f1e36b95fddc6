"""End to end: start the real local stack as `make run` does (a separate process, free ports), drive it over HTTP
only, shut it down."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import requests

from local.subprocess_stack import StackProcess
from tests.conftest import Api, Sms, new_phone, unique, wait_for


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    stack = StackProcess(tmp_path_factory.mktemp("stack") / "stack.log", SEED="1")
    with stack:
        yield {"api": stack.api, "dev": stack.dev, "startup_s": stack.startup_s, "log": stack.log_path}
    # Shown by pytest only when a test failed.
    print(stack.log_tail())


def test_panic_is_paged_escalated_and_acknowledged_by_sms(running_stack):
    api, dev = running_stack["api"], running_stack["dev"]
    assert running_stack["startup_s"] < 60
    admin = Api(api, dev, "admin", "e2e-admin")
    sms = Sms(dev)

    # The demo roster was seeded.
    seeded = {r["id"] for r in admin.get("/v1/responders").json()["responders"]}
    assert {"r-alice", "r-bob", "r-carol"} <= seeded

    first, second = (unique("e2e"), new_phone()), (unique("e2e"), new_phone())
    for responder_id, phone in (first, second):
        assert admin.put(f"/v1/responders/{responder_id}", json={"name": responder_id, "phone": phone}).status_code == 201
    policy = {"tiers": [{"targets": [{"responder": first[0]}], "timeout_s": 2},
                        {"targets": [{"responder": second[0]}], "timeout_s": 2}]}
    assert admin.put("/v1/escalation-policies/e2e", json=policy).status_code == 201
    assert admin.put("/v1/routing", json={"default": "e2e", "panic": "e2e"}).status_code == 200

    shopper = Api(api, dev, "shopper", "e2e-shopper")
    created = shopper.post("/v1/incidents", json={"kind": "panic", "location": {"lat": 40.7, "lng": -74.0}},
                           headers={"Idempotency-Key": unique("press")})
    assert created.status_code == 201, created.text
    incident = created.json()["incident"]
    assert incident["reference"].startswith("TS-") and incident["status"] == "triggered"

    tier1 = wait_for(lambda: sms.to(first[1]), message="tier-1 page")
    assert incident["reference"] in tier1[0]["body"] and "maps.google.com/?q=40.7,-74" in tier1[0]["body"]
    tier2 = wait_for(lambda: sms.to(second[1]), timeout=8, message="tier-2 page")
    # Tier 1's timer starts after the incident is created: tier 2 can never come sooner than 2 s after creation, and
    # must come within 1.5 s after its timeout (plus the moment between creation and the workflow's first claim).
    # tests/integration/test_escalation.py measures the same against the Wait state's own start.
    gap = datetime.fromisoformat(tier2[0]["sent_at"][:-1]) - datetime.fromisoformat(incident["created_at"][:-1])
    assert 2.0 <= gap.total_seconds() <= 3.5 + 0.5, gap

    reply = requests.post(f"{dev}/dev/sms/inbound", json={"from": second[1], "body": f"  Ack {incident['code']} "})
    assert reply.status_code == 202

    reviewer = Api(api, dev, "reviewer", "e2e-reviewer")
    acknowledged = wait_for(
        lambda: (i := reviewer.get(f"/v1/incidents/{incident['id']}").json()["incident"])["status"] == "acknowledged" and i,
        message="acknowledged status",
    )
    assert acknowledged["acknowledged_by"] == second[0]
    # Lookup by reference works too, for the owner.
    assert shopper.get(f"/v1/incidents/{incident['reference']}").json()["incident"]["id"] == incident["id"]

    events = reviewer.get(f"/v1/incidents/{incident['id']}/timeline").json()["events"]
    assert [e["type"] for e in events] == ["created", "paged", "escalated", "paged", "sms_received", "acknowledged"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)

    confirmation = wait_for(lambda: len(sms.to(second[1])) == 2 and sms.to(second[1])[1], message="ACK confirmation")
    assert confirmation["body"].startswith("You acknowledged")
    time.sleep(2.5)  # past where a third step would have paged: nothing more may arrive
    assert len(sms.to(first[1])) == 1 and len(sms.to(second[1])) == 2
