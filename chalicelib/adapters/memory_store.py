"""The incident store in memory: the twin of the DynamoDB store, held to the same contract tests
(tests/contract/), so service tests run in milliseconds without the local AWS. One lock makes every write atomic,
as a DynamoDB transaction is."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace

from chalicelib.adapters.store import (
    ClaimTaken,
    Conflict,
    IncidentStore,
    ListQuery,
    Lookup,
    PageConflict,
    StoredEvent,
    Write,
    claim_is_free,
    page_is_claimable,
)
from chalicelib.domain.incidents import Incident
from chalicelib.domain.paging import Page, PageWrite


class MemoryIncidentStore(IncidentStore):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()
        self.incidents: dict[str, Incident] = {}
        self.events: dict[str, list[StoredEvent]] = {}
        self.private: dict[tuple[str, int], dict] = {}
        self.personal_rows: dict[str, dict] = {}
        self.lookups: dict[str, Lookup] = {}
        self.pages: dict[tuple[str, str], Page] = {}
        self.writes = 0

    # --- primitives ----------------------------------------------------------------------------------------------
    def _get(self, incident_id: str) -> Incident | None:
        with self._lock:
            return self.incidents.get(incident_id)

    def _write(self, write: Write) -> None:
        with self._lock:
            incident_id = write.after.incident_id
            current = self.incidents.get(incident_id)
            if write.before is None:
                if current is not None:
                    raise Conflict(incident_id)
            elif current is None or current.version != write.before.version:
                raise Conflict(incident_id)
            for claim in write.claims:
                if not claim_is_free(self.lookups.get(claim.key), claim):
                    raise ClaimTaken(claim.key)
            for page_write in write.pages:
                key = (page_write.page.incident_id, page_write.page.page_key)
                if not page_is_claimable(self.pages.get(key), page_write):
                    raise PageConflict(page_write.page.page_key)
            # Every condition holds: apply all of it.
            self.incidents[incident_id] = write.after
            for row in write.events:
                self.events.setdefault(incident_id, []).append(row.event)
                if row.private is not None:
                    self.private[(incident_id, row.event.seq)] = row.private
            if write.personal is not None:
                self.personal_rows[incident_id] = dict(write.personal)
            for claim in write.claims:
                self.lookups[claim.key] = Lookup(claim.key, claim.incident_id, claim.at, dict(claim.body))
            for link in write.links:
                self.lookups[link.key] = link
            for page_write in write.pages:
                self.pages[(page_write.page.incident_id, page_write.page.page_key)] = page_write.page
            self.writes += 1

    def _events(self, incident_id: str) -> list[StoredEvent]:
        with self._lock:
            return [replace(e, private=self.private.get((incident_id, e.seq))) for e in self.events.get(incident_id, [])]

    def personal(self, incident_id: str) -> dict:
        with self._lock:
            return dict(self.personal_rows.get(incident_id, {}))

    def lookup(self, key: str) -> Lookup | None:
        with self._lock:
            return self.lookups.get(key)

    def get_many(self, incident_ids: Iterable[str]) -> dict[str, Incident]:
        with self._lock:
            return {i: self.incidents[i] for i in incident_ids if i in self.incidents}

    def page(self, incident_id: str, page_key: str) -> Page | None:
        with self._lock:
            return self.pages.get((incident_id, page_key))

    def pages_for(self, incident_id: str) -> list[Page]:
        with self._lock:
            return sorted((p for (i, _), p in self.pages.items() if i == incident_id), key=lambda p: p.page_key)

    def page_by_message_id(self, message_id: str) -> Page | None:
        with self._lock:
            return next((p for p in self.pages.values() if p.message_id == message_id), None)

    def pages_to_phone(self, phone: str, since: str, code: str | None = None, limit: int = 25) -> list[Page]:
        with self._lock:
            found = [p for p in self.pages.values()
                     if p.phone == phone and p.sent_at >= since and (code is None or p.code == code)]
        return sorted(found, key=lambda p: p.sent_at, reverse=True)[:limit]

    def put_page(self, write: PageWrite) -> None:
        with self._lock:
            key = (write.page.incident_id, write.page.page_key)
            if not page_is_claimable(self.pages.get(key), write):
                raise PageConflict(write.page.page_key)
            self.pages[key] = write.page

    def list_incidents(self, query: ListQuery) -> Iterator[Incident]:
        with self._lock:
            candidates = list(self.incidents.values())
        ordered = sorted(candidates, key=lambda i: (i.created_at, i.incident_id), reverse=True)
        for incident in ordered:
            if not query.since <= incident.created_at < query.until:
                continue
            if query.after is not None and (incident.created_at, incident.incident_id) >= query.after:
                continue
            if query.owner is not None and incident.owner != query.owner:
                continue
            if query.admits(incident):
                yield incident

    # --- for tests: what an administrator with table access could do -------------------------------------------------
    def tamper(self, incident_id: str, seq: int, **changes) -> None:
        with self._lock:
            events = self.events[incident_id]
            events[seq - 1] = replace(events[seq - 1], **changes)
