"""The shopper's side: open an incident (or join the one already open), read it, add locations, notes and
evidence, cancel it (with the cancel PIN, or the duress PIN).

Opening is one DynamoDB transaction and one StartExecution. Idempotency lives in that transaction: the incident id
derives from the owner and the Idempotency-Key, and a key claim holding the request's fingerprint is written with
it, so a retry (at any age) finds the claim and gets the same incident, and the same key with another body is 409,
never an old incident passed off as the new emergency. A shopper's open life-safety incident is a claim too
(`open#<owner>`), so a second press within 30 minutes joins it instead of opening another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import replace
from typing import Any

from chalicelib.adapters.store import (
    Claim,
    ClaimTaken,
    Conflict,
    IncidentStore,
    idempotency_key,
    open_incident_key,
    reference_key,
)
from chalicelib.domain import incidents as lifecycle
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import (
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from chalicelib.domain.escalation import EscalationPlan, TierPlan, freeze_plan
from chalicelib.domain.incidents import (
    KIND_RULES,
    PRESS_AGAIN_WINDOW,
    Actor,
    Incident,
    Status,
    Transition,
    hash_pin,
    initial_status,
    looks_like_reference,
    new_reference,
    pin_matches,
)
from chalicelib.domain.paging import Purpose
from chalicelib.domain.timeline import EventType, NewEvent
from chalicelib.observability import count, mask_location
from chalicelib.services.access import Access, Principal
from chalicelib.services.views import attachment_view, frozen_owner_view, incident_view

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 20
TEST_TIMEOUT_S = 300
LOCATION_TRAIL = 50


def request_fingerprint(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def derived_id(prefix: str, owner: str, key: str) -> str:
    digest = hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()[:20]
    return f"{prefix}_{digest}"


class IncidentIntake:
    def __init__(self, store: IncidentStore, admin, escalation, outbox, access: Access, lease_s: float,
                 pin_max_checks: int, evidence=None, dispatching=None):
        self._store = store
        self._admin = admin
        self._escalation = escalation
        self._outbox = outbox
        self._access = access
        self._lease_s = lease_s
        self._pin_max_checks = pin_max_checks
        self._evidence = evidence
        self.dispatching = dispatching

    # --- open ----------------------------------------------------------------------------------------------------
    def open(self, principal: Principal, body, idempotency_key_header: str | None) -> tuple[dict, int]:
        """(view, 201) for a new incident or a replay of the request that opened it; (view, 200) when it joined
        the shopper's open incident (contract 4.2, "pressing again")."""
        rule = KIND_RULES[body.kind]
        if not rule.public and not (body.kind == "test" and principal.role == "admin"):
            raise ValidationFailed.field("kind", f"{body.kind} cannot be opened through the API")
        request = body.model_dump(mode="json")
        fingerprint = request_fingerprint(request)
        if idempotency_key_header is None:
            incident_id = f"inc_{secrets.token_hex(10)}"
        else:
            incident_id = derived_id("inc", principal.sub, idempotency_key_header)
        return self.open_for(principal.sub, body.kind, request, fingerprint, incident_id,
                             keyed=idempotency_key_header is not None, actor=Actor(principal.role, principal.sub))

    def open_for(self, owner: str, kind: str, request: dict, fingerprint: str, incident_id: str, keyed: bool,
                 actor: Actor, check_in_id: str | None = None) -> tuple[dict, int]:
        now = self._store.now()
        rule = KIND_RULES[kind]
        status = initial_status(kind)
        location = request.get("location")
        incident = Incident(
            incident_id, "", kind, rule.severity, status.value, owner, now, request_hash=fingerprint,
            order_id=request.get("order_id"), has_location=location is not None,
            has_callback_phone=request.get("callback_phone") is not None, check_in_id=check_in_id,
            test_responder=request.get("test_responder"))
        if request.get("cancel_pin"):
            incident = replace(incident, cancel_pin_hash=hash_pin(request["cancel_pin"], incident_id))
        if request.get("duress_pin"):
            incident = replace(incident, duress_pin_hash=hash_pin(request["duress_pin"], incident_id))
        created = {"kind": kind, "severity": rule.severity, "status": status.value}
        if rule.paged:
            incident, created = self._with_plan(incident, created, now)
        personal = {
            "location": {**location, "at": now} if location else None,
            "locations": [{**location, "at": now}] if location else [],
            "description": request.get("description"),
            "callback_phone": request.get("callback_phone"),
        }
        events = [NewEvent(EventType.CREATED, created, str(actor), now)]
        if rule.paged and not incident.escalation:
            # No policy routes this kind (routing is not configured): say so loudly on the record, and on the
            # incident itself, rather than silently page nobody.
            log.error("no escalation policy for kind", extra={"incident_id": incident_id, "kind": kind})
            incident = replace(incident, escalation_exhausted=True, exhausted_notified=True)
            events.append(NewEvent(EventType.ESCALATION_EXHAUSTED, {"reason": "no policy routes this kind"}, at=now))
        claims = []
        if keyed:
            claims.append(Claim(idempotency_key(incident_id), incident_id, now, {"request_hash": fingerprint}))
        if rule.life_safety:
            cutoff = lifecycle.deadline_after(now, -PRESS_AGAIN_WINDOW.total_seconds())
            claims.append(Claim(open_incident_key(owner), incident_id, now, replaceable_before=cutoff))
        for _ in range(6):
            incident = replace(incident, reference=new_reference())
            try:
                stored = self._store.create(incident, events, personal,
                                            [Claim(reference_key(incident.reference), incident_id, now), *claims])
                break
            except Conflict:
                return self._replay(incident_id, fingerprint)
            except ClaimTaken as taken:
                if taken.key == idempotency_key(incident_id):
                    return self._replay(incident_id, fingerprint)
                if taken.key == open_incident_key(owner):
                    joined = self._press_again(owner, actor, location, incident_id if keyed else None, fingerprint)
                    if joined is not None:
                        return joined
                    # The incident the marker names is closed: take the marker over, from that incident only.
                    marker = self._store.lookup(open_incident_key(owner))
                    claims = [replace(c, replaces=marker.incident_id if marker else None)
                              if c.key == open_incident_key(owner) else c for c in claims]
                # Otherwise a reference collision: draw another.
        else:
            raise Unavailable("could not allocate a reference number")
        count("IncidentOpened", kind=kind)
        log.info("incident opened", extra={"incident_id": incident_id, "kind": kind,
                                           "approx_location": mask_location(*(_lat_lng(location)))})
        if stored.status == Status.TRIGGERED and stored.escalation:
            self._escalation.start_or_defer(stored)
        # The personal data just written, not read back: the hot path is the transaction and StartExecution only.
        return {"incident": incident_view(stored, personal, for_owner=True)}, 201

    def _with_plan(self, incident: Incident, created: dict, now: str) -> tuple[Incident, dict]:
        if incident.test_responder is not None:
            # The smoke test's incident pages its one responder, whatever the routing says (or if there is none).
            plan = EscalationPlan("test", (TierPlan(TEST_TIMEOUT_S, (incident.test_responder,)),))
            return replace(incident, policy_id="test", escalation=plan.to_dict(), responder_ids=plan.everyone()), \
                {**created, "policy": "test"}
        found = self._admin.plan_for_kind(incident.kind)
        if found is None:
            return incident, {**created, "policy": None}
        policy, schedules = found
        plan = freeze_plan(policy, schedules, parse_iso(now), only_responder=incident.test_responder)
        incident = replace(incident, policy_id=policy.id, escalation=plan.to_dict(), responder_ids=plan.everyone())
        return incident, {**created, "policy": policy.id}

    def _replay(self, incident_id: str, fingerprint: str) -> tuple[dict, int]:
        """The same Idempotency-Key again: the same incident if the body is the same, at any age; 409 otherwise."""
        claim = self._store.lookup(idempotency_key(incident_id))
        if claim is None:
            raise Unavailable("the same request is still being stored, retry shortly")
        if claim.body.get("request_hash") != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used with a different body")
        incident = self._store.get(claim.incident_id)
        if incident.status == Status.TRIGGERED and incident.escalation and incident.escalation_step < 0:
            # The first attempt may have died between its write and StartExecution: start it (same name: once).
            self._escalation.start_or_defer(incident)
        status = 201 if claim.incident_id == incident_id else 200
        return {"incident": incident_view(incident, self._store.personal(claim.incident_id), for_owner=True)}, status

    def _press_again(self, owner: str, actor: Actor, location: dict | None, keyed_id: str | None,
                     fingerprint: str) -> tuple[dict, int] | None:
        """Joins the shopper's open life-safety incident: records the press (with the new location) and, while
        nobody has acknowledged, escalates to the next tier at once. None when that incident is closed."""
        marker = self._store.lookup(open_incident_key(owner))
        if marker is None:
            return None
        now = self._store.now()
        claims = (Claim(idempotency_key(keyed_id), marker.incident_id, now, {"request_hash": fingerprint}),) \
            if keyed_id else ()

        def decide(incident: Incident) -> Transition | None:
            if not incident.is_open or incident.duress:
                return None
            transition = lifecycle.press_again(incident, actor, location, now)
            personal = None
            if location:
                personal = self._personal_with_location(incident.incident_id, location, now)
            return replace(transition, personal=personal, claims=claims, result=True)

        try:
            incident, joined = self._store.record(marker.incident_id, decide)
        except Exception as exc:
            from chalicelib.domain.errors import DuplicateMessage

            if isinstance(exc, DuplicateMessage) and keyed_id:
                return self._replay(keyed_id, fingerprint)
            raise
        if not joined:
            return None
        count("PressedAgain")
        if incident.status == Status.TRIGGERED and incident.escalation:
            self._escalation.escalate_now(incident, cause="press")
        elif incident.status == Status.ACKNOWLEDGED and incident.acknowledged_by:
            self._outbox.page({"action": "notice", "incident_id": incident.incident_id, "purpose": Purpose.PRESSED,
                               "to": [incident.acknowledged_by], "key": str(incident.pressed_again)})
        if location and self.dispatching is not None:
            self.dispatching.forward_location(incident, location)
        return {"incident": incident_view(incident, self._store.personal(incident.incident_id), for_owner=True)}, 200

    def _personal_with_location(self, incident_id: str, location: dict, now: str) -> dict:
        personal = self._store.personal(incident_id)
        point = {**location, "at": now}
        trail = (list(personal.get("locations") or []) + [point])[-LOCATION_TRAIL:]
        return {**personal, "location": point, "locations": trail}

    # --- read ----------------------------------------------------------------------------------------------------
    def resolve_id(self, id_or_reference: str) -> str:
        if looks_like_reference(id_or_reference):
            incident_id = self._store.id_for_reference(id_or_reference)
            if incident_id is None:
                raise NotFound(f"incident {id_or_reference} not found")
            return incident_id
        return id_or_reference

    def load_for(self, principal: Principal, id_or_reference: str, owner_only: bool = False) -> Incident:
        incident = self._store.get(self.resolve_id(id_or_reference))
        self._access.require_read(principal, incident, owner_only=owner_only)
        return incident

    def get(self, principal: Principal, id_or_reference: str) -> dict:
        incident = self.load_for(principal, id_or_reference)
        return {"incident": incident_view(incident, self._store.personal(incident.incident_id),
                                          for_owner=principal.role == "shopper")}

    # --- change --------------------------------------------------------------------------------------------------
    def add_location(self, principal: Principal, id_or_reference: str, location: dict) -> dict:
        incident = self.load_for(principal, id_or_reference, owner_only=True)
        now = self._store.now()

        def decide(current: Incident) -> Transition:
            # Read inside the decision: the incident's version condition makes this read-modify-write safe.
            personal = self._personal_with_location(current.incident_id, location, now)
            event = NewEvent(EventType.LOCATION_UPDATED, {}, f"shopper:{principal.sub}", now, private=dict(location))
            return Transition(replace(current, has_location=True), (event,), personal=personal, result=personal)

        updated, personal = self._store.record(incident.incident_id, decide)
        log.info("location updated", extra={"incident_id": incident.incident_id,
                                            "approx_location": mask_location(*_lat_lng(location))})
        if self.dispatching is not None:
            self.dispatching.forward_location(updated, location)
        return {"incident": incident_view(updated, personal, for_owner=True)}

    def add_note(self, principal: Principal, id_or_reference: str, text: str) -> dict:
        incident = self.load_for(principal, id_or_reference)
        self._access.require_write(principal, incident)
        self._store.append(incident.incident_id, NewEvent(EventType.NOTE_ADDED, {}, f"{principal.role}:{principal.sub}",
                                                          private={"text": text}))
        return {"note": {"text": text, "incident_id": incident.incident_id}}

    def add_attachment(self, principal: Principal, id_or_reference: str, body) -> dict:
        if self._evidence is None or not self._evidence.configured:
            raise Unavailable("evidence uploads are not configured")
        incident = self.load_for(principal, id_or_reference)
        self._access.require_write(principal, incident)
        attachment_id = f"att_{secrets.token_hex(8)}"
        key = f"incidents/{incident.incident_id}/{attachment_id}/{body.filename}"
        now = self._store.now()
        attachment = {"id": attachment_id, "key": key, "filename": body.filename, "content_type": body.content_type,
                      "size_bytes": body.size_bytes, "added_by": f"{principal.role}:{principal.sub}", "at": now}

        def decide(current: Incident) -> Transition:
            if len(current.attachments) >= MAX_ATTACHMENTS:
                raise ValidationFailed.field("attachments", f"an incident holds at most {MAX_ATTACHMENTS} attachments")
            event = NewEvent(EventType.ATTACHMENT_ADDED, {"attachment_id": attachment_id,
                                                          "content_type": body.content_type,
                                                          "size_bytes": body.size_bytes},
                             f"{principal.role}:{principal.sub}", now, private={"filename": body.filename})
            return Transition(replace(current, attachments=current.attachments + (attachment,)), (event,))

        self._store.record(incident.incident_id, decide)
        upload = self._evidence.presigned_upload(key, body.content_type, body.size_bytes)
        return {"attachment": attachment_view(attachment), "upload": upload}

    # --- cancel --------------------------------------------------------------------------------------------------
    def cancel(self, principal: Principal, id_or_reference: str, pin: str | None, reason: str | None) -> dict:
        incident = self.load_for(principal, id_or_reference, owner_only=True)
        actor = Actor("shopper", principal.sub)
        if incident.duress:
            # Cancelled as far as her phone can tell: the answer a repeat cancel gets, and nothing changes.
            return self._owner_answer(incident.incident_id)
        if incident.cancel_pin_hash is not None or incident.duress_pin_hash is not None:
            if self._check_pin(incident, pin, actor) == "duress":
                return self._signal_duress(incident, actor)
        if incident.status == Status.CANCELLED:
            # A retry (say after a 503 while queueing the notices): the same answer, and the notices are queued
            # again; each responder's notice is claimed once, so nobody gets two.
            self._outbox.page({"action": "notice", "incident_id": incident.incident_id,
                               "purpose": Purpose.CANCELLED, "to": None})
            return self._owner_answer(incident.incident_id)
        was_open = incident.is_open
        cancelled = self._store.cancel(incident.incident_id, actor, reason, self._lease_s)
        if was_open:
            self._outbox.page({"action": "notice", "incident_id": incident.incident_id,
                               "purpose": Purpose.CANCELLED, "to": None})
        if self.dispatching is not None:
            self.dispatching.cancel_for_shopper(cancelled)
        count("IncidentCancelled", kind=incident.kind)
        return self._owner_answer(incident.incident_id)

    def _owner_answer(self, incident_id: str) -> dict:
        incident = self._store.get(incident_id)
        return {"incident": incident_view(incident, self._store.personal(incident_id), for_owner=True)}

    def _check_pin(self, incident: Incident, pin: str | None, actor: Actor) -> str:
        """'cancel' or 'duress'; raises Forbidden (wrong PIN, recorded) or RateLimited (locked). Each check is
        reserved by a conditional write before its result counts, so at most `pin_max_checks` are ever made."""
        from chalicelib.domain.errors import RateLimited

        if incident.pin_checks >= self._pin_max_checks:
            raise RateLimited("too many wrong PINs; cancelling is locked for this incident")
        # The slow hash runs once, outside the retry loop; the PIN and salt never change.
        if pin is not None and pin_matches(pin, incident.incident_id, incident.duress_pin_hash):
            outcome = "duress"
        elif pin is not None and pin_matches(pin, incident.incident_id, incident.cancel_pin_hash):
            outcome = "cancel"
        elif incident.cancel_pin_hash is None and pin is None:
            outcome = "cancel"
        else:
            outcome = "wrong"

        def decide(current: Incident) -> Transition:
            reserved = lifecycle.record_pin_check(current, self._pin_max_checks)
            if outcome != "wrong":
                return Transition(reserved)
            return Transition(reserved, (NewEvent(EventType.CANCEL_REJECTED,
                                                  {"reason": "missing PIN" if pin is None else "wrong PIN",
                                                   "checks": reserved.pin_checks}, str(actor)),))

        self._store.record(incident.incident_id, decide)
        if outcome == "wrong":
            raise Forbidden("wrong PIN")
        return outcome

    def _signal_duress(self, before: Incident, actor: Actor) -> dict:
        """Answers exactly as the cancel PIN would have (200 cancelled; 409 for a resolved incident), while the
        incident stays open for responders: sev1, DURESS, escalation going on (or starting over if it was closed),
        and everyone already paged told. No cancellation notice, no dispatch stand-down, no SMS to her phone."""
        incident_id = before.incident_id
        incident = self._store.signal_duress(incident_id, actor, frozen_owner_view)
        count("DuressSignalled")
        log.warning("duress PIN used", extra={"incident_id": incident_id})
        if not before.is_open:
            if not incident.escalation:
                incident = self._store.record(incident_id, self._plan_for_duress)[0]
            if incident.escalation:
                self._escalation.start_or_defer(incident, name=f"{incident_id}-gen-{incident.generation}")
        # Everyone already paged (and the acknowledger) is told; pages sent from now on say DURESS themselves.
        self._outbox.page({"action": "notice", "incident_id": incident_id, "purpose": Purpose.DURESS, "to": None})
        if before.status == Status.RESOLVED:
            lifecycle.cancel(before, actor, None, self._store.now(), self._lease_s)  # raises the real cancel's 409
        return self._owner_answer(incident_id)

    def _plan_for_duress(self, incident: Incident) -> Transition | None:
        if incident.escalation:
            return None
        found = self._admin.plan_for_kind("panic")
        if found is None:
            return None
        plan = freeze_plan(found[0], found[1], parse_iso(self._store.now()))
        return Transition(replace(incident, policy_id=found[0].id, escalation=plan.to_dict(),
                                  responder_ids=plan.everyone()))


def _lat_lng(location: dict | None) -> tuple[Any, Any]:
    return (location or {}).get("lat"), (location or {}).get("lng")

