"""The incident store: incidents, their timelines and personal data, page records and lookups, behind one interface
that speaks intent (`acknowledge`, `cancel`, `take_paging_lease`, ...) with two implementations: DynamoDB
(adapters/dynamodb_store.py) and memory (adapters/memory_store.py), held to one contract test suite
(tests/contract/).

As powertools' idempotency `BasePersistenceLayer` does, the logic lives here and a backend implements a few
primitives: read an incident, write a transition atomically (`_write`), read the timeline, personal data, lookups and
pages. Every write of an incident is a compare-and-swap on its `version`, which every writer bumps (the escalation
state machine's step claims included): a decision made on a read commits only if nothing changed since, else it is
read and decided again (optimistic concurrency). Together with each event's seq taken from the incident's `last_seq`
in the same write, that keeps the timeline gapless and its hash chain linear under any number of writers, and makes a
state change and its events inseparable.
"""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.domain import incidents as lifecycle
from chalicelib.domain.clock import iso
from chalicelib.domain.errors import Busy, DuplicateMessage, NotFound, Unavailable
from chalicelib.domain.incidents import Actor, Incident, Transition
from chalicelib.domain.paging import Page, PageWrite
from chalicelib.domain.timeline import GENESIS_HASH, NewEvent, event_hash, private_digest

log = logging.getLogger(__name__)

# How long an idempotency claim (an inbound SMS id) is kept: SNS redelivers within hours, not weeks.
MESSAGE_CLAIM_TTL = timedelta(days=7)
CODE_HINT_TTL = timedelta(days=2)


# --- what the backends read and write --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredEvent:
    """A timeline event as stored (with its hashes), and its private part while retained."""

    seq: int
    at: str
    type: str
    actor: str | None
    details: dict
    prev_hash: str
    hash: str
    private: dict | None = None

    def as_dict(self) -> dict:
        return {"seq": self.seq, "at": self.at, "type": self.type, "actor": self.actor, "details": self.details,
                "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class EventRow:
    """An event ready to store: its row (hashed) and its private part (stored apart, expiring)."""

    event: StoredEvent
    private: dict | None


@dataclass(frozen=True)
class Claim:
    """A lookup key pointing at an incident that must not exist yet. `replaceable_before`: an existing claim whose
    `at` is older may be replaced (a shopper's open-incident marker after the press-again window)."""

    key: str
    incident_id: str
    at: str
    body: dict = field(default_factory=dict)
    replaceable_before: str | None = None
    # An existing claim pointing at this incident may be replaced (a closed incident's open-incident marker).
    replaces: str | None = None
    ttl: timedelta | None = None


@dataclass(frozen=True)
class Lookup:
    key: str
    incident_id: str
    at: str | None = None
    body: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Write:
    """One atomic write, as a backend receives it."""

    before: Incident | None          # None: a new incident (it must not exist)
    after: Incident
    events: tuple[EventRow, ...]
    personal: dict | None
    claims: tuple[Claim, ...]
    links: tuple[Lookup, ...]
    pages: tuple[PageWrite, ...]


class Conflict(Exception):
    """The incident changed since it was read (or, for a new one, exists already)."""


class ClaimTaken(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class PageConflict(Exception):
    def __init__(self, page_key: str):
        super().__init__(page_key)
        self.page_key = page_key


@dataclass(frozen=True)
class ListQuery:
    """Reviewer and shopper listings: newest first within [since, until), after the cursor."""

    since: str
    until: str
    owner: str | None = None
    status: str | None = None
    kind: str | None = None
    responder: str | None = None
    after: tuple[str, str] | None = None  # (created_at, incident_id) of the last incident already returned
    page_size: int = 100

    def admits(self, incident: Incident) -> bool:
        """Whether `incident` passes the status, kind and responder filters (the DynamoDB store asks the same as a
        filter expression)."""
        return ((self.status is None or incident.status == self.status)
                and (self.kind is None or incident.kind == self.kind)
                and (self.responder is None or self.responder in incident.responder_ids))


@dataclass
class Deadline:
    """How long a write may keep retrying on contention: until the Lambda's own deadline (less a margin), so a busy
    incident is waited out rather than given up on early."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @property
    def passed(self) -> bool:
        return time.monotonic() > self.at


Decide = Callable[[Incident], Transition | None]


# --- the store ------------------------------------------------------------------------------------------------------
class IncidentStore(ABC):
    def __init__(self, clock: Callable[[], datetime] | None = None, retention: timedelta = timedelta(days=180),
                 default_deadline_s: float = 10.0):
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.retention = retention
        self._default_deadline_s = default_deadline_s

    def now(self) -> str:
        return iso(self._clock())

    # --- primitives each backend implements --------------------------------------------------------------------------
    @abstractmethod
    def _get(self, incident_id: str) -> Incident | None: ...

    @abstractmethod
    def _write(self, write: Write) -> None:
        """All or nothing. Raises Conflict, ClaimTaken or PageConflict when a condition does not hold."""

    @abstractmethod
    def _events(self, incident_id: str) -> list[StoredEvent]:
        """Oldest first, with private parts merged while retained."""

    @abstractmethod
    def personal(self, incident_id: str) -> dict:
        """The incident's location, description and callback phone; {} once expired."""

    @abstractmethod
    def lookup(self, key: str) -> Lookup | None: ...

    @abstractmethod
    def get_many(self, incident_ids: Iterable[str]) -> dict[str, Incident]: ...

    @abstractmethod
    def page(self, incident_id: str, page_key: str) -> Page | None: ...

    @abstractmethod
    def pages_for(self, incident_id: str) -> list[Page]: ...

    @abstractmethod
    def page_by_message_id(self, message_id: str) -> Page | None: ...

    @abstractmethod
    def pages_to_phone(self, phone: str, since: str, code: str | None = None, limit: int = 25) -> list[Page]:
        """Pages sent to a phone since a time, newest first; with `code`, only pages of incidents with that code."""

    @abstractmethod
    def put_page(self, write: PageWrite) -> None:
        """A page record on its own (no incident change). Raises PageConflict when `expect` does not hold."""

    @abstractmethod
    def list_incidents(self, query: ListQuery) -> Iterator[Incident]:
        """Newest first; lazily, so a caller reads only as far as it needs."""

    # --- reads ---------------------------------------------------------------------------------------------------
    def find(self, incident_id: str) -> Incident | None:
        return self._get(incident_id)

    def get(self, incident_id: str) -> Incident:
        incident = self._get(incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} not found")
        return incident

    def timeline(self, incident_id: str) -> list[StoredEvent]:
        return self._events(incident_id)

    def id_for_reference(self, reference: str) -> str | None:
        found = self.lookup(reference_key(reference))
        return found.incident_id if found else None

    def id_for_code(self, code: str) -> str | None:
        """The newest incident with this short code (codes are not unique; the hint expires after two days)."""
        found = self.lookup(f"code#{code.upper()}")
        return found.incident_id if found else None

    # --- writes --------------------------------------------------------------------------------------------------
    def create(self, incident: Incident, events: list[NewEvent], personal: dict, claims: list[Claim]) -> Incident:
        """Writes a new incident with its first events, personal data and claims (its reference is one), atomically.
        Raises Conflict when the incident exists, ClaimTaken naming the first claim taken."""
        rows, head = self._event_rows(incident.incident_id, 0, GENESIS_HASH, events)
        stored = replace(incident, last_seq=len(rows), last_hash=head, version=1)
        hint = Lookup(f"code#{incident.code}", incident.incident_id, stored.created_at)
        self._write(Write(None, stored, rows, personal, tuple(claims), (hint,), ()))
        return stored

    def record(self, incident_id: str, decide: Decide, deadline: Deadline | None = None,
               read: Incident | None = None) -> tuple[Incident, Any]:
        """Read the incident, let `decide` turn it into a Transition, write it if the incident is unchanged; on a
        concurrent writer read and decide again. Returns (the incident as written or as read, the decision's result).

        `decide` may raise a domain error (nothing is written) or Busy (wait and decide again). Raises Unavailable at
        the deadline, DuplicateMessage when a claim of the transition was taken before. `read`: the incident as the
        caller just read it, used for the first attempt instead of reading it again."""
        deadline = deadline or Deadline.after(self._default_deadline_s)
        attempt = 0
        while True:
            incident, read = (read, None) if read is not None else (self.get(incident_id), None)
            try:
                transition = decide(incident)
            except Busy:
                transition = None
                busy = True
            else:
                busy = False
                if transition is None:
                    return incident, None
                try:
                    return self.commit(incident, transition), transition.result
                except Conflict:
                    pass
            attempt += 1
            if deadline.passed:
                log.warning("incident stayed busy", extra={"incident_id": incident_id, "attempts": attempt,
                                                           "waiting_for_pager": busy})
                raise Unavailable("the incident is busy, try again")
            # Full jitter keeps many concurrent writers (say 50 simultaneous ACKs) from retrying in lockstep.
            time.sleep(random.uniform(0, min(0.25, 0.01 * 2 ** min(attempt, 5))))

    def commit(self, before: Incident, transition: Transition) -> Incident:
        """Writes one transition decided on `before`. Raises Conflict if the incident changed since."""
        rows, head = self._event_rows(before.incident_id, before.last_seq, before.last_hash or GENESIS_HASH,
                                      list(transition.events))
        after = replace(transition.incident, last_seq=before.last_seq + len(rows),
                        last_hash=head if rows else before.last_hash, version=before.version + 1)
        now = self.now()
        claims = tuple(key if isinstance(key, Claim) else Claim(key, before.incident_id, now, ttl=MESSAGE_CLAIM_TTL)
                       for key in transition.claims)
        links = tuple(Lookup(key, incident_id, now) for key, incident_id in transition.links)
        try:
            self._write(Write(before, after, rows, transition.personal, claims, links, tuple(transition.pages)))
        except ClaimTaken as taken:
            raise DuplicateMessage(taken.key) from taken
        return after

    def append(self, incident_id: str, *events: NewEvent, deadline: Deadline | None = None) -> Incident:
        return self.record(incident_id, lambda incident: lifecycle.append(incident, *events), deadline)[0]

    def _event_rows(self, incident_id: str, last_seq: int, prev_hash: str,
                    events: list[NewEvent]) -> tuple[tuple[EventRow, ...], str]:
        rows = []
        # One write is one moment: an event with no time of its own (the SMS that asked) takes the time the decision
        # stamped on the others (the acknowledgement it made), so times never run backwards within a write; only
        # when no event carries a time is the clock read here.
        now = next((new.at for new in events if new.at), None) or self.now()
        for offset, new in enumerate(events, start=1):
            seq = last_seq + offset
            details = dict(new.details)
            if new.private:
                details["private_digest"] = private_digest(new.private)
            at = new.at or now
            digest = event_hash(prev_hash, seq, at, str(new.type.value if hasattr(new.type, "value") else new.type),
                                new.actor, details)
            event_type = new.type.value if hasattr(new.type, "value") else str(new.type)
            rows.append(EventRow(StoredEvent(seq, at, event_type, new.actor, details, prev_hash, digest), new.private))
            prev_hash = digest
        return tuple(rows), prev_hash

    # --- intent: responders --------------------------------------------------------------------------------------
    def acknowledge(self, incident_id: str, responder: Actor, via: str, lease_s: float,
                    alongside: Alongside | None = None, deadline: Deadline | None = None,
                    read: Incident | None = None) -> tuple[Incident, bool]:
        """(the incident, whether this call acknowledged it). The first acknowledgement wins."""
        def decide(incident: Incident) -> Transition | None:
            transition = lifecycle.acknowledge(incident, responder, via, self.now(), lease_s)
            return with_alongside(transition, incident, alongside, result=transition is not None)
        incident, won = self.record(incident_id, decide, deadline, read)
        return incident, bool(won)

    def resolve(self, incident_id: str, responder: Actor, outcome: str, note: str | None, via: str, lease_s: float,
                alongside: Alongside | None = None, deadline: Deadline | None = None,
                read: Incident | None = None) -> Incident:
        def decide(incident: Incident) -> Transition:
            return with_alongside(lifecycle.resolve(incident, responder, outcome, note, via, self.now(), lease_s),
                                  incident, alongside)
        return self.record(incident_id, decide, deadline, read)[0]

    # --- intent: shoppers ----------------------------------------------------------------------------------------
    def cancel(self, incident_id: str, actor: Actor, reason: str | None, lease_s: float) -> Incident:
        return self.record(incident_id, lambda i: lifecycle.cancel(i, actor, reason, self.now(), lease_s))[0]

    def signal_duress(self, incident_id: str, actor: Actor, owner_view: Callable[[Incident, str], dict]) -> Incident:
        """`owner_view(incident, now)`: what the shopper's reads show from now on (a cancelled incident)."""
        def decide(incident: Incident) -> Transition:
            now = self.now()
            return lifecycle.signal_duress(incident, actor, now, owner_view(incident, now))
        return self.record(incident_id, decide)[0]

    # --- intent: the sender --------------------------------------------------------------------------------------
    def take_paging_lease(self, incident_id: str, still_due: Callable[[Incident], bool], lease_s: float,
                          claim: PageWrite | None = None, deadline: Deadline | None = None) -> Incident | None:
        """Marks the incident "a sender is publishing now" (and claims the page record with it) if `still_due`
        holds and no live lease exists; waits while another sender holds one. None when it is no longer due (the
        incident was acknowledged, resolved or cancelled: nothing may be sent). Raises PageConflict when the page was
        claimed or sent by someone else."""
        def decide(incident: Incident) -> Transition | None:
            if not still_due(incident):
                return None
            now = self.now()
            if lifecycle.paging_lease_live(incident, now, lease_s):
                raise Busy()
            return Transition(replace(incident, paging_since=now), pages=(claim,) if claim else (), result=True)

        incident, granted = self.record(incident_id, decide, deadline)
        return incident if granted else None

    def release_paging_lease(self, incident_id: str, events: list[NewEvent], page: PageWrite | None = None,
                             changes: dict | None = None) -> Incident:
        """Ends the lease, with what the send produced: its events, the page record, other changes."""
        def decide(incident: Incident) -> Transition:
            updated = replace(incident, paging_since=None, **(changes or {}))
            return Transition(updated, tuple(events), pages=(page,) if page else ())
        return self.record(incident_id, decide, Deadline.after(30))[0]


@dataclass(frozen=True)
class Alongside:
    """Written in the same transaction as a responder's action: the SMS that asked for it, and its message id as a
    claim, so a redelivered SMS is processed once and an SMS is never recorded without its effect."""

    events: tuple[NewEvent, ...] = ()
    claims: tuple[str, ...] = ()


def with_alongside(transition: Transition | None, incident: Incident, alongside: Alongside | None,
                   result: Any = None) -> Transition | None:
    if alongside is None:
        return replace(transition, result=result) if transition is not None and result is not None else transition
    if transition is None:
        # Nothing changes (the same responder acknowledging again, a refusal), but the message is recorded, once.
        return Transition(incident, alongside.events, claims=alongside.claims, result=result)
    return replace(transition, events=alongside.events + transition.events, claims=transition.claims + alongside.claims,
                   result=result if result is not None else transition.result)


def reference_key(reference: str) -> str:
    return f"ref#{reference.upper()}"


def idempotency_key(incident_id: str) -> str:
    return f"idem#{incident_id}"


def open_incident_key(owner: str) -> str:
    return f"open#{owner}"


def message_claim_key(inbound_message_id: str) -> str:
    return f"sms#{inbound_message_id}"


def page_is_claimable(existing: Page | None, write: PageWrite) -> bool:
    """The condition of a page write, as both backends evaluate it (see PageWrite)."""
    if write.expect is None:
        return True
    if write.expect == "claim":
        return existing is None or existing.state == "failed" or (
            existing.state == "sending" and write.stale_before is not None and existing.sent_at < write.stale_before)
    if existing is None:
        return False
    if write.expect == "undelivered":
        return existing.state == "sent" and existing.delivery is None
    return existing.state == write.expect


def claim_is_free(existing: Lookup | None, claim: Claim) -> bool:
    if existing is None:
        return True
    if claim.replaces is not None and existing.incident_id == claim.replaces:
        return True
    return claim.replaceable_before is not None and existing.at is not None and existing.at < claim.replaceable_before
