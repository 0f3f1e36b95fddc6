"""The directory: responders, schedules, escalation policies and routing, with a DynamoDB and a memory
implementation held to one contract test suite (tests/contract/).

A phone number belongs to at most one responder: each responder's number is also a claim item (`phone`, number)
written in the same transaction as the responder, on the condition that it is free or already theirs, so two
administrators giving one number to two responders at once cannot both succeed.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.clock import iso
from chalicelib.domain.errors import Conflict
from chalicelib.domain.escalation import ResponderContact

RESPONDER, SCHEDULE, POLICY, ROUTING, PHONE = "responder", "schedule", "policy", "routing", "phone"
ROUTING_ID = "kinds"
# Routing with every policy and schedule it names, compiled on each admin change: intake reads this one item.
ROUTING_PLAN_ID = "plan"


class PhoneTaken(Conflict):
    def __init__(self, phone_holder: str):
        super().__init__(f"phone number is already registered to responder {phone_holder}",
                         extra={"responder": phone_holder})
        self.holder = phone_holder


class Directory(ABC):
    @abstractmethod
    def responder(self, responder_id: str) -> ResponderContact | None: ...

    @abstractmethod
    def responders(self, responder_ids: Iterable[str]) -> dict[str, ResponderContact]:
        """Strongly consistent: a page is decided on what the directory says now."""

    @abstractmethod
    def all_responders(self) -> list[ResponderContact]: ...

    @abstractmethod
    def responder_by_phone(self, phone: str) -> ResponderContact | None: ...

    @abstractmethod
    def put_responder(self, responder: ResponderContact, previous: ResponderContact | None) -> None:
        """Writes the responder and claims its phone (releasing the previous number). Raises PhoneTaken."""

    @abstractmethod
    def delete_responder(self, responder: ResponderContact) -> None: ...

    @abstractmethod
    def update_responder(self, responder_id: str, **changes) -> ResponderContact | None:
        """Changes flags (opted_out, verified_at) of an existing responder; None if there is none."""

    @abstractmethod
    def document(self, entity: str, item_id: str) -> tuple[dict, str] | None:
        """(body, updated_at) of a schedule, policy or routing document."""

    @abstractmethod
    def documents(self, entity: str, item_ids: Iterable[str]) -> dict[str, dict]: ...

    @abstractmethod
    def put_document(self, entity: str, item_id: str, body: dict, updated_at: str) -> bool:
        """True if it was created."""


class MemoryDirectory(Directory):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._responders: dict[str, ResponderContact] = {}
        self._phones: dict[str, str] = {}
        self._documents: dict[tuple[str, str], tuple[dict, str]] = {}

    def responder(self, responder_id: str) -> ResponderContact | None:
        return self._responders.get(responder_id)

    def responders(self, responder_ids: Iterable[str]) -> dict[str, ResponderContact]:
        with self._lock:
            return {i: self._responders[i] for i in responder_ids if i in self._responders}

    def all_responders(self) -> list[ResponderContact]:
        with self._lock:
            return sorted(self._responders.values(), key=lambda r: r.id)

    def responder_by_phone(self, phone: str) -> ResponderContact | None:
        with self._lock:
            holder = self._phones.get(phone)
            return self._responders.get(holder) if holder else None

    def put_responder(self, responder: ResponderContact, previous: ResponderContact | None) -> None:
        with self._lock:
            holder = self._phones.get(responder.phone)
            if holder is not None and holder != responder.id:
                raise PhoneTaken(holder)
            if previous is not None and previous.phone != responder.phone:
                self._phones.pop(previous.phone, None)
            self._phones[responder.phone] = responder.id
            self._responders[responder.id] = responder

    def delete_responder(self, responder: ResponderContact) -> None:
        with self._lock:
            self._responders.pop(responder.id, None)
            if self._phones.get(responder.phone) == responder.id:
                del self._phones[responder.phone]

    def update_responder(self, responder_id: str, **changes) -> ResponderContact | None:
        with self._lock:
            current = self._responders.get(responder_id)
            if current is None:
                return None
            self._responders[responder_id] = replace(current, **changes)
            return self._responders[responder_id]

    def document(self, entity: str, item_id: str) -> tuple[dict, str] | None:
        with self._lock:
            return self._documents.get((entity, item_id))

    def documents(self, entity: str, item_ids: Iterable[str]) -> dict[str, dict]:
        with self._lock:
            return {i: self._documents[(entity, i)][0] for i in item_ids if (entity, i) in self._documents}

    def put_document(self, entity: str, item_id: str, body: dict, updated_at: str) -> bool:
        with self._lock:
            created = (entity, item_id) not in self._documents
            self._documents[(entity, item_id)] = (body, updated_at)
            return created


class DynamoDBDirectory(Directory):
    def __init__(self, connection) -> None:
        self._connection = connection

    @staticmethod
    def _contact(item) -> ResponderContact:
        return ResponderContact(item.id, item.name or item.id, item.phone or "", bool(item.active),
                                bool(item.opted_out), bool(item.voice), item.email, item.verified_at,
                                getattr(item, "updated_at", None))

    @staticmethod
    def _model():
        from chalicelib.adapters.models import DirectoryModel

        return DirectoryModel

    def responder(self, responder_id: str) -> ResponderContact | None:
        try:
            return self._contact(self._model().get(RESPONDER, responder_id, consistent_read=True))
        except DoesNotExist:
            return None

    def responders(self, responder_ids: Iterable[str]) -> dict[str, ResponderContact]:
        keys = [(RESPONDER, i) for i in sorted(set(responder_ids))]
        if not keys:
            return {}
        return {item.id: self._contact(item) for item in self._model().batch_get(keys, consistent_read=True)}

    def all_responders(self) -> list[ResponderContact]:
        return [self._contact(item) for item in self._model().query(RESPONDER, consistent_read=True)]

    def responder_by_phone(self, phone: str) -> ResponderContact | None:
        model = self._model()
        # The index is eventually consistent; the claim item is not (and is the rule): read it when the index has
        # nothing, so a number registered a moment ago is still recognised.
        for item in model.by_phone.query(phone, limit=2):
            if item.entity == RESPONDER:
                return self._contact(item)
        try:
            claim = model.get(PHONE, phone, consistent_read=True)
        except DoesNotExist:
            return None
        return self.responder(claim.responder_id) if claim.responder_id else None

    def put_responder(self, responder: ResponderContact, previous: ResponderContact | None) -> None:
        model = self._model()
        now = iso(datetime.now(timezone.utc))
        item = model(RESPONDER, responder.id, name=responder.name, phone=responder.phone, active=responder.active,
                     opted_out=responder.opted_out, voice=responder.voice, email=responder.email,
                     verified_at=responder.verified_at, updated_at=now)
        claim = model(PHONE, responder.phone, responder_id=responder.id, updated_at=now)
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(item)
                # The number is free, or already this responder's: the rule "one number, one responder".
                tx.save(claim, condition=model.id.does_not_exist() | (model.responder_id == responder.id))
                if previous is not None and previous.phone != responder.phone:
                    tx.delete(model(PHONE, previous.phone), condition=model.responder_id == responder.id)
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
            # PynamoDB sends deletes before puts: [old claim delete?, responder, claim].
            claim_index = 2 if previous is not None and previous.phone != responder.phone else 1
            if len(reasons) > claim_index and reasons[claim_index] == "ConditionalCheckFailed":
                holder = self._claim_holder(responder.phone)
                raise PhoneTaken(holder or "another responder") from exc
            if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
                raise Conflict("the responder changed meanwhile, try again") from exc
            raise

    def _claim_holder(self, phone: str) -> str | None:
        try:
            return self._model().get(PHONE, phone, consistent_read=True).responder_id
        except DoesNotExist:
            return None

    def delete_responder(self, responder: ResponderContact) -> None:
        model = self._model()
        with TransactWrite(connection=self._connection) as tx:
            tx.delete(model(RESPONDER, responder.id))
            tx.delete(model(PHONE, responder.phone), condition=model.responder_id == responder.id)

    def update_responder(self, responder_id: str, **changes) -> ResponderContact | None:
        model = self._model()
        actions = [getattr(model, name).set(value) if value is not None else getattr(model, name).remove()
                   for name, value in changes.items()]
        actions.append(model.updated_at.set(iso(datetime.now(timezone.utc))))
        item = model(RESPONDER, responder_id)
        try:
            item.update(actions=actions, condition=model.id.exists())
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return None
            raise
        return self.responder(responder_id)

    def document(self, entity: str, item_id: str) -> tuple[dict, str] | None:
        try:
            item = self._model().get(entity, item_id, consistent_read=True)
        except DoesNotExist:
            return None
        return dict(item.body or {}), item.updated_at

    def documents(self, entity: str, item_ids: Iterable[str]) -> dict[str, dict]:
        keys = [(entity, i) for i in sorted(set(item_ids))]
        if not keys:
            return {}
        return {item.id: dict(item.body or {}) for item in self._model().batch_get(keys, consistent_read=True)}

    def put_document(self, entity: str, item_id: str, body: dict, updated_at: str) -> bool:
        model = self._model()
        item = model(entity, item_id, body=body, updated_at=updated_at)
        # PynamoDB's save does not return the old item; a conditional create tells new from replaced.
        try:
            item.save(condition=model.id.does_not_exist())
            return True
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
        item.save()
        return False
