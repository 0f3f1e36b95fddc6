"""Reviewer listing on the in-memory twin: what one request may read, whatever the filter."""

from __future__ import annotations

from chalicelib.services import review
from chalicelib.services.access import Principal
from tests.services.harness import Harness

REVIEWER = Principal("reviewer", "rev-1")


def test_a_rare_kind_is_paged_by_cursor_and_no_request_reads_more_than_its_budget(monkeypatch):
    h = Harness()
    h.responder("a")
    h.policy([["a"]], [60])
    rare = h.open(h.shopper("rare"), kind="privacy")[0]["incident"]["id"]  # the oldest: found last
    for n in range(2 * review.SCAN_FLOOR + 10):
        h.clock.advance(1)
        h.open(h.shopper(f"s{n}"), kind="fraud")
    reads = []
    stream = h.store.list_incidents

    def counted(query):
        reads.append(0)
        for incident in stream(query):
            reads[-1] += 1
            yield incident

    monkeypatch.setattr(h.store, "list_incidents", counted)
    h.clock.advance(1)

    found, cursor, requests = [], None, 0
    while True:
        query = h.services.review.query(REVIEWER, None, "privacy", None, None, cursor)
        page = h.services.review.list(REVIEWER, query, limit=5)
        requests += 1
        found += [i["id"] for i in page["incidents"]]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert found == [rare]
    assert requests == 3 and max(reads) <= review.SCAN_FLOOR  # 411 incidents read in three bounded requests
    # Unfiltered, a page is exactly its limit and reads one more than it returns.
    reads.clear()
    page = h.services.review.list(REVIEWER, h.services.review.query(REVIEWER, None, None, None, None, None), limit=5)
    assert len(page["incidents"]) == 5 and page["next_cursor"] and reads == [6]


def test_an_event_appended_behind_the_incidents_back_is_reported_and_one_written_since_is_not():
    from chalicelib.adapters.store import StoredEvent
    from chalicelib.domain.timeline import NewEvent, event_hash

    h = Harness()
    h.responder("a")
    h.policy([["a"]], [60])
    incident_id = h.open()[0]["incident"]["id"]
    head = h.store.get(incident_id)
    h.store.append(incident_id, NewEvent("note_added", {"by": "x"}, "reviewer:rev-1"))
    # Written after the head was read: chained, and the incident records it. Intact.
    assert h.services.review._verify(head, h.store.timeline(incident_id)).intact

    last = h.store.timeline(incident_id)[-1]
    at, details = last.at, {"forged": True}
    forged = StoredEvent(last.seq + 1, at, "resolved", "responder:a", details, last.hash,
                         event_hash(last.hash, last.seq + 1, at, "resolved", "responder:a", details))
    h.store.events[incident_id].append(forged)  # what someone with table access could do; the incident is unchanged
    for read_first in (head, h.store.get(incident_id)):  # a head read before either write, or a current one
        result = h.services.review._verify(read_first, h.store.timeline(incident_id))
        assert (result.intact, result.first_bad_seq) == (False, last.seq + 1)
        assert result.problems == (f"events {last.seq + 1} to {last.seq + 1} are not in the incident's record",)
