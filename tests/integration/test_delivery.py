"""Pages that reach people (contract 4.3) on the local stack: the dev server plays the carrier's receipts; a failed
or undelivered page fails over to a voice call (GET /dev/calls) and an email (SES on the local AWS)."""

from __future__ import annotations

import requests

from tests.conftest import unique, new_phone, wait_for


def _status(world, message_id: str, status: str) -> requests.Response:
    return requests.post(f"{world.stack.dev_url}/dev/sms/{message_id}/status", json={"status": status}, timeout=10)


def _voice_responder(world, email: str | None = None, voice: bool = True) -> dict:
    responder_id, phone = unique("r"), new_phone()
    body = {"name": responder_id, "phone": phone, "voice": voice, **({"email": email} if email else {})}
    assert world.admin.put(f"/v1/responders/{responder_id}", json=body).status_code == 201
    return {"id": responder_id, "phone": phone, "api": world.as_("responder", responder_id)}


def test_receipts_are_recorded_once_and_shown_in_the_report(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [3600]))
    incident = world.open_panic()
    page = wait_for(lambda: world.sms.to(responder["phone"]), message="page")[0]
    assert page["status"] == "sent"
    assert _status(world, page["message_id"], "delivered").status_code == 200
    assert _status(world, page["message_id"], "delivered").status_code == 200  # a duplicate receipt
    assert world.sms.to(responder["phone"])[0]["status"] == "delivered"
    events = [e for e in world.timeline(incident["id"]) if e["type"] == "page_delivered"]
    assert len(events) == 1 and events[0]["details"]["message_id"] == page["message_id"]
    report = world.reviewer.get(f"/v1/incidents/{incident['id']}/report").json()["report"]
    assert report["deliveries_by_tier"]["1"]["delivered"] == 1
    assert report["paged"][0]["delivery"] == "delivered"
    assert _status(world, "no-such-message", "delivered").status_code == 404


def test_a_failed_page_fails_over_to_a_call_and_an_email(world):
    address = f"{unique('oncall')}@example.com"  # the local mailbox is shared by every test of the session
    responder = _voice_responder(world, email=address)
    world.route_all_to(world.policy([[responder]], [3600]))
    incident = world.open_panic()
    page = wait_for(lambda: world.sms.to(responder["phone"]), message="page")[0]
    _status(world, page["message_id"], "failed")
    calls = wait_for(lambda: [c for c in requests.get(f"{world.stack.dev_url}/dev/calls", timeout=10).json()["calls"]
                              if c["to"] == responder["phone"]], message="the voice call")
    assert incident["reference"] in calls[0]["text"]
    emails = [m for m in requests.get(f"{world.stack.dev_url}/dev/email", timeout=10).json()["emails"]
              if address in m["to"]]
    assert emails and incident["reference"] in emails[0]["subject"]
    channels = [e["details"]["channel"] for e in world.timeline(incident["id"]) if e["type"] == "page_failover"]
    assert channels == ["voice", "email"]


def test_a_page_never_delivered_fails_over_after_the_delivery_timeout(world):
    responder = _voice_responder(world)
    policy_id = world.policy([[responder]], [3600])
    body = {k: v for k, v in world.admin.get(f"/v1/escalation-policies/{policy_id}").json()["policy"].items()
            if k not in ("id", "updated_at")}
    world.admin.put(f"/v1/escalation-policies/{policy_id}", json={**body, "delivery_timeout_s": 5})
    world.route_all_to(policy_id)
    incident = world.open_panic()
    wait_for(lambda: [e for e in world.timeline(incident["id"]) if e["type"] == "page_failover"], timeout=30,
             message="failover after 5 s without a receipt")
    assert [c["to"] for c in requests.get(f"{world.stack.dev_url}/dev/calls", timeout=10).json()["calls"]].count(
        responder["phone"]) == 1


def test_a_test_page_answered_ok_verifies_the_responder(world):
    responder = world.responder()
    assert responder["api"].post(f"/v1/responders/{responder['id']}/test-page").status_code == 202
    assert world.as_("responder").post(f"/v1/responders/{responder['id']}/test-page").status_code == 403
    wait_for(lambda: world.sms.to(responder["phone"]), message="the test page")
    unverified = world.admin.get("/v1/responders", params={"verified": "false"}).json()["responders"]
    assert responder["id"] in [r["id"] for r in unverified]
    world.sms.reply(responder["phone"], "OK")
    shown = world.admin.get(f"/v1/responders/{responder['id']}").json()["responder"]
    assert shown["verified_at"] is not None
    strict = {"tiers": [{"targets": [{"responder": responder["id"]}], "timeout_s": 60}], "require_verified": True}
    assert world.admin.put(f"/v1/escalation-policies/{unique('p')}", json=strict).status_code == 201
    other = world.responder()
    refused = world.admin.put(f"/v1/escalation-policies/{unique('p')}", json={
        **strict, "tiers": [{"targets": [{"responder": other["id"]}], "timeout_s": 60}]})
    assert refused.status_code == 422
    bad_email = world.admin.put(f"/v1/responders/{unique('r')}", json={"name": "x", "phone": new_phone(),
                                                                         "email": "not-an-email"})
    assert bad_email.status_code == 422 and bad_email.json()["error"]["details"][0]["field"] == "email"
