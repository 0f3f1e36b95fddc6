"""The SMS inbox: one command, one transaction, one answer; every action confirmed; nothing dropped."""

from __future__ import annotations

import threading
import uuid

import pytest

from chalicelib.schemas import InboundSms
from tests.services.harness import Harness


def sms(phone: str, body: str, message_id: str | None = None, previous: str | None = None) -> InboundSms:
    return InboundSms(originationNumber=phone, messageBody=body, inboundMessageId=message_id or str(uuid.uuid4()),
                      previousPublishedMessageId=previous)


@pytest.fixture()
def h() -> Harness:
    h = Harness()
    h.people = [h.responder(f"r{i}", f"Resp {i}") for i in range(3)]
    h.policy([["r0", "r1"], ["r2"]], [60, 60])
    return h


def _paged(h: Harness, shopper: str = "shopper-1") -> str:
    incident_id = h.open(h.shopper(shopper))[0]["incident"]["id"]
    h.claim_step(incident_id, 0, incident_id)
    h.services.sender.send_step(incident_id, 0, None)
    return incident_id


def test_an_ack_is_recorded_with_its_message_in_one_write_and_confirmed(h: Harness):
    incident_id = _paged(h)
    code = h.incident(incident_id).code
    writes_before = h.store.writes
    assert h.services.inbox.receive(sms(h.people[0]["phone"], f"ack {code}")) == "ack"
    assert h.store.writes == writes_before + 1
    assert h.events(incident_id)[-2:] == ["sms_received", "acknowledged"]
    assert h.sms.to(h.people[0]["phone"])[-1]["body"].startswith("You acknowledged")


def test_six_commands_in_ten_minutes_are_all_confirmed(h: Harness):
    phone = h.people[0]["phone"]
    codes = []
    for shopper in ("s1", "s2", "s3"):
        codes.append(h.incident(_paged(h, shopper)).code)
    for code in codes:
        h.services.inbox.receive(sms(phone, f"ACK {code}"))
        h.services.inbox.receive(sms(phone, f"RES {code} all good"))
    answers = [m["body"] for m in h.sms.to(phone) if not m["body"].startswith("EMERGENCY")]
    assert len(answers) == 6
    assert [a.split()[0] for a in answers] == ["You", "Resolved"] * 3


def test_help_answers_are_capped_but_actions_never(h: Harness):
    phone = h.people[0]["phone"]
    for _ in range(8):
        h.services.inbox.receive(sms(phone, "what is this"))
    assert len(h.sms.to(phone)) == 5  # the cap: 5 automatic answers per 10 minutes
    code = h.incident(_paged(h)).code
    h.services.inbox.receive(sms(phone, f"ACK {code}"))
    assert h.sms.to(phone)[-1]["body"].startswith("You acknowledged")


def test_fifty_concurrent_acks_have_one_winner_and_everyone_gets_a_clean_answer():
    h = Harness()
    people = [h.responder(f"r{i}", f"Resp {i}") for i in range(50)]
    h.policy([[p["id"] for p in people]], [60])
    incident_id = _paged(h)
    code = h.incident(incident_id).code
    barrier = threading.Barrier(50)

    def reply(person):
        barrier.wait()
        h.services.inbox.receive(sms(person["phone"], f"ACK {code}"))

    threads = [threading.Thread(target=reply, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    incident = h.incident(incident_id)
    winner = next(p for p in people if p["id"] == incident.acknowledged_by)
    events = h.events(incident_id)
    assert events.count("acknowledged") == 1 and events.count("sms_received") == 50
    answers = {p["id"]: [m["body"] for m in h.sms.to(p["phone"]) if not m["body"].startswith("EMERGENCY")]
               for p in people}
    assert all(len(a) == 1 for a in answers.values()), answers
    assert answers.pop(winner["id"])[0].startswith("You acknowledged")
    expected = f"{incident.reference} already acknowledged by {incident.acknowledged_by_name}"
    assert all(a[0].startswith(expected) and a[0].count("already acknowledged") == 1 for a in answers.values())


def test_a_redelivered_sms_is_processed_once(h: Harness):
    incident_id = _paged(h)
    message = sms(h.people[0]["phone"], f"ACK {h.incident(incident_id).code}")
    assert h.services.inbox.receive(message) == "ack"
    assert h.services.inbox.receive(message) == "duplicate"
    assert h.events(incident_id).count("sms_received") == 1
    assert len([m for m in h.sms.to(h.people[0]["phone"]) if m["body"].startswith("You")]) == 1


def test_a_responder_outside_the_plan_is_refused_by_sms_not_an_error(h: Harness):
    """A number registered to a responder the incident's plan does not name (say a shopper's callback phone that is
    also a responder's) replies RES <code>: a refusal is answered, nothing changes, nothing raises."""
    outsider = h.responder("outsider")
    incident_id = _paged(h)
    answer = h.services.inbox.receive(sms(outsider["phone"], f"RES {h.incident(incident_id).code}"))
    assert answer in ("no_target", "refused")
    assert h.incident(incident_id).status == "triggered"
    assert h.sms.to(outsider["phone"])  # answered


def test_a_message_over_1600_characters_is_answered(h: Harness):
    h.services.inbox.receive(sms(h.people[0]["phone"], "x" * 5000))
    assert h.sms.to(h.people[0]["phone"])[-1]["body"].startswith("Commands:")


def test_stop_opts_out_and_no_page_reaches_them_afterwards(h: Harness):
    incident_id = _paged(h)
    phone = h.people[2]["phone"]
    h.services.inbox.receive(sms(phone, "STOP"))
    assert h.directory.responder("r2").opted_out
    h.claim_step(incident_id, 1, incident_id)
    h.services.sender.send_step(incident_id, 1, None)
    assert [m["body"] for m in h.sms.to(phone)] == [
        "You are unsubscribed and will get no more alert texts. Reply START to resubscribe."]
    assert ("r2", "opted_out") in {(e.details["responder"], e.details["reason"])
                                   for e in h.store.timeline(incident_id) if e.type == "page_skipped"}
    h.services.inbox.receive(sms(phone, "START"))
    assert not h.directory.responder("r2").opted_out and h.sms.opted_in == [phone]


def test_a_deactivated_responder_cannot_act_and_is_not_paged(h: Harness):
    from chalicelib.schemas import ResponderPut

    incident_id = _paged(h)
    h.services.admin.put_responder("r2", ResponderPut(name="Resp 2", phone=h.people[2]["phone"], active=False))
    h.claim_step(incident_id, 1, incident_id)
    h.services.sender.send_step(incident_id, 1, None)
    assert h.sms.to(h.people[2]["phone"]) == []
    assert h.services.inbox.receive(sms(h.people[2]["phone"], f"ACK {h.incident(incident_id).code}")) == "rejected"
    assert h.incident(incident_id).status == "triggered"
    assert "rejected_command" in h.events(incident_id)


def test_ok_after_a_test_page_verifies_the_phone(h: Harness):
    h.services.admin.send_test_page("r0")
    h.drain()
    assert h.sms.to(h.people[0]["phone"])[-1]["body"].startswith("Test page")
    h.services.inbox.receive(sms(h.people[0]["phone"], "OK"))
    assert h.directory.responder("r0").verified_at is not None
    assert h.sms.to(h.people[0]["phone"])[-1]["body"].startswith("Thank you")


def test_911_by_sms_requests_a_dispatch(h: Harness):
    incident_id = _paged(h)
    h.services.inbox.receive(sms(h.people[0]["phone"], f"911 {h.incident(incident_id).code}"))
    assert h.incident(incident_id).dispatch["status"] == "requested"
    h.drain()
    assert h.incident(incident_id).dispatch["provider_id"] == f"alarm-{h.incident(incident_id).dispatch['id']}"
    assert h.sms.to(h.people[0]["phone"])[-1]["body"].startswith("Emergency dispatch requested")
