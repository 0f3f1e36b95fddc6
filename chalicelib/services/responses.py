"""Responder use cases: acknowledge, resolve, escalate, over the API and by SMS reply.

The first acknowledgement wins: it is a conditional write (status must still be `triggered`), so of any number of
simultaneous ACKs exactly one commits; every other one re-reads the incident and is told who won.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from chalicelib.adapters.incident_store import (
    Change,
    IncidentStore,
    NewEvent,
    count_in_window,
    iso,
    leaving_triggered,
    utc_now,
)
from chalicelib.adapters.models import IncidentModel
from chalicelib.adapters.page_store import PageStore
from chalicelib.adapters.sms import SnsSmsSender
from chalicelib.domain.errors import AlreadyAcknowledged, Forbidden, InvalidTransition
from chalicelib.domain.escalation import EscalationSnapshot, ResponderContact
from chalicelib.domain.incidents import OPEN_STATUSES, Status, check_can_acknowledge, check_can_resolve
from chalicelib.domain.sms_commands import Action, SmsCommand, parse_sms_command, short_code
from chalicelib.domain.sms_texts import (
    ack_confirmation_text,
    already_acknowledged_text,
    already_closed_text,
    choose_incident_text,
    escalate_confirmation_text,
    help_text,
    no_open_incident_text,
    opted_in_text,
    opted_out_text,
    resolve_confirmation_text,
    unknown_code_text,
)
from chalicelib.domain.timeline import EventType
from chalicelib.observability import count, mask_phone, mask_text
from chalicelib.schemas import InboundSms
from chalicelib.services.admin import AdminService
from chalicelib.services.escalation import EscalationService
from chalicelib.services.views import incident_view

log = logging.getLogger(__name__)

# How far back a reply may refer to a page without naming its code.
REPLY_WINDOW = timedelta(hours=24)


class ResponseService:
    def __init__(
        self,
        store: IncidentStore,
        pages: PageStore,
        admin: AdminService,
        escalation: EscalationService,
        sender: SnsSmsSender,
        idempotency_persistence: Any,
        idempotency_config: Any,
        lease_s: int,
        replies_per_window: int,
        reply_window_s: int,
    ):
        self._store = store
        self._pages = pages
        self._admin = admin
        self._escalation = escalation
        self._sender = sender
        self._persistence = idempotency_persistence
        self._idempotency_config = idempotency_config
        self._lease_s = lease_s
        self._replies_per_window = replies_per_window
        self._reply_window_s = reply_window_s
        self._idempotent_inbound = None

    # --- authorisation -------------------------------------------------------------------------------------------
    def responder_for(self, responder_id: str) -> ResponderContact:
        contact = self._admin.contact(responder_id)
        if contact is None or not contact.active:
            raise Forbidden("you are not an active responder")
        return contact

    def _covers(self, incident: IncidentModel, responder: ResponderContact) -> bool:
        """A responder acts on incidents its policy covers (it is in the frozen snapshot) or it was paged for."""
        if incident.escalation:
            snapshot = EscalationSnapshot.from_dict(incident.escalation)
            if any(t.responder_id == responder.id for t in snapshot.all_targets()):
                return True
        return any(p.responder_id == responder.id for p in self._pages.for_incident(incident.incident_id))

    def _require_covered(self, incident: IncidentModel, responder: ResponderContact) -> None:
        if not self._covers(incident, responder):
            raise Forbidden("this incident was not routed to you")

    # --- transitions ---------------------------------------------------------------------------------------------
    def acknowledge(self, incident_id: str, responder: ResponderContact, via: str) -> IncidentModel:
        incident = self._store.get(incident_id)
        self._require_covered(incident, responder)
        actor = f"responder:{responder.id}"

        def decide(current: IncidentModel) -> Change | None:
            if current.status == Status.ACKNOWLEDGED and current.acknowledged_by == responder.id:
                return None  # the same responder again: nothing new
            if current.status == Status.ACKNOWLEDGED:
                raise AlreadyAcknowledged(
                    f"already acknowledged by {current.acknowledged_by_name}",
                    extra={"acknowledged_by": current.acknowledged_by, "acknowledged_by_name": current.acknowledged_by_name,
                           "acknowledged_at": current.acknowledged_at},
                )
            check_can_acknowledge(current.status)
            guard = leaving_triggered(current, self._lease_s)
            now = iso(utc_now())
            return Change(
                actions=self._ack_actions(responder, now),
                condition=(IncidentModel.status == Status.TRIGGERED.value) & guard,
                events=[NewEvent(EventType.ACKNOWLEDGED, {"via": via, "tier": int(current.escalation_tier), "name": responder.name},
                                 actor=actor, at=now)],
            )

        updated = self._store.record(incident_id, decide)
        if updated.acknowledged_by == responder.id and incident.status == Status.TRIGGERED:
            count("IncidentAcknowledged", kind=updated.kind, via=via)
            if self._store.personal(incident_id).get("callback_phone"):
                self._escalation.request_shopper_notice(incident_id)
        return updated

    def resolve(self, incident_id: str, responder: ResponderContact, outcome: str, note: str | None, via: str) -> IncidentModel:
        incident = self._store.get(incident_id)
        self._require_covered(incident, responder)
        actor = f"responder:{responder.id}"

        def decide(current: IncidentModel) -> Change:
            check_can_resolve(current.status)
            guard = leaving_triggered(current, self._lease_s)
            now = iso(utc_now())
            actions = [
                IncidentModel.status.set(Status.RESOLVED.value),
                IncidentModel.resolved_at.set(now),
                IncidentModel.resolved_by.set(responder.id),
                IncidentModel.outcome.set(outcome),
            ]
            events = []
            if current.status == Status.TRIGGERED:
                # Resolving implies acknowledging: the record shows both, in order.
                actions += self._ack_actions(responder, now)[1:]  # all but the status, which becomes resolved
                events.append(NewEvent(EventType.ACKNOWLEDGED, {"via": via, "tier": int(current.escalation_tier),
                                                                "name": responder.name, "implied_by": "resolve"}, actor=actor, at=now))
            events.append(NewEvent(EventType.RESOLVED, {"outcome": outcome, "via": via}, actor=actor, at=now,
                                   private={"note": note} if note else None))
            return Change(
                actions=actions,
                condition=(IncidentModel.status == current.status) & guard,
                events=events,
            )

        updated = self._store.record(incident_id, decide)
        count("IncidentResolved", kind=updated.kind, outcome=outcome)
        return updated

    def escalate(self, incident_id: str, responder: ResponderContact) -> int:
        incident = self._store.get(incident_id)
        self._require_covered(incident, responder)
        return self._escalation.escalate_now(incident)

    @staticmethod
    def _ack_actions(responder: ResponderContact, now: str) -> list:
        """The status change first: resolve reuses the rest."""
        return [
            IncidentModel.status.set(Status.ACKNOWLEDGED.value),
            IncidentModel.acknowledged_at.set(now),
            IncidentModel.acknowledged_by.set(responder.id),
            IncidentModel.acknowledged_by_name.set(responder.name),
        ]

    # --- API entry points ----------------------------------------------------------------------------------------
    def acknowledge_via_api(self, incident_id: str, responder_id: str) -> dict:
        return {"incident": incident_view(self.acknowledge(incident_id, self.responder_for(responder_id), "api"))}

    def resolve_via_api(self, incident_id: str, responder_id: str, outcome: str, note: str | None) -> dict:
        return {"incident": incident_view(self.resolve(incident_id, self.responder_for(responder_id), outcome, note, "api"))}

    def escalate_via_api(self, incident_id: str, responder_id: str) -> dict:
        tier = self.escalate(incident_id, self.responder_for(responder_id))
        return {"escalation": {"tier": tier}}

    # --- inbound SMS ---------------------------------------------------------------------------------------------
    def handle_inbound_sms(self, message: InboundSms) -> None:
        """Processes each inboundMessageId once (SNS may deliver twice)."""
        self._inbound_once()(message=message.model_dump())

    def _inbound_once(self):
        if self._idempotent_inbound is None:
            from aws_lambda_powertools.utilities.idempotency import idempotent_function

            @idempotent_function(
                data_keyword_argument="message", config=self._idempotency_config, persistence_store=self._persistence
            )
            def process(message: dict) -> dict:
                return {"outcome": self._process_sms(InboundSms(**message))}

            self._idempotent_inbound = process
        return self._idempotent_inbound

    def _process_sms(self, message: InboundSms) -> str:
        phone = message.originationNumber
        command = parse_sms_command(message.messageBody)
        responder = self._admin.contact_by_phone(phone)
        log.info("inbound SMS", extra={"from": mask_phone(phone), "action": command.action.value})

        if responder is None or not responder.active:
            self._reject(phone, message, command, "sender is not an active responder")
            return "rejected"
        if command.action == Action.STOP:
            return self._opt_out(responder, phone)
        if command.action == Action.START:
            self._admin.set_opted_out(responder.id, False)
            self._reply(phone, opted_in_text())
            return "opted_in"
        if command.action in (Action.HELP, Action.UNKNOWN):
            self._reply(phone, help_text())
            return "help"

        incident, reply = self._target_incident(responder, phone, message, command)
        if incident is None:
            self._reply(phone, reply)
            return "no_target"
        self._store.append(incident.incident_id, NewEvent(
            EventType.SMS_RECEIVED,
            {"from": mask_phone(phone), "command": command.action.value, "inbound_message_id": message.inboundMessageId},
            actor=f"responder:{responder.id}", private={"body": mask_text(message.messageBody[:500])},
        ))
        self._reply(phone, self._perform(incident, responder, command))
        return command.action.value

    def _perform(self, incident: IncidentModel, responder: ResponderContact, command: SmsCommand) -> str:
        reference = incident.reference
        try:
            if command.action == Action.ACK:
                self.acknowledge(incident.incident_id, responder, "sms")
                return ack_confirmation_text(reference)
            if command.action == Action.RESOLVE:
                self.resolve(incident.incident_id, responder, "other", command.note, "sms")
                return resolve_confirmation_text(reference)
            tier = self.escalate(incident.incident_id, responder)
            return escalate_confirmation_text(reference, tier)
        except AlreadyAcknowledged:
            current = self._store.get(incident.incident_id)
            return already_acknowledged_text(reference, current.acknowledged_by_name or "", current.acknowledged_at or "")
        except InvalidTransition:
            current = self._store.get(incident.incident_id)
            if current.status == Status.ACKNOWLEDGED and command.action == Action.ESCALATE:
                return already_acknowledged_text(reference, current.acknowledged_by_name or "", current.acknowledged_at or "")
            return already_closed_text(reference, current.status)

    def _target_incident(
        self, responder: ResponderContact, phone: str, message: InboundSms, command: SmsCommand
    ) -> tuple[IncidentModel | None, str]:
        """Which incident a reply means: the code it names; else the page it answers (previousPublishedMessageId);
        else the only open incident paged to this number."""
        paged = [i for i in (self._store.find(incident_id) for incident_id in self._recently_paged(phone)) if i is not None]
        if command.code:
            for incident in paged:
                if short_code(incident.reference) == command.code:
                    return incident, ""
            return None, unknown_code_text(command.code)
        if message.previousPublishedMessageId:
            page = self._pages.by_message_id(message.previousPublishedMessageId)
            if page is not None and page.phone == phone:
                incident = self._store.find(page.incident_id)
                if incident is not None:
                    return incident, ""
        open_incidents = [i for i in paged if i.status in OPEN_STATUSES]
        if command.action == Action.ACK:
            open_incidents = [i for i in open_incidents if i.status == Status.TRIGGERED] or open_incidents
        if len(open_incidents) == 1:
            return open_incidents[0], ""
        if not open_incidents:
            return None, no_open_incident_text()
        return None, choose_incident_text([i.reference for i in open_incidents])

    def _recently_paged(self, phone: str) -> list[str]:
        """Incidents paged to this number within the reply window, newest first, each once."""
        since = iso(utc_now() - REPLY_WINDOW)
        return list(dict.fromkeys(page.incident_id for page in self._pages.recent_for_phone(phone, since)))

    def _reject(self, phone: str, message: InboundSms, command: SmsCommand, reason: str) -> None:
        count("RejectedCommand")
        log.warning("SMS command rejected", extra={"from": mask_phone(phone), "reason": reason})
        if not command.code:
            return
        # Recorded on the newest incident with that code (codes live two days), so reviewers see spoofing attempts.
        incident_id = self._store.id_for_code(command.code)
        if incident_id is not None:
            self._store.append(incident_id, NewEvent(
                EventType.REJECTED_COMMAND,
                {"from": mask_phone(phone), "command": command.action.value, "reason": reason,
                 "inbound_message_id": message.inboundMessageId},
            ))

    def _opt_out(self, responder: ResponderContact, phone: str) -> str:
        self._admin.set_opted_out(responder.id, True)
        count("ResponderOptedOut")
        log.error("responder opted out of SMS: they receive no pages", extra={"responder": responder.id})
        for incident_id in self._recently_paged(phone):
            incident = self._store.find(incident_id)
            if incident is not None and incident.status in OPEN_STATUSES:
                self._store.append(incident_id, NewEvent(EventType.RESPONDER_OPTED_OUT, {"responder": responder.id}))
        self._reply(phone, opted_out_text())
        return "opted_out"

    def _reply(self, phone: str, text: str) -> None:
        # A cap on automatic answers per number stops two automated systems from texting each other forever.
        if not count_in_window(f"smsreply#{phone}", self._reply_window_s, self._replies_per_window):
            log.warning("reply cap reached, not answering", extra={"to": mask_phone(phone)})
            return
        try:
            self._sender.send(phone, text)
        except Exception:  # noqa: BLE001 - the command is done; a lost confirmation must not undo or repeat it
            log.exception("could not send SMS reply", extra={"to": mask_phone(phone)})
