"""Reviewer use cases: listing with an opaque cursor, one incident's timeline (with verification) and report,
metrics and a CSV export over a time range streamed in one pass, and findings after closure.

Every read here is linear in what it returns: a list page reads its page (plus one small page per index shard); metrics
and export read each incident of the range once, from the listing index's projection, never the base table.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

from chalicelib.adapters.store import IncidentStore, ListQuery
from chalicelib.domain.clock import EARLIEST, TimeFormatError, iso, parse_iso, seconds_between
from chalicelib.domain.errors import InvalidTransition, ValidationFailed
from chalicelib.domain.incidents import Incident, owner_status
from chalicelib.domain.review import IncidentFacts, review_metrics, timeline_durations
from chalicelib.domain.timeline import EventType, NewEvent, Verification, verify_chain
from chalicelib.services.access import Principal
from chalicelib.services.views import event_view, incident_view

MAX_RANGE = timedelta(days=60)
DEFAULT_RANGE = timedelta(days=30)
CSV_COLUMNS = (
    "id", "reference", "kind", "severity", "status", "created_at", "acknowledged_at", "acknowledged_by", "resolved_at",
    "outcome", "escalation_tier", "escalation_exhausted", "time_to_acknowledge_s", "time_to_resolve_s", "duress",
    "dispatch_status", "press_to_first_contact_s",
)


def _parse_bound(name: str, value: str):
    try:
        return parse_iso(value)
    except TimeFormatError as exc:
        raise ValidationFailed.field(name, str(exc)) from exc


def encode_cursor(incident: Incident) -> str:
    return base64.urlsafe_b64encode(f"{incident.created_at}|{incident.incident_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, incident_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        parse_iso(created_at)
    except (ValueError, UnicodeDecodeError, TimeFormatError) as exc:
        raise ValidationFailed.field("cursor", "is not a cursor this API gave") from exc
    return created_at, incident_id


def facts(incident: Incident) -> IncidentFacts:
    dispatch = incident.dispatch or {}

    def moment(value):
        return parse_iso(value) if value else None

    return IncidentFacts(
        incident_id=incident.incident_id, reference=incident.reference, kind=incident.kind, status=incident.status,
        created_at=parse_iso(incident.created_at), acknowledged_at=moment(incident.acknowledged_at),
        acknowledged_by=incident.acknowledged_by, resolved_at=moment(incident.resolved_at), outcome=incident.outcome,
        escalation_depth=incident.escalation_tier, exhausted=incident.escalation_exhausted, duress=incident.duress,
        ack_expiries=incident.ack_expiries, dispatch_requested_at=moment(dispatch.get("requested_at")),
        dispatch_psap_contacted_at=moment(dispatch.get("psap_contacted_at")),
        first_contact_at=moment(incident.first_contact_at), deliveries=incident.deliveries or None)


# How many incidents one list request may read, at most: max(SCAN_FLOOR, SCAN_PER_ITEM x limit).
SCAN_FLOOR = 200
SCAN_PER_ITEM = 4


class Review:
    def __init__(self, store: IncidentStore, access, clock):
        self._store = store
        self._access = access
        self._now = clock

    # --- listing -------------------------------------------------------------------------------------------------
    def query(self, principal: Principal, status: str | None, kind: str | None, since: str | None,
              until: str | None, cursor: str | None, page_size: int = 100) -> ListQuery:
        if principal.role == "responder":
            self._access.active_responder(principal)
        upper = _parse_bound("until", until) if until else parse_iso(self._now())
        # The default range must not reach before the earliest time the service handles (the store parses it again).
        lower = _parse_bound("since", since) if since else max(upper - DEFAULT_RANGE, EARLIEST)
        if upper - lower > MAX_RANGE:
            raise ValidationFailed.field("since", f"must be at most {MAX_RANGE.days} days before until")
        if lower > upper:
            raise ValidationFailed.field("since", "must be before until")
        return ListQuery(
            # A shopper's filter applies to the status she is shown (services/views.py), so it is applied here.
            since=iso(lower), until=iso(upper), status=None if principal.role == "shopper" else status, kind=kind,
            owner=principal.sub if principal.role == "shopper" else None,
            responder=principal.sub if principal.role == "responder" else None,
            after=decode_cursor(cursor) if cursor else None, page_size=page_size)

    def list(self, principal: Principal, query: ListQuery, limit: int, status: str | None = None) -> dict:
        """One page, newest first. The filters are applied here, on what the store reads in order, so that a request
        reads at most max(SCAN_FLOOR, SCAN_PER_ITEM x limit) incidents: a rare kind over a long range answers a short
        (even empty) page with a `next_cursor` where the reading stopped, as DynamoDB's own Limit does, instead of
        reading the whole range in one request (2,000 items, 7 s, for 1 kind in 50)."""
        wanted = replace(query, status=None, kind=None, responder=None, page_size=limit + 1)
        budget = max(SCAN_FLOOR, SCAN_PER_ITEM * limit)
        results: list[Incident] = []
        read, last_read = 0, None
        for incident in self._store.list_incidents(wanted):
            read, last_read = read + 1, incident
            if query.admits(incident) and (principal.role != "shopper" or status is None
                                           or owner_status(incident) == status):
                results.append(incident)
                if len(results) > limit:
                    break
            if read >= budget:
                break
        page: dict = {"incidents": [incident_view(i, for_owner=principal.role == "shopper") for i in results[:limit]]}
        if len(results) > limit:
            page["next_cursor"] = encode_cursor(results[limit - 1])
        elif read >= budget:
            page["next_cursor"] = encode_cursor(last_read)
        return page

    def _stream(self, query: ListQuery) -> Iterator[Incident]:
        return self._store.list_incidents(replace(query, page_size=500))

    def metrics(self, query: ListQuery) -> dict:
        return {"metrics": review_metrics(facts(incident) for incident in self._stream(query))}

    def export_csv(self, query: ListQuery) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for i in self._stream(query):
            writer.writerow([
                i.incident_id, i.reference, i.kind, i.severity, i.status, i.created_at, i.acknowledged_at or "",
                i.acknowledged_by or "", i.resolved_at or "", i.outcome or "", i.escalation_tier,
                str(i.escalation_exhausted).lower(), seconds_between(i.created_at, i.acknowledged_at) or "",
                seconds_between(i.created_at, i.resolved_at) or "", str(i.duress).lower(),
                (i.dispatch or {}).get("status", ""), seconds_between(i.created_at, i.first_contact_at) or "",
            ])
        return out.getvalue()

    # --- one incident --------------------------------------------------------------------------------------------
    def timeline(self, incident: Incident, verify: bool = False) -> dict:
        head = self._store.get(incident.incident_id) if verify else None
        stored = self._store.timeline(incident.incident_id)
        result: dict = {"events": [event_view(e) for e in stored]}
        if verify:
            result["verification"] = self._verify(head, stored).to_dict()
        return result

    def _verify(self, head: Incident, stored):
        """`head` is read BEFORE the events: events written in between come after it and are checked as part of the
        chain, never mistaken for a truncation."""
        result = verify_chain([e.as_dict() for e in stored], head.last_seq, head.last_hash,
                              {e.seq: e.private for e in stored})
        if result.intact and len(stored) > head.last_seq:
            # Events past the head read first: written since (a page, say), unless the incident never recorded them.
            recorded = self._store.get(head.incident_id).last_seq
            if recorded < len(stored):
                return Verification(False, recorded + 1, len(stored),
                                    (f"events {recorded + 1} to {len(stored)} are not in the incident's record",))
        return result

    def report(self, incident: Incident) -> dict:
        """Everything a post-incident review starts from, in one document."""
        head = self._store.get(incident.incident_id)
        stored = self._store.timeline(incident.incident_id)
        events = [event_view(e) for e in stored]
        verification = self._verify(head, stored)
        durations = timeline_durations(events)
        return {
            "report": {
                "incident": incident_view(incident, self._store.personal(incident.incident_id)),
                "durations": {k: v for k, v in durations.items() if k not in ("paged", "tiers_paged")},
                "tiers_paged": durations["tiers_paged"],
                "paged": durations["paged"],
                "deliveries_by_tier": incident.deliveries,
                "acknowledged_by": incident.acknowledged_by,
                "outcome": incident.outcome,
                "duress": incident.duress,
                "dispatch": incident.dispatch and {k: v for k, v in incident.dispatch.items() if k != "provider_id"},
                "ack_expiries": incident.ack_expiries,
                "notes": [{"at": e["at"], "actor": e.get("actor"), "text": e["details"].get("text")}
                          for e in events if e["type"] == EventType.NOTE_ADDED],
                "reviews": [{"at": e["at"], "actor": e.get("actor"), **e["details"]}
                            for e in events if e["type"] == EventType.REVIEW_ADDED],
                "rejected_commands": sum(1 for e in events if e["type"] == EventType.REJECTED_COMMAND),
                "events": len(events),
                "timeline_intact": verification.intact,
                "first_bad_seq": verification.first_bad_seq,
                "problems": list(verification.problems),
            }
        }

    def add_review(self, incident: Incident, reviewer: str, findings: str, follow_ups: list[str]) -> dict:
        if incident.is_open:
            raise InvalidTransition("an incident is reviewed after it is closed (resolved or cancelled)")
        self._store.append(incident.incident_id, NewEvent(
            EventType.REVIEW_ADDED, {}, f"reviewer:{reviewer}",
            private={"findings": findings, "follow_up_actions": follow_ups}))
        return {"review": {"findings": findings, "follow_up_actions": follow_ups}}
