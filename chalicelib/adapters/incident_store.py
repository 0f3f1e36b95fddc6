"""Incidents and their timelines in DynamoDB.

Every change to an incident is written in one transaction with the timeline events it causes. The transaction's
condition on the incident's `last_seq` makes the writers take turns (optimistic concurrency): exactly one of any
number of concurrent writers gets each seq, so the timeline is gapless, its hash chain linear, and a state change
can never be committed without its event or the other way round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.models import IncidentModel, LookupModel, PersonalDataModel, TimelineEventModel
from chalicelib.domain.errors import NotFound, Unavailable
from chalicelib.domain.timeline import GENESIS_HASH, event_hash

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """One fixed format (millisecond precision, Z), so stored times also compare correctly as strings."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class NewEvent:
    type: str
    details: dict = field(default_factory=dict)
    actor: str | None = None
    at: str | None = None
    # Free text and locations: stored apart and expired after the retention period; the event keeps their digest,
    # so the hash chain still verifies once they are gone.
    private: dict | None = None


@dataclass
class Change:
    """What a decision wants written: update actions and extra conditions on the incident, the events, and (when
    set) the incident's personal data as a whole."""

    actions: list[Action] = field(default_factory=list)
    condition: Condition | None = None
    events: list[NewEvent] = field(default_factory=list)
    personal: dict | None = None


@dataclass
class StoredEvent:
    """A timeline event as stored, with its private part when it has not expired."""

    event: TimelineEventModel
    private: dict | None


class RetryLater(Exception):
    """Raised by a decision that must wait (a pager holds the paging lease); the store retries it shortly."""


Decide = Callable[[IncidentModel], Change | None]


def _is_conditional_failure(error: TransactWriteError) -> bool:
    reasons = getattr(error, "cancellation_reasons", None) or []
    return any(r is not None and r.code in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons) or (
        error.cause_response_code == "TransactionConflictException"
    )


class IncidentStore:
    def __init__(self, connection: Connection, retention: timedelta):
        self._connection = connection
        self._retention = retention

    # --- reads ---------------------------------------------------------------------------------------------------
    def get(self, incident_id: str, consistent: bool = True) -> IncidentModel:
        try:
            return IncidentModel.get(incident_id, consistent_read=consistent)
        except DoesNotExist as exc:
            raise NotFound(f"incident {incident_id} not found") from exc

    def find(self, incident_id: str) -> IncidentModel | None:
        try:
            return IncidentModel.get(incident_id, consistent_read=True)
        except DoesNotExist:
            return None

    def id_for_reference(self, reference: str) -> str | None:
        try:
            return LookupModel.get(f"ref#{reference.upper()}", consistent_read=True).incident_id
        except DoesNotExist:
            return None

    def id_for_code(self, code: str) -> str | None:
        """The newest incident with this short code (codes are not unique; the hint expires after two days)."""
        try:
            return LookupModel.get(f"code#{code.upper()}", consistent_read=True).incident_id
        except DoesNotExist:
            return None

    def timeline(self, incident_id: str) -> list[StoredEvent]:
        events = list(TimelineEventModel.query(incident_id, consistent_read=True))
        keys = [private_key(incident_id, int(e.seq)) for e in events if "private_digest" in (e.details or {})]
        private = {item.key: item.body for item in PersonalDataModel.batch_get(keys)} if keys else {}
        return [StoredEvent(e, private.get(private_key(incident_id, int(e.seq)))) for e in events]

    def personal(self, incident_id: str) -> dict:
        """The incident's location, description and callback phone; {} once expired."""
        try:
            return PersonalDataModel.get(personal_key(incident_id), consistent_read=True).body or {}
        except DoesNotExist:
            return {}

    def list_by_day(self, day: str, since: str, until: str, newest_first: bool = True, **kwargs):
        return IncidentModel.by_day.query(
            day,
            IncidentModel.created_at.between(since, until),
            scan_index_forward=not newest_first,
            **kwargs,
        )

    # --- writes --------------------------------------------------------------------------------------------------
    def create(self, incident: IncidentModel, created: NewEvent, personal: dict) -> bool:
        """Writes the incident, its reference claim and its first event atomically.

        Returns False when the reference is taken (the caller draws another). Raises FileExistsError when the
        incident id exists already (a retried request: ids derive from the idempotency key)."""
        event, private_row = self._event_model(incident.incident_id, 1, GENESIS_HASH, created)
        incident.last_seq = 1
        incident.last_hash = event.hash
        claim = LookupModel(f"ref#{incident.reference}", incident_id=incident.incident_id)
        # Short codes are not unique; this points at the newest incident with the code, for recording spoofed replies.
        code_hint = LookupModel(f"code#{incident.reference[3:7]}", incident_id=incident.incident_id,
                                expires_at=timedelta(days=2))
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(incident, condition=IncidentModel.incident_id.does_not_exist())
                tx.save(claim, condition=LookupModel.key.does_not_exist())
                tx.save(event, condition=TimelineEventModel.incident_id.does_not_exist())
                tx.save(code_hint)
                tx.save(self._personal_row(personal_key(incident.incident_id), personal))
                if private_row is not None:
                    tx.save(private_row)
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise FileExistsError(incident.incident_id) from exc
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return False
            raise Unavailable("could not store the incident, retry with the same Idempotency-Key") from exc
        return True

    def record(self, incident_id: str, decide: Decide, deadline_s: float = 10.0) -> IncidentModel:
        """Read the incident, let `decide` turn it into a Change, commit it with its events; on a concurrent writer
        read again and decide again. `decide` may raise a domain error (nothing is written) or RetryLater."""
        give_up_at = time.monotonic() + deadline_s
        attempt = 0
        while True:
            incident = self.get(incident_id)
            try:
                change = decide(incident)
            except RetryLater:
                change = None
                committed = False
            else:
                if change is None:
                    return incident
                committed = self._commit(incident, change)
                if committed:
                    return self.get(incident_id)
            attempt += 1
            if time.monotonic() > give_up_at:
                log.warning("incident stayed busy", extra={"incident_id": incident_id, "attempts": attempt,
                                                           "paging_since": incident.paging_since})
                raise Unavailable("the incident is busy, try again")
            # Full jitter keeps many concurrent writers (say 50 simultaneous ACKs) from retrying in lockstep.
            time.sleep(random.uniform(0, min(0.2, 0.01 * 2 ** min(attempt, 5))))

    def append(self, incident_id: str, *events: NewEvent) -> IncidentModel:
        return self.record(incident_id, lambda _incident: Change(events=list(events)))

    def _commit(self, incident: IncidentModel, change: Change) -> bool:
        seq, prev_hash = int(incident.last_seq), incident.last_hash or GENESIS_HASH
        models: list = []
        for new_event in change.events:
            seq += 1
            model, private_row = self._event_model(incident.incident_id, seq, prev_hash, new_event)
            prev_hash = model.hash
            models.append(model)
            if private_row is not None:
                models.append(private_row)
        if change.personal is not None:
            models.append(self._personal_row(personal_key(incident.incident_id), change.personal))
        actions = list(change.actions) + [IncidentModel.last_seq.set(seq), IncidentModel.last_hash.set(prev_hash)]
        condition = IncidentModel.last_seq == incident.last_seq
        if change.condition is not None:
            condition = condition & change.condition
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.update(incident, actions=actions, condition=condition, add_version_condition=False)
                for model in models:
                    # Events never overwrite; personal rows are replaced whole under the incident's seq condition.
                    is_event = isinstance(model, TimelineEventModel)
                    tx.save(model, condition=TimelineEventModel.incident_id.does_not_exist() if is_event else None)
        except TransactWriteError as exc:
            if _is_conditional_failure(exc):
                # botocore retries a transaction whose answer was lost (5xx); if the first try landed, the retry fails
                # its own seq condition. Then our first event is stored under its seq: done, not to be redone.
                return self._landed(incident.incident_id, models, prev_hash)
            raise Unavailable("could not record the change, try again") from exc
        return True

    def _landed(self, incident_id: str, models: list, head_hash: str) -> bool:
        events = [m for m in models if isinstance(m, TimelineEventModel)]
        if not events:
            return self.get(incident_id).last_hash == head_hash
        first = events[0]
        try:
            return TimelineEventModel.get(incident_id, first.seq, consistent_read=True).hash == first.hash
        except DoesNotExist:
            return False

    def _personal_row(self, key: str, body: dict) -> PersonalDataModel:
        return PersonalDataModel(key, body=body, expires_at=self._retention)

    def _event_model(self, incident_id: str, seq: int, prev_hash: str, new_event: NewEvent):
        at = new_event.at or iso(utc_now())
        details = dict(new_event.details)
        private_row = None
        if new_event.private:
            details["private_digest"] = private_digest(new_event.private)
            private_row = self._personal_row(private_key(incident_id, seq), new_event.private)
        event = TimelineEventModel(
            incident_id,
            seq,
            at=at,
            type=new_event.type,
            actor=new_event.actor,
            details=details,
            prev_hash=prev_hash,
            hash=event_hash(prev_hash, seq, at, new_event.type, new_event.actor, details),
        )
        return event, private_row

    # --- the paging lease (see services/escalation.py) ------------------------------------------------------------
    def take_paging_lease(self, incident_id: str, condition: Condition, lease_s: int) -> str | None:
        """Marks the incident as 'pager sending now' if `condition` holds and no live lease exists. Returns the
        lease stamp, or None when the condition does not hold (the caller re-reads to learn why)."""
        now = utc_now()
        stamp = iso(now)
        cutoff = iso(now - timedelta(seconds=lease_s))
        free = IncidentModel.paging_since.does_not_exist() | (IncidentModel.paging_since < cutoff)
        try:
            IncidentModel(incident_id).update(
                actions=[IncidentModel.paging_since.set(stamp)],
                condition=IncidentModel.incident_id.exists() & condition & free,
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return None
            raise
        return stamp

    def release_paging_lease(self, incident_id: str, stamp: str) -> None:
        try:
            IncidentModel(incident_id).update(
                actions=[IncidentModel.paging_since.remove()], condition=IncidentModel.paging_since == stamp
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise


def personal_key(incident_id: str) -> str:
    return f"personal#{incident_id}"


def private_key(incident_id: str, seq: int) -> str:
    return f"personal#{incident_id}#{seq}"


def private_digest(private: dict) -> str:
    return hashlib.sha256(json.dumps(private, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def no_live_paging_lease(lease_s: int) -> Condition:
    """For status changes out of `triggered`: they commit only while no pager is mid-send, so no page can leave
    after an acknowledgement (or cancel, or resolve) is committed."""
    cutoff = iso(utc_now() - timedelta(seconds=lease_s))
    return IncidentModel.paging_since.does_not_exist() | (IncidentModel.paging_since < cutoff)


def leaving_triggered(current: IncidentModel, lease_s: int) -> Condition:
    """The guard of every status change out of `triggered` (acknowledge, resolve, cancel): wait while a pager holds a
    live lease (RetryLater), and commit only if none was taken meanwhile (the returned condition)."""
    if paging_lease_is_live(current, lease_s):
        raise RetryLater()
    return no_live_paging_lease(lease_s)


def paging_lease_is_live(incident: IncidentModel, lease_s: int) -> bool:
    return incident.paging_since is not None and incident.paging_since >= iso(utc_now() - timedelta(seconds=lease_s))


def count_in_window(key: str, window_s: int, limit: int) -> bool:
    """Atomic counter per key and window; True while the count stays within `limit`."""
    window = int(time.time()) // window_s
    item = LookupModel(f"{key}#{window}")
    try:
        item.update(
            actions=[LookupModel.count.add(1), LookupModel.expires_at.set(timedelta(seconds=2 * window_s))],
        )
    except UpdateError as exc:
        raise Unavailable("rate limiter unavailable") from exc
    return int(item.count) <= limit

