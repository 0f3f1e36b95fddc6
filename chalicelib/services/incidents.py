"""Shopper-side use cases: open an incident, read it, add locations and notes, cancel it."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.adapters.incident_store import (
    Change,
    IncidentStore,
    NewEvent,
    iso,
    leaving_triggered,
    utc_now,
)
from chalicelib.adapters.evidence import EvidenceBucket
from chalicelib.adapters.models import AttachmentAttribute, IncidentModel
from chalicelib.auth import Principal
from chalicelib.domain.errors import (
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    RateLimited,
    Unavailable,
    ValidationFailed,
)
from chalicelib.domain.escalation import build_snapshot, responders_needed, schedules_named
from chalicelib.domain.incidents import (
    KIND_RULES,
    OPEN_STATUSES,
    Status,
    check_can_cancel,
    hash_pin,
    initial_status,
    looks_like_reference,
    new_reference,
    pin_matches,
)
from chalicelib.domain.timeline import EventType
from chalicelib.observability import count
from chalicelib.schemas import AttachmentRequest, CancelRequest, IncidentCreate, Location, NoteRequest
from chalicelib.services.admin import AdminService
from chalicelib.services.escalation import EscalationService
from chalicelib.services.views import attachment_view, incident_view

log = logging.getLogger(__name__)

READ_ROLES = ("responder", "reviewer", "admin")
MAX_LIST_RANGE = timedelta(days=60)


def request_fingerprint(body: IncidentCreate) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        admin: AdminService,
        escalation: EscalationService,
        idempotency_persistence: Any,
        idempotency_config: Any,
        lease_s: int,
        pin_max_attempts: int,
        evidence: EvidenceBucket | None = None,
    ):
        self._store = store
        self._admin = admin
        self._escalation = escalation
        self._persistence = idempotency_persistence
        self._idempotency_config = idempotency_config
        self._lease_s = lease_s
        self._pin_max_attempts = pin_max_attempts
        self._idempotent_open = None
        self._evidence = evidence or EvidenceBucket()

    # --- open ----------------------------------------------------------------------------------------------------
    def open(self, principal: Principal, body: IncidentCreate, idempotency_key: str | None) -> dict:
        if idempotency_key is None:
            return self._open(principal.sub, body, incident_id=f"inc_{secrets.token_hex(10)}")
        request = {"owner": principal.sub, "key": idempotency_key, "body": body.model_dump(mode="json")}
        return self._open_idempotently(request, body)

    def _open_idempotently(self, request: dict, body: IncidentCreate) -> dict:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        wrapped = self._idempotent_opener()
        # A concurrent duplicate finds the first one in progress: wait for its result instead of failing, so the
        # shopper's retries on a bad network all get the same incident back.
        deadline = time.monotonic() + 10
        while True:
            try:
                return wrapped(request=request, body=body)
            except IdempotencyValidationError as exc:
                raise IdempotencyKeyReused("this Idempotency-Key was used with a different body") from exc
            except IdempotencyAlreadyInProgressError as exc:
                if time.monotonic() > deadline:
                    raise Unavailable("the same request is still being processed, retry shortly") from exc
                time.sleep(0.05)

    def _idempotent_opener(self):
        if self._idempotent_open is None:
            from aws_lambda_powertools.utilities.idempotency import idempotent_function

            @idempotent_function(
                data_keyword_argument="request", config=self._idempotency_config, persistence_store=self._persistence
            )
            def open_once(request: dict, body: IncidentCreate) -> dict:
                # The id derives from owner and key: if a Lambda dies after writing the incident but before the
                # idempotency record completes, the rerun finds the same incident instead of opening a second one.
                digest = hashlib.sha256(f"{request['owner']}\n{request['key']}".encode()).hexdigest()[:20]
                return self._open(request["owner"], body, incident_id=f"inc_{digest}")

            self._idempotent_open = open_once
        return self._idempotent_open

    def _open(self, owner: str, body: IncidentCreate, incident_id: str) -> dict:
        now = utc_now()
        rule = KIND_RULES[body.kind]
        status = initial_status(body.kind)
        incident = IncidentModel(
            incident_id,
            kind=body.kind,
            severity=rule.severity,
            status=status.value,
            owner=owner,
            created_at=iso(now),
            created_day=iso(now)[:10],
            request_hash=request_fingerprint(body),
            order_id=body.order_id,
        )
        personal = {
            "location": self._location(body.location, incident.created_at) if body.location else None,
            "description": body.description,
            "callback_phone": body.callback_phone,
        }
        if body.cancel_pin is not None:
            incident.cancel_pin_hash = hash_pin(body.cancel_pin, incident_id)
        created_details: dict = {"kind": body.kind, "severity": rule.severity, "status": status.value}
        if rule.paged:
            policy_id = self._admin.policy_id_for_kind(body.kind)
            policy = self._admin.policy(policy_id) if policy_id else None
            if policy is not None:
                schedules = self._admin.schedules(schedules_named(policy))
                contacts = self._admin.contacts(responders_needed(policy, schedules, now))
                snapshot = build_snapshot(policy, contacts, schedules, now)
                incident.policy_id = policy.id
                incident.escalation = snapshot.to_dict()
                created_details["policy"] = policy.id
            else:
                created_details["policy"] = None
        created_event = NewEvent(EventType.CREATED, created_details, actor=f"shopper:{owner}", at=incident.created_at)

        for _ in range(5):
            incident.reference = new_reference()
            try:
                if self._store.create(incident, created_event, personal):
                    break
            except FileExistsError:
                incident = self._store.get(incident_id)  # a rerun of the same request: carry on with what is stored
                personal = self._store.personal(incident_id)
                break
        else:
            raise Unavailable("could not allocate a reference number")
        count("IncidentOpened", kind=body.kind)
        if incident.status == Status.TRIGGERED:
            if incident.escalation:
                self._escalation.start_or_defer(incident)
            else:
                # No policy routes this kind: say so loudly on the record instead of silently paging nobody.
                log.error("no escalation policy for kind", extra={"incident_id": incident_id, "kind": body.kind})
                self._store.append(incident_id, NewEvent(EventType.ESCALATION_EXHAUSTED, {"reason": "no policy routes this kind"}))
        return {"incident": incident_view(incident, personal)}

    @staticmethod
    def _location(location: Location, at: str) -> dict:
        return {"lat": location.lat, "lng": location.lng, "accuracy_m": location.accuracy_m, "at": at}

    # --- read ----------------------------------------------------------------------------------------------------
    def resolve_id(self, id_or_reference: str) -> str:
        if looks_like_reference(id_or_reference):
            incident_id = self._store.id_for_reference(id_or_reference)
            if incident_id is None:
                raise NotFound(f"incident {id_or_reference} not found")
            return incident_id
        return id_or_reference

    def require_active_responder(self, principal: Principal) -> None:
        """A responder token is not enough: the responder must exist and be active (deactivating someone must cut
        their access to shoppers' locations, not only their pages)."""
        if principal.role == "responder":
            contact = self._admin.contact(principal.sub)
            if contact is None or not contact.active:
                raise Forbidden("you are not an active responder")

    def load_for(self, principal: Principal, id_or_reference: str, owner_only: bool = False) -> IncidentModel:
        self.require_active_responder(principal)
        incident = self._store.get(self.resolve_id(id_or_reference))
        if principal.role == "shopper":
            if incident.owner != principal.sub:
                raise Forbidden("this incident is not yours")
        elif owner_only or principal.role not in READ_ROLES:
            raise Forbidden(f"role {principal.role} may not do this")
        return incident

    def get(self, principal: Principal, id_or_reference: str) -> dict:
        incident = self.load_for(principal, id_or_reference)
        return {"incident": incident_view(incident, self._store.personal(incident.incident_id))}

    # --- change --------------------------------------------------------------------------------------------------
    def add_location(self, principal: Principal, id_or_reference: str, location: Location) -> dict:
        incident = self.load_for(principal, id_or_reference, owner_only=True)
        at = iso(utc_now())
        event = NewEvent(
            EventType.LOCATION_UPDATED, {}, actor=f"shopper:{principal.sub}", at=at,
            private={"lat": location.lat, "lng": location.lng, "accuracy_m": location.accuracy_m},
        )
        personal: dict = {}

        def decide(_current: IncidentModel) -> Change:
            # Read inside the decision: the incident's seq condition makes this read-modify-write safe.
            personal.clear()
            personal.update(self._store.personal(incident.incident_id), location=self._location(location, at))
            return Change(events=[event], personal=dict(personal))

        updated = self._store.record(incident.incident_id, decide)
        return {"incident": incident_view(updated, personal)}

    def add_note(self, principal: Principal, id_or_reference: str, text: NoteRequest) -> dict:
        if principal.role not in ("shopper", "responder"):
            raise Forbidden(f"role {principal.role} may not add notes")
        incident = self.load_for(principal, id_or_reference)
        self._store.append(incident.incident_id, NewEvent(
            EventType.NOTE_ADDED, {}, actor=f"{principal.role}:{principal.sub}", private={"text": text.text}))
        return {"note": {"text": text.text, "incident_id": incident.incident_id}}

    def cancel(self, principal: Principal, id_or_reference: str, body: CancelRequest) -> dict:
        incident = self.load_for(principal, id_or_reference, owner_only=True)
        actor = f"shopper:{principal.sub}"
        if incident.status == Status.CANCELLED:
            # A retry (say after a 503 while queueing the notices): same answer, and the notices are queued again;
            # each responder's notice is claimed once, so nobody gets two.
            if any(e.event.type == EventType.CANCELLED and e.event.details.get("notify_paged")
                   for e in self._store.timeline(incident.incident_id)):
                self._escalation.request_cancellation_notices(incident.incident_id)
            return {"incident": incident_view(incident, self._store.personal(incident.incident_id))}
        if incident.cancel_pin_hash is not None:
            self._check_pin(incident, body.pin, actor)

        def decide(current: IncidentModel) -> Change:
            check_can_cancel(current.status)
            guard = leaving_triggered(current, self._lease_s)
            was_paged = current.status in OPEN_STATUSES
            return Change(
                actions=[IncidentModel.status.set(Status.CANCELLED.value), IncidentModel.cancelled_at.set(iso(utc_now()))],
                condition=(IncidentModel.status == current.status) & guard,
                events=[NewEvent(EventType.CANCELLED, {"previous_status": current.status, "notify_paged": was_paged},
                                 actor=actor, private={"reason": body.reason} if body.reason else None)],
            )

        updated = self._store.record(incident.incident_id, decide)
        if incident.status in OPEN_STATUSES:
            self._escalation.request_cancellation_notices(incident.incident_id)
        count("IncidentCancelled", kind=incident.kind)
        return {"incident": incident_view(updated, self._store.personal(incident.incident_id))}

    def _check_pin(self, incident: IncidentModel, pin: str | None, actor: str) -> None:
        if int(incident.cancel_pin_failures) >= self._pin_max_attempts:
            raise RateLimited("too many wrong PINs; cancelling is locked for this incident")
        if pin is not None and pin_matches(pin, incident.incident_id, incident.cancel_pin_hash):
            return
        self._store.record(
            incident.incident_id,
            lambda _current: Change(
                actions=[IncidentModel.cancel_pin_failures.add(1)],
                events=[NewEvent(EventType.CANCEL_REJECTED, {"reason": "missing PIN" if pin is None else "wrong PIN"}, actor=actor)],
            ),
        )
        raise Forbidden("wrong PIN")

    # --- evidence ------------------------------------------------------------------------------------------------
    def add_attachment(self, principal: Principal, id_or_reference: str, body: AttachmentRequest) -> dict:
        if principal.role not in ("shopper", "responder"):
            raise Forbidden(f"role {principal.role} may not add evidence")
        if not self._evidence.configured:
            raise Unavailable("evidence uploads are not configured")
        incident = self.load_for(principal, id_or_reference)
        attachment_id = f"att_{secrets.token_hex(8)}"
        key = f"incidents/{incident.incident_id}/{attachment_id}/{body.filename}"
        now = iso(utc_now())
        attachment = AttachmentAttribute(id=attachment_id, key=key, filename=body.filename, content_type=body.content_type,
                                         size_bytes=body.size_bytes, added_by=f"{principal.role}:{principal.sub}", at=now)
        upload = self._evidence.presigned_upload(key, body.content_type, body.size_bytes)
        event = NewEvent(EventType.ATTACHMENT_ADDED, {"attachment_id": attachment_id, "content_type": body.content_type,
                                                      "size_bytes": body.size_bytes},
                         actor=f"{principal.role}:{principal.sub}", at=now, private={"filename": body.filename})
        self._store.record(incident.incident_id, lambda _current: Change(
            actions=[IncidentModel.attachments.set((IncidentModel.attachments | []).append([attachment]))], events=[event]))
        return {"attachment": attachment_view(attachment), "upload": upload}

    # --- list ----------------------------------------------------------------------------------------------------
    def list(self, principal: Principal, status: str | None, kind: str | None, since: datetime | None,
             until: datetime | None, limit: int, cursor: str | None) -> dict:
        """Newest first, walking the by_day index one UTC day at a time from `until` back to `since` (default: the
        last 30 days). The cursor is opaque to clients: the (created_at, id) of the last incident returned."""
        self.require_active_responder(principal)
        until = until or utc_now()
        since = since or until - timedelta(days=30)
        if until - since > MAX_LIST_RANGE:
            # One index query per day: the range bounds the cost of a request.
            raise ValidationFailed("time range too long", [
                {"field": "since", "problem": f"must be at most {MAX_LIST_RANGE.days} days before until"}])
        after = decode_cursor(cursor) if cursor else None
        upper = after[0] if after else iso(until)
        lower = iso(since)
        day = datetime.fromisoformat(upper[:10]).replace(tzinfo=timezone.utc)
        results: list[IncidentModel] = []
        while day.strftime("%Y-%m-%d") >= lower[:10] and len(results) <= limit:
            # A day's incidents sorted by (created_at, id): ties in the index's sort key still page exactly once.
            todays = sorted(self._store.list_by_day(day.strftime("%Y-%m-%d"), lower, upper),
                            key=lambda item: (item.created_at, item.incident_id), reverse=True)
            for item in todays:
                if after and (item.created_at, item.incident_id) >= after:
                    continue
                if principal.role == "shopper" and item.owner != principal.sub:
                    continue
                if (status and item.status != status) or (kind and item.kind != kind):
                    continue
                results.append(item)
                if len(results) > limit:
                    break
            day -= timedelta(days=1)
        page: dict = {"incidents": [incident_view(item) for item in results[:limit]]}
        if len(results) > limit:
            last = results[limit - 1]
            page["next_cursor"] = encode_cursor(last.created_at, last.incident_id)
        return page


def encode_cursor(created_at: str, incident_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}|{incident_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, incident_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("invalid cursor", [{"field": "cursor", "problem": "is not a cursor this API gave"}]) from exc
    return created_at, incident_id
