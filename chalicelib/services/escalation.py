"""Escalation: start the timers, send what the timers decide, escalate on demand.

Who decides and who sends are separate (as GoAlert's escalation manager and sender are): the Step Functions
workflow claims each step with a conditional write and puts a page request on the queue; `send_requested` here
turns a request into SMS.

No page after an acknowledgement is committed: the sender takes a short *paging lease* on the incident (a
conditional write that also requires the incident still triggered and still at that step) before sending, and
every status change out of `triggered` is conditional on no live lease. The two writes exclude each other on the
one incident item, so either the acknowledgement commits first (the lease is refused, nothing is sent) or the pages
go out first and the acknowledgement waits the few milliseconds until the lease is released.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from chalicelib.adapters.failures import is_dependency_failure
from chalicelib.adapters.incident_store import Change, IncidentStore, NewEvent, iso, paging_lease_is_live, utc_now
from chalicelib.adapters.models import IncidentModel, PageModel
from chalicelib.adapters.page_queue import PageQueue
from chalicelib.adapters.page_store import PageStore
from chalicelib.adapters.sms import SnsSmsSender
from chalicelib.adapters.workflow import StepFunctionsEscalation
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.escalation import EscalationSnapshot, Target, step_plan, tier_for_step
from chalicelib.domain.incidents import Status
from chalicelib.domain.sms_texts import cancelled_text, exhausted_text, page_text, shopper_acknowledged_text
from chalicelib.domain.timeline import EventType
from chalicelib.observability import count, mask_phone

log = logging.getLogger(__name__)

PAGE, EXHAUSTED, CANCELLED, NOTIFY_SHOPPER, START = "page", "exhausted", "cancelled", "notify_shopper", "start"


class PagerBusy(Exception):
    """Another sender holds the lease for this incident; the request is retried from the queue."""


class PageSendFailed(Exception):
    """Some SMS of the request failed; the request goes back on the queue, the pages already sent are not resent."""


class EscalationService:
    def __init__(
        self,
        store: IncidentStore,
        pages: PageStore,
        sender: SnsSmsSender,
        workflow: StepFunctionsEscalation,
        queue: PageQueue,
        lease_s: int,
    ):
        self._store = store
        self._pages = pages
        self._sender = sender
        self._workflow = workflow
        self._queue = queue
        self._lease_s = lease_s

    # --- starting --------------------------------------------------------------------------------------------
    def start(self, incident: IncidentModel, start_step: int = 0, execution_name: str | None = None) -> None:
        snapshot = EscalationSnapshot.from_dict(incident.escalation)
        timeouts, tiers = step_plan(snapshot)
        self._workflow.start(
            execution_name or incident.incident_id,
            {"incident_id": incident.incident_id, "step_timeouts": timeouts, "step_tiers": tiers, "start_step": start_step},
        )

    def escalate_now(self, incident: IncidentModel) -> int:
        """ESC: a new execution claims the next step at once. The running one finds its next claim taken and ends,
        so exactly one timer runs; two ESCs for the same step start one execution (same name)."""
        if incident.status != Status.TRIGGERED:
            raise InvalidTransition(f"incident is {incident.status}, it cannot be escalated")
        next_step = int(incident.escalation_step) + 1
        self.start(incident, start_step=next_step, execution_name=f"{incident.incident_id}-esc-{next_step}")
        snapshot = EscalationSnapshot.from_dict(incident.escalation)
        return tier_for_step(snapshot, next_step)

    def start_or_defer(self, incident: IncidentModel) -> None:
        """Starts the escalation; if Step Functions fails, puts the start on the page queue, whose worker retries it
        until it works (the execution's name makes repeats harmless). An accepted emergency is never left unescalated
        because the shopper's phone did not retry. Raises only when the queue fails too."""
        try:
            self.start(incident)
        except Exception as exc:  # noqa: BLE001 - any failure of StartExecution: hand it to the outbox
            if not is_dependency_failure(exc):
                raise
            log.warning("StartExecution failed, deferred to the page queue", extra={"incident_id": incident.incident_id})
            self._queue.enqueue({"action": START, "incident_id": incident.incident_id})

    def request_cancellation_notices(self, incident_id: str) -> None:
        self._queue.enqueue({"action": CANCELLED, "incident_id": incident_id})

    def request_shopper_notice(self, incident_id: str) -> None:
        self._queue.enqueue({"action": NOTIFY_SHOPPER, "incident_id": incident_id})

    # --- sending ---------------------------------------------------------------------------------------------
    def send_requested(self, request: dict) -> None:
        action = request["action"]
        incident_id = request["incident_id"]
        if action in (PAGE, EXHAUSTED):
            self._send_pages(incident_id, action, int(request["step"]))
        elif action == CANCELLED:
            self._send_cancellation_notices(incident_id)
        elif action == NOTIFY_SHOPPER:
            self._notify_shopper(incident_id)
        elif action == START:
            incident = self._store.get(incident_id)
            if incident.status == Status.TRIGGERED and int(incident.escalation_step) < 0:
                self.start(incident)  # raises while Step Functions still fails: the queue redelivers
        else:
            log.error("unknown page request dropped", extra={"action": action, "incident_id": incident_id})

    def _send_pages(self, incident_id: str, action: str, step: int) -> None:
        still_due = (IncidentModel.status == Status.TRIGGERED.value) & (IncidentModel.escalation_step == step)
        if action == EXHAUSTED:
            still_due = still_due & (IncidentModel.escalation_exhausted == True)  # noqa: E712 (a condition, not a test)
        stamp = self._store.take_paging_lease(incident_id, still_due, self._lease_s)
        if stamp is None:
            incident = self._store.get(incident_id)
            due = incident.status == Status.TRIGGERED and int(incident.escalation_step) == step
            if due and paging_lease_is_live(incident, self._lease_s):
                raise PagerBusy(incident_id)
            # Acknowledged, resolved, cancelled, or a later step already claimed: this step has nothing to send.
            log.info("page request is stale", extra={"incident_id": incident_id, "step": step, "status": incident.status})
            return
        try:
            incident = self._store.get(incident_id)
            snapshot = EscalationSnapshot.from_dict(incident.escalation)
            if action == PAGE:
                tier = tier_for_step(snapshot, step)
                self._record_step(incident_id, step, self._escalated_event(incident, snapshot, step, tier))
                targets = snapshot.tiers[tier - 1].targets
                text = page_text(incident.reference, incident.kind, *self._lat_lng(incident_id))
                self._send_all(incident, targets, f"{step:04d}", PAGE, tier, text, stamp)
            else:
                if self._record_step(incident_id, step, NewEvent(EventType.ESCALATION_EXHAUSTED, {"steps": step})):
                    count("EscalationExhausted")  # alarmed on in infra/deployment.yaml; once, not per redelivery
                text = exhausted_text(incident.reference, incident.kind, *self._lat_lng(incident_id))
                self._send_all(incident, snapshot.all_targets(), "exhausted", EXHAUSTED, 0, text, stamp)
        finally:
            self._store.release_paging_lease(incident_id, stamp)

    def _escalated_event(self, incident: IncidentModel, snapshot: EscalationSnapshot, step: int, tier: int) -> NewEvent | None:
        if step == 0:
            return None
        manual = (incident.escalation_owner or "").endswith(f"-esc-{step}")
        details = {"tier": tier, "step": step, "round": step // len(snapshot.tiers), "trigger": "manual" if manual else "timeout"}
        return NewEvent(EventType.ESCALATED, details)

    def _record_step(self, incident_id: str, step: int, event: NewEvent | None) -> bool:
        """Writes the step's event once, however often its request is delivered; True if this call wrote it."""
        if event is None:
            return False
        wrote = False

        def decide(incident: IncidentModel) -> Change | None:
            nonlocal wrote
            wrote = int(incident.escalation_recorded_step) < step
            return Change(actions=[IncidentModel.escalation_recorded_step.set(step)], events=[event]) if wrote else None

        self._store.record(incident_id, decide)
        return wrote

    def _send_all(
        self, incident: IncidentModel, targets: tuple[Target, ...], key_prefix: str, purpose: str, tier: int, text: str,
        stamp: str | None,
    ) -> None:
        lease_started = time.monotonic()
        failures = 0
        stale_before = iso(utc_now() - timedelta(seconds=self._lease_s))
        for target in targets:
            # Stop sending before the lease could run out: past it, an acknowledgement no longer waits for us.
            if stamp is not None and time.monotonic() - lease_started > self._lease_s * 0.5:
                raise PageSendFailed(f"{incident.incident_id}: lease nearly spent, the rest is retried")
            page = PageModel(
                incident.incident_id, f"{key_prefix}#{target.responder_id}", responder_id=target.responder_id,
                phone=target.phone, purpose=purpose, tier=tier, sent_at=iso(utc_now()),
            )
            if not self._pages.claim(page, stale_before):
                continue  # sent by an earlier delivery of this request
            try:
                message_id = self._sender.send(target.phone, text)
            except Exception as exc:  # noqa: BLE001 - any SNS failure: record it, retry the request later
                failures += 1
                self._pages.release(page)
                log.warning("SMS publish failed", extra={"incident_id": incident.incident_id, "to": mask_phone(target.phone)})
                self._store.append(incident.incident_id, NewEvent(
                    EventType.PAGE_FAILED, {"to": target.phone, "responder": target.responder_id, "tier": tier,
                                            "purpose": purpose, "error": type(exc).__name__}))
                continue
            self._pages.mark_sent(page, message_id)
            event_type = EventType.PAGED if purpose in (PAGE, EXHAUSTED) else EventType.NOTICE_SENT
            details = {"to": target.phone, "responder": target.responder_id, "name": target.name, "tier": tier,
                       "message_id": message_id}
            if purpose != PAGE:
                details["purpose"] = purpose
            self._store.append(incident.incident_id, NewEvent(event_type, details))
        if failures:
            raise PageSendFailed(f"{incident.incident_id}: {failures} SMS failed")

    def _send_cancellation_notices(self, incident_id: str) -> None:
        incident = self._store.get(incident_id)
        paged: dict[str, Target] = {}
        for page in self._pages.for_incident(incident_id):
            if page.purpose in (PAGE, EXHAUSTED) and page.state == "sent":
                paged.setdefault(page.responder_id, Target(page.responder_id, page.responder_id, page.phone))
        self._send_all(incident, tuple(paged.values()), "cancelled", CANCELLED, 0, cancelled_text(incident.reference), None)

    def _notify_shopper(self, incident_id: str) -> None:
        incident = self._store.get(incident_id)
        callback_phone = self._store.personal(incident_id).get("callback_phone")
        if not callback_phone or not incident.acknowledged_by_name:
            return
        target = Target("shopper", "shopper", callback_phone)
        text = shopper_acknowledged_text(incident.reference, incident.acknowledged_by_name)
        self._send_all(incident, (target,), "notify", NOTIFY_SHOPPER, 0, text, None)

    def _lat_lng(self, incident_id: str) -> tuple[float | None, float | None]:
        """The latest location, read when the page is sent, so each tier's page shows where the shopper is now."""
        location = self._store.personal(incident_id).get("location")
        if not location:
            return None, None
        return float(location["lat"]), float(location["lng"])
