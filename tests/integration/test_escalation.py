"""Escalation on the local stack: the real state machine from infra/ run by moto, pages through SNS.

GoAlert-style: each test owns its responders' phone numbers and fails on any SMS it did not expect."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest

from tests.conftest import wait_for


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def wait_deadlines(world, execution_name: str) -> list[datetime]:
    """When each Wait state of the execution was due to end: entered time + its seconds, from the real history."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=world.stack.aws_url)
    arn = world.stack.env["ESCALATION_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + execution_name
    deadlines = []
    for event in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]:
        if event["type"] == "WaitStateEntered":
            state_input = json.loads(event["stateEnteredEventDetails"]["input"])
            deadlines.append(event["timestamp"] + timedelta(seconds=state_input["timeout_s"]))
    return deadlines


def _pages(world, *phones):
    return [m for m in world.sms.to(*phones) if m["body"].startswith("EMERGENCY")]


def test_two_tiers_page_in_order_and_tier_two_fires_on_time(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [2, 2]))
    incident = world.open_panic()

    tier1 = wait_for(lambda: _pages(world, first["phone"]), message="tier-1 page")
    assert incident["reference"] in tier1[0]["body"]
    assert f"ACK {incident['code']}" in tier1[0]["body"]
    assert not _pages(world, second["phone"]), "tier 2 must not be paged before its tier-1 timeout"

    tier2 = wait_for(lambda: _pages(world, second["phone"]), timeout=8, message="tier-2 page")
    due = wait_deadlines(world, incident["id"])[0]
    lateness = (_at(tier2[0]["sent_at"]) - due).total_seconds()
    # Never early; within 1.5 s after tier 1's timeout ran out (the Wait state's own start + 2 s).
    assert 0 <= lateness <= 1.5, f"tier 2 paged {lateness:+.3f}s after its timeout"

    events = world.timeline(incident["id"])
    types = [e["type"] for e in events]
    assert types[:4] == ["created", "paged", "escalated", "paged"]
    assert events[1]["details"]["tier"] == 1 and events[1]["details"]["message_id"] == tier1[0]["message_id"]
    assert events[2]["details"] == {"tier": 2, "step": 1, "round": 0, "trigger": "timeout"}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_ack_during_the_wait_stops_escalation_and_nothing_more_is_sent(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [2, 2]))
    incident = world.open_panic()
    wait_for(lambda: _pages(world, first["phone"]), message="tier-1 page")

    assert world.sms.reply(first["phone"], f"ack {incident['code']}").status_code == 202
    assert world.incident(incident["id"])["status"] == "acknowledged"

    # Past tier 2's due time (2 s) by a margin: nothing may reach tier 2, and tier 1 got only the page and the reply.
    time.sleep(3.5)
    assert world.sms.to(second["phone"]) == []
    bodies = [m["body"] for m in world.sms.to(first["phone"])]
    assert len(bodies) == 2 and bodies[1].startswith("You acknowledged")
    types = [e["type"] for e in world.timeline(incident["id"])]
    assert types == ["created", "paged", "sms_received", "acknowledged"]


def test_repeat_runs_the_tiers_again_then_exhausts(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [1, 1], repeat=1))
    incident = world.open_panic()

    exhausted = wait_for(
        lambda: [m for m in world.sms.to(first["phone"]) if m["body"].startswith("EXHAUSTED")], timeout=12,
        message="exhausted page",
    )
    assert incident["reference"] in exhausted[0]["body"]
    wait_for(lambda: len(world.sms.to(second["phone"])) == 3, message="second responder: 2 pages + exhausted")
    assert len(_pages(world, first["phone"])) == 2  # round 1 and round 2
    events = world.timeline(incident["id"])
    paged_tiers = [e["details"]["tier"] for e in events if e["type"] == "paged"]
    assert paged_tiers[:4] == [1, 2, 1, 2]
    assert [e["details"]["round"] for e in events if e["type"] == "escalated"] == [0, 1, 1]
    assert "escalation_exhausted" in [e["type"] for e in events]
    assert world.incident(incident["id"])["escalation"]["exhausted"] is True


def test_cancel_stops_escalation_and_tells_those_paged(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [2, 2]))
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper, cancel_pin="2468")
    wait_for(lambda: _pages(world, first["phone"]), message="tier-1 page")

    response = shopper.post(f"/v1/incidents/{incident['id']}/cancel", json={"pin": "2468", "reason": "false alarm"})
    assert response.status_code == 200, response.text
    assert response.json()["incident"]["status"] == "cancelled"

    notice = wait_for(lambda: [m for m in world.sms.to(first["phone"]) if "cancel" in m["body"].lower()],
                      message="cancellation notice")
    assert incident["reference"] in notice[0]["body"]
    time.sleep(3)
    assert world.sms.to(second["phone"]) == [], "cancelled incident must not escalate"


def test_esc_by_sms_jumps_to_the_next_tier_now(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [60, 60]))
    incident = world.open_panic()
    wait_for(lambda: _pages(world, first["phone"]), message="tier-1 page")

    started = time.monotonic()
    world.sms.reply(first["phone"], f"ESC {incident['code']}")
    wait_for(lambda: _pages(world, second["phone"]), timeout=5, message="tier-2 page after ESC")
    assert time.monotonic() - started < 5  # not the 60 s timeout
    escalated = [e for e in world.timeline(incident["id"]) if e["type"] == "escalated"]
    assert escalated[0]["details"]["trigger"] == "manual"


def test_schedule_target_pages_whoever_is_on_call(world):
    on_call, off_call = world.responder(), world.responder()
    schedule = f"s-{on_call['id']}"
    response = world.admin.put(f"/v1/schedules/{schedule}", json={
        "time_zone": "UTC",
        # One-week shifts starting long ago at a handoff such that week N is `on_call`'s: we pick the override path
        # to be certain who is on call now, and the rotation covers the rest.
        "rotation": {"responders": [off_call["id"]], "shift_hours": 168, "handoff": "2026-01-05T09:00:00"},
        "overrides": [{"responder": on_call["id"], "start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}],
    })
    assert response.status_code == 201, response.text
    policy_id = f"p-{schedule}"
    assert world.admin.put(f"/v1/escalation-policies/{policy_id}", json={
        "tiers": [{"targets": [{"schedule": schedule}], "timeout_s": 60}]}).status_code == 201
    world.route_all_to(policy_id)
    world.open_panic()
    wait_for(lambda: _pages(world, on_call["phone"]), message="page to the on-call responder")
    assert world.sms.to(off_call["phone"]) == []


@pytest.mark.parametrize("kind", ["delivery_issue"])
def test_routed_kinds_are_not_paged(world, kind):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [60]))
    response = world.as_("shopper").post("/v1/incidents", json={"kind": kind, "description": "late"})
    assert response.status_code == 201
    assert response.json()["incident"]["status"] == "routed"
    time.sleep(1)
    assert world.sms.to(responder["phone"]) == []


def test_esc_over_the_api_and_authorisation(world):
    first, second = world.responder(), world.responder()
    outsider = world.responder()
    world.route_all_to(world.policy([[first], [second]], [60, 60]))
    incident = world.open_panic()
    wait_for(lambda: _pages(world, first["phone"]), message="tier-1 page")
    assert outsider["api"].post(f"/v1/incidents/{incident['id']}/escalate").status_code == 403
    assert world.as_("shopper").post(f"/v1/incidents/{incident['id']}/escalate").status_code == 403
    response = first["api"].post(f"/v1/incidents/{incident['id']}/escalate")
    assert response.status_code == 200 and response.json() == {"escalation": {"tier": 2}}
    wait_for(lambda: _pages(world, second["phone"]), timeout=5, message="tier-2 page after API escalate")
    first["api"].post(f"/v1/incidents/{incident['id']}/acknowledge")
    assert first["api"].post(f"/v1/incidents/{incident['id']}/escalate").status_code == 409


def test_page_text_is_one_gsm7_part(world):
    from chalicelib.domain.sms_texts import is_gsm7, sms_parts

    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [60]))
    world.open_panic(location={"lat": -33.868820, "lng": 151.209296, "accuracy_m": 5})
    page = wait_for(lambda: _pages(world, responder["phone"]), message="page")[0]["body"]
    assert is_gsm7(page) and sms_parts(page) == 1 and len(page) <= 160
