"""Pages that reach people: carriers' delivery receipts, and failover to a voice call and email when a page fails or
is not delivered in time (contract 4.3).

Receipts come from SNS's SMS delivery status logs (docs/DEPLOY.md says why that source); each is matched to its page
by the SNS message id, recorded once (the first final status wins: a duplicate or late receipt changes nothing), and
counted per tier for review.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from chalicelib.adapters.store import IncidentStore, PageConflict
from chalicelib.domain.clock import seconds_between
from chalicelib.domain.escalation import ResponderContact
from chalicelib.domain.incidents import Incident, Transition
from chalicelib.domain.paging import Delivery, Page, PageWrite, Purpose
from chalicelib.domain.sms_texts import duress_notice_text, exhausted_text, page_text
from chalicelib.domain.timeline import EventType, NewEvent
from chalicelib.observability import count, mask_phone

log = logging.getLogger(__name__)
PAGING = (Purpose.PAGE.value, Purpose.EXHAUSTED.value, Purpose.DURESS.value)
# How long after its publish an SMS's page record may still lack the message id (the sender records it right after
# SNS answers the publish).
RECORD_GRACE_S = 2.0


class Deliveries:
    def __init__(self, store: IncidentStore, contacts, voice, mailer):
        self._store = store
        self._contacts = contacts
        self._voice = voice
        self._mailer = mailer

    def receipt(self, message_id: str, status: str, at: str | None = None, published_at: str | None = None) -> bool:
        """True if the receipt was recorded; False for an unknown message or a repeat (logged, nothing changes).
        `at`: when the carrier answered; `published_at`: when SNS published the SMS (both from the status log)."""
        if status not in (Delivery.DELIVERED, Delivery.FAILED):
            log.warning("delivery receipt with an unknown status ignored", extra={"status": status})
            return False
        page = self._page_for(message_id, published_at)
        if page is None:
            log.warning("delivery receipt for an unknown message", extra={"message_id": message_id})
            return False
        at = at or self._store.now()
        updated = replace(page, delivery=status, delivered_at=at)
        write = PageWrite(updated, "undelivered")
        if page.incident_id.startswith("test:"):
            try:
                self._store.put_page(write)
            except PageConflict:
                return False
            return True
        event_type = EventType.PAGE_DELIVERED if status == Delivery.DELIVERED else EventType.PAGE_FAILED
        details = {"responder": page.responder_id, "tier": page.tier, "message_id": message_id, "source": "carrier"}
        if page.purpose != Purpose.PAGE:
            details["purpose"] = page.purpose

        def decide(incident: Incident) -> Transition:
            deliveries = incident.deliveries
            if page.purpose == Purpose.PAGE:
                deliveries = _count_receipt(deliveries, page.tier, status, seconds_between(page.sent_at, at))
            return Transition(replace(incident, deliveries=deliveries),
                              (NewEvent(event_type, details, "carrier", at, private={"to": page.phone}),),
                              pages=(write,))

        try:
            incident, _ = self._store.record(page.incident_id, decide)
        except PageConflict:
            return False  # a repeat: the first final status stands
        count("PageDelivered" if status == Delivery.DELIVERED else "PageDeliveryFailed")
        if status == Delivery.FAILED and page.purpose in PAGING:
            self.failover(incident, updated, "carrier reported failure")
        return True

    def _page_for(self, message_id: str, published_at: str | None, pause_s: float = 0.3) -> Page | None:
        """The page a receipt is about. A fast carrier can answer before the sender has recorded the message id (and
        the index is eventually consistent), so a receipt for an SMS published less than RECORD_GRACE_S ago is looked
        up again briefly before being called unknown. Older ones are not: most receipts are for SMS that are no page
        at all (confirmations, replies, the shopper's updates) and arrive seconds after the publish, and waiting on
        each of them would hold the whole batch of log lines (it once took 1.5 s per line)."""
        looks = int(RECORD_GRACE_S / pause_s) + 1  # also bounds the wait when the clock does not move (tests)
        for _ in range(looks):
            page = self._store.page_by_message_id(message_id)
            if page is not None:
                return page
            age_s = seconds_between(published_at, self._store.now()) if published_at else None
            if age_s is None or age_s >= RECORD_GRACE_S:
                return None
            time.sleep(pause_s)
        return None

    def check(self, incident_id: str, page_key: str) -> None:
        """The delivery timeout: a page with no receipt by now fails over."""
        page = self._store.page(incident_id, page_key)
        if page is None or page.delivery == Delivery.DELIVERED or page.failover:
            return
        self.failover(self._store.get(incident_id), page, "not delivered in time")

    def failover(self, incident: Incident, page: Page, reason: str) -> None:
        """Calls (text-to-speech of the page) and/or emails the responder, each channel once per page."""
        contact: ResponderContact | None = self._contacts([page.responder_id]).get(page.responder_id)
        if contact is None or not contact.pageable:
            return
        channels = [c for c in (("voice" if contact.voice else None), ("email" if contact.email else None))
                    if c and c not in page.failover]
        if not channels:
            return
        location = self._store.personal(incident.incident_id).get("location") or {}
        lat, lng = location.get("lat"), location.get("lng")
        # The same words as the SMS that did not arrive.
        if page.purpose == Purpose.EXHAUSTED:
            text = exhausted_text(incident.reference, incident.kind, lat, lng, duress=incident.duress)
        elif page.purpose == Purpose.DURESS:
            text = duress_notice_text(incident.reference, incident.kind, lat, lng)
        else:
            text = page_text(incident.reference, incident.kind, lat, lng, duress=incident.duress)
        done, events = [], []
        for channel in channels:
            try:
                if channel == "voice":
                    reference = self._voice.call(contact.phone, text)
                else:
                    reference = self._mailer.send(contact.email, f"EMERGENCY {incident.reference}", text)
            except Exception as exc:  # noqa: BLE001 - one channel failing must not stop the other
                log.warning("failover failed", extra={"channel": channel, "to": mask_phone(contact.phone),
                                                      "error": type(exc).__name__})
                continue
            done.append(channel)
            events.append(NewEvent(EventType.PAGE_FAILOVER, {
                "channel": channel, "responder": contact.id, "tier": page.tier, "message_id": page.message_id,
                "failover_id": reference, "reason": reason},
                private={"to": contact.email if channel == "email" else contact.phone}))
        if not done:
            return
        record = replace(page, failover=tuple(page.failover) + tuple(done))
        self._store.record(incident.incident_id, lambda i: Transition(i, tuple(events), pages=(PageWrite(record),)))
        count("PageFailover")


def _count_receipt(deliveries: dict, tier: int, status: str, seconds: float | None) -> dict:
    stats = dict(deliveries or {})
    entry = dict(stats.get(str(tier), {"sent": 0, "delivered": 0, "failed": 0, "delivery_s": []}))
    key = "delivered" if status == Delivery.DELIVERED else "failed"
    entry[key] = int(entry.get(key, 0)) + 1
    if status == Delivery.DELIVERED and seconds is not None:
        # Bounded: per-tier metrics keep the first 50 delivery times of an incident.
        entry["delivery_s"] = (list(entry.get("delivery_s", [])) + [seconds])[:50]
    stats[str(tier)] = entry
    return stats
