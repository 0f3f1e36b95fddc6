"""Check-ins (contract 4.2): "check on me in N minutes". Each has its own Step Functions timer (infra/timer.asl.json,
one execution named after the check-in) that puts `check_in_due` on the jobs queue at `due_at`; a check-in not
completed by then is missed and opens a `missed_check_in` incident at the last known location, paged like a panic.

A check-in costs what an incident costs: one write and one StartExecution.
"""

from __future__ import annotations

import logging
import secrets

from chalicelib.adapters.checkin_store import CheckInConflict, CheckInStore
from chalicelib.domain import checkins as rules
from chalicelib.domain.checkins import CheckIn
from chalicelib.domain.clock import plus_seconds
from chalicelib.domain.errors import Forbidden, IdempotencyKeyReused, NotFound, Unavailable
from chalicelib.domain.incidents import Actor
from chalicelib.observability import count
from chalicelib.services.access import Principal
from chalicelib.services.intake import derived_id, request_fingerprint

log = logging.getLogger(__name__)


class CheckIns:
    def __init__(self, store: CheckInStore, intake, workflows, clock):
        self._store = store
        self._intake = intake
        self._workflows = workflows
        self._now = clock

    def create(self, principal: Principal, body, idempotency_key: str | None) -> tuple[dict, int]:
        request = body.model_dump(mode="json")
        fingerprint = request_fingerprint(request)
        check_in_id = derived_id("chk", principal.sub, idempotency_key) if idempotency_key else \
            f"chk_{secrets.token_hex(10)}"
        now = self._now()
        check_in = CheckIn(check_in_id, principal.sub, rules.ACTIVE, now, plus_seconds(now, body.due_in_s),
                           request_hash=fingerprint, order_id=body.order_id,
                           location=request.get("location"), note=body.note)
        try:
            stored = self._store.create(check_in)
        except CheckInConflict:
            stored = self._store.get(check_in_id)
            if stored is None:
                raise Unavailable("the same request is still being stored, retry shortly") from None
            if stored.request_hash != fingerprint:
                raise IdempotencyKeyReused("this Idempotency-Key was used with a different body") from None
        # Named after the check-in: a retried request starts nothing new.
        self._workflows.start_timer(check_in_id, stored.due_at, {"action": "check_in_due", "check_in_id": check_in_id})
        count("CheckInStarted")
        return {"check_in": rules.view(stored)}, 201

    def _owned(self, principal: Principal, check_in_id: str) -> CheckIn:
        check_in = self._store.get(check_in_id)
        if check_in is None:
            raise NotFound(f"check-in {check_in_id} not found")
        if principal.role == "shopper" and check_in.owner != principal.sub:
            raise Forbidden("this check-in is not yours")
        if principal.role not in ("shopper", "reviewer", "admin"):
            raise Forbidden(f"role {principal.role} may not read check-ins")
        return check_in

    def get(self, principal: Principal, check_in_id: str) -> dict:
        return {"check_in": rules.view(self._owned(principal, check_in_id))}

    def _change(self, check_in_id: str, change) -> CheckIn:
        for _ in range(20):
            current = self._store.get(check_in_id)
            updated = change(current)
            if updated is None:
                return current
            try:
                return self._store.replace(current, updated)
            except CheckInConflict:
                continue
        raise Unavailable("the check-in is busy, try again")

    def add_location(self, principal: Principal, check_in_id: str, location: dict) -> dict:
        self._require_owner(principal, check_in_id)
        point = {**location, "at": self._now()}
        return {"check_in": rules.view(self._change(check_in_id, lambda c: rules.add_location(c, point)))}

    def complete(self, principal: Principal, check_in_id: str) -> dict:
        self._require_owner(principal, check_in_id)
        completed = self._change(check_in_id, lambda c: rules.complete(c, self._now()))
        self._workflows.stop_timer(check_in_id)
        return {"check_in": rules.view(completed)}

    def _require_owner(self, principal: Principal, check_in_id: str) -> None:
        check_in = self._owned(principal, check_in_id)
        if principal.role != "shopper":
            raise Forbidden("only the shopper who started a check-in may change it")
        del check_in

    def due(self, check_in_id: str) -> str | None:
        """The timer fired: if still active, it is missed and an incident opens (ids derive from the check-in, so a
        redelivered timer job opens nothing twice). Returns the incident id."""
        incident_id = derived_id("inc", "check-in", check_in_id)
        missed = self._change(check_in_id, lambda c: rules.miss(c, incident_id, self._now()))
        if missed is None or missed.status != rules.MISSED or missed.incident_id != incident_id:
            return None
        request = {"kind": "missed_check_in", "location": missed.location, "order_id": missed.order_id,
                   "description": f"Check-in {check_in_id} was not completed by {missed.due_at}."
                                  + (f" Note: {missed.note}" if missed.note else "")}
        request = {k: v for k, v in request.items() if v is not None}
        if request.get("location"):
            request["location"] = {k: v for k, v in request["location"].items() if k != "at"}
        self._intake.open_for(missed.owner, "missed_check_in", request, request_fingerprint(request), incident_id,
                              keyed=True, actor=Actor("system", "check-in"), check_in_id=check_in_id)
        count("CheckInMissed")
        log.warning("check-in missed", extra={"check_in_id": check_in_id, "incident_id": incident_id})
        return incident_id

