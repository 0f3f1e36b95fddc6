"""Incident lifecycle: kinds, severities, references, the incident record, and every status change as a pure
function from the incident as read to a `Transition` (the new record and the events that explain it).

Nothing here reads a clock or touches storage: callers pass `now`, and the store commits a transition only if the
incident did not change since it was read (its `version`), so each decision here is made on a consistent snapshot.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import Enum
from typing import Any

from chalicelib.domain.clock import iso, parse_iso
from chalicelib.domain.errors import AlreadyAcknowledged, Busy, InvalidTransition, RateLimited
from chalicelib.domain.sms_commands import CODE_ALPHABET, short_code
from chalicelib.domain.timeline import EventType, NewEvent


class Status(str, Enum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    ROUTED = "routed"


OPEN_STATUSES = frozenset({Status.TRIGGERED.value, Status.ACKNOWLEDGED.value})
OUTCOMES = ("assisted", "police_dispatched", "medical_dispatched", "false_alarm", "no_contact", "other")


@dataclass(frozen=True)
class KindRule:
    severity: str
    paged: bool
    location_required: bool
    life_safety: bool = False
    # Kinds the public intake accepts (the others are opened by the service itself or by admins).
    public: bool = True


# The contract's kinds. Life-safety kinds are sev1: paged at once, need a location to send help to, and a second
# press while one is open joins it instead of opening another.
KIND_RULES: dict[str, KindRule] = {
    "panic": KindRule("sev1", True, True, life_safety=True),
    "medical": KindRule("sev1", True, True, life_safety=True),
    "threat": KindRule("sev1", True, True, life_safety=True),
    "accident": KindRule("sev1", True, True, life_safety=True),
    "harassment": KindRule("sev2", True, False),
    "conduct": KindRule("sev2", True, False),
    "fraud": KindRule("sev3", True, False),
    "account_breach": KindRule("sev3", True, False),
    "privacy": KindRule("sev3", True, False),
    "delivery_issue": KindRule("sev4", False, False),
    # A check-in its shopper did not complete: paged like a panic, at the last location the check-in knew.
    "missed_check_in": KindRule("sev2", True, False, public=False),
    # The post-deploy smoke test's incident: pages only the test responder it names (admins only).
    "test": KindRule("sev4", True, False, public=False),
}
KINDS = tuple(KIND_RULES)
PUBLIC_KINDS = tuple(kind for kind, rule in KIND_RULES.items() if rule.public)
LIFE_SAFETY_KINDS = tuple(kind for kind, rule in KIND_RULES.items() if rule.life_safety)

# How long an open life-safety incident absorbs further presses by the same shopper (contract 4.2).
PRESS_AGAIN_WINDOW = timedelta(minutes=30)

REFERENCE_PREFIX = "TS-"
REFERENCE_LENGTH = 6


def new_reference() -> str:
    """TS- and six characters of an alphabet without look-alikes (0/O, 1/I/L), so it can be read over the phone."""
    return REFERENCE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def looks_like_reference(value: str) -> bool:
    body = value.upper().removeprefix(REFERENCE_PREFIX)
    return (value.upper().startswith(REFERENCE_PREFIX) and len(body) == REFERENCE_LENGTH
            and all(c in CODE_ALPHABET for c in body))


def initial_status(kind: str) -> Status:
    return Status.TRIGGERED if KIND_RULES[kind].paged else Status.ROUTED


@dataclass(frozen=True)
class Incident:
    """One incident as stored. `version` changes with every write (the escalation state machine's included), so a
    transition decided on a read commits only if nothing changed meanwhile."""

    incident_id: str
    reference: str
    kind: str
    severity: str
    status: str
    owner: str
    created_at: str
    request_hash: str | None = None
    order_id: str | None = None
    has_location: bool = False
    has_callback_phone: bool = False
    check_in_id: str | None = None
    test_responder: str | None = None
    # Cancel and duress PINs: salted slow hashes. `pin_checks` counts every PIN ever checked (the lockout).
    cancel_pin_hash: str | None = None
    duress_pin_hash: str | None = None
    pin_checks: int = 0
    # A duress PIN was used: the shopper (and whoever holds her phone) is shown a cancelled incident from then on.
    duress: bool = False
    owner_cancelled_at: str | None = None
    # What the shopper's own reads show from then on: the incident as it was, cancelled (services/views.py).
    owner_view: dict | None = None
    pressed_again: int = 0
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    acknowledged_by_name: str | None = None
    ack_count: int = 0
    ack_expiries: int = 0
    # Each time escalation starts over on the same incident (an acknowledgement expired, a duress PIN reopened a
    # closed incident), a new generation: its pages are new pages, its executions new names.
    generation: int = 0
    ack_tier: int | None = None
    resolved_at: str | None = None
    resolved_by: str | None = None
    outcome: str | None = None
    cancelled_at: str | None = None
    # Press to first human contact as the shopper lived it: the first acknowledgement or dispatch acceptance.
    first_contact_at: str | None = None
    attachments: tuple[dict, ...] = ()
    # Escalation: the frozen plan, the step the state machine last claimed, the newest step whose pages went out.
    policy_id: str | None = None
    escalation: dict | None = None
    escalation_step: int = -1
    escalation_tier: int = 0
    escalation_owner: str | None = None
    escalated_at: str | None = None
    escalation_exhausted: bool = False
    exhausted_notified: bool = False
    # The newest step whose `escalated` (and `page_skipped`) events are written, and whose pages all went out.
    recorded_step: int = -1
    sent_step: int = -1
    # While set and younger than the lease, a sender is publishing one SMS; leaving `triggered` waits for it.
    paging_since: str | None = None
    # Who may read and act on the incident besides reviewers and admins: everyone its frozen plan names.
    responder_ids: tuple[str, ...] = ()
    dispatch: dict | None = None
    # Per tier: pages sent, delivered, failed, and seconds from sent to delivered (for review metrics).
    deliveries: dict = field(default_factory=dict)
    last_seq: int = 0
    last_hash: str | None = None
    version: int = 0

    @property
    def code(self) -> str:
        return short_code(self.reference)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def life_safety(self) -> bool:
        return KIND_RULES[self.kind].life_safety if self.kind in KIND_RULES else False

    def covers(self, responder_id: str) -> bool:
        """Need-to-know: a responder sees and acts on incidents its plan names (it was or may be paged for them)."""
        return responder_id in self.responder_ids


@dataclass(frozen=True)
class Transition:
    """What a decision wants written, atomically: the new record, its events, and what else changes with it.

    - `personal`: the incident's personal data (location, description, callback phone) replaced as a whole;
    - `claims`: keys that must not exist yet (a message processed once); a taken claim fails the whole write;
    - `links`: keys pointing at this incident (a reference, a provider's alarm id), written or overwritten;
    - `pages`: page records written with it (see domain/paging.py);
    - `result`: what the caller gets back (not stored).
    """

    incident: Incident
    events: tuple[NewEvent, ...] = ()
    personal: dict | None = None
    claims: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    pages: tuple[Any, ...] = ()
    result: Any = None


def append(incident: Incident, *events: NewEvent, result: Any = None) -> Transition:
    return Transition(incident, tuple(events), result=result)


# --- the paging lease ----------------------------------------------------------------------------------------------
def paging_lease_live(incident: Incident, now: str, lease_s: float) -> bool:
    if incident.paging_since is None:
        return False
    return parse_iso(incident.paging_since) > parse_iso(now) - timedelta(seconds=lease_s)


def _leave_triggered(incident: Incident, now: str, lease_s: float) -> None:
    """Every status change out of `triggered` waits while a sender is mid-publish, so no page leaves after an
    acknowledgement, resolve or cancel is committed (the commit itself is conditional on this read's version)."""
    if incident.status == Status.TRIGGERED and paging_lease_live(incident, now, lease_s):
        raise Busy()


# --- responders' transitions ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Actor:
    """Who acts: a responder (id and name), a shopper, an admin, or the service itself."""

    kind: str
    id: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def already_acknowledged(incident: Incident) -> AlreadyAcknowledged:
    return AlreadyAcknowledged(
        f"already acknowledged by {incident.acknowledged_by_name}",
        extra={"acknowledged_by": incident.acknowledged_by, "acknowledged_by_name": incident.acknowledged_by_name,
               "acknowledged_at": incident.acknowledged_at})


def acknowledge(incident: Incident, responder: Actor, via: str, now: str, lease_s: float) -> Transition | None:
    """The first acknowledgement wins; the same responder again changes nothing (None)."""
    if incident.status == Status.ACKNOWLEDGED:
        if incident.acknowledged_by == responder.id:
            return None
        raise already_acknowledged(incident)
    if incident.status != Status.TRIGGERED:
        raise InvalidTransition(f"incident is {incident.status}, it cannot be acknowledged")
    _leave_triggered(incident, now, lease_s)
    tier = incident.escalation_tier
    updated = replace(
        incident, status=Status.ACKNOWLEDGED.value, acknowledged_at=now, acknowledged_by=responder.id,
        acknowledged_by_name=responder.name, ack_count=incident.ack_count + 1, ack_tier=tier,
        first_contact_at=incident.first_contact_at or now)
    event = NewEvent(EventType.ACKNOWLEDGED, {"via": via, "tier": tier, "name": responder.name}, str(responder), now)
    return Transition(updated, (event,))


def resolve(incident: Incident, responder: Actor, outcome: str, note: str | None, via: str, now: str,
            lease_s: float) -> Transition:
    if incident.status not in OPEN_STATUSES:
        raise InvalidTransition(f"incident is {incident.status}, it cannot be resolved")
    _leave_triggered(incident, now, lease_s)
    events = []
    updated = replace(incident, status=Status.RESOLVED.value, resolved_at=now, resolved_by=responder.id,
                      outcome=outcome, first_contact_at=incident.first_contact_at or now)
    if incident.status == Status.TRIGGERED:
        # Resolving implies acknowledging: the record shows both, in order.
        updated = replace(updated, acknowledged_at=now, acknowledged_by=responder.id,
                          acknowledged_by_name=responder.name, ack_count=incident.ack_count + 1,
                          ack_tier=incident.escalation_tier)
        events.append(NewEvent(EventType.ACKNOWLEDGED, {"via": via, "tier": incident.escalation_tier,
                                                        "name": responder.name, "implied_by": "resolve"},
                               str(responder), now))
    events.append(NewEvent(EventType.RESOLVED, {"outcome": outcome, "via": via}, str(responder), now,
                           private={"note": note} if note else None))
    return Transition(updated, tuple(events))


def expire_acknowledgement(incident: Incident, ack_count: int, resume_step: int, now: str) -> Transition | None:
    """An acknowledgement not resolved in time returns the incident to `triggered`; escalation resumes at
    `resume_step` (claimed next by a new execution, which expects the step before it). None if the acknowledgement
    it was armed for is over (resolved, cancelled, or a newer acknowledgement)."""
    if incident.status != Status.ACKNOWLEDGED or incident.ack_count != ack_count:
        return None
    updated = replace(incident, status=Status.TRIGGERED.value, acknowledged_at=None, acknowledged_by=None,
                      acknowledged_by_name=None, escalation_step=resume_step - 1, escalation_exhausted=False,
                      ack_expiries=incident.ack_expiries + 1, generation=incident.generation + 1,
                      sent_step=min(incident.sent_step, resume_step - 1),
                      recorded_step=min(incident.recorded_step, resume_step - 1))
    event = NewEvent(EventType.ACK_EXPIRED, {"acknowledged_by": incident.acknowledged_by, "tier": incident.ack_tier,
                                             "resumes_at_step": resume_step}, "system:ack-timer", now)
    return Transition(updated, (event,))


# --- shoppers' transitions -----------------------------------------------------------------------------------------
def cancel(incident: Incident, actor: Actor, reason: str | None, now: str, lease_s: float) -> Transition:
    if incident.status not in (Status.TRIGGERED, Status.ACKNOWLEDGED, Status.ROUTED):
        raise InvalidTransition(f"incident is {incident.status}, it cannot be cancelled")
    _leave_triggered(incident, now, lease_s)
    updated = replace(incident, status=Status.CANCELLED.value, cancelled_at=now)
    event = NewEvent(EventType.CANCELLED, {"previous_status": incident.status, "notify_paged": incident.is_open},
                     str(actor), now, private={"reason": reason} if reason else None)
    return Transition(updated, (event,))


def signal_duress(incident: Incident, actor: Actor, now: str, owner_view: dict) -> Transition | None:
    """A cancel with the duress PIN. Whoever holds the shopper's phone sees a cancelled incident (`owner_view`, the
    view a real cancel would have given, frozen); for responders and reviewers it stays open, becomes sev1 and says
    DURESS, and its escalation goes on. None once duress was signalled: like a second cancel, it changes nothing."""
    if incident.duress:
        return None
    updated = replace(incident, duress=True, severity="sev1", owner_cancelled_at=now, owner_view=owner_view)
    if not incident.is_open:
        # Routed, resolved or cancelled: a duress signal reopens it and escalation starts over (a new generation).
        updated = replace(updated, status=Status.TRIGGERED.value, acknowledged_at=None, acknowledged_by=None,
                          acknowledged_by_name=None, escalation_step=-1, escalation_tier=0, sent_step=-1,
                          recorded_step=-1, escalation_exhausted=False, exhausted_notified=False,
                          generation=incident.generation + 1)
    event = NewEvent(EventType.DURESS_SIGNALLED, {"previous_status": incident.status, "reopened": not incident.is_open},
                     str(actor), now)
    return Transition(updated, (event,))


def record_pin_check(incident: Incident, max_checks: int) -> Incident:
    """Reserves one PIN check. The caller commits it conditionally on the version it read, so under any concurrency
    at most `max_checks` checks are ever made (the lockout cannot be raced)."""
    if incident.pin_checks >= max_checks:
        raise RateLimited("too many wrong PINs; cancelling is locked for this incident")
    return replace(incident, pin_checks=incident.pin_checks + 1)


def press_again(incident: Incident, actor: Actor, location: dict | None, now: str) -> Transition:
    updated = replace(incident, pressed_again=incident.pressed_again + 1)
    event = NewEvent(EventType.PRESSED_AGAIN, {"count": incident.pressed_again + 1, "status": incident.status},
                     str(actor), now, private={"location": location} if location else None)
    return Transition(updated, (event,))


# --- PINs ------------------------------------------------------------------------------------------------------------
def hash_pin(pin: str, salt: str) -> str:
    """PINs are 4-6 digits: a slow salted hash keeps a leaked table from giving them away in microseconds."""
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), 50_000).hex()


def pin_matches(pin: str, salt: str, expected_hash: str | None) -> bool:
    return expected_hash is not None and hmac.compare_digest(hash_pin(pin, salt), expected_hash)


def owner_status(incident: Incident) -> str:
    """The status its shopper sees: a duress PIN shows `cancelled` to whoever holds her phone."""
    return Status.CANCELLED.value if incident.duress else incident.status


def deadline_after(at: str, seconds: float) -> str:
    return iso(parse_iso(at) + timedelta(seconds=seconds))
