"""What responders do to an incident, over the API or by SMS: acknowledge, resolve, escalate, ask for emergency
dispatch. The first acknowledgement wins: it commits only on the version it read while the incident was still
triggered, so of any number of simultaneous ACKs exactly one commits and every other is told who won."""

from __future__ import annotations

import logging

from chalicelib.adapters.store import Alongside, Deadline, IncidentStore
from chalicelib.domain.clock import plus_seconds
from chalicelib.domain.escalation import EscalationPlan
from chalicelib.domain.incidents import Actor, Incident
from chalicelib.observability import count
from chalicelib.services.access import Access, Principal
from chalicelib.services.views import incident_view

log = logging.getLogger(__name__)


class Responding:
    def __init__(self, store: IncidentStore, access: Access, escalation, outbox, workflows, lease_s: float,
                 dispatching=None):
        self._store = store
        self._access = access
        self._escalation = escalation
        self._outbox = outbox
        self._workflows = workflows
        self._lease_s = lease_s
        self.dispatching = dispatching

    # --- the transitions (shared by the API and the SMS inbox) ---------------------------------------------------
    def acknowledge(self, incident: Incident, actor: Actor, via: str, alongside: Alongside | None = None,
                    deadline: Deadline | None = None) -> tuple[Incident, bool]:
        updated, won = self._store.acknowledge(incident.incident_id, actor, via, self._lease_s, alongside, deadline,
                                               read=incident)
        if won:
            self.after_acknowledge(updated, via)
        return updated, won

    def after_acknowledge(self, incident: Incident, via: str) -> None:
        count("IncidentAcknowledged", kind=incident.kind, via=via)
        if incident.has_callback_phone and not incident.duress:
            self._outbox.page({"action": "shopper", "incident_id": incident.incident_id, "event": "acknowledged",
                               "key": str(incident.ack_count)})
        self._arm_ack_timer(incident)

    def resolve(self, incident: Incident, actor: Actor, outcome: str, note: str | None, via: str,
                alongside: Alongside | None = None, deadline: Deadline | None = None) -> Incident:
        updated = self._store.resolve(incident.incident_id, actor, outcome, note, via, self._lease_s, alongside,
                                      deadline, read=incident)
        self.after_resolve(updated, outcome)
        return updated

    def after_resolve(self, incident: Incident, outcome: str) -> None:
        count("IncidentResolved", kind=incident.kind, outcome=outcome)
        if incident.has_callback_phone and not incident.duress:
            self._outbox.page({"action": "shopper", "incident_id": incident.incident_id, "event": "resolved"})

    def escalate(self, incident: Incident) -> int:
        return self._escalation.escalate_now(incident)

    def _arm_ack_timer(self, incident: Incident) -> None:
        """An acknowledgement the plan gives `ack_timeout_s`: a reminder then, and the incident back to the team
        after as long again (services/jobs.py)."""
        plan = EscalationPlan.from_dict(incident.escalation) if incident.escalation else None
        if plan is None or not plan.ack_timeout_s:
            return
        self._workflows.start_timer(
            f"{incident.incident_id}-ack-{incident.ack_count}", plus_seconds(incident.acknowledged_at, plan.ack_timeout_s),
            {"action": "ack_reminder", "incident_id": incident.incident_id, "ack_count": incident.ack_count})

    # --- over the API --------------------------------------------------------------------------------------------
    def acknowledge_as(self, principal: Principal, incident: Incident) -> dict:
        actor = self._access.responder_acting_on(principal, incident)
        updated, _ = self.acknowledge(incident, actor, "api")
        return {"incident": incident_view(updated)}

    def resolve_as(self, principal: Principal, incident: Incident, outcome: str, note: str | None) -> dict:
        actor = self._access.responder_acting_on(principal, incident)
        return {"incident": incident_view(self.resolve(incident, actor, outcome, note, "api"))}

    def escalate_as(self, principal: Principal, incident: Incident) -> dict:
        self._access.responder_acting_on(principal, incident)
        return {"escalation": {"tier": self.escalate(incident)}}

    def dispatch_as(self, principal: Principal, incident: Incident, reason: str | None) -> dict:
        if principal.role == "admin":
            actor = Actor("admin", principal.sub)
        else:
            actor = self._access.responder_acting_on(principal, incident)
        return {"dispatch": self.dispatching.request(incident, actor, reason=reason)}
