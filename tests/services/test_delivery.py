"""Pages that reach people (contract 4.3): carriers' receipts, failover to voice and email, verified contacts."""

from __future__ import annotations

import pytest

from chalicelib.adapters.sms import SmsNotSent
from chalicelib.domain.clock import iso
from chalicelib.domain.errors import ValidationFailed
from chalicelib.schemas import PolicyPut
from tests.services.harness import Harness


@pytest.fixture()
def h() -> Harness:
    h = Harness()
    h.responder("a", "Ann", voice=True, email="ann@example.com")
    h.responder("b", "Ben")
    h.policy([["a", "b"]], [60], delivery_timeout_s=30)
    return h


def _paged(h: Harness) -> str:
    incident_id = h.open()[0]["incident"]["id"]
    h.claim_step(incident_id, 0, incident_id)
    h.services.sender.send_step(incident_id, 0, None)
    return incident_id


def _message_id(h: Harness, phone: str) -> str:
    return h.sms.to(phone)[-1]["message_id"]


def test_a_delivered_receipt_is_recorded_once_and_counted_for_its_tier(h: Harness):
    incident_id = _paged(h)
    message_id = _message_id(h, h.directory.responder("b").phone)
    h.clock.advance(4)
    assert h.services.deliveries.receipt(message_id, "delivered") is True
    assert h.services.deliveries.receipt(message_id, "delivered") is False
    assert h.services.deliveries.receipt(message_id, "failed") is False  # the first final status stands
    events = [e for e in h.store.timeline(incident_id) if e.type == "page_delivered"]
    assert len(events) == 1 and events[0].details["tier"] == 1 and events[0].private == {"to": h.directory.responder("b").phone}
    stats = h.incident(incident_id).deliveries["1"]
    assert (stats["sent"], stats["delivered"], stats["failed"], stats["delivery_s"]) == (2, 1, 0, [4.0])


def test_a_receipt_for_an_unknown_message_changes_nothing(h: Harness):
    incident_id = _paged(h)
    before = h.events(incident_id)
    assert h.services.deliveries.receipt("no-such-message", "delivered") is False
    assert h.events(incident_id) == before


def test_a_failed_page_fails_over_to_a_call_and_an_email(h: Harness):
    incident_id = _paged(h)
    ann = h.directory.responder("a")
    h.services.deliveries.receipt(_message_id(h, ann.phone), "failed")
    assert [c["to"] for c in h.voice.calls] == [ann.phone] and h.voice.calls[0]["text"].startswith("EMERGENCY")
    assert [m["to"] for m in h.mailer.sent] == ["ann@example.com"]
    failovers = [e.details["channel"] for e in h.store.timeline(incident_id) if e.type == "page_failover"]
    assert failovers == ["voice", "email"]


def test_a_page_not_delivered_in_time_fails_over_once(h: Harness):
    incident_id = _paged(h)
    checks = [job for job, delay in h.outbox.jobs if job["action"] == "delivery_check"]
    assert len(checks) == 1 and [delay for job, delay in h.outbox.jobs] == [30]  # only Ann has other channels
    h.drain()
    h.services.jobs.handle(checks[0])  # a redelivered check: nothing more
    assert len(h.voice.calls) == 1 and len(h.mailer.sent) == 1
    assert [e.type for e in h.store.timeline(incident_id)].count("page_failover") == 2


def test_a_delivered_page_does_not_fail_over(h: Harness):
    _paged(h)
    h.services.deliveries.receipt(_message_id(h, h.directory.responder("a").phone), "delivered")
    h.drain()
    assert h.voice.calls == [] and h.mailer.sent == []


def test_a_publish_refused_by_sns_fails_over_at_once(h: Harness):
    h.sms.fail_next = [SmsNotSent("InvalidParameter")]
    incident_id = h.open()[0]["incident"]["id"]
    h.claim_step(incident_id, 0, incident_id)
    with pytest.raises(Exception):
        h.services.sender.send_step(incident_id, 0, None)
    assert len(h.voice.calls) == 1 and "page_failed" in h.events(incident_id)


def test_a_policy_may_require_verified_responders(h: Harness):
    body = PolicyPut(tiers=[{"targets": [{"responder": "a"}], "timeout_s": 60}], require_verified=True)
    with pytest.raises(ValidationFailed) as refused:
        h.services.admin.put_policy("strict", body)
    assert "responder a" in refused.value.details[0]["problem"]
    h.services.admin.mark_verified("a")
    assert h.services.admin.put_policy("strict", body)[1] is True
    assert [r["id"] for r in h.services.admin.list_responders(verified=False)] == ["b"]


def test_a_receipt_for_an_sms_that_is_no_page_is_given_up_at_once_unless_just_published(h: Harness, monkeypatch):
    """Most receipts are for confirmations and replies, seconds after their publish: one lookup each, no waiting
    (waiting on each held a batch of log lines 1.5 s per line). Only a receipt for an SMS published under
    RECORD_GRACE_S ago is looked up again, for as long as the sender may still be recording its message id."""
    from chalicelib.services import delivery

    lookups = []
    original = h.store.page_by_message_id
    monkeypatch.setattr(h.store, "page_by_message_id", lambda mid: lookups.append(mid) or original(mid))
    slept = []
    monkeypatch.setattr(delivery.time, "sleep", lambda s: slept.append(s) or h.clock.advance(s))
    published = iso(h.clock())
    h.clock.advance(5)

    assert h.services.deliveries.receipt("a-confirmation", "delivered", iso(h.clock()), published) is False
    assert lookups == ["a-confirmation"] and slept == []

    lookups.clear()
    assert h.services.deliveries.receipt("just-sent", "delivered", iso(h.clock()), iso(h.clock())) is False
    assert len(lookups) > 1 and sum(slept) == pytest.approx(delivery.RECORD_GRACE_S, abs=0.31)
