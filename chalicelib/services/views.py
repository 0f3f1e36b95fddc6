"""Stored items -> the contract's JSON shapes."""

from __future__ import annotations

from chalicelib.adapters.incident_store import StoredEvent
from chalicelib.adapters.models import DirectoryModel, IncidentModel
from chalicelib.domain.sms_commands import short_code


def incident_view(incident: IncidentModel, personal: dict | None = None) -> dict:
    """`personal` (location, description, callback phone) is shown where the caller loaded it: single-incident reads;
    lists leave it out."""
    view = {
        "id": incident.incident_id,
        "reference": incident.reference,
        "code": short_code(incident.reference),
        "kind": incident.kind,
        "severity": incident.severity,
        "status": incident.status,
        "created_at": incident.created_at,
        "escalation": {
            "tier": int(incident.escalation_tier or 0),
            "policy": incident.policy_id,
            "exhausted": bool(incident.escalation_exhausted),
        },
    }
    optional = {
        "acknowledged_at": incident.acknowledged_at,
        "acknowledged_by": incident.acknowledged_by,
        "acknowledged_by_name": incident.acknowledged_by_name,
        "resolved_at": incident.resolved_at,
        "outcome": incident.outcome,
        "cancelled_at": incident.cancelled_at,
        "order_id": incident.order_id,
    }
    view.update({k: v for k, v in optional.items() if v is not None})
    if incident.attachments:
        view["attachments"] = [attachment_view(a) for a in incident.attachments]
    for name in ("location", "description", "callback_phone"):
        if personal and personal.get(name) is not None:
            view[name] = personal[name]
    return view


def attachment_view(attachment) -> dict:
    return {"id": attachment.id, "filename": attachment.filename, "content_type": attachment.content_type,
            "size_bytes": int(attachment.size_bytes), "added_by": attachment.added_by, "at": attachment.at,
            "key": attachment.key}


def event_view(stored: StoredEvent, with_hashes: bool = False) -> dict:
    """The API's event. Private parts (free text, coordinates) are merged back while retained; after the retention
    period `details.expired` lists what is gone. With hashes: the details exactly as hashed, for verification."""
    event = stored.event
    details = dict(event.details or {})
    if not with_hashes and "private_digest" in details:
        del details["private_digest"]
        if stored.private is None:
            details["expired"] = True
        else:
            details.update(stored.private)
    view = {"seq": int(event.seq), "at": event.at, "type": event.type, "details": details}
    if event.actor is not None:
        view["actor"] = event.actor
    if with_hashes:
        view["prev_hash"] = event.prev_hash
        view["hash"] = event.hash
    return view


def responder_view(item: DirectoryModel) -> dict:
    return {
        "id": item.id,
        "name": item.name,
        "phone": item.phone,
        "active": bool(item.active),
        "opted_out": bool(item.opted_out),
        "updated_at": item.updated_at,
    }


def document_view(item: DirectoryModel) -> dict:
    return {"id": item.id, **(item.body or {}), "updated_at": item.updated_at}
