"""Admin use cases: responders, schedules, escalation policies, routing; and reading them back as domain objects."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from chalicelib.adapters.directory_store import POLICY, RESPONDER, ROUTING, ROUTING_ID, SCHEDULE, DirectoryStore
from chalicelib.adapters.incident_store import iso, utc_now
from chalicelib.adapters.models import DirectoryModel
from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.escalation import Policy, PolicyTier, ResponderContact
from chalicelib.domain.schedules import Override, Rotation, Schedule, ScheduleError, validate_schedule
from chalicelib.schemas import PolicyPut, ResponderPut, RoutingPut, SchedulePut
from chalicelib.services.views import document_view, responder_view


def _parse_time(value: str, field: str, naive: bool) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed("invalid time", [{"field": field, "problem": "must be an ISO 8601 time"}]) from exc
    if naive:
        return moment.replace(tzinfo=None)
    if moment.tzinfo is None:
        raise ValidationFailed("invalid time", [{"field": field, "problem": "must include a UTC offset"}])
    return moment.astimezone(timezone.utc)


def schedule_from_body(schedule_id: str, body: dict) -> Schedule:
    rotation = body["rotation"]
    return Schedule(
        id=schedule_id,
        time_zone=body["time_zone"],
        rotation=Rotation(
            responders=tuple(rotation["responders"]),
            shift_hours=int(rotation["shift_hours"]),
            handoff=_parse_time(rotation["handoff"], "rotation.handoff", naive=True),
        ),
        overrides=tuple(
            Override(
                o["responder"],
                _parse_time(o["start"], f"overrides.{i}.start", naive=False),
                _parse_time(o["end"], f"overrides.{i}.end", naive=False),
            )
            for i, o in enumerate(body.get("overrides", []))
        ),
    )


def policy_from_body(policy_id: str, body: dict) -> Policy:
    return Policy(
        id=policy_id,
        tiers=tuple(
            PolicyTier(int(t["timeout_s"]), tuple({k: v for k, v in target.items() if v} for target in t["targets"]))
            for t in body["tiers"]
        ),
        repeat=int(body.get("repeat", 0)),
    )


def contact_from_item(item: DirectoryModel) -> ResponderContact:
    return ResponderContact(item.id, item.name, item.phone, bool(item.active), bool(item.opted_out))


class AdminService:
    """Admin writes, and the directory reads an incident needs when it opens.

    Those reads (routing, the policy, its schedules and responders) are cached for `cache_s` seconds in the warm
    process: a panic press then costs two AWS calls (the transaction and StartExecution) instead of six. Writes
    through this process clear the cache at once; other Lambda instances see an admin change within `cache_s`.
    """

    def __init__(self, directory: DirectoryStore, cache_s: float = 5.0):
        self._directory = directory
        self._cache_s = cache_s
        self._cache: dict[tuple, tuple[float, object]] = {}

    def _cached(self, key: tuple, load):
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        self._cache[key] = (now + self._cache_s, value)
        return value

    def _changed(self) -> None:
        self._cache.clear()

    # --- responders ----------------------------------------------------------------------------------------------
    def put_responder(self, responder_id: str, body: ResponderPut) -> tuple[dict, bool]:
        holder = self._directory.responder_by_phone(body.phone)
        if holder is not None and holder.id != responder_id:
            raise Conflict(f"phone number is already registered to responder {holder.id}")
        existing = self._directory.get(RESPONDER, responder_id)
        item = DirectoryModel(
            RESPONDER,
            responder_id,
            name=body.name,
            phone=body.phone,
            active=body.active,
            # A new phone number has not opted out of anything; the same number keeps its opt-out.
            opted_out=bool(existing and existing.opted_out and existing.phone == body.phone),
            updated_at=iso(utc_now()),
        )
        self._directory.put(item)
        self._changed()
        return responder_view(item), existing is None

    def get_responder(self, responder_id: str) -> dict:
        return responder_view(self._require(RESPONDER, responder_id))

    def list_responders(self) -> list[dict]:
        return [responder_view(item) for item in self._directory.list(RESPONDER)]

    def delete_responder(self, responder_id: str) -> None:
        if not self._directory.delete(RESPONDER, responder_id):
            raise NotFound(f"responder {responder_id} not found")
        self._changed()

    def set_opted_out(self, responder_id: str, opted_out: bool) -> None:
        item = self._require(RESPONDER, responder_id)
        item.update(actions=[DirectoryModel.opted_out.set(opted_out), DirectoryModel.updated_at.set(iso(utc_now()))])
        self._changed()

    def contacts(self, responder_ids: set[str]) -> dict[str, ResponderContact]:
        key = ("contacts", frozenset(responder_ids))
        return self._cached(key, lambda: {item.id: contact_from_item(item)
                                          for item in self._directory.get_many(RESPONDER, responder_ids)})

    def contact_by_phone(self, phone: str) -> ResponderContact | None:
        item = self._directory.responder_by_phone(phone)
        return contact_from_item(item) if item else None

    def contact(self, responder_id: str) -> ResponderContact | None:
        def load() -> ResponderContact | None:
            item = self._directory.get(RESPONDER, responder_id)
            return contact_from_item(item) if item else None

        return self._cached(("contact", responder_id), load)

    # --- schedules -----------------------------------------------------------------------------------------------
    def put_schedule(self, schedule_id: str, body: SchedulePut) -> tuple[dict, bool]:
        document = body.model_dump()
        try:
            validate_schedule(schedule_from_body(schedule_id, document))
        except ScheduleError as exc:
            raise ValidationFailed("invalid schedule", [{"field": "schedule", "problem": str(exc)}]) from exc
        return self._put_document(SCHEDULE, schedule_id, document)

    def get_schedule(self, schedule_id: str) -> dict:
        return document_view(self._require(SCHEDULE, schedule_id))

    def schedules(self, schedule_ids: set[str]) -> dict[str, Schedule]:
        key = ("schedules", frozenset(schedule_ids))
        return self._cached(key, lambda: {item.id: schedule_from_body(item.id, item.body)
                                          for item in self._directory.get_many(SCHEDULE, schedule_ids)})

    # --- policies ------------------------------------------------------------------------------------------------
    def put_policy(self, policy_id: str, body: PolicyPut) -> tuple[dict, bool]:
        return self._put_document(POLICY, policy_id, body.model_dump(exclude_none=True))

    def get_policy(self, policy_id: str) -> dict:
        return document_view(self._require(POLICY, policy_id))

    def policy(self, policy_id: str) -> Policy | None:
        def load() -> Policy | None:
            item = self._directory.get(POLICY, policy_id)
            return policy_from_body(item.id, item.body) if item else None

        return self._cached(("policy", policy_id), load)

    # --- routing -------------------------------------------------------------------------------------------------
    def put_routing(self, body: RoutingPut) -> dict:
        routes = body.routes()
        missing = [
            {"field": kind, "problem": f"policy {policy_id} does not exist"}
            for kind, policy_id in routes.items()
            if self._directory.get(POLICY, policy_id) is None
        ]
        if missing:
            raise ValidationFailed("routing names unknown policies", missing)
        self._put_document(ROUTING, ROUTING_ID, routes)
        return routes

    def get_routing(self) -> dict:
        item = self._directory.get(ROUTING, ROUTING_ID)
        return dict(item.body) if item else {}

    def policy_id_for_kind(self, kind: str) -> str | None:
        routes = self._cached(("routing",), self.get_routing)
        return routes.get(kind) or routes.get("default")

    # --- helpers -------------------------------------------------------------------------------------------------
    def _put_document(self, entity: str, item_id: str, body: dict) -> tuple[dict, bool]:
        created = self._directory.get(entity, item_id) is None
        item = DirectoryModel(entity, item_id, body=body, updated_at=iso(utc_now()))
        self._directory.put(item)
        self._changed()
        return document_view(item), created

    def _require(self, entity: str, item_id: str) -> DirectoryModel:
        item = self._directory.get(entity, item_id)
        if item is None:
            raise NotFound(f"{entity} {item_id} not found")
        return item
