"""Stored records -> the contract's JSON shapes, for each audience.

The shopper who owns an incident sees her own view: after a duress PIN, exactly what a real cancel would have shown
(frozen at that moment), so whoever holds her phone cannot tell. Responders, reviewers and admins see the incident
as it is.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.adapters.store import StoredEvent
from chalicelib.domain import dispatch as dispatching
from chalicelib.domain.escalation import ResponderContact
from chalicelib.domain.incidents import KIND_RULES, Incident, Status
from chalicelib.domain.shopper import cancelled_message, shopper_message

PERSONAL_FIELDS = ("location", "description", "callback_phone")


def incident_view(incident: Incident, personal: dict | None = None, for_owner: bool = False) -> dict:
    """`personal` (location, description, callback phone) is shown where the caller loaded it: single-incident
    reads; lists leave it out."""
    if for_owner and incident.owner_view is not None:
        view = dict(incident.owner_view)
    else:
        view = _staff_view(incident) if not for_owner else _owner_view(incident)
    if personal:
        for name in PERSONAL_FIELDS:
            if personal.get(name) is not None:
                view[name] = personal[name]
    return view


def _base(incident: Incident) -> dict:
    view = {
        "id": incident.incident_id,
        "reference": incident.reference,
        "code": incident.code,
        "kind": incident.kind,
        "severity": incident.severity,
        "status": incident.status,
        "created_at": incident.created_at,
        "escalation": {"tier": incident.escalation_tier, "policy": incident.policy_id,
                       "exhausted": incident.escalation_exhausted},
    }
    optional = {
        "acknowledged_at": incident.acknowledged_at,
        "acknowledged_by": incident.acknowledged_by,
        "acknowledged_by_name": incident.acknowledged_by_name,
        "resolved_at": incident.resolved_at,
        "outcome": incident.outcome,
        "cancelled_at": incident.cancelled_at,
        "order_id": incident.order_id,
        "check_in_id": incident.check_in_id,
    }
    view.update({k: v for k, v in optional.items() if v is not None})
    if incident.attachments:
        view["attachments"] = [attachment_view(a) for a in incident.attachments]
    if incident.dispatch:
        view["dispatch"] = dispatching.view(incident.dispatch)
    if incident.pressed_again:
        view["pressed_again"] = incident.pressed_again
    return view


def _staff_view(incident: Incident) -> dict:
    view = _base(incident)
    view["shopper_message"] = shopper_message(incident, for_owner=False)
    if incident.duress:
        view["duress"] = True
    return view


def _owner_view(incident: Incident) -> dict:
    view = _base(incident)
    view["shopper_message"] = shopper_message(incident, for_owner=True)
    return view


def frozen_owner_view(incident: Incident, now: str) -> dict:
    """What a real cancel at `now` would show its shopper, kept for every later read of hers (duress)."""
    as_cancelled = replace(incident, status=Status.CANCELLED.value, cancelled_at=now,
                           severity=KIND_RULES[incident.kind].severity if incident.kind in KIND_RULES else incident.severity)
    view = _base(as_cancelled)
    view["shopper_message"] = cancelled_message()
    return view


def attachment_view(attachment: dict) -> dict:
    return {k: attachment[k] for k in ("id", "filename", "content_type", "size_bytes", "added_by", "at", "key")
            if k in attachment}


def event_view(stored: StoredEvent) -> dict:
    """The API's event. Private parts (phone numbers, coordinates, free text) are merged back while retained; after
    the retention period `details.expired` says they are gone."""
    details = dict(stored.details or {})
    if "private_digest" in details:
        del details["private_digest"]
        if stored.private is None:
            details["expired"] = True
        else:
            details.update(stored.private)
    view = {"seq": stored.seq, "at": stored.at, "type": stored.type, "details": details}
    if stored.actor is not None:
        view["actor"] = stored.actor
    return view


def responder_view(responder: ResponderContact, updated_at: str | None = None) -> dict:
    view = {
        "id": responder.id,
        "name": responder.name,
        "phone": responder.phone,
        "active": responder.active,
        "opted_out": responder.opted_out,
        "voice": responder.voice,
        "verified_at": responder.verified_at,
    }
    if responder.email:
        view["email"] = responder.email
    if updated_at:
        view["updated_at"] = updated_at
    return view


def document_view(item_id: str, body: dict, updated_at: str) -> dict:
    return {"id": item_id, **body, "updated_at": updated_at}
