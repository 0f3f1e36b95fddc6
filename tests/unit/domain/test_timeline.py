"""Unit tests for chalicelib.domain.timeline: event types, the hash chain and its verification."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.timeline import (
    GENESIS_HASH,
    EventType,
    NewEvent,
    Verification,
    canonical,
    event_hash,
    private_digest,
    verify_chain,
)

# (type, details, private) as a decision asks them recorded.
STORY = [
    ("created", {"kind": "panic"}, {"location": {"lat": 37.77, "lng": -122.41}}),
    ("paged", {"tier": 1, "message_id": "m1"}, {"to": "+15550000001"}),
    ("acknowledged", {"via": "sms", "tier": 1}, None),
    ("note_added", {}, {"text": "on my way"}),
    ("resolved", {"outcome": "assisted"}, None),
]


def _chain(events: list[tuple[str, dict, dict | None]]) -> tuple[list[dict], dict[int, dict | None]]:
    """Stored events and private rows, as the store writes them (the private part's digest in the details)."""
    stored, private, prev = [], {}, GENESIS_HASH
    for seq, (event_type, details, secret) in enumerate(events, start=1):
        details = dict(details)
        if secret:
            details["private_digest"] = private_digest(secret)
            private[seq] = secret
        at = f"2026-11-25T15:00:{seq:02d}.000Z"
        actor = None if seq % 2 else f"responder:r{seq}"
        digest = event_hash(prev, seq, at, event_type, actor, details)
        stored.append({"seq": seq, "at": at, "type": event_type, "actor": actor, "details": details,
                       "prev_hash": prev, "hash": digest})
        prev = digest
    return stored, private


def _verify(events: list[dict], head: list[dict], private: dict[int, dict | None] | None = None) -> Verification:
    """Verifies `events` against the head the incident item recorded for the untampered chain `head`."""
    return verify_chain(events, len(head), head[-1]["hash"] if head else None, private)


# --- types and hashing -------------------------------------------------------------------------------------------


def test_event_types_include_every_type_the_contract_names() -> None:
    contract = {"created", "location_updated", "paged", "escalated", "sms_received", "acknowledged", "resolved",
                "cancelled", "note_added", "escalation_exhausted", "rejected_command", "page_skipped",
                "pressed_again", "duress_signalled", "ack_expired", "page_delivered", "page_failed",
                "page_failover", "dispatch_requested", "dispatch_updated", "dispatch_failed"}
    assert contract <= {t.value for t in EventType}


def test_new_event_defaults_to_no_details_actor_time_or_private_part() -> None:
    event = NewEvent(EventType.CREATED)
    assert (event.details, event.actor, event.at, event.private) == ({}, None, None, None)


def test_canonical_json_is_independent_of_key_order() -> None:
    assert canonical({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical({"a": [1, {"c": 3, "d": 2}], "b": 1})
    assert canonical({"a": 1}) == '{"a":1}'


def test_event_hash_depends_on_the_previous_hash() -> None:
    args = (1, "2026-11-25T15:00:01.000Z", "created", None, {"kind": "panic"})
    assert event_hash(GENESIS_HASH, *args) != event_hash("f" * 64, *args)
    assert re.fullmatch(r"[0-9a-f]{64}", event_hash(GENESIS_HASH, *args))


# --- verify_chain ------------------------------------------------------------------------------------------------


def test_an_untouched_chain_with_its_private_rows_is_intact() -> None:
    events, private = _chain(STORY)
    assert _verify(events, events, private) == Verification(True, None, 5, ())


def test_an_empty_timeline_is_intact_without_a_head_and_truncated_with_one() -> None:
    assert verify_chain([]) == Verification(True, None, 0, ())
    assert verify_chain([], 0, None) == Verification(True, None, 0, ())
    assert verify_chain([], 2, "a" * 64) == Verification(False, 1, 0, ("events 1 to 2 were removed",))


def test_an_edited_event_is_detected_at_its_seq() -> None:
    events, private = _chain(STORY)
    events[1] = {**events[1], "details": {**events[1]["details"], "tier": 2}}
    assert _verify(events, events, private) == Verification(False, 2, 5, ("event 2 was altered",))


def test_a_removed_middle_event_is_detected_as_missing() -> None:
    events, private = _chain(STORY)
    result = _verify(events[:2] + events[3:], events, private)
    assert (result.intact, result.first_bad_seq, result.problems) == (False, 3, ("event 3 is missing (found 4)",))


def test_reordered_events_are_detected() -> None:
    events, private = _chain(STORY)
    result = _verify([events[1], events[0], *events[2:]], events, private)
    assert (result.intact, result.first_bad_seq) == (False, 1)


def test_an_event_rehashed_onto_another_chain_does_not_follow_its_predecessor() -> None:
    events, private = _chain(STORY)
    forged = dict(events[2], prev_hash="f" * 64)
    forged["hash"] = event_hash(forged["prev_hash"], 3, forged["at"], forged["type"], forged["actor"],
                                forged["details"])
    result = _verify([*events[:2], forged, *events[3:]], events, private)
    assert (result.first_bad_seq, result.problems) == (3, ("event 3 does not follow event 2",))


def test_truncation_of_the_last_event_is_detected_against_the_head_and_names_the_missing_seq() -> None:
    events, private = _chain(STORY)
    result = _verify(events[:-1], events, private)
    assert (result.intact, result.first_bad_seq, result.events) == (False, 5, 4)
    [problem] = result.problems
    assert re.search(r"\b5\b", problem) and "removed" in problem


def test_truncation_of_several_events_names_the_range_removed() -> None:
    events, private = _chain(STORY)
    result = _verify(events[:2], events, private)
    assert (result.first_bad_seq, result.problems) == (3, ("events 3 to 5 were removed",))


def test_truncation_goes_unnoticed_without_the_head_so_the_head_is_required() -> None:
    events, private = _chain(STORY)
    assert verify_chain(events[:-1], private=private).intact


def test_a_recorded_head_not_in_its_place_is_detected_and_later_events_may_follow_it() -> None:
    events, private = _chain(STORY)
    # Events after the head are those written since the head was read: the head, in its place, is what is checked
    # (services/review.py checks them against a head read afterwards).
    assert verify_chain(events, 4, events[3]["hash"], private).intact
    moved = verify_chain(events, 4, events[4]["hash"], private)
    assert (moved.intact, moved.first_bad_seq) == (False, 4)
    other_head = verify_chain(events, 5, "e" * 64, private)
    assert (other_head.intact, other_head.first_bad_seq) == (False, 5)
    assert other_head.problems == ("the newest events do not match the incident's record of them",)


def test_a_rewritten_private_row_is_detected_by_its_digest() -> None:
    events, private = _chain(STORY)
    private[4] = {"text": "nothing to see"}
    assert _verify(events, events, private) == Verification(False, 4, 5, ("the private part of event 4 was altered",))


def test_an_expired_private_row_still_verifies() -> None:
    events, private = _chain(STORY)
    expired = {seq: None for seq in private}
    assert _verify(events, events, expired).intact
    assert _verify(events, events, None).intact


def test_verification_to_dict_is_plain_json() -> None:
    assert Verification(False, 3, 5, ("x",)).to_dict() == {"intact": False, "first_bad_seq": 3, "events": 5,
                                                           "problems": ["x"]}


# --- any single change breaks the chain --------------------------------------------------------------------------

_types = st.sampled_from([t.value for t in EventType])
_values = st.one_of(st.integers(-5, 5), st.text(max_size=5), st.booleans(), st.none())
_stories = st.lists(
    st.tuples(_types, st.dictionaries(st.text(max_size=5), _values, max_size=3),
              st.one_of(st.none(), st.dictionaries(st.text(min_size=1, max_size=5), _values, min_size=1, max_size=2))),
    min_size=1, max_size=8)
_changes = ["seq", "at", "type", "actor", "details", "prev_hash", "hash", "removed", "private"]


def _tamper(event: dict, change: str, data: st.DataObject) -> dict:
    if change == "seq":
        return {**event, "seq": event["seq"] + data.draw(st.sampled_from([-1, 1, 7]))}
    if change == "at":
        return {**event, "at": "1999-01-01T00:00:00.000Z"}
    if change == "type":
        return {**event, "type": data.draw(_types.filter(lambda t: t != event["type"]))}
    if change == "actor":
        return {**event, "actor": data.draw(st.one_of(st.none(), st.text(max_size=5)).filter(
            lambda a: a != event["actor"]))}
    if change == "details":
        return {**event, "details": {**event["details"], "tampered": data.draw(_values)}}
    if change in ("prev_hash", "hash"):
        return {**event, change: data.draw(st.text("0123456789abcdef", min_size=64, max_size=64).filter(
            lambda h: h != event[change]))}
    raise AssertionError(change)


@settings(max_examples=200, deadline=None)
@given(_stories, st.sampled_from(_changes), st.data())
def test_any_single_change_breaks_the_chain(story: list, change: str, data: st.DataObject) -> None:
    events, private = _chain(story)
    assert _verify(events, events, private).intact
    if change == "private":
        if not private:
            return
        seq = data.draw(st.sampled_from(sorted(private)))
        rewritten = {**private, seq: {**private[seq], "tampered": True}}
        result = _verify(events, events, rewritten)
    else:
        index = data.draw(st.integers(0, len(events) - 1))
        seq = index + 1
        tampered = [dict(e) for e in events]
        if change == "removed":
            del tampered[index]
        else:
            tampered[index] = _tamper(tampered[index], change, data)
        result = _verify(tampered, events, private)
    assert not result.intact
    assert result.first_bad_seq == seq
    assert result.problems


def test_truncation_is_reported_even_when_a_private_row_was_also_rewritten() -> None:
    events, private = _chain(STORY)
    private[2] = {"to": "+15559999999"}
    result = _verify(events[:-2], events, private)
    assert (result.intact, result.first_bad_seq) == (False, 2)
    assert result.problems == ("the private part of event 2 was altered", "events 4 to 5 were removed")
