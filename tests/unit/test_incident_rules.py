"""Incident lifecycle rules, escalation snapshots and the timeline hash chain: pure, no AWS."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.escalation import (
    EscalationSnapshot,
    Policy,
    PolicyTier,
    ResponderContact,
    build_snapshot,
    step_plan,
    tier_for_step,
)
from chalicelib.domain.incidents import (
    KIND_RULES,
    check_can_acknowledge,
    check_can_cancel,
    check_can_resolve,
    hash_pin,
    initial_status,
    looks_like_reference,
    new_reference,
    pin_matches,
)
from chalicelib.domain.schedules import Override, Rotation, Schedule
from chalicelib.domain.sms_commands import CODE_ALPHABET
from chalicelib.domain.timeline import GENESIS_HASH, event_hash, verify_chain

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)


def test_references_use_the_unambiguous_alphabet():
    for _ in range(200):
        reference = new_reference()
        assert reference.startswith("TS-") and len(reference) == 9
        assert all(c in CODE_ALPHABET for c in reference[3:])
        assert looks_like_reference(reference) and looks_like_reference(reference.lower())
    assert not looks_like_reference("TS-0OIL12")
    assert not looks_like_reference("inc_abc")


def test_only_delivery_issues_are_routed_instead_of_paged():
    assert [k for k, rule in KIND_RULES.items() if not rule.paged] == ["delivery_issue"]
    assert initial_status("delivery_issue") == "routed" and initial_status("panic") == "triggered"
    assert {k for k, r in KIND_RULES.items() if r.location_required} == {"panic", "medical", "threat", "accident"}


@pytest.mark.parametrize(
    "status, ack, resolve, cancel",
    [("triggered", True, True, True), ("acknowledged", False, True, True), ("resolved", False, False, False),
     ("cancelled", False, False, False), ("routed", False, False, True)],
)
def test_transitions(status, ack, resolve, cancel):
    for check, allowed in ((check_can_acknowledge, ack), (check_can_resolve, resolve), (check_can_cancel, cancel)):
        if allowed:
            check(status)
        else:
            with pytest.raises(InvalidTransition):
                check(status)


def test_pins_are_salted_and_compared_safely():
    assert hash_pin("1234", "inc_a") != hash_pin("1234", "inc_b")
    assert pin_matches("1234", "inc_a", hash_pin("1234", "inc_a"))
    assert not pin_matches("1235", "inc_a", hash_pin("1234", "inc_a"))


CONTACTS = {
    "a": ResponderContact("a", "Ann", "+15550000001"),
    "b": ResponderContact("b", "Ben", "+15550000002"),
    "c": ResponderContact("c", "Cy", "+15550000003", active=False),
    "d": ResponderContact("d", "Di", "+15550000004", opted_out=True),
}


def test_snapshot_resolves_schedules_and_skips_unpageable_responders():
    schedule = Schedule("s", "UTC", Rotation(("b",), 24, datetime(2026, 1, 1, 9)),
                        (Override("a", datetime(2026, 11, 25, tzinfo=timezone.utc), datetime(2026, 11, 26, tzinfo=timezone.utc)),))
    policy = Policy("p", (
        PolicyTier(30, ({"schedule": "s"}, {"responder": "a"})),
        PolicyTier(60, ({"responder": "b"}, {"responder": "c"}, {"responder": "d"}, {"schedule": "missing"})),
    ), repeat=1)
    snapshot = build_snapshot(policy, CONTACTS, {"s": schedule}, NOW)
    assert [t.responder_id for t in snapshot.tiers[0].targets] == ["a"]  # override wins, and a is listed once
    assert [t.responder_id for t in snapshot.tiers[1].targets] == ["b"]
    assert snapshot.tiers[1].unresolved == ("responder:c", "responder:d", "schedule:missing")
    assert EscalationSnapshot.from_dict(snapshot.to_dict()) == snapshot
    assert [t.responder_id for t in snapshot.all_targets()] == ["a", "b"]


def test_step_plan_unrolls_repeats():
    policy = Policy("p", (PolicyTier(30, ({"responder": "a"},)), PolicyTier(60, ({"responder": "b"},))), repeat=2)
    snapshot = build_snapshot(policy, CONTACTS, {}, NOW)
    assert step_plan(snapshot) == ([30, 60, 30, 60, 30, 60], [1, 2, 1, 2, 1, 2])
    assert [tier_for_step(snapshot, s) for s in range(6)] == [1, 2, 1, 2, 1, 2]


def _chain(events: list[tuple[str, dict]]) -> list[dict]:
    chained, prev = [], GENESIS_HASH
    for seq, (event_type, details) in enumerate(events, start=1):
        at = f"2026-11-25T15:00:{seq:02d}.000Z"
        digest = event_hash(prev, seq, at, event_type, None, details)
        chained.append({"seq": seq, "at": at, "type": event_type, "actor": None, "details": details,
                        "prev_hash": prev, "hash": digest})
        prev = digest
    return chained


def test_hash_chain_detects_edits_removals_and_reordering():
    events = _chain([("created", {"kind": "panic"}), ("paged", {"tier": 1}), ("acknowledged", {})])
    assert verify_chain(events) == (True, None)
    edited = [dict(e) for e in events]
    edited[1]["details"] = {"tier": 2}
    assert verify_chain(edited) == (False, 2)
    assert verify_chain([events[0], events[2]])[0] is False
    assert verify_chain([events[1], events[0], events[2]])[0] is False


@given(st.lists(st.tuples(st.sampled_from(["created", "paged", "note_added"]),
                          st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)), min_size=1, max_size=8),
       st.data())
def test_any_single_change_breaks_the_chain(events, data):
    chained = _chain(events)
    assert verify_chain(chained)[0]
    index = data.draw(st.integers(0, len(chained) - 1))
    tampered = [dict(e) for e in chained]
    tampered[index]["at"] = "1999-01-01T00:00:00.000Z"
    assert verify_chain(tampered) == (False, index + 1)
