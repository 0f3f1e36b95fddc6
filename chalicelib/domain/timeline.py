"""Timeline event types, the events a decision asks to record, and the hash chain that makes tampering visible. Pure.

Each event's row holds types, times, actors and ids only. Anything personal (a phone number, a location, free text)
goes in the event's *private* part, which the store keeps in a row apart that DynamoDB's TTL expires after the
retention period; the event keeps the private part's digest, so the chain still verifies once it is gone, and a
rewritten private row is detected while it exists.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum


class EventType(str, Enum):
    CREATED = "created"
    LOCATION_UPDATED = "location_updated"
    PRESSED_AGAIN = "pressed_again"
    PAGED = "paged"
    PAGE_SKIPPED = "page_skipped"
    PAGE_FAILED = "page_failed"
    PAGE_DELIVERED = "page_delivered"
    PAGE_FAILOVER = "page_failover"
    ESCALATED = "escalated"
    SMS_RECEIVED = "sms_received"
    ACKNOWLEDGED = "acknowledged"
    ACK_REMINDED = "ack_reminded"
    ACK_EXPIRED = "ack_expired"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    CANCEL_REJECTED = "cancel_rejected"
    DURESS_SIGNALLED = "duress_signalled"
    NOTE_ADDED = "note_added"
    ESCALATION_EXHAUSTED = "escalation_exhausted"
    REJECTED_COMMAND = "rejected_command"
    RESPONDER_OPTED_OUT = "responder_opted_out"
    REVIEW_ADDED = "review_added"
    ATTACHMENT_ADDED = "attachment_added"
    NOTICE_SENT = "notice_sent"  # cancellation and duress notices to responders, status SMS to the shopper
    DISPATCH_REQUESTED = "dispatch_requested"
    DISPATCH_UPDATED = "dispatch_updated"
    DISPATCH_FAILED = "dispatch_failed"


GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class NewEvent:
    """An event a decision wants recorded. `private` holds whatever is personal (see the module docstring)."""

    type: str
    details: dict = field(default_factory=dict)
    actor: str | None = None
    at: str | None = None
    private: dict | None = None


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def private_digest(private: dict) -> str:
    return hashlib.sha256(canonical(private).encode()).hexdigest()


def event_hash(prev_hash: str, seq: int, at: str, event_type: str, actor: str | None, details: dict) -> str:
    """sha256 over the previous hash and this event's canonical JSON: changing or removing any event breaks every
    hash after it."""
    body = {"prev": prev_hash, "seq": seq, "at": at, "type": event_type, "actor": actor, "details": details}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


@dataclass(frozen=True)
class Verification:
    intact: bool
    first_bad_seq: int | None
    events: int
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"intact": self.intact, "first_bad_seq": self.first_bad_seq, "events": self.events,
                "problems": list(self.problems)}


def verify_chain(events: list[dict], head_seq: int | None = None, head_hash: str | None = None,
                 private: dict[int, dict | None] | None = None) -> Verification:
    """Checks the stored events (oldest first: seq, at, type, actor, details, prev_hash, hash).

    - the chain: every seq in order from 1, each prev_hash the previous hash, each hash recomputed;
    - truncation: the incident's own head (`head_seq`, `head_hash`, recorded in the same transaction as every event
      and read before the events) must be in the chain at its place; events written since may follow it;
    - private rows: each retained private part (`private`: seq -> body, None once expired) must match the digest its
      event holds.
    """
    problems: list[str] = []
    first_bad: int | None = None
    prev = GENESIS_HASH

    def bad(seq: int, problem: str) -> None:
        nonlocal first_bad
        problems.append(problem)
        first_bad = seq if first_bad is None else min(first_bad, seq)

    for expected_seq, event in enumerate(events, start=1):
        seq = event["seq"]
        if seq != expected_seq:
            bad(expected_seq, f"event {expected_seq} is missing (found {seq})")
            break
        if event["prev_hash"] != prev:
            bad(seq, f"event {seq} does not follow event {seq - 1}")
            break
        if event_hash(prev, seq, event["at"], event["type"], event.get("actor"), event["details"]) != event["hash"]:
            bad(seq, f"event {seq} was altered")
            break
        digest = event["details"].get("private_digest")
        body = (private or {}).get(seq)
        if digest is not None and body is not None and private_digest(body) != digest:
            bad(seq, f"the private part of event {seq} was altered")
        prev = event["hash"]
    else:
        # The chain held (a rewritten private row does not break it): the recorded head must be in it at its place.
        # Events after it were written since the head was read (the caller checks them against a fresh head).
        if head_seq is not None:
            if len(events) < head_seq:
                bad(len(events) + 1, f"events {len(events) + 1} to {head_seq} were removed")
            elif head_seq and head_hash is not None and events[head_seq - 1]["hash"] != head_hash:
                bad(head_seq, "the newest events do not match the incident's record of them")
    return Verification(first_bad is None, first_bad, len(events), tuple(problems))
