"""The SMS inbox: a two-way SMS reply becomes one command and one answer (GoAlert's receiver, here).

1. parse the body (domain/sms_commands.py) and identify the sender by the registered number;
2. find the incident the reply means: the code it names (one index query on pages to this phone), else the page it
   answers (`previousPublishedMessageId`), else the only open incident paged to this number;
3. commit the received message and its effect (ACK, RES, ESC, 911) in ONE transaction with the message id as a claim:
   the message is recorded exactly once, never without its effect, and a redelivery changes nothing;
4. answer by SMS. Every command that changed something is confirmed, always; the cap on automatic replies applies
   only to HELP, unknown commands and refusals.

A write that cannot commit before the Lambda's own deadline raises, so SNS delivers the message again; nothing is
dropped. Commands that touch no incident (STOP, START, OK, HELP) are made idempotent by powertools' idempotency
utility, keyed on the message id.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from chalicelib.adapters.store import Alongside, Deadline, IncidentStore, message_claim_key, with_alongside
from chalicelib.domain import dispatch as dispatch_rules
from chalicelib.domain import incidents as lifecycle
from chalicelib.domain.clock import iso, parse_iso
from chalicelib.domain.errors import (
    AlreadyAcknowledged,
    DispatchActive,
    DuplicateMessage,
    Forbidden,
    InvalidTransition,
    ServiceError,
    ValidationFailed,
)
from chalicelib.domain.escalation import ResponderContact
from chalicelib.domain.incidents import Incident, Status
from chalicelib.domain.paging import Purpose
from chalicelib.domain.sms_commands import Action, SmsCommand, parse_sms_command
from chalicelib.domain.sms_texts import (
    ack_confirmation_text,
    already_acknowledged_text,
    already_closed_text,
    choose_incident_text,
    dispatch_active_text,
    dispatch_confirmation_text,
    escalate_confirmation_text,
    help_text,
    no_location_text,
    no_open_incident_text,
    opted_in_text,
    opted_out_text,
    refused_text,
    resolve_confirmation_text,
    unknown_code_text,
    verified_text,
)
from chalicelib.domain.timeline import EventType, NewEvent
from chalicelib.observability import count, mask_phone, mask_text
from chalicelib.services.access import responder_actor

log = logging.getLogger(__name__)

# How far back a reply may refer to a page.
REPLY_WINDOW = timedelta(hours=24)
STORED_BODY_CHARS = 500


class SmsInbox:
    def __init__(self, store: IncidentStore, admin, responding, dispatching, sms, reply_limiter, lease_s: float,
                 once=None):
        self._store = store
        self._admin = admin
        self._responding = responding
        self._dispatching = dispatching
        self._sms = sms
        self._limiter = reply_limiter
        self._lease_s = lease_s
        # powertools' idempotent wrapper for commands that touch no incident (see the module docstring).
        self._once = once or (lambda function, message: function(message))

    def receive(self, message, deadline: Deadline | None = None) -> str:
        deadline = deadline or Deadline.after(10)
        phone = message.originationNumber
        command = parse_sms_command(message.messageBody)
        responder = self._admin.contact_by_phone(phone)
        log.info("inbound SMS", extra={"from": mask_phone(phone), "action": command.action.value})
        if responder is None or not responder.active:
            self._reject(phone, message, command, "sender is not an active responder")
            return "rejected"
        if command.action in (Action.ACK, Action.RESOLVE, Action.ESCALATE, Action.DISPATCH):
            return self._incident_command(responder, phone, message, command, deadline)
        return self._once(lambda m: self._account_command(responder, phone, command), message)

    # --- commands about an incident --------------------------------------------------------------------------
    def _incident_command(self, responder: ResponderContact, phone: str, message, command: SmsCommand,
                          deadline: Deadline) -> str:
        incident, reply = self._target(responder, phone, message, command)
        if incident is None:
            self._answer(phone, reply, capped=True)
            return "no_target"
        received = NewEvent(EventType.SMS_RECEIVED, {"command": command.action.value,
                                                     "inbound_message_id": message.inboundMessageId},
                            f"responder:{responder.id}",
                            private={"from": phone, "body": mask_text(message.messageBody[:STORED_BODY_CHARS])})
        alongside = Alongside((received,), (message_claim_key(message.inboundMessageId),))
        actor = responder_actor(responder)
        now = self._store.now

        def decide(current: Incident):
            """The command's transition with the received message; a refusal still records the message."""
            try:
                if not current.covers(responder.id):
                    raise Forbidden("this incident was not routed to you")
                if command.action == Action.ACK:
                    transition = lifecycle.acknowledge(current, actor, "sms", now(), self._lease_s)
                    outcome = ("acknowledged", transition is not None)
                elif command.action == Action.RESOLVE:
                    transition = lifecycle.resolve(current, actor, "other", command.note, "sms", now(), self._lease_s)
                    outcome = ("resolved", True)
                elif command.action == Action.ESCALATE:
                    if current.status != Status.TRIGGERED:
                        raise InvalidTransition(f"incident is {current.status}, it cannot be escalated")
                    transition, outcome = None, ("escalate", True)
                else:
                    transition, outcome = self._dispatch_transition(current, actor)
            except ServiceError as refusal:
                transition, outcome = None, ("refused", refusal)
            return with_alongside(transition, current, alongside, result=outcome)

        try:
            updated, (what, detail) = self._store.record(incident.incident_id, decide, deadline, read=incident)
        except DuplicateMessage:
            log.info("inbound SMS already processed", extra={"inbound_message_id": message.inboundMessageId})
            return "duplicate"
        reference = updated.reference
        if what == "refused":
            self._answer(phone, self._refusal_text(updated, command, detail), capped=True)
            return "refused"
        if what == "acknowledged":
            if detail:
                self._responding.after_acknowledge(updated, "sms")
            self._answer(phone, ack_confirmation_text(reference))
        elif what == "resolved":
            self._responding.after_resolve(updated, "other")
            self._answer(phone, resolve_confirmation_text(reference))
        elif what == "escalate":
            tier = self._responding.escalate(updated)
            self._answer(phone, escalate_confirmation_text(reference, tier))
        else:
            self._dispatching.after_request(updated, detail)
            self._answer(phone, dispatch_confirmation_text(reference))
        return command.action.value

    def _dispatch_transition(self, incident: Incident, actor):
        provider = self._dispatching.provider_name()
        dispatch_id = self._dispatching.new_id()
        transition = dispatch_rules.request(incident, actor, dispatch_id, provider, self._store.now())
        return transition, ("dispatch", dispatch_id)

    def _refusal_text(self, incident: Incident, command: SmsCommand, refusal: ServiceError) -> str:
        reference = incident.reference
        if isinstance(refusal, AlreadyAcknowledged) or (
                isinstance(refusal, InvalidTransition) and incident.status == Status.ACKNOWLEDGED):
            return already_acknowledged_text(reference, incident.acknowledged_by_name or "", incident.acknowledged_at or "")
        if isinstance(refusal, DispatchActive):
            return dispatch_active_text(reference, (incident.dispatch or {}).get("status", "active"))
        if isinstance(refusal, ValidationFailed) and command.action == Action.DISPATCH:
            return no_location_text(reference)
        if isinstance(refusal, InvalidTransition):
            return already_closed_text(reference, incident.status)
        return refused_text(reference, refusal.message)

    def _target(self, responder: ResponderContact, phone: str, message,
                command: SmsCommand) -> tuple[Incident | None, str]:
        """Which incident a reply means: the code it names; else the page it answers; else the only open incident
        paged to this number."""
        since = iso(parse_iso(self._store.now()) - REPLY_WINDOW)
        if command.code:
            pages = self._store.pages_to_phone(phone, since, code=command.code, limit=1)
            incident_id = pages[0].incident_id if pages else self._store.id_for_code(command.code)
            incident = self._store.find(incident_id) if incident_id else None
            if incident is not None and incident.code == command.code and incident.covers(responder.id):
                return incident, ""
            return None, unknown_code_text(command.code)
        if message.previousPublishedMessageId:
            page = self._store.page_by_message_id(message.previousPublishedMessageId)
            if page is not None and page.phone == phone and not page.incident_id.startswith("test:"):
                incident = self._store.find(page.incident_id)
                if incident is not None:
                    return incident, ""
        recent = list(dict.fromkeys(p.incident_id for p in self._store.pages_to_phone(phone, since)
                                    if not p.incident_id.startswith("test:")))
        paged = [i for i in self._store.get_many(recent).values() if i.is_open]
        if command.action == Action.ACK:
            paged = [i for i in paged if i.status == Status.TRIGGERED] or paged
        if len(paged) == 1:
            return paged[0], ""
        if not paged:
            return None, no_open_incident_text()
        return None, choose_incident_text([i.reference for i in sorted(paged, key=lambda i: i.created_at)])

    # --- commands about the responder ----------------------------------------------------------------------------
    def _account_command(self, responder: ResponderContact, phone: str, command: SmsCommand) -> str:
        if command.action == Action.STOP:
            self._admin.set_opted_out(responder.id, True)
            count("ResponderOptedOut")
            log.error("responder opted out of SMS: no page reaches them until START",
                      extra={"responder": responder.id})
            since = iso(parse_iso(self._store.now()) - REPLY_WINDOW)
            recent = {p.incident_id for p in self._store.pages_to_phone(phone, since)}
            for incident in self._store.get_many(recent).values():
                if incident.is_open:
                    self._store.append(incident.incident_id,
                                       NewEvent(EventType.RESPONDER_OPTED_OUT, {"responder": responder.id}))
            self._answer(phone, opted_out_text())
            return "opted_out"
        if command.action == Action.START:
            self._admin.set_opted_out(responder.id, False)
            self._sms.opt_in(phone)
            self._answer(phone, opted_in_text())
            return "opted_in"
        if command.action == Action.OK:
            since = iso(parse_iso(self._store.now()) - REPLY_WINDOW)
            if any(p.purpose == Purpose.TEST for p in self._store.pages_to_phone(phone, since, code="TEST", limit=1)):
                self._admin.mark_verified(responder.id)
                self._answer(phone, verified_text())
                return "verified"
        self._answer(phone, help_text(), capped=True)
        return "help"

    # --- rejections and answers ----------------------------------------------------------------------------------
    def _reject(self, phone: str, message, command: SmsCommand, reason: str) -> None:
        count("RejectedCommand")
        log.warning("SMS command rejected", extra={"from": mask_phone(phone), "reason": reason})
        if not command.code:
            return
        # Recorded on the newest incident with that code (code hints live two days), so reviewers see spoofing.
        incident_id = self._store.id_for_code(command.code)
        if incident_id is None:
            return
        event = NewEvent(EventType.REJECTED_COMMAND, {"from": mask_phone(phone), "command": command.action.value,
                                                      "reason": reason, "inbound_message_id": message.inboundMessageId})
        try:
            self._store.record(incident_id, lambda i: replace(lifecycle.append(i, event),
                                                              claims=(message_claim_key(message.inboundMessageId),)))
        except DuplicateMessage:
            pass

    def _answer(self, phone: str, text: str, capped: bool = False) -> None:
        if capped and not self._limiter.allow(phone):
            log.warning("reply cap reached, not answering", extra={"to": mask_phone(phone)})
            return
        try:
            self._sms.send(phone, text)
        except Exception:  # noqa: BLE001 - the command is done; a lost answer must not undo or repeat it
            log.exception("could not send SMS reply", extra={"to": mask_phone(phone)})

