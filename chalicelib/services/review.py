"""Reviewer use cases: the timeline of one incident (with hash-chain verification) and metrics over many."""

from __future__ import annotations

from datetime import datetime

from chalicelib.adapters.incident_store import IncidentStore
from chalicelib.domain.review import IncidentFacts, review_metrics
from chalicelib.domain.timeline import verify_chain
from chalicelib.services.views import event_view


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class ReviewService:
    def __init__(self, store: IncidentStore):
        self._store = store

    def timeline(self, incident_id: str, verify: bool = False) -> dict:
        events = self._store.timeline(incident_id)
        result: dict = {"events": [event_view(e) for e in events]}
        if verify:
            intact, first_bad = verify_chain([event_view(e, with_hashes=True) for e in events])
            result["verification"] = {"intact": intact, "first_bad_seq": first_bad}
        return result

    def metrics(self, incidents: list[dict]) -> dict:
        facts = []
        for incident in incidents:
            facts.append(IncidentFacts(
                incident_id=incident["id"],
                reference=incident["reference"],
                kind=incident["kind"],
                status=incident["status"],
                created_at=_moment(incident["created_at"]),
                acknowledged_at=_moment(incident.get("acknowledged_at")),
                acknowledged_by=incident.get("acknowledged_by"),
                resolved_at=_moment(incident.get("resolved_at")),
                outcome=incident.get("outcome"),
                escalation_depth=incident["escalation"]["tier"],
                exhausted=incident["escalation"]["exhausted"],
            ))
        return review_metrics(facts)
