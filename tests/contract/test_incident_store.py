"""The incident store's contract (adapters/store.py), held by both implementations."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest

from chalicelib.adapters.store import Claim, ClaimTaken, Conflict, ListQuery, PageConflict, reference_key
from chalicelib.domain import incidents as lifecycle
from chalicelib.domain.errors import AlreadyAcknowledged, DuplicateMessage
from chalicelib.domain.incidents import Actor, Incident, Transition
from chalicelib.domain.paging import Page, PageWrite
from chalicelib.domain.timeline import NewEvent, verify_chain

ANN, BEN = Actor("responder", "a", "Ann"), Actor("responder", "b", "Ben")


def new_incident(store, owner: str = "s1", **extra) -> Incident:
    incident_id = f"inc_{uuid.uuid4().hex[:12]}"
    extra.setdefault("responder_ids", ("a", "b"))
    incident = Incident(incident_id, f"TS-{uuid.uuid4().hex[:6].upper()}", "panic", "sev1", "triggered", owner,
                        store.now(), **extra)
    return store.create(incident, [NewEvent("created", {"kind": "panic"})], {"location": {"lat": 1.0, "lng": 2.0}},
                        [Claim(reference_key(incident.reference), incident_id, store.now())])


def chain(store, incident_id: str):
    events = store.timeline(incident_id)
    current = store.get(incident_id)
    return verify_chain([e.as_dict() for e in events], current.last_seq, current.last_hash,
                        {e.seq: e.private for e in events})


def test_create_then_read_back(store):
    incident = new_incident(store)
    read = store.get(incident.incident_id)
    assert read == incident and read.version == 1 and read.last_seq == 1
    assert store.id_for_reference(incident.reference) == incident.incident_id
    assert store.id_for_code(incident.code) == incident.incident_id
    assert store.personal(incident.incident_id) == {"location": {"lat": 1.0, "lng": 2.0}}
    assert chain(store, incident.incident_id).intact


def test_a_second_create_of_the_same_id_is_a_conflict_and_a_taken_claim_is_named(store):
    incident = new_incident(store)
    with pytest.raises(Conflict):
        store.create(incident, [NewEvent("created")], {}, [])
    other = replace(incident, incident_id=f"inc_{uuid.uuid4().hex[:12]}")
    with pytest.raises(ClaimTaken) as taken:
        store.create(other, [NewEvent("created")], {}, [Claim(reference_key(incident.reference), other.incident_id,
                                                                store.now())])
    assert taken.value.key == reference_key(incident.reference)
    assert store.find(other.incident_id) is None  # all or nothing


def test_a_claim_older_than_its_window_or_from_a_named_incident_may_be_replaced(store, clock):
    first = new_incident(store, owner="s9")
    key = f"open#s9-{uuid.uuid4().hex[:6]}"
    store.record(first.incident_id, lambda i: Transition(i, claims=(Claim(key, i.incident_id, store.now()),)))
    clock.advance(60)
    second = replace(first, incident_id=f"inc_{uuid.uuid4().hex[:12]}", reference="TS-" + uuid.uuid4().hex[:6])
    with pytest.raises(ClaimTaken):
        store.create(second, [NewEvent("created")], {}, [Claim(key, second.incident_id, store.now())])
    store.create(second, [NewEvent("created")], {}, [Claim(key, second.incident_id, store.now(),
                                                           replaces=first.incident_id)])
    assert store.lookup(key).incident_id == second.incident_id


def test_record_writes_a_transition_with_its_events_in_order(store):
    incident = new_incident(store)
    updated, won = store.acknowledge(incident.incident_id, ANN, "api", lease_s=30)
    assert won and updated.status == "acknowledged" and updated.version == 2
    assert [e.type for e in store.timeline(incident.incident_id)] == ["created", "acknowledged"]
    with pytest.raises(AlreadyAcknowledged):
        store.acknowledge(incident.incident_id, BEN, "api", lease_s=30)
    again, won_again = store.acknowledge(incident.incident_id, ANN, "api", lease_s=30)
    assert not won_again and again.version == 2


def test_the_events_of_one_write_share_the_time_its_decision_stamped(store, clock):
    """An event with no time of its own (the SMS that asked) written with one its decision stamped (the
    acknowledgement it made) takes that time, not the later moment of the write: within a write, the timeline's times
    never run backwards (a loaded machine put a millisecond between decision and write, and the review page's time
    axis drew the acknowledgement before the SMS that made it)."""
    incident = new_incident(store)

    def decide(current: Incident) -> Transition:
        transition = lifecycle.acknowledge(current, ANN, "sms", store.now(), 30)
        clock.advance(0.5)  # the write comes after the decision
        return replace(transition, events=(NewEvent("sms_received", {"command": "ack"}),) + transition.events)

    store.record(incident.incident_id, decide)
    received, acknowledged = store.timeline(incident.incident_id)[-2:]
    assert (received.type, acknowledged.type) == ("sms_received", "acknowledged")
    assert received.at == acknowledged.at
    # With no time given at all, the write's own time is used.
    store.append(incident.incident_id, NewEvent("note_added", {"by": "x"}))
    assert store.timeline(incident.incident_id)[-1].at > acknowledged.at
    assert chain(store, incident.incident_id).intact


def test_a_commit_on_a_stale_version_is_a_conflict(store):
    incident = new_incident(store)
    store.append(incident.incident_id, NewEvent("note_added", {"by": "first"}))
    with pytest.raises(Conflict):
        store.commit(incident, lifecycle.append(incident, NewEvent("note_added", {"by": "second"})))


def test_twenty_concurrent_writers_keep_the_timeline_gapless_and_the_chain_linear(store):
    incident = new_incident(store)
    threads = [threading.Thread(target=store.append, args=(incident.incident_id, NewEvent("note_added", {"n": n})))
               for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = store.timeline(incident.incident_id)
    assert [e.seq for e in events] == list(range(1, 22))
    assert chain(store, incident.incident_id).intact
    assert store.get(incident.incident_id).version == 21


def test_concurrent_acknowledgements_have_exactly_one_winner(store):
    incident = new_incident(store, responder_ids=tuple(f"r{i}" for i in range(10)))
    winners = []

    def ack(n: int):
        try:
            if store.acknowledge(incident.incident_id, Actor("responder", f"r{n}", f"R{n}"), "api", lease_s=30)[1]:
                winners.append(n)
        except AlreadyAcknowledged:
            pass

    threads = [threading.Thread(target=ack, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert [e.type for e in store.timeline(incident.incident_id)].count("acknowledged") == 1


def test_an_acknowledgement_waits_for_a_live_paging_lease(store, clock):
    from chalicelib.adapters.store import Deadline
    from chalicelib.domain.errors import Unavailable

    incident = new_incident(store)
    assert store.take_paging_lease(incident.incident_id, lambda i: i.status == "triggered", 30) is not None
    with pytest.raises(Unavailable):
        store.acknowledge(incident.incident_id, ANN, "api", lease_s=30, deadline=Deadline.after(0.2))
    clock.advance(31)  # a lease older than its time is dead: a crashed sender cannot block acknowledgements
    assert store.acknowledge(incident.incident_id, ANN, "api", lease_s=30)[1]
    assert store.take_paging_lease(incident.incident_id, lambda i: i.status == "triggered", 30) is None


def test_a_claim_in_a_transition_makes_a_message_count_once(store):
    incident = new_incident(store)
    key = f"sms#{uuid.uuid4()}"
    store.record(incident.incident_id, lambda i: Transition(i, (NewEvent("sms_received"),), claims=(key,)))
    with pytest.raises(DuplicateMessage):
        store.record(incident.incident_id, lambda i: Transition(i, (NewEvent("sms_received"),), claims=(key,)))
    assert [e.type for e in store.timeline(incident.incident_id)].count("sms_received") == 1


def test_private_parts_are_stored_apart_and_merged_back(store):
    incident = new_incident(store)
    store.append(incident.incident_id, NewEvent("note_added", {}, "shopper:s1", private={"text": "near the gate"}))
    note = store.timeline(incident.incident_id)[-1]
    assert "private_digest" in note.details and "near the gate" not in str(note.details)
    assert note.private == {"text": "near the gate"}


def test_page_records_are_claimed_once_and_found_by_message_phone_and_code(store, clock):
    incident = new_incident(store)
    page = Page(incident.incident_id, "page#0#0000#a", "a", "+15550001111", incident.code, "page", 1, 0, "sending",
                store.now())
    store.put_page(PageWrite(page, "claim", store.now()))
    with pytest.raises(PageConflict):
        store.put_page(PageWrite(page, "claim", store.now()))
    message_id = f"m-{uuid.uuid4()}"
    store.record(incident.incident_id, lambda i: Transition(i, pages=(PageWrite(page.sent(message_id, store.now())),)))
    assert store.page_by_message_id(message_id).incident_id == incident.incident_id
    since = "2000-01-01T00:00:00.000Z"
    assert [p.incident_id for p in store.pages_to_phone("+15550001111", since, code=incident.code)] == [incident.incident_id]
    assert store.pages_to_phone("+15550001111", since, code="ZZZZ") == []
    assert [p.page_key for p in store.pages_for(incident.incident_id)] == ["page#0#0000#a"]
    delivered = replace(store.page(incident.incident_id, page.page_key), delivery="delivered")
    store.put_page(PageWrite(delivered, "undelivered"))
    with pytest.raises(PageConflict):
        store.put_page(PageWrite(delivered, "undelivered"))


def test_listing_is_newest_first_pages_with_a_cursor_and_filters(store, clock):
    owner = f"lister-{uuid.uuid4().hex[:6]}"
    opened = []
    for _ in range(7):
        opened.append(new_incident(store, owner=owner).incident_id)
        clock.advance(1)
    store.acknowledge(opened[2], ANN, "api", lease_s=30)
    query = ListQuery(since="2026-01-01T00:00:00.000Z", until="2027-01-01T00:00:00.000Z", owner=owner, page_size=3)
    listed = [i.incident_id for i in store.list_incidents(query)]
    assert listed == list(reversed(opened))
    newest = store.get(opened[4])
    after = [i.incident_id for i in store.list_incidents(replace(query, after=(newest.created_at, newest.incident_id)))]
    assert after == list(reversed(opened[:4]))
    assert [i.incident_id for i in store.list_incidents(replace(query, status="acknowledged"))] == [opened[2]]
    reviewer = replace(query, owner=None)
    assert set(opened) <= {i.incident_id for i in store.list_incidents(reviewer)}
