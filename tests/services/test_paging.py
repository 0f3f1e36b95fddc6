"""Who is paged, when, and what is recorded: decided at send time (contract 4.1), tier after tier."""

from __future__ import annotations

from tests.services.harness import Harness


def _bodies(h: Harness, phone: str) -> list[str]:
    return [m["body"] for m in h.sms.to(phone)]


def test_tiers_are_paged_in_order_and_each_once(h: Harness):
    a, b = h.responder("a"), h.responder("b")
    h.policy([["a"], ["b"]], [60, 60])
    view, status = h.open()
    incident_id = view["incident"]["id"]
    assert status == 201 and incident_id in h.workflows.escalations
    assert h.run_escalation(incident_id) == [0, 1]
    assert [m["to"] for m in h.sms.sent if m["body"].startswith("EMERGENCY")] == [a["phone"], b["phone"]]
    assert h.events(incident_id).count("paged") == 4  # two tier pages, two EXHAUSTED pages
    assert h.incident(incident_id).escalation_exhausted


def test_deactivated_deleted_and_opted_out_responders_are_skipped_at_send_time(h: Harness):
    for responder_id in "abcd":
        h.responder(responder_id)
    h.policy([["a"], ["b", "c", "d"]], [60, 60])
    incident_id = h.open()[0]["incident"]["id"]
    # After the press: b deactivated, c deleted, d opted out (STOP).
    h.services.admin.put_responder("b", __import__("chalicelib.schemas", fromlist=["ResponderPut"]).ResponderPut(
        name="b", phone=h.directory.responder("b").phone, active=False))
    h.services.admin.delete_responder("c")
    h.services.admin.set_opted_out("d", True)
    h.run_escalation(incident_id)
    skipped = [e.details for e in h.store.timeline(incident_id) if e.type == "page_skipped"]
    assert {(s["responder"], s["reason"]) for s in skipped if s.get("purpose") != "exhausted"} == {
        ("b", "inactive"), ("c", "deleted"), ("d", "opted_out")}
    paged_to = {e.details["responder"] for e in h.store.timeline(incident_id) if e.type == "paged"}
    assert paged_to == {"a"}  # tier page and EXHAUSTED page: nobody else, ever
    assert {m["to"] for m in h.sms.sent} == {h.directory.responder("a").phone}


def test_a_tier_with_nobody_pageable_is_not_waited_out(h: Harness):
    h.responder("a")
    h.responder("b")
    h.policy([["a"], ["b"]], [600, 60])
    incident_id = h.open()[0]["incident"]["id"]
    h.services.admin.set_opted_out("a", True)
    before = h.clock()
    h.claim_step(incident_id, 0, "x")
    assert h.services.sender.send_step(incident_id, 0, "tok") == 0
    assert h.workflows.completed[-1] == ("tok", {"paged": 0, "status": "triggered"})
    assert h.clock() == before



def test_an_acknowledgement_between_two_sms_of_a_tier_stops_the_rest(h: Harness):
    """The paging lease is taken per SMS: an ACK committed after the first page of a tier was recorded leaves the
    second unsent, and nothing is recorded after the acknowledgement."""
    from chalicelib.domain.incidents import Actor

    h.responder("a", "Ann")
    h.responder("b", "Ben")
    h.policy([["a", "b"]], [60])
    incident_id = h.open()[0]["incident"]["id"]
    h.claim_step(incident_id, 0, incident_id)
    take_lease = h.store.take_paging_lease
    leases = []

    def ann_answers_before_the_second_lease(*args, **kwargs):
        leases.append(args)
        if len(leases) == 2:
            h.services.responding.acknowledge(h.incident(incident_id), Actor("responder", "a", "Ann"), "sms")
        return take_lease(*args, **kwargs)

    h.store.take_paging_lease = ann_answers_before_the_second_lease
    h.services.sender.send_step(incident_id, 0, "tok")
    assert [m["to"] for m in h.sms.sent] == [h.directory.responder("a").phone]
    types = h.events(incident_id)
    assert types.index("acknowledged") > types.index("paged") and types.count("paged") == 1
    assert h.workflows.completed[-1] == ("tok", {"paged": 1, "status": "acknowledged"})
