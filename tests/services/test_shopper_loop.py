"""The shopper is never left alone (contract 4.2): status messages and SMS, exhaustion with 911 guidance and
automatic dispatch, dispatch through the provider, check-ins, and acknowledgements that cannot be forgotten."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib.adapters.dispatch import DispatchUnavailable, sign_webhook
from chalicelib.domain.errors import DispatchActive, ValidationFailed
from chalicelib.domain.incidents import Actor
from chalicelib.schemas import CheckInCreate
from tests.services.harness import WEBHOOK_SECRET, Harness

ANN = Actor("responder", "a", "Ann")
CALLBACK = "+15559990000"


@pytest.fixture()
def h() -> Harness:
    h = Harness()
    h.responder("a", "Ann")
    h.responder("b", "Ben")
    h.policy([["a"], ["b"]], [60, 60], dispatch_on_exhaustion=True, ack_timeout_s=600)
    return h


def test_the_shopper_hears_each_stage_by_message_and_sms(h: Harness):
    shopper = h.shopper()
    view, _ = h.open(shopper, callback_phone=CALLBACK)
    incident_id = view["incident"]["id"]
    assert "alerting our safety team" in view["incident"]["shopper_message"]
    h.services.responding.acknowledge(h.incident(incident_id), ANN, "api")
    h.drain()
    assert "Ann from our safety team is on it" in h.services.intake.get(shopper, incident_id)["incident"]["shopper_message"]
    h.services.responding.resolve(h.incident(incident_id), ANN, "assisted", None, "api")
    h.drain()
    assert [m["body"].split(":")[0].split()[0] for m in h.sms.to(CALLBACK)] == ["Help", "Your"]
    assert "resolved" in h.sms.to(CALLBACK)[-1]["body"]


def test_exhaustion_tells_the_shopper_to_call_911_and_dispatches_automatically(h: Harness):
    shopper = h.shopper()
    incident_id = h.open(shopper, callback_phone=CALLBACK)[0]["incident"]["id"]
    h.run_escalation(incident_id)
    h.drain()
    incident = h.incident(incident_id)
    assert incident.escalation_exhausted and "call 911" in h.sms.to(CALLBACK)[-1]["body"]
    assert "Call 911 now" in h.services.intake.get(shopper, incident_id)["incident"]["shopper_message"] or \
        incident.dispatch is not None
    assert incident.dispatch["automatic"] and incident.dispatch["provider_id"]
    alarm = h.provider.alarms[incident.dispatch["provider_id"]]
    assert (alarm["request"].reference, alarm["request"].phone) == (incident.reference, CALLBACK)


def test_a_dispatch_needs_a_location_and_only_one_at_a_time(h: Harness):
    report = h.open(kind="harassment", location=None)[0]["incident"]["id"]
    with pytest.raises(ValidationFailed) as missing:
        h.services.dispatching.request(h.incident(report), ANN)
    assert missing.value.details[0]["field"] == "location"
    panic = h.open(h.shopper("s2"))[0]["incident"]["id"]
    first = h.services.dispatching.request(h.incident(panic), ANN)
    with pytest.raises(DispatchActive) as second:
        h.services.dispatching.request(h.incident(panic), ANN)
    assert second.value.extra["dispatch"]["id"] == first["id"]


def test_locations_follow_the_dispatch_and_a_pin_cancel_stands_it_down(h: Harness):
    shopper = h.shopper()
    incident_id = h.open(shopper, cancel_pin="1234")[0]["incident"]["id"]
    h.services.dispatching.request(h.incident(incident_id), ANN)
    h.drain()
    alarm_id = h.incident(incident_id).dispatch["provider_id"]
    h.services.intake.add_location(shopper, incident_id, {"lat": 37.8, "lng": -122.5, "accuracy_m": 5})
    h.drain()
    assert h.provider.alarms[alarm_id]["locations"] == [(37.8, -122.5)]
    h.services.intake.cancel(shopper, incident_id, "1234", None)
    h.drain()
    assert h.provider.alarms[alarm_id]["status"] == "cancelled"
    assert h.incident(incident_id).dispatch["status"] == "cancelled"


def test_a_provider_outage_is_retried_then_recorded_and_the_requester_told(h: Harness):
    incident_id = h.open()[0]["incident"]["id"]
    h.provider.failures = [DispatchUnavailable("down")] * 20
    h.services.dispatching.request(h.incident(incident_id), ANN)
    dispatch_id = h.incident(incident_id).dispatch["id"]
    for attempt in (1, 2):
        with pytest.raises(Exception):
            h.services.jobs.handle({"action": "dispatch_place", "incident_id": incident_id,
                                    "dispatch_id": dispatch_id}, attempt)
    h.outbox.jobs.clear()
    h.services.jobs.handle({"action": "dispatch_place", "incident_id": incident_id, "dispatch_id": dispatch_id}, 3)
    h.drain()
    assert h.incident(incident_id).dispatch["status"] == "failed"
    assert "dispatch_failed" in h.events(incident_id)
    assert h.sms.to(h.directory.responder("a").phone)[-1]["body"].startswith("DISPATCH FAILED")


def _webhook(alarm_id: str, status: str, event_id: str = "e1") -> tuple[bytes, str]:
    body = json.dumps({"event_id": event_id, "alarm_id": alarm_id, "status": status, "at": "2026-12-02T12:00:00Z"}).encode()
    return body, sign_webhook(body, WEBHOOK_SECRET, int(time.time()))


def test_provider_webhooks_move_the_dispatch_forward_once_and_bad_signatures_change_nothing(h: Harness):
    from chalicelib.adapters.dispatch import InvalidWebhookSignature

    incident_id = h.open(callback_phone=CALLBACK)[0]["incident"]["id"]
    h.services.dispatching.request(h.incident(incident_id), ANN)
    h.drain()
    alarm_id = h.incident(incident_id).dispatch["provider_id"]
    body, _ = _webhook(alarm_id, "psap_contacted")
    with pytest.raises(InvalidWebhookSignature):
        h.services.dispatching.webhook(body, "t=1,v1=deadbeef")
    assert h.incident(incident_id).dispatch["status"] == "requested"
    for status in ("accepted", "psap_contacted", "accepted", "psap_contacted"):
        h.services.dispatching.webhook(*_webhook(alarm_id, status))
    h.drain()
    incident = h.incident(incident_id)
    assert incident.dispatch["status"] == "psap_contacted" and incident.first_contact_at
    assert [e.details["status"] for e in h.store.timeline(incident_id) if e.type == "dispatch_updated"] == [
        "accepted", "psap_contacted"]
    assert sum("911 has been contacted" in m["body"] for m in h.sms.to(CALLBACK)) == 1


def test_a_missed_check_in_opens_an_incident_at_the_last_location(h: Harness):
    shopper = h.shopper()
    view, status = h.services.checkins.create(shopper, CheckInCreate(due_in_s=300, note="late delivery"), "k1")
    check_in_id = view["check_in"]["id"]
    assert status == 201 and h.workflows.timers[check_in_id]["at"] == view["check_in"]["due_at"]
    h.services.checkins.add_location(shopper, check_in_id, {"lat": 40.0, "lng": -73.9, "accuracy_m": None})
    h.fire_timer(check_in_id)
    check_in = h.checkin_store.get(check_in_id)
    incident = h.incident(check_in.incident_id)
    assert check_in.status == "missed" and incident.kind == "missed_check_in" and incident.severity == "sev2"
    assert incident.check_in_id == check_in_id and incident.status == "triggered"
    assert h.store.personal(incident.incident_id)["location"]["lat"] == 40.0
    assert incident.incident_id in h.workflows.escalations
    # The timer delivered twice opens nothing twice.
    h.services.jobs.handle({"action": "check_in_due", "check_in_id": check_in_id})
    assert len([i for i in h.store.incidents.values() if i.check_in_id == check_in_id]) == 1


def test_a_completed_check_in_opens_nothing(h: Harness):
    shopper = h.shopper()
    check_in_id = h.services.checkins.create(shopper, CheckInCreate(due_in_s=60), None)[0]["check_in"]["id"]
    assert h.services.checkins.complete(shopper, check_in_id)["check_in"]["status"] == "completed"
    h.fire_timer(check_in_id)
    assert h.store.incidents == {} and check_in_id in h.workflows.stopped


def test_a_forgotten_acknowledgement_reminds_then_returns_to_the_team(h: Harness):
    incident_id = h.open()[0]["incident"]["id"]
    h.claim_step(incident_id, 0, incident_id)
    h.services.sender.send_step(incident_id, 0, None)
    h.services.responding.acknowledge(h.incident(incident_id), ANN, "sms")
    h.fire_timer(f"{incident_id}-ack-1")
    h.drain()
    assert h.sms.to(h.directory.responder("a").phone)[-1]["body"].startswith("Reminder:")
    assert "ack_reminded" in h.events(incident_id)
    h.fire_timer(f"{incident_id}-ackexp-1")
    incident = h.incident(incident_id)
    assert incident.status == "triggered" and incident.acknowledged_by is None and incident.ack_expiries == 1
    assert "ack_expired" in h.events(incident_id)
    resume = h.workflows.escalations[f"{incident_id}-resume-1"]
    assert resume["start_step"] == 1  # Ann was tier 1: tier 2 next
    h.claim_step(incident_id, 1, f"{incident_id}-resume-1")
    h.services.sender.send_step(incident_id, 1, None)
    assert h.sms.to(h.directory.responder("b").phone)[-1]["body"].startswith("EMERGENCY")


def test_a_resolved_acknowledgement_is_not_reminded(h: Harness):
    incident_id = h.open()[0]["incident"]["id"]
    h.services.responding.acknowledge(h.incident(incident_id), ANN, "api")
    h.services.responding.resolve(h.incident(incident_id), ANN, "assisted", None, "api")
    h.fire_timer(f"{incident_id}-ack-1")
    h.drain()
    assert "ack_reminded" not in h.events(incident_id)
