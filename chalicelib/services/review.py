"""Reviewer use cases: one incident's timeline (with hash-chain verification) and report, metrics and a CSV export
over a time range, and the reviewer's own findings after closure."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from chalicelib.adapters.incident_store import IncidentStore, NewEvent
from chalicelib.adapters.models import IncidentModel
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.incidents import OPEN_STATUSES
from chalicelib.domain.review import IncidentFacts, review_metrics, timeline_durations
from chalicelib.domain.timeline import EventType, verify_chain
from chalicelib.services.views import event_view, incident_view

CSV_COLUMNS = (
    "id", "reference", "kind", "severity", "status", "created_at", "acknowledged_at", "acknowledged_by", "resolved_at",
    "outcome", "escalation_tier", "escalation_exhausted", "time_to_acknowledge_s", "time_to_resolve_s",
)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((_moment(end) - _moment(start)).total_seconds(), 3)


def incident_facts(incident: dict) -> IncidentFacts:
    return IncidentFacts(
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
    )


class ReviewService:
    def __init__(self, store: IncidentStore):
        self._store = store

    def timeline(self, incident_id: str, verify: bool = False) -> dict:
        events = self._store.timeline(incident_id)
        result: dict = {"events": [event_view(e) for e in events]}
        if verify:
            intact, first_bad = verify_chain([event_view(e, with_hashes=True) for e in events])
            result["verification"] = {"intact": intact, "first_bad_seq": first_bad, "events": len(events)}
        return result

    def metrics(self, incidents: list[dict]) -> dict:
        return review_metrics(incident_facts(incident) for incident in incidents)

    def report(self, incident: IncidentModel) -> dict:
        """Everything a post-incident review starts from, in one document."""
        stored = self._store.timeline(incident.incident_id)
        events = [event_view(e) for e in stored]
        intact, first_bad = verify_chain([event_view(e, with_hashes=True) for e in stored])
        durations = timeline_durations(events)
        return {
            "report": {
                "incident": incident_view(incident, self._store.personal(incident.incident_id)),
                "durations": {k: v for k, v in durations.items() if k not in ("paged", "tiers_paged")},
                "tiers_paged": durations["tiers_paged"],
                "paged": durations["paged"],
                "acknowledged_by": incident.acknowledged_by,
                "outcome": incident.outcome,
                "notes": [{"at": e["at"], "actor": e.get("actor"), "text": e["details"].get("text")}
                          for e in events if e["type"] == EventType.NOTE_ADDED],
                "reviews": [{"at": e["at"], "actor": e.get("actor"), **e["details"]}
                            for e in events if e["type"] == EventType.REVIEW_ADDED],
                "rejected_commands": sum(1 for e in events if e["type"] == EventType.REJECTED_COMMAND),
                "events": len(events),
                "timeline_intact": intact,
                "first_bad_seq": first_bad,
            }
        }

    def export_csv(self, incidents: list[dict]) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for incident in incidents:
            writer.writerow([
                incident["id"], incident["reference"], incident["kind"], incident["severity"], incident["status"],
                incident["created_at"], incident.get("acknowledged_at", ""), incident.get("acknowledged_by", ""),
                incident.get("resolved_at", ""), incident.get("outcome", ""), incident["escalation"]["tier"],
                str(incident["escalation"]["exhausted"]).lower(),
                _seconds(incident["created_at"], incident.get("acknowledged_at")) or "",
                _seconds(incident["created_at"], incident.get("resolved_at")) or "",
            ])
        return out.getvalue()

    def add_review(self, incident: IncidentModel, reviewer: str, findings: str, follow_ups: list[str]) -> dict:
        if incident.status in OPEN_STATUSES:
            raise InvalidTransition("an incident is reviewed after it is closed (resolved or cancelled)")
        self._store.append(incident.incident_id, NewEvent(
            EventType.REVIEW_ADDED, {}, actor=f"reviewer:{reviewer}",
            private={"findings": findings, "follow_up_actions": follow_ups}))
        return {"review": {"findings": findings, "follow_up_actions": follow_ups}}
