"""Timeline event types and the hash chain that makes tampering visible. Pure."""

from __future__ import annotations

import hashlib
import json
from enum import Enum


class EventType(str, Enum):
    CREATED = "created"
    LOCATION_UPDATED = "location_updated"
    PAGED = "paged"
    PAGE_FAILED = "page_failed"
    ESCALATED = "escalated"
    SMS_RECEIVED = "sms_received"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    CANCEL_REJECTED = "cancel_rejected"
    NOTE_ADDED = "note_added"
    ESCALATION_EXHAUSTED = "escalation_exhausted"
    REJECTED_COMMAND = "rejected_command"
    RESPONDER_OPTED_OUT = "responder_opted_out"
    REVIEW_ADDED = "review_added"
    ATTACHMENT_ADDED = "attachment_added"
    NOTICE_SENT = "notice_sent"  # cancellation notices to paged responders, "help is coming" to the shopper


GENESIS_HASH = "0" * 64


def event_hash(prev_hash: str, seq: int, at: str, event_type: str, actor: str | None, details: dict) -> str:
    """sha256 over the previous hash and this event's canonical JSON: changing or removing any event breaks every
    hash after it."""
    canonical = json.dumps(
        {"prev": prev_hash, "seq": seq, "at": at, "type": event_type, "actor": actor, "details": details},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify_chain(events: list[dict]) -> tuple[bool, int | None]:
    """(intact, first bad seq). Events as stored: seq, at, type, actor, details, prev_hash, hash; oldest first."""
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(events, start=1):
        if event["seq"] != expected_seq or event["prev_hash"] != prev:
            return False, expected_seq
        if event_hash(prev, event["seq"], event["at"], event["type"], event.get("actor"), event["details"]) != event["hash"]:
            return False, event["seq"]
        prev = event["hash"]
    return True, None
