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
