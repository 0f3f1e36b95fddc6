"""Escalation: starting the timers, and sending what they decide.

Who decides and who sends are apart (as GoAlert's escalation manager and sender are). The Step Functions workflow
(infra/escalation.asl.json) claims each step with a conditional write and puts a page request, with a task token, on
the page queue; `PageSender.handle` turns it into SMS and answers the token with how many were paged. The step's
timeout starts only then: a tier's timer counts from when its pages were *sent*, so a queue backlog in a burst
delays escalation instead of skipping tiers; a tier nobody could be paged on is not waited out.

Every page is sent under the incident's *paging lease*, taken per SMS: a conditional write (the incident is still
triggered and no other sender is publishing) made together with the page record's claim, held while one publish
runs (botocore never retries it, and its timeouts bound it well inside the lease), released with the `paged` event.
Acknowledge, resolve and cancel wait while a lease is live and commit only on the version they read, so either the
acknowledgement commits first and no page leaves after it, or the page leaves first and the acknowledgement waits
for that one publish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from chalicelib.adapters.sms import SmsNotSent, SmsOutcomeUnknown
from chalicelib.adapters.store import Deadline, IncidentStore, PageConflict
from chalicelib.domain.clock import parse_iso, iso
from chalicelib.domain.escalation import EscalationPlan, ResponderContact, who_to_page
from chalicelib.domain.incidents import Incident, Status, Transition
from chalicelib.domain.paging import Page, PageState, PageWrite, Purpose, page_key, steps_due
from chalicelib.domain.sms_texts import (
    cancelled_text,
    dispatch_failed_text,
    duress_notice_text,
    exhausted_text,
    page_text,
    pressed_again_text,
    reminder_text,
    test_page_text,
)
from chalicelib.domain.shopper import acknowledged_sms, exhausted_sms, resolved_sms, dispatch_sms
from chalicelib.domain.timeline import EventType, NewEvent
from chalicelib.observability import count, mask_phone

log = logging.getLogger(__name__)

# Page requests (page queue)
PAGE, EXHAUSTED, NOTICE, SHOPPER, TEST = "page", "exhausted", "notice", "shopper", "test"
# After this many deliveries of a page request, SMS that still fail are given up on (recorded, failed over) and the
# escalation goes on: one bad number must not hold a tier's timer forever.
MAX_PAGE_ATTEMPTS = 3
LEASE_MARGIN_S = 2.0


class PageSendFailed(Exception):
    """Some SMS of the request failed; the request goes back on the queue, the pages already sent are not resent."""


@dataclass
class Dependencies:
    """What the escalation services use: the store, the directory (as admin reads it), queues, timers and channels."""

    store: IncidentStore
    contacts: Callable[[list[str] | set[str] | tuple[str, ...]], dict[str, ResponderContact]]
    outbox: object
    workflows: object
    sms: object
    lease_s: float
    failover: Callable[[Incident, Page, str], None] | None = None


class EscalationStarter:
    def __init__(self, deps: Dependencies):
        self._d = deps

    def start(self, incident: Incident, start_step: int = 0, name: str | None = None) -> None:
        plan = EscalationPlan.from_dict(incident.escalation)
        timeouts, tiers = plan.step_plan()
        self._d.workflows.start_escalation(name or incident.incident_id, {
            "incident_id": incident.incident_id, "step_timeouts": timeouts, "step_tiers": tiers,
            "start_step": start_step})

    def start_or_defer(self, incident: Incident, name: str | None = None) -> None:
        """Starts the escalation; if Step Functions fails, puts the start on the jobs queue, whose worker retries it
        until it works (the execution's name makes repeats harmless). An accepted emergency is never left
        unescalated because the shopper's phone did not retry. Raises only when the queue fails too."""
        from chalicelib.adapters.failures import is_dependency_failure

        try:
            self.start(incident, name=name)
        except Exception as exc:  # noqa: BLE001 - any failure of StartExecution: hand it to the jobs queue
            if not is_dependency_failure(exc):
                raise
            log.warning("StartExecution failed, deferred to the jobs queue", extra={"incident_id": incident.incident_id})
            self._d.outbox.job({"action": "start_escalation", "incident_id": incident.incident_id, "name": name})

    def escalate_now(self, incident: Incident, cause: str = "esc") -> int:
        """ESC (`cause` "esc") or a second press ("press"): a new execution claims the next step at once. The running
        one finds its next claim taken and ends, so one timer runs; two ESCs for the same step start one execution
        (same name)."""
        from chalicelib.domain.errors import InvalidTransition

        if incident.status != Status.TRIGGERED:
            raise InvalidTransition(f"incident is {incident.status}, it cannot be escalated")
        plan = EscalationPlan.from_dict(incident.escalation)
        next_step = incident.escalation_step + 1
        if next_step >= plan.total_steps:
            # Past the last tier: the run goes straight to exhaustion (everyone paged again, the shopper told).
            next_step = plan.total_steps
        self.start(incident, start_step=next_step,
                   name=f"{incident.incident_id}-{cause}-{incident.generation}-{next_step}")
        return plan.tier_of_step(min(next_step, plan.total_steps - 1))


class PageSender:
    """The page queue's worker (Lambda `send_pages`)."""

    def __init__(self, deps: Dependencies, dispatch_on_exhaustion: Callable[[Incident], None] | None = None):
        self._d = deps
        self._dispatch_on_exhaustion = dispatch_on_exhaustion

    def handle(self, request: dict, receive_count: int = 1) -> None:
        action = request.get("action")
        if action == PAGE:
            self.send_step(request["incident_id"], int(request["step"]), request.get("token"), receive_count)
        elif action == EXHAUSTED:
            self.send_exhausted(request["incident_id"], int(request["step"]), receive_count)
        elif action == NOTICE:
            self.send_notice(request["incident_id"], request["purpose"], request.get("to"), request.get("key", ""))
        elif action == SHOPPER:
            self.send_shopper(request["incident_id"], request["event"], request.get("key", ""))
        elif action == TEST:
            self.send_test(request["responder_id"], request["key"])
        else:
            log.error("unknown page request dropped", extra={"action": action})

    # --- a tier's pages -------------------------------------------------------------------------------------------
    def send_step(self, incident_id: str, step: int, token: str | None, receive_count: int = 1) -> int:
        """Sends every step not sent yet up to `step` (an overtaken tier goes out with the next), each in tier
        order; answers the workflow's token with the number of responders paged for `step`."""
        store = self._d.store
        incident = store.get(incident_id)
        plan = EscalationPlan.from_dict(incident.escalation) if incident.escalation else None
        failures = 0
        if plan is not None and incident.status == Status.TRIGGERED:
            for due in steps_due(incident.sent_step, min(step, plan.total_steps - 1)):
                failures += self._send_one_step(incident_id, plan, due, give_up=receive_count >= MAX_PAGE_ATTEMPTS)
                incident = store.get(incident_id)
                if incident.status != Status.TRIGGERED:
                    break
        if failures:
            raise PageSendFailed(f"{incident_id}: {failures} SMS failed, retried from the queue")
        paged = sum(1 for p in store.pages_for(incident_id)
                    if p.purpose == Purpose.PAGE and p.step == step and p.state == PageState.SENT
                    and p.page_key.startswith(f"page#{incident.generation}#"))
        if token:
            self._d.workflows.complete_task(token, {"paged": paged, "status": incident.status})
        return paged

    def _send_one_step(self, incident_id: str, plan: EscalationPlan, step: int, give_up: bool) -> int:
        store = self._d.store
        tier = plan.tier_of_step(step)
        recipients = who_to_page(plan.responders_of_step(step), self._d.contacts(plan.responders_of_step(step)))
        self._record_step_start(incident_id, plan, step, tier, recipients.skipped)
        failures = 0
        for contact in recipients.pageable:
            outcome = self._page(incident_id, contact, Purpose.PAGE, tier, step, self._page_text)
            if outcome == "stop":
                return 0
            failures += outcome == "failed"
        if failures and not give_up:
            return failures

        def finish(incident: Incident) -> Transition | None:
            if incident.sent_step >= step:
                return None
            return Transition(replace(incident, sent_step=step))

        store.record(incident_id, finish)
        return 0

    def _record_step_start(self, incident_id: str, plan: EscalationPlan, step: int, tier: int,
                           skipped: tuple[tuple[str, str], ...]) -> None:
        """The step's `escalated` event (steps after the first) and who it skipped, once per step."""
        def decide(incident: Incident) -> Transition | None:
            if incident.recorded_step >= step or incident.status != Status.TRIGGERED:
                return None
            events = []
            now = self._d.store.now()
            if step > 0:
                events.append(NewEvent(EventType.ESCALATED, {"tier": tier, "step": step,
                                                             "round": step // len(plan.tiers),
                                                             "trigger": _trigger(incident.escalation_owner, step)},
                                       at=now))
            for responder_id, reason in skipped:
                events.append(NewEvent(EventType.PAGE_SKIPPED, {"responder": responder_id, "reason": reason,
                                                                "tier": tier, "step": step}, at=now))
            return Transition(replace(incident, recorded_step=step), tuple(events))

        self._d.store.record(incident_id, decide)
        for responder_id, reason in skipped:
            log.info("page skipped", extra={"incident_id": incident_id, "responder": responder_id, "reason": reason})

    def _page_text(self, incident: Incident, purpose: str) -> str:
        lat, lng = self._lat_lng(incident.incident_id)
        if purpose == Purpose.EXHAUSTED:
            return exhausted_text(incident.reference, incident.kind, lat, lng, duress=incident.duress)
        return page_text(incident.reference, incident.kind, lat, lng, duress=incident.duress)

    def _page(self, incident_id: str, contact: ResponderContact, purpose: str, tier: int, step: int,
              text_for: Callable[[Incident, str], str], leased: bool = True) -> str:
        """One SMS under the paging lease: 'sent', 'skipped' (sent before), 'failed', or 'stop' (no longer due)."""
        store = self._d.store
        now = store.now()
        incident = store.get(incident_id)
        key = page_key(purpose, step, contact.id) if purpose != Purpose.PAGE else \
            f"page#{incident.generation}#{step:04d}#{contact.id}"
        existing = store.page(incident_id, key)
        if existing is not None and existing.state == PageState.SENT:
            return "skipped"
        page = Page(incident_id, key, contact.id, contact.phone, incident.code, purpose, tier, step,
                    PageState.SENDING.value, now)
        stale_before = iso(parse_iso(now) - timedelta(seconds=self._d.lease_s))
        claim = PageWrite(page, "claim", stale_before)
        started = time.monotonic()
        if leased:
            try:
                leased_incident = store.take_paging_lease(
                    incident_id, lambda i: i.status == Status.TRIGGERED, self._d.lease_s, claim,
                    Deadline.after(max(self._d.lease_s * 2, 10)))
            except PageConflict:
                return "skipped"
            if leased_incident is None:
                return "stop"
            incident = leased_incident
        else:
            try:
                store.put_page(claim)
            except PageConflict:
                return "skipped"
        text = text_for(incident, purpose)
        # Never start a publish that could still run when the lease ends: past it, an acknowledgement no longer
        # waits for us. A publish is bounded by its own timeouts (no botocore retry): SMS_PUBLISH_MAX_S.
        finish_by = started + self._d.lease_s - LEASE_MARGIN_S if leased else None
        try:
            message_id = self._d.sms.send(contact.phone, text, finish_by)
        except (SmsNotSent, SmsOutcomeUnknown) as exc:
            self._record_failure(incident_id, page, purpose, tier, exc, leased)
            return "failed"
        sent = page.sent(message_id, store.now())
        events = []
        if purpose in (Purpose.PAGE, Purpose.EXHAUSTED, Purpose.DURESS):
            events.append(NewEvent(EventType.PAGED, {"responder": contact.id, "name": contact.name, "tier": tier,
                                                     "step": step, "message_id": message_id,
                                                     **({"purpose": purpose} if purpose != Purpose.PAGE else {})},
                                   private={"to": contact.phone}))
        else:
            events.append(NewEvent(EventType.NOTICE_SENT, {"responder": contact.id, "purpose": purpose,
                                                           "message_id": message_id}, private={"to": contact.phone}))
        self._finish_send(incident_id, sent, events, tier, leased)
        if contact.voice or contact.email:
            self._schedule_delivery_check(incident, sent)
        return "sent"

    def _finish_send(self, incident_id: str, sent: Page, events: list[NewEvent], tier: int, leased: bool) -> None:
        store = self._d.store

        def decide(incident: Incident) -> Transition:
            changes = {"deliveries": _count_sent(incident.deliveries, tier)} if sent.purpose == Purpose.PAGE else {}
            if leased:
                changes["paging_since"] = None
            return Transition(replace(incident, **changes), tuple(events), pages=(PageWrite(sent, None),))

        store.record(incident_id, decide, Deadline.after(30))

    def _record_failure(self, incident_id: str, page: Page, purpose: str, tier: int, exc: Exception,
                        leased: bool) -> None:
        store = self._d.store
        log.warning("SMS publish failed", extra={"incident_id": incident_id, "to": mask_phone(page.phone),
                                                 "error": type(exc).__name__, "detail": str(exc)})
        failed = Page(**{**page.__dict__, "state": PageState.FAILED.value})
        event = NewEvent(EventType.PAGE_FAILED, {"responder": page.responder_id, "tier": tier, "step": page.step,
                                                 "purpose": purpose, "error": str(exc) or type(exc).__name__,
                                                 "sent": "unknown" if isinstance(exc, SmsOutcomeUnknown) else "no"},
                         private={"to": page.phone})

        def decide(incident: Incident) -> Transition:
            changes = {"paging_since": None} if leased else {}
            return Transition(replace(incident, **changes), (event,), pages=(PageWrite(failed, None),))

        store.record(incident_id, decide, Deadline.after(30))
        if self._d.failover is not None and purpose in (Purpose.PAGE, Purpose.EXHAUSTED, Purpose.DURESS):
            self._d.failover(store.get(incident_id), failed, "publish failed")

    def _schedule_delivery_check(self, incident: Incident, page: Page) -> None:
        plan = EscalationPlan.from_dict(incident.escalation) if incident.escalation else None
        delay = plan.delivery_timeout_s if plan else 30
        self._d.outbox.job({"action": "delivery_check", "incident_id": incident.incident_id,
                            "page_key": page.page_key}, delay_s=delay)

    # --- exhaustion --------------------------------------------------------------------------------------------
    def send_exhausted(self, incident_id: str, step: int, receive_count: int = 1) -> None:
        store = self._d.store
        incident = store.get(incident_id)
        if incident.status != Status.TRIGGERED or not incident.escalation_exhausted:
            return
        plan = EscalationPlan.from_dict(incident.escalation)
        recipients = who_to_page(plan.everyone(), self._d.contacts(plan.everyone()))

        def record_exhaustion(current: Incident) -> Transition | None:
            if current.exhausted_notified:
                return None
            now = store.now()
            events = [NewEvent(EventType.ESCALATION_EXHAUSTED, {"steps": step}, at=now)]
            events += [NewEvent(EventType.PAGE_SKIPPED, {"responder": r, "reason": why, "purpose": "exhausted"}, at=now)
                       for r, why in recipients.skipped]
            return Transition(replace(current, exhausted_notified=True), tuple(events), result=True)

        _, first_time = store.record(incident_id, record_exhaustion)
        if first_time:
            count("EscalationExhausted")  # alarmed on in infra/deployment.yaml; once per incident
            if incident.has_callback_phone and not incident.duress:
                self._d.outbox.page({"action": SHOPPER, "incident_id": incident_id, "event": "exhausted"})
            if plan.dispatch_on_exhaustion and self._dispatch_on_exhaustion is not None:
                self._dispatch_on_exhaustion(store.get(incident_id))
        failures = 0
        for contact in recipients.pageable:
            outcome = self._page(incident_id, contact, Purpose.EXHAUSTED, 0, step, self._page_text)
            if outcome == "stop":
                return
            failures += outcome == "failed"
        if failures and receive_count < MAX_PAGE_ATTEMPTS:
            raise PageSendFailed(f"{incident_id}: {failures} exhaustion pages failed")

    # --- notices -------------------------------------------------------------------------------------------------
    def send_notice(self, incident_id: str, purpose: str, to: list[str] | None, key: str = "") -> None:
        """Notices are not pages: they go whatever the status (a cancellation is news after the fact), each once."""
        store = self._d.store
        incident = store.get(incident_id)
        if to is None:
            # Everyone already paged (cancellation, duress), from the page records.
            to = list(dict.fromkeys(p.responder_id for p in store.pages_for(incident_id)
                                    if p.purpose in (Purpose.PAGE, Purpose.EXHAUSTED, Purpose.DURESS)
                                    and p.state == PageState.SENT))
            if purpose == Purpose.DURESS and incident.acknowledged_by:
                to.append(incident.acknowledged_by)
        recipients = who_to_page(to, self._d.contacts(to))
        lat, lng = self._lat_lng(incident_id)
        texts = {
            Purpose.CANCELLED: lambda i, _p: cancelled_text(i.reference),
            Purpose.DURESS: lambda i, _p: duress_notice_text(i.reference, i.kind, lat, lng),
            Purpose.PRESSED: lambda i, _p: pressed_again_text(i.reference, lat, lng),
            Purpose.REMINDER: lambda i, _p: reminder_text(i.reference, max(1, _ack_timeout_min(i))),
            Purpose.DISPATCH: lambda i, _p: dispatch_failed_text(i.reference, lat, lng),
        }
        if recipients.skipped:
            store.append(incident_id, *[NewEvent(EventType.PAGE_SKIPPED, {"responder": r, "reason": why,
                                                                          "purpose": purpose})
                                        for r, why in recipients.skipped])
        failures = 0
        for contact in recipients.pageable:
            step = _notice_step(key)
            outcome = self._page(incident_id, contact, purpose, 0, step, texts[purpose], leased=False)
            failures += outcome == "failed"
        if failures:
            raise PageSendFailed(f"{incident_id}: {failures} notices failed")

    def send_shopper(self, incident_id: str, event: str, key: str = "") -> None:
        """Status SMS to the shopper's callback phone: acknowledged, exhausted, resolved, dispatch. Never after a
        duress PIN: whoever holds her phone must not learn that help is on the way."""
        store = self._d.store
        incident = store.get(incident_id)
        phone = store.personal(incident_id).get("callback_phone")
        if not phone or incident.duress:
            return
        text = {
            "acknowledged": lambda: acknowledged_sms(incident.reference, incident.acknowledged_by_name),
            "exhausted": lambda: exhausted_sms(incident.reference),
            "resolved": lambda: resolved_sms(incident.reference),
            "psap_contacted": lambda: dispatch_sms(incident.reference, "psap_contacted"),
        }[event]()
        if not text:
            return
        contact = ResponderContact("shopper", "shopper", phone)
        step = _notice_step(key or str(incident.ack_count))
        outcome = self._page(incident_id, contact, f"{Purpose.SHOPPER.value}-{event}", 0, step,
                             lambda _i, _p: text, leased=False)
        if outcome == "failed":
            raise PageSendFailed(f"{incident_id}: shopper SMS failed")

    def send_test(self, responder_id: str, key: str) -> None:
        contact = self._d.contacts([responder_id]).get(responder_id)
        if contact is None or not contact.pageable:
            log.info("test page skipped", extra={"responder": responder_id})
            return
        store = self._d.store
        page = Page(f"test:{responder_id}", f"test#{key}", responder_id, contact.phone, "TEST", Purpose.TEST, 0, 0,
                    PageState.SENDING.value, store.now())
        try:
            store.put_page(PageWrite(page, "claim", store.now()))
        except PageConflict:
            return
        message_id = self._d.sms.send(contact.phone, test_page_text())
        store.put_page(PageWrite(page.sent(message_id, store.now()), None))

    def _lat_lng(self, incident_id: str) -> tuple[float | None, float | None]:
        """The latest location, read when the page is sent, so each tier's page shows where the shopper is now."""
        location = self._d.store.personal(incident_id).get("location")
        if not location:
            return None, None
        return float(location["lat"]), float(location["lng"])


def _trigger(execution: str | None, step: int) -> str:
    """Why a step was reached, from the name of the execution that claimed it (services name them by cause)."""
    name = execution or ""
    if name.endswith(f"-{step}"):
        if "-esc-" in name:
            return "manual"
        if "-press-" in name:
            return "pressed_again"
    if "-resume-" in name:
        return "ack_expired"
    return "timeout"


def _count_sent(deliveries: dict, tier: int) -> dict:
    stats = dict(deliveries or {})
    entry = dict(stats.get(str(tier), {"sent": 0, "delivered": 0, "failed": 0, "delivery_s": []}))
    entry["sent"] = int(entry.get("sent", 0)) + 1
    stats[str(tier)] = entry
    return stats


def _notice_step(key: str) -> int:
    """Notices are keyed per occasion (the second reminder is a new SMS; a redelivered request is not)."""
    digits = "".join(c for c in str(key) if c.isdigit())
    return int(digits[-6:]) if digits else 0


def _ack_timeout_min(incident: Incident) -> int:
    plan = EscalationPlan.from_dict(incident.escalation) if incident.escalation else None
    return round((plan.ack_timeout_s or 60) / 60) if plan else 1

