"""A burst on a slow origination number never skips a tier (contract 4.3; issue 18): the local stack as `make run`
starts it, with the sender held to 3 SMS a second. 24 presses at once against a policy whose tier 1 times out in
3 s: the SMS queue is far slower than the timeout, yet every tier-1 responder is paged for every incident, and tier 2
never before its incident's tier-1 pages were sent plus the timeout (a tier's timer starts when its pages are sent,
not when they are queued)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests

from local.subprocess_stack import StackProcess
from tests.conftest import Api, Sms, new_phone, unique, wait_for

PRESSES = 24
TIER1_TIMEOUT_S = 3
RATE = 3


def _at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def slow_number(tmp_path_factory):
    stack = StackProcess(tmp_path_factory.mktemp("burst") / "stack.log", SEED="0", SMS_RATE_PER_S=str(RATE))
    with stack:
        yield stack
    print(stack.log_tail())


def test_a_burst_on_a_slow_number_pages_every_tier_in_order(slow_number):
    admin = Api(slow_number.api, slow_number.dev, "admin", "burst-admin")
    phones = {name: new_phone() for name in ("t1a", "t1b", "t2")}
    ids = {name: unique(name) for name in phones}
    for name, phone in phones.items():
        assert admin.put(f"/v1/responders/{ids[name]}", json={"name": name, "phone": phone}).status_code == 201
    policy = {"tiers": [{"targets": [{"responder": ids["t1a"]}, {"responder": ids["t1b"]}], "timeout_s": TIER1_TIMEOUT_S},
                        {"targets": [{"responder": ids["t2"]}], "timeout_s": 3600}]}
    assert admin.put("/v1/escalation-policies/burst", json=policy).status_code == 201
    assert admin.put("/v1/routing", json={"default": "burst"}).status_code == 200

    def press(n: int) -> dict:
        shopper = Api(slow_number.api, slow_number.dev, "shopper", f"burst-shopper-{n}")
        response = shopper.post("/v1/incidents", json={"kind": "panic", "location": {"lat": 37.77, "lng": -122.41}},
                                headers={"Idempotency-Key": f"burst-{n}"})
        assert response.status_code == 201, response.text
        return response.json()["incident"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        incidents = list(pool.map(press, range(PRESSES)))
    sms = Sms(slow_number.dev)

    def pages_to(phone: str) -> dict[str, dict]:
        return {m["body"].split()[1]: m for m in sms.to(phone) if m["body"].startswith("EMERGENCY")}

    references = {i["reference"] for i in incidents}
    # 2 x 24 tier-1 SMS at 3/s is 16 s of queue; then the tier-2 pages.
    wait_for(lambda: references <= set(pages_to(phones["t2"])), timeout=180, interval=1,
             message="every incident reaching tier 2")
    first_a, first_b, second = pages_to(phones["t1a"]), pages_to(phones["t1b"]), pages_to(phones["t2"])
    assert references <= set(first_a) and references <= set(first_b), "a tier-1 page was skipped"
    for reference in references:
        tier1_sent = max(_at(first_a[reference]["sent_at"]), _at(first_b[reference]["sent_at"]))
        tier2_sent = _at(second[reference]["sent_at"])
        assert tier2_sent >= tier1_sent + TIER1_TIMEOUT_S - 0.05, (reference, tier2_sent - tier1_sent)
    # Each responder got one page per incident: nothing doubled.
    for phone in phones.values():
        bodies = [m["body"].split()[1] for m in sms.to(phone) if m["body"].startswith("EMERGENCY")]
        assert len(bodies) == len(set(bodies)) == PRESSES
    # The record agrees: tier 1 paged twice, then escalated, then tier 2.
    reviewer = Api(slow_number.api, slow_number.dev, "reviewer", "burst-reviewer")
    for incident in incidents[:5]:
        events = reviewer.get(f"/v1/incidents/{incident['id']}/timeline").json()["events"]
        kinds = [(e["type"], e["details"].get("tier")) for e in events if e["type"] in ("paged", "escalated")]
        assert kinds == [("paged", 1), ("paged", 1), ("escalated", 2), ("paged", 2)], kinds
    assert requests.get(f"{slow_number.api}/v1/health", timeout=5).status_code == 200
