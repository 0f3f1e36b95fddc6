"""The jobs queue's worker (Lambda `run_jobs`): work that must not wait behind a burst of SMS. Each job is safe to
run twice (SQS delivers at least once): every effect is a conditional write or an execution with a fixed name."""

from __future__ import annotations

import logging
import time

from chalicelib.adapters.store import IncidentStore
from chalicelib.domain import incidents as lifecycle
from chalicelib.domain.clock import parse_iso, plus_seconds
from chalicelib.domain.escalation import EscalationPlan
from chalicelib.domain.incidents import Incident, Status, Transition
from chalicelib.domain.paging import Purpose
from chalicelib.domain.timeline import EventType, NewEvent
from chalicelib.observability import count

log = logging.getLogger(__name__)


class Jobs:
    def __init__(self, store: IncidentStore, escalation, outbox, workflows, dispatching, deliveries, checkins):
        self._store = store
        self._escalation = escalation
        self._outbox = outbox
        self._workflows = workflows
        self._dispatching = dispatching
        self._deliveries = deliveries
        self._checkins = checkins

    def handle(self, job: dict, receive_count: int = 1) -> None:
        self._hold_until(job.get("not_before"))
        action = job.get("action")
        if action == "start_escalation":
            incident = self._store.get(job["incident_id"])
            if incident.status == Status.TRIGGERED and incident.escalation and incident.escalation_step < 0:
                # Raises while Step Functions still fails: the queue delivers the job again.
                self._escalation.start(incident, name=job.get("name"))
        elif action == "ack_reminder":
            self.ack_reminder(job["incident_id"], int(job["ack_count"]))
        elif action == "ack_expiry":
            self.ack_expiry(job["incident_id"], int(job["ack_count"]))
        elif action == "check_in_due":
            self._checkins.due(job["check_in_id"])
        elif action == "dispatch_place":
            self._dispatching.place(job["incident_id"], job["dispatch_id"], receive_count)
        elif action == "dispatch_location":
            self._dispatching.send_location(job["incident_id"], job["location"])
        elif action == "dispatch_cancel":
            self._dispatching.send_cancel(job["alarm_id"])
        elif action == "delivery_check":
            self._deliveries.check(job["incident_id"], job["page_key"])
        else:
            log.error("unknown job dropped", extra={"action": action})

    def _hold_until(self, not_before: str | None) -> None:
        """A timer that fired a little early (whole-second waits) waits out the rest, never more than a few seconds."""
        if not not_before:
            return
        early = (parse_iso(not_before) - parse_iso(self._store.now())).total_seconds()
        if 0 < early <= 5:
            time.sleep(early)

    # --- acknowledged and forgotten ------------------------------------------------------------------------------
    def ack_reminder(self, incident_id: str, ack_count: int) -> None:
        """First `ack_timeout_s`: the acknowledger is reminded, and the expiry timer armed for as long again."""
        def decide(incident: Incident) -> Transition | None:
            if incident.status != Status.ACKNOWLEDGED or incident.ack_count != ack_count:
                return None
            event = NewEvent(EventType.ACK_REMINDED, {"responder": incident.acknowledged_by}, "system:ack-timer")
            return lifecycle.append(incident, event, result=True)

        incident, due = self._store.record(incident_id, decide)
        if not due:
            return
        self._outbox.page({"action": "notice", "incident_id": incident_id, "purpose": Purpose.REMINDER,
                           "to": [incident.acknowledged_by], "key": str(ack_count)})
        plan = EscalationPlan.from_dict(incident.escalation)
        self._workflows.start_timer(f"{incident_id}-ackexp-{ack_count}", plus_seconds(self._store.now(),
                                                                                     plan.ack_timeout_s),
                                    {"action": "ack_expiry", "incident_id": incident_id, "ack_count": ack_count})

    def ack_expiry(self, incident_id: str, ack_count: int) -> None:
        """Second `ack_timeout_s`: back to `triggered`, and escalation resumes at the tier after the
        acknowledger's, under a new execution."""
        def decide(incident: Incident) -> Transition | None:
            plan = EscalationPlan.from_dict(incident.escalation)
            resume = plan.resume_step(incident.escalation_step, incident.ack_tier)
            transition = lifecycle.expire_acknowledgement(incident, ack_count, resume, self._store.now())
            return None if transition is None else Transition(transition.incident, transition.events, result=resume)

        incident, resume_step = self._store.record(incident_id, decide)
        if resume_step is None:
            return
        count("AcknowledgementExpired")
        log.warning("acknowledgement expired", extra={"incident_id": incident_id, "resume_step": resume_step})
        self._escalation.start(incident, start_step=resume_step,
                               name=f"{incident_id}-resume-{incident.generation}")
