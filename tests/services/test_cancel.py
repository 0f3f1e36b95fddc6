"""Cancelling: the PIN lockout holds under any concurrency, and a duress PIN is indistinguishable to whoever holds
the phone while responders see it unmistakably."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from chalicelib.domain.errors import Forbidden, InvalidTransition, RateLimited
from tests.services.harness import Harness


@pytest.fixture()
def h() -> Harness:
    h = Harness()
    h.responder("a", "Ann")
    h.responder("b", "Ben")
    h.policy([["a"], ["b"]], [60, 60])
    return h


def _status(call) -> int:
    try:
        call()
        return 200
    except Forbidden:
        return 403
    except RateLimited:
        return 429


def test_thirty_one_concurrent_cancels_make_at_most_five_pin_checks(h: Harness):
    shopper = h.shopper()
    incident_id = h.open(shopper, cancel_pin="4321")[0]["incident"]["id"]
    barrier = threading.Barrier(31)
    results: list[int] = []

    def attempt(pin: str) -> None:
        barrier.wait()
        results.append(_status(lambda: h.services.intake.cancel(shopper, incident_id, pin, None)))

    threads = [threading.Thread(target=attempt, args=("0000",)) for _ in range(30)]
    threads.append(threading.Thread(target=attempt, args=("4321",)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = Counter(results)
    incident = h.incident(incident_id)
    assert incident.pin_checks <= 5
    assert counted[403] + counted[200] == incident.pin_checks
    assert counted[429] == 31 - incident.pin_checks
    assert (incident.status == "cancelled") == (counted[200] == 1)
    assert h.events(incident_id).count("cancel_rejected") == counted[403]


def test_after_five_wrong_pins_even_the_right_one_is_429(h: Harness):
    shopper = h.shopper()
    incident_id = h.open(shopper, cancel_pin="4321")[0]["incident"]["id"]
    assert [_status(lambda: h.services.intake.cancel(shopper, incident_id, "1111", None)) for _ in range(5)] == [403] * 5
    assert _status(lambda: h.services.intake.cancel(shopper, incident_id, "4321", None)) == 429
    assert h.incident(incident_id).status == "triggered"


def _without_ids(view: dict) -> dict:
    masked = dict(view)
    for name in ("id", "reference", "code", "created_at", "cancelled_at"):
        masked.pop(name, None)
    masked["location"] = {k: v for k, v in masked.get("location", {}).items() if k != "at"}
    return masked


def test_a_duress_cancel_looks_to_the_shopper_exactly_like_a_real_one(h: Harness):
    real_shopper, duress_shopper = h.shopper("s-real"), h.shopper("s-duress")
    real = h.open(real_shopper, cancel_pin="1234", duress_pin="9999")[0]["incident"]["id"]
    coerced = h.open(duress_shopper, cancel_pin="1234", duress_pin="9999")[0]["incident"]["id"]
    real_answer = h.services.intake.cancel(real_shopper, real, "1234", None)
    duress_answer = h.services.intake.cancel(duress_shopper, coerced, "9999", None)
    assert _without_ids(duress_answer["incident"]) == _without_ids(real_answer["incident"])
    # Later reads by her, even after responders act, still show the cancelled incident.
    h.run_escalation(coerced)
    h.services.responding.acknowledge(h.incident(coerced), __import__(
        "chalicelib.domain.incidents", fromlist=["Actor"]).Actor("responder", "a", "Ann"), "api")
    later = h.services.intake.get(duress_shopper, coerced)["incident"]
    assert _without_ids(later) == _without_ids(h.services.intake.get(real_shopper, real)["incident"])
    assert "duress" not in later and later["status"] == "cancelled"


def test_a_duress_cancel_keeps_the_incident_open_for_responders_and_pages_on(h: Harness):
    shopper = h.shopper()
    incident_id = h.open(shopper, cancel_pin="1234", duress_pin="9999", callback_phone="+15559990000")[0]["incident"]["id"]
    h.claim_step(incident_id, 0, incident_id)
    h.services.sender.send_step(incident_id, 0, None)
    h.services.intake.cancel(shopper, incident_id, "9999", None)
    incident = h.incident(incident_id)
    assert incident.status == "triggered" and incident.duress and incident.severity == "sev1"
    assert "duress_signalled" in h.events(incident_id) and "cancelled" not in h.events(incident_id)
    h.drain()
    ann = h.sms.to(h.directory.responder("a").phone)
    assert ann[-1]["body"].startswith("DURESS") and not any("cancelled by the reporter" in m["body"] for m in ann)
    # Escalation goes on, and tier 2's page says DURESS.
    h.claim_step(incident_id, 1, incident_id)
    h.services.sender.send_step(incident_id, 1, None)
    assert h.sms.to(h.directory.responder("b").phone)[-1]["body"].startswith("DURESS EMERGENCY")
    # Nothing ever reaches her phone about it.
    assert h.sms.to("+15559990000") == []


def test_a_duress_cancel_of_a_resolved_incident_answers_like_the_real_pin_and_reopens_it(h: Harness):
    from chalicelib.domain.incidents import Actor

    shopper = h.shopper()
    incident_id = h.open(shopper, cancel_pin="1234", duress_pin="9999")[0]["incident"]["id"]
    h.services.responding.resolve(h.incident(incident_id), Actor("responder", "a", "Ann"), "assisted", None, "api")
    with pytest.raises(InvalidTransition) as real:
        h.services.intake.cancel(shopper, incident_id, "1234", None)
    with pytest.raises(InvalidTransition) as duress:
        h.services.intake.cancel(shopper, incident_id, "9999", None)
    assert str(real.value) == str(duress.value)
    incident = h.incident(incident_id)
    assert incident.status == "triggered" and incident.duress and incident.generation == 1
    assert f"{incident_id}-gen-1" in h.workflows.escalations
