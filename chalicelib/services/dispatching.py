"""Emergency dispatch through an alarm-dispatch provider (adapters/dispatch.py): request it (a responder, an admin,
`911 <code>` by SMS, or the policy on exhaustion), place it with the provider from the jobs queue, forward every
later location, cancel it when the shopper cancels with her PIN, and follow the provider's status webhooks.

A provider outage is retried (from the jobs queue) and then recorded as `dispatch_failed`, and whoever asked is told
by SMS to call 911 themselves: never a silent failure.
"""

from __future__ import annotations

import logging
import secrets
import time

from chalicelib.adapters.store import IncidentStore
from chalicelib.domain import dispatch as rules
from chalicelib.domain.errors import NotFound, Unavailable
from chalicelib.domain.incidents import Actor, Incident
from chalicelib.domain.paging import Purpose
from chalicelib.observability import count

log = logging.getLogger(__name__)

MAX_PLACE_ATTEMPTS = 3
IN_PROCESS_RETRIES = 2


class Dispatching:
    def __init__(self, store: IncidentStore, outbox, provider_factory, webhook_secret: str | None):
        self._store = store
        self._outbox = outbox
        self._provider_factory = provider_factory
        self._webhook_secret = webhook_secret

    @property
    def provider(self):
        provider = self._provider_factory()
        if provider is None:
            raise Unavailable("emergency dispatch is not configured")
        return provider

    @staticmethod
    def new_id() -> str:
        return f"dsp_{secrets.token_hex(8)}"

    def provider_name(self) -> str:
        return self.provider.name

    def request(self, incident: Incident, actor: Actor, reason: str | None = None, automatic: bool = False) -> dict:
        dispatch_id = self.new_id()
        provider_name = self.provider_name()
        incident, dispatch = self._store.record(
            incident.incident_id, lambda i: rules.request(i, actor, dispatch_id, provider_name, self._store.now(),
                                                          automatic, reason))
        self.after_request(incident, dispatch_id)
        return rules.view(dispatch)

    def after_request(self, incident: Incident, dispatch_id: str) -> None:
        count("DispatchRequested", automatic=str(bool((incident.dispatch or {}).get("automatic"))).lower())
        self._outbox.job({"action": "dispatch_place", "incident_id": incident.incident_id, "dispatch_id": dispatch_id})

    def request_on_exhaustion(self, incident: Incident) -> None:
        if not incident.has_location or rules.active_dispatch(incident) is not None or self._provider_factory() is None:
            return
        try:
            self.request(incident, Actor("system", "escalation"), automatic=True)
        except Exception:  # noqa: BLE001 - exhaustion already told everyone; a dispatch that cannot start is logged
            log.exception("automatic dispatch on exhaustion failed", extra={"incident_id": incident.incident_id})

    # --- jobs ----------------------------------------------------------------------------------------------------
    def place(self, incident_id: str, dispatch_id: str, receive_count: int = 1) -> None:
        from chalicelib.adapters.dispatch import AlarmRequest, DispatchRejected, DispatchUnavailable

        incident = self._store.get(incident_id)
        dispatch = incident.dispatch or {}
        if dispatch.get("id") != dispatch_id or dispatch.get("status") not in rules.ACTIVE or dispatch.get("provider_id"):
            return
        personal = self._store.personal(incident_id)
        location = personal.get("location") or {}
        request = AlarmRequest(reference=incident.reference, kind=incident.kind, lat=float(location["lat"]),
                               lng=float(location["lng"]), accuracy_m=location.get("accuracy_m"),
                               phone=personal.get("callback_phone"), duress=incident.duress,
                               idempotency_key=dispatch_id)
        error = None
        for attempt in range(IN_PROCESS_RETRIES + 1):
            try:
                alarm_id = self.provider.create_alarm(request)
                break
            except DispatchUnavailable as exc:
                error = f"provider unavailable ({exc})"
                time.sleep(0.2 * (attempt + 1))
            except DispatchRejected as exc:
                error = f"provider refused ({exc})"
                receive_count = MAX_PLACE_ATTEMPTS
                break
        else:
            alarm_id = None
        if alarm_id is not None:
            self._store.record(incident_id, lambda i: rules.placed(i, dispatch_id, alarm_id, self._store.now()))
            latest = self._store.personal(incident_id).get("location")
            if latest and latest != location:
                self._outbox.job({"action": "dispatch_location", "incident_id": incident_id, "location": latest})
            return
        if receive_count < MAX_PLACE_ATTEMPTS:
            raise Unavailable(f"dispatch {dispatch_id}: {error}; retried from the jobs queue")
        self._fail(incident, dispatch_id, error or "provider unavailable")

    def _fail(self, incident: Incident, dispatch_id: str, reason: str) -> None:
        updated, _ = self._store.record(incident.incident_id,
                                        lambda i: rules.fail(i, dispatch_id, reason, self._store.now()))
        count("DispatchFailed")
        log.error("dispatch failed", extra={"incident_id": incident.incident_id, "dispatch_id": dispatch_id,
                                            "error": reason})
        requester = (incident.dispatch or {}).get("requested_by", "")
        to = [requester.split(":", 1)[1]] if requester.startswith("responder:") else None
        if to is None:
            # Nobody in particular asked (the policy did, or an admin): everyone the plan names is told.
            to = list(incident.responder_ids)
        self._outbox.page({"action": "notice", "incident_id": incident.incident_id, "purpose": Purpose.DISPATCH,
                           "to": to, "key": str(updated.last_seq)})

    def forward_location(self, incident: Incident, location: dict) -> None:
        dispatch = rules.active_dispatch(incident)
        if dispatch is not None and dispatch.get("provider_id"):
            self._outbox.job({"action": "dispatch_location", "incident_id": incident.incident_id,
                              "location": location})

    def send_location(self, incident_id: str, location: dict) -> None:
        incident = self._store.get(incident_id)
        dispatch = rules.active_dispatch(incident)
        if dispatch is None or not dispatch.get("provider_id"):
            return
        self.provider.add_location(dispatch["provider_id"], float(location["lat"]), float(location["lng"]),
                                   location.get("accuracy_m"))

    def cancel_for_shopper(self, incident: Incident) -> None:
        """The shopper cancelled with her PIN (never a duress PIN): stand the dispatch down."""
        dispatch = rules.active_dispatch(incident)
        if dispatch is None:
            return
        self._store.record(incident.incident_id, lambda i: rules.update_status(i, rules.CANCELLED, self._store.now(),
                                                                               "shopper:cancel"))
        if dispatch.get("provider_id"):
            self._outbox.job({"action": "dispatch_cancel", "incident_id": incident.incident_id,
                              "alarm_id": dispatch["provider_id"]})

    def send_cancel(self, alarm_id: str) -> None:
        self.provider.cancel(alarm_id, "cancelled by the shopper")

    # --- the provider's webhook ----------------------------------------------------------------------------------
    def _link(self, alarm_id: str, attempts: int = 8, pause_s: float = 0.25):
        """The incident an alarm belongs to. A provider can call back before the service has recorded the alarm's id
        (its create answer is still on the way): look again for a moment before calling it unknown."""
        for attempt in range(attempts):
            link = self._store.lookup(rules.link_key(alarm_id))
            if link is not None or attempt == attempts - 1:
                return link
            time.sleep(pause_s)
        return None

    def webhook(self, body: bytes, signature: str | None) -> dict:
        """Verifies the provider's signature over the raw body, then moves the dispatch forward. A status that
        arrives late or twice changes nothing (statuses only move forward)."""
        from chalicelib.adapters.dispatch import verify_webhook

        if not self._webhook_secret:
            raise Unavailable("dispatch webhooks are not configured")
        event = verify_webhook(body, signature, self._webhook_secret, int(time.time()))
        link = self._link(event.alarm_id)
        if link is None:
            log.warning("webhook for an unknown alarm", extra={"alarm_id": event.alarm_id})
            raise NotFound("unknown alarm")
        status = rules.CANCELLED if event.status == "cancelled" else event.status
        updated, changed = self._store.record(
            link.incident_id, lambda i: rules.update_status(i, status, self._store.now(), "provider:webhook",
                                                          event.alarm_id))
        if changed and status == rules.PSAP_CONTACTED and updated.has_callback_phone and not updated.duress:
            self._outbox.page({"action": "shopper", "incident_id": updated.incident_id, "event": "psap_contacted"})
        return {"dispatch": rules.view(updated.dispatch)} if updated.dispatch else {}
