"""The incident store on DynamoDB (PynamoDB models in adapters/models.py): the primitives of adapters/store.py.

Every write is one TransactWriteItems: the incident (created, or updated only if its `version` is the one read),
its timeline events (each must not exist: a seq is never reused), private parts and personal data (TTL rows),
claims (must not exist), links, and page records (with their own conditions). The transaction carries a client
request token, so botocore's retry of a transaction whose answer was lost is answered by DynamoDB as the first
attempt, not applied twice.
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import fields
from datetime import timedelta

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.models import IncidentModel, LookupModel, PageModel, PersonalDataModel, TimelineEventModel
from chalicelib.adapters.store import (
    ClaimTaken,
    Conflict,
    IncidentStore,
    ListQuery,
    Lookup,
    PageConflict,
    StoredEvent,
    Write,
)
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.incidents import Incident
from chalicelib.domain.paging import Page, PageWrite

LIST_SHARDS = 4
PAGE_RETENTION = timedelta(days=30)
_INCIDENT_FIELDS = tuple(f.name for f in fields(Incident))
_TUPLE_FIELDS = {"attachments", "responder_ids"}
_DICT_FIELDS = {"deliveries"}


def list_keys(incident_id: str, created_at: str) -> tuple[str, str]:
    shard = int(hashlib.sha256(incident_id.encode()).hexdigest()[:8], 16) % LIST_SHARDS
    return f"{created_at[:7]}#{shard}", f"{created_at}#{incident_id}"


def to_model(incident: Incident) -> IncidentModel:
    list_pk, list_sk = list_keys(incident.incident_id, incident.created_at)
    values = {name: _stored(name, getattr(incident, name)) for name in _INCIDENT_FIELDS if name != "incident_id"}
    return IncidentModel(incident.incident_id, list_pk=list_pk, list_sk=list_sk, **values)


def from_model(model: IncidentModel) -> Incident:
    values = {}
    for name in _INCIDENT_FIELDS:
        value = getattr(model, name, None)
        if name in _TUPLE_FIELDS:
            value = tuple(value or ())
        elif name in _DICT_FIELDS:
            value = dict(value or {})
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is not None:
            values[name] = value
    return Incident(**values)


def _stored(name: str, value):
    if name in _TUPLE_FIELDS:
        return list(value or ())
    return value


def _page_model(page: Page) -> PageModel:
    return PageModel(
        page.incident_id, page.page_key, responder_id=page.responder_id, phone=page.phone,
        phone_sk=f"{page.code}#{page.sent_at}", code=page.code, purpose=page.purpose, tier=page.tier, step=page.step,
        state=page.state, sent_at=page.sent_at, message_id=page.message_id, channel=page.channel,
        delivery=page.delivery, delivered_at=page.delivered_at, failover=list(page.failover) or None,
        expires_at=PAGE_RETENTION)


def _page(model: PageModel) -> Page:
    return Page(model.incident_id, model.page_key, model.responder_id, model.phone or "", model.code, model.purpose,
                int(model.tier or 0), int(model.step or 0), model.state, model.sent_at, model.message_id,
                model.channel or "sms", model.delivery, getattr(model, "delivered_at", None),
                tuple(getattr(model, "failover", None) or ()))


def _page_condition(write: PageWrite):
    if write.expect is None:
        return None
    if write.expect == "claim":
        # Nobody has it, or a sender that died mid-send left it behind longer than a lease ago.
        return PageModel.page_key.does_not_exist() | (PageModel.state == "failed") | (
            (PageModel.state == "sending") & (PageModel.sent_at < (write.stale_before or "")))
    if write.expect == "undelivered":
        return (PageModel.state == "sent") & PageModel.delivery.does_not_exist()
    return PageModel.state == write.expect


def _reason_codes(error: TransactWriteError) -> list[str | None]:
    return [reason.code if reason is not None else None for reason in (error.cancellation_reasons or [])]


class DynamoDBIncidentStore(IncidentStore):
    def __init__(self, connection: Connection, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connection = connection

    # --- reads ---------------------------------------------------------------------------------------------------
    def _get(self, incident_id: str) -> Incident | None:
        try:
            return from_model(IncidentModel.get(incident_id, consistent_read=True))
        except DoesNotExist:
            return None

    def get_many(self, incident_ids: Iterable[str]) -> dict[str, Incident]:
        ids = sorted(set(incident_ids))
        if not ids:
            return {}
        return {m.incident_id: from_model(m) for m in IncidentModel.batch_get(ids, consistent_read=True)}

    def _events(self, incident_id: str) -> list[StoredEvent]:
        rows = list(TimelineEventModel.query(incident_id, consistent_read=True))
        keys = [private_key(incident_id, int(r.seq)) for r in rows if "private_digest" in (r.details or {})]
        private = {item.key: item.body for item in PersonalDataModel.batch_get(keys, consistent_read=True)} if keys else {}
        return [StoredEvent(int(r.seq), r.at, r.type, r.actor, r.details or {}, r.prev_hash, r.hash,
                            private.get(private_key(incident_id, int(r.seq)))) for r in rows]

    def personal(self, incident_id: str) -> dict:
        try:
            return PersonalDataModel.get(personal_key(incident_id), consistent_read=True).body or {}
        except DoesNotExist:
            return {}

    def lookup(self, key: str) -> Lookup | None:
        try:
            row = LookupModel.get(key, consistent_read=True)
        except DoesNotExist:
            return None
        return Lookup(row.key, row.incident_id or "", row.at, dict(row.body or {}))

    def page(self, incident_id: str, page_key: str) -> Page | None:
        try:
            return _page(PageModel.get(incident_id, page_key, consistent_read=True))
        except DoesNotExist:
            return None

    def pages_for(self, incident_id: str) -> list[Page]:
        return [_page(m) for m in PageModel.query(incident_id, consistent_read=True)]

    def page_by_message_id(self, message_id: str) -> Page | None:
        for model in PageModel.by_message.query(message_id, limit=1):
            return _page(model)
        return None

    def pages_to_phone(self, phone: str, since: str, code: str | None = None, limit: int = 25) -> list[Page]:
        # The index's sort key is "<code>#<sent_at>": with a code, the key condition finds that incident's pages to
        # this phone directly (newest first); without, the phone's pages since `since`, a bounded number.
        if code is not None:
            condition = PageModel.phone_sk.between(f"{code}#{since}", f"{code}#~")
            found = PageModel.by_phone.query(phone, condition, scan_index_forward=False, limit=limit)
            return [_page(m) for m in found]
        found = PageModel.by_phone_time.query(phone, PageModel.sent_at >= since, scan_index_forward=False, limit=limit)
        return [_page(m) for m in found]

    def list_incidents(self, query: ListQuery) -> Iterator[Incident]:
        if query.owner is not None:
            yield from self._stream(IncidentModel.by_owner, query.owner, query)
            return
        # Month by month, newest first; within a month the shards' streams (each newest first) are merged lazily, so
        # a page reads about what it returns plus one small page per shard.
        for month in _months_between(query.since, query.until):
            streams = [self._stream(IncidentModel.by_list, f"{month}#{shard}", query) for shard in range(LIST_SHARDS)]
            yield from heapq.merge(*streams, key=lambda i: (i.created_at, i.incident_id), reverse=True)

    def _stream(self, index, partition: str, query: ListQuery) -> Iterator[Incident]:
        upper = f"{query.after[0]}#{query.after[1]}" if query.after else query.until
        condition = IncidentModel.list_sk < upper
        filters = None
        for name, value in (("status", query.status), ("kind", query.kind)):
            if value is not None:
                clause = getattr(IncidentModel, name) == value
                filters = clause if filters is None else filters & clause
        if query.responder is not None:
            clause = IncidentModel.responder_ids.contains(query.responder)
            filters = clause if filters is None else filters & clause
        shard_page = max(5, query.page_size // LIST_SHARDS + 2)
        for model in index.query(partition, condition, filter_condition=filters, scan_index_forward=False,
                                 page_size=shard_page):
            if model.created_at < query.since:
                return
            yield from_model(model)

    # --- writes --------------------------------------------------------------------------------------------------
    def put_page(self, write: PageWrite) -> None:
        try:
            _page_model(write.page).save(condition=_page_condition(write))
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise PageConflict(write.page.page_key) from exc
            raise

    def _write(self, write: Write) -> None:
        after = write.after
        incident_id = after.incident_id
        # What a failed condition of each item means. PynamoDB sends puts first, then updates (whatever the order of
        # the calls), and DynamoDB's cancellation reasons follow the items sent.
        meaning: list[tuple[str, str]] = []
        updated: list[tuple[str, str]] = []
        try:
            with TransactWrite(connection=self._connection, client_request_token=uuid.uuid4().hex) as tx:
                if write.before is None:
                    tx.save(to_model(after), condition=IncidentModel.incident_id.does_not_exist())
                else:
                    actions = self._changes(write.before, after)
                    tx.update(IncidentModel(incident_id), actions=actions,
                              condition=IncidentModel.version == write.before.version, add_version_condition=False)
                (meaning if write.before is None else updated).append(("incident", incident_id))
                for row in write.events:
                    event = row.event
                    tx.save(TimelineEventModel(incident_id, event.seq, at=event.at, type=event.type, actor=event.actor,
                                               details=event.details, prev_hash=event.prev_hash, hash=event.hash),
                            condition=TimelineEventModel.incident_id.does_not_exist())
                    meaning.append(("incident", incident_id))
                    if row.private is not None:
                        tx.save(PersonalDataModel(private_key(incident_id, event.seq), body=row.private,
                                                  expires_at=self.retention))
                        meaning.append(("other", ""))
                if write.personal is not None:
                    tx.save(PersonalDataModel(personal_key(incident_id), body=write.personal, expires_at=self.retention))
                    meaning.append(("other", ""))
                for claim in write.claims:
                    condition = LookupModel.key.does_not_exist()
                    if claim.replaceable_before is not None:
                        condition = condition | (LookupModel.at < claim.replaceable_before)
                    if claim.replaces is not None:
                        condition = condition | (LookupModel.incident_id == claim.replaces)
                    tx.save(LookupModel(claim.key, incident_id=claim.incident_id, at=claim.at, body=claim.body or None,
                                        expires_at=claim.ttl), condition=condition)
                    meaning.append(("claim", claim.key))
                for link in write.links:
                    ttl = timedelta(days=2) if link.key.startswith("code#") else None
                    tx.save(LookupModel(link.key, incident_id=link.incident_id, at=link.at, body=link.body or None,
                                        expires_at=ttl))
                    meaning.append(("other", ""))
                for page_write in write.pages:
                    tx.save(_page_model(page_write.page), condition=_page_condition(page_write))
                    meaning.append(("page", page_write.page.page_key))
        except TransactWriteError as exc:
            codes = _reason_codes(exc)
            for code, (kind, key) in zip(codes, meaning + updated):
                if code != "ConditionalCheckFailed":
                    continue
                if kind == "claim":
                    raise ClaimTaken(key) from exc
                if kind == "page":
                    raise PageConflict(key) from exc
                if self._landed(write):
                    return
                raise Conflict(incident_id) from exc
            if "TransactionConflict" in codes or exc.cause_response_code == "TransactionConflictException":
                raise Conflict(incident_id) from exc
            raise Unavailable("could not store the change, try again") from exc

    def _landed(self, write: Write) -> bool:
        """A version conflict on a retry of our own transaction whose first answer was lost. DynamoDB (and the local
        stack, see local/moto_fixes.py) answers botocore's retry, which carries the same client request token, as a
        success; this is the fallback where the token is not honoured: the incident is exactly what we wrote."""
        current = self._get(write.after.incident_id)
        return current is not None and current == write.after

    @staticmethod
    def _changes(before: Incident, after: Incident) -> list:
        actions = []
        for name in _INCIDENT_FIELDS:
            old, new = getattr(before, name), getattr(after, name)
            if old == new:
                continue
            attribute = getattr(IncidentModel, name)
            value = _stored(name, new)
            actions.append(attribute.remove() if value is None else attribute.set(value))
        return actions


def personal_key(incident_id: str) -> str:
    return f"personal#{incident_id}"


def private_key(incident_id: str, seq: int) -> str:
    return f"personal#{incident_id}#{seq}"


def _months_between(since: str, until: str) -> list[str]:
    """YYYY-MM of every month overlapping [since, until), newest first."""
    start, end = parse_iso(since), parse_iso(until)
    months = []
    year, month = end.year, end.month
    while (year, month) >= (start.year, start.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months
