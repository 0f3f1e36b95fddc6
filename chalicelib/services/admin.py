"""Admin use cases: responders, schedules, escalation policies and routing; and the routing plan intake reads.

Every write that changes routing, a policy or a schedule recompiles the routing plan: one directory item holding the
routing with every policy and schedule it names, so opening an incident reads one item (cached for `cache_s` in a
warm process; other Lambda instances see an admin change within `cache_s`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime

from chalicelib.adapters.directory import POLICY, ROUTING, ROUTING_ID, ROUTING_PLAN_ID, SCHEDULE, Directory
from chalicelib.domain.clock import TimeFormatError, parse_iso
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.escalation import Policy, ResponderContact
from chalicelib.domain.schedules import Override, Rotation, Schedule, ScheduleError, on_call, shift_bounds, validate_schedule
from chalicelib.schemas import PolicyPut, ResponderPut, RoutingPut, SchedulePut
from chalicelib.services.views import document_view, responder_view


def _time(value: str, field: str, naive: bool) -> datetime:
    """A schedule's handoff is a wall-clock time in the schedule's zone (an offset would be silently wrong half the
    year, so it is refused); overrides are instants and need an offset."""
    try:
        if naive:
            if value.endswith(("Z", "z")) or "+" in value[10:] or "-" in value[10:]:
                raise ValidationFailed.field(field, "must be a local time without offset (time_zone applies)")
            return parse_iso(value).replace(tzinfo=None)
        return parse_iso(value, naive_is_utc=False)
    except TimeFormatError as exc:
        raise ValidationFailed.field(field, str(exc)) from exc


def schedule_from_document(schedule_id: str, body: dict) -> Schedule:
    rotation = body["rotation"]
    return Schedule(
        id=schedule_id,
        time_zone=body["time_zone"],
        rotation=Rotation(tuple(rotation["responders"]), int(rotation["shift_hours"]),
                          _time(rotation["handoff"], "rotation.handoff", naive=True)),
        overrides=tuple(
            Override(o["responder"], _time(o["start"], f"overrides.{i}.start", naive=False),
                     _time(o["end"], f"overrides.{i}.end", naive=False))
            for i, o in enumerate(body.get("overrides", []))),
    )


class AdminService:
    def __init__(self, directory: Directory, clock: Callable[[], str], cache_s: float = 5.0, outbox=None):
        self._directory = directory
        self._now = clock
        self._cache_s = cache_s
        self._outbox = outbox
        self._plan: tuple[float, dict] | None = None

    # --- responders ----------------------------------------------------------------------------------------------
    def put_responder(self, responder_id: str, body: ResponderPut) -> tuple[dict, bool]:
        existing = self._directory.responder(responder_id)
        same_phone = existing is not None and existing.phone == body.phone
        responder = ResponderContact(
            responder_id, body.name, body.phone, body.active,
            # A new number has not opted out of anything and is not verified; the same number keeps both.
            opted_out=bool(existing and existing.opted_out and same_phone),
            voice=body.voice, email=body.email,
            verified_at=existing.verified_at if existing and same_phone else None,
            updated_at=self._now())
        self._directory.put_responder(responder, existing)
        return responder_view(responder, responder.updated_at), existing is None

    def get_responder(self, responder_id: str) -> dict:
        responder = self.responder(responder_id)
        return responder_view(responder, responder.updated_at)

    def responder(self, responder_id: str) -> ResponderContact:
        responder = self._directory.responder(responder_id)
        if responder is None:
            raise NotFound(f"responder {responder_id} not found")
        return responder

    def list_responders(self, verified: bool | None = None) -> list[dict]:
        return [responder_view(r, r.updated_at) for r in self._directory.all_responders()
                if verified is None or (r.verified_at is not None) == verified]

    def send_test_page(self, responder_id: str) -> dict:
        """An SMS asking the responder to reply OK; the reply sets `verified_at` (services/sms_inbox.py)."""
        responder = self.responder(responder_id)
        self._outbox.page({"action": "test", "responder_id": responder.id, "key": secrets.token_hex(6)})
        return {"responder": responder.id, "status": "queued", "reply": "OK"}

    def delete_responder(self, responder_id: str) -> None:
        self._directory.delete_responder(self.responder(responder_id))

    def set_opted_out(self, responder_id: str, opted_out: bool) -> None:
        self._directory.update_responder(responder_id, opted_out=opted_out)

    def mark_verified(self, responder_id: str) -> ResponderContact | None:
        return self._directory.update_responder(responder_id, verified_at=self._now())

    def contact(self, responder_id: str) -> ResponderContact | None:
        return self._directory.responder(responder_id)

    def contact_by_phone(self, phone: str) -> ResponderContact | None:
        return self._directory.responder_by_phone(phone)

    def contacts(self, responder_ids) -> dict[str, ResponderContact]:
        """As the directory says now (strongly consistent, never cached): who gets paged is decided on this."""
        return self._directory.responders(responder_ids)

    # --- schedules -----------------------------------------------------------------------------------------------
    def put_schedule(self, schedule_id: str, body: SchedulePut) -> tuple[dict, bool]:
        document = body.model_dump()
        try:
            validate_schedule(schedule_from_document(schedule_id, document))
        except ScheduleError as exc:
            raise ValidationFailed("invalid schedule", [{"field": "schedule", "problem": str(exc)}]) from exc
        named = set(body.rotation.responders) | {o.responder for o in body.overrides}
        self._require_responders(named, "rotation.responders")
        view, created = self._put(SCHEDULE, schedule_id, document)
        return self._with_on_call(schedule_id, document, view), created

    def get_schedule(self, schedule_id: str) -> dict:
        body, updated_at = self._require(SCHEDULE, schedule_id)
        return self._with_on_call(schedule_id, body, document_view(schedule_id, body, updated_at))

    def _with_on_call(self, schedule_id: str, body: dict, view: dict) -> dict:
        """Who is on call now and until when (what an admin checks after editing a rotation)."""
        schedule = schedule_from_document(schedule_id, body)
        now = parse_iso(self._now())
        shift = shift_bounds(schedule, now)
        return {**view, "on_call_now": {"responder": on_call(schedule, now),
                                        "shift_ends_at": shift[1].isoformat() if shift else None}}

    # --- policies ------------------------------------------------------------------------------------------------
    def put_policy(self, policy_id: str, body: PolicyPut) -> tuple[dict, bool]:
        document = body.model_dump(exclude_none=True)
        policy = Policy.from_document(policy_id, document)
        responders = self._require_responders(policy.responders_named(), "tiers.targets.responder")
        schedules = self._directory.documents(SCHEDULE, policy.schedules_named())
        missing = sorted(policy.schedules_named() - set(schedules))
        if missing:
            raise ValidationFailed("policy names unknown schedules",
                                   [{"field": "tiers.targets.schedule", "problem": f"schedule {s} does not exist"}
                                    for s in missing])
        if policy.require_verified:
            rotation_members = {r for body in schedules.values() for r in body["rotation"]["responders"]}
            everyone = {**responders, **self._directory.responders(rotation_members)}
            unverified = sorted(r.id for r in everyone.values() if r.verified_at is None)
            if unverified:
                raise ValidationFailed("policy requires verified responders",
                                       [{"field": "tiers.targets", "problem": f"responder {r} has not verified its phone"}
                                        for r in unverified])
        return self._put(POLICY, policy_id, document)

    def get_policy(self, policy_id: str) -> dict:
        body, updated_at = self._require(POLICY, policy_id)
        return document_view(policy_id, body, updated_at)

    # --- routing -------------------------------------------------------------------------------------------------
    def put_routing(self, body: RoutingPut) -> dict:
        routes = body.routes()
        if "default" not in routes:
            raise ValidationFailed.field("default", "is required: every kind must reach a policy")
        existing = self._directory.documents(POLICY, set(routes.values()))
        missing = [{"field": kind, "problem": f"policy {policy_id} does not exist"}
                   for kind, policy_id in routes.items() if policy_id not in existing]
        if missing:
            raise ValidationFailed("routing names unknown policies", missing)
        self._put(ROUTING, ROUTING_ID, routes)
        return routes

    def get_routing(self) -> dict:
        found = self._directory.document(ROUTING, ROUTING_ID)
        return dict(found[0]) if found else {}

    # --- what intake reads ---------------------------------------------------------------------------------------
    def plan_for_kind(self, kind: str) -> tuple[Policy, dict[str, Schedule]] | None:
        plan = self._routing_plan()
        routes = plan.get("routes", {})
        fallback = routes.get("panic") if kind == "missed_check_in" else None
        policy_id = routes.get(kind) or fallback or routes.get("default")
        body = plan.get("policies", {}).get(policy_id) if policy_id else None
        if body is None:
            return None
        policy = Policy.from_document(policy_id, body)
        schedules = {sid: schedule_from_document(sid, doc) for sid, doc in plan.get("schedules", {}).items()
                     if sid in policy.schedules_named()}
        return policy, schedules

    def _routing_plan(self) -> dict:
        now = time.monotonic()
        if self._plan is not None and self._plan[0] > now:
            return self._plan[1]
        found = self._directory.document(ROUTING, ROUTING_PLAN_ID)
        plan = found[0] if found else {}
        self._plan = (now + self._cache_s, plan)
        return plan

    def _compile_plan(self) -> None:
        routes = self.get_routing()
        policies = self._directory.documents(POLICY, set(routes.values()))
        schedule_ids = {t["schedule"] for body in policies.values() for tier in body["tiers"] for t in tier["targets"]
                        if t.get("schedule")}
        schedules = self._directory.documents(SCHEDULE, schedule_ids)
        self._directory.put_document(ROUTING, ROUTING_PLAN_ID,
                                     {"routes": routes, "policies": policies, "schedules": schedules}, self._now())
        self._plan = None

    # --- helpers -------------------------------------------------------------------------------------------------
    def _put(self, entity: str, item_id: str, document: dict) -> tuple[dict, bool]:
        updated_at = self._now()
        created = self._directory.put_document(entity, item_id, document, updated_at)
        self._compile_plan()
        return document_view(item_id, document, updated_at), created

    def _require(self, entity: str, item_id: str) -> tuple[dict, str]:
        found = self._directory.document(entity, item_id)
        if found is None:
            raise NotFound(f"{entity} {item_id} not found")
        return found

    def _require_responders(self, responder_ids: set[str], field: str) -> dict[str, ResponderContact]:
        found = self._directory.responders(responder_ids)
        missing = sorted(set(responder_ids) - set(found))
        if missing:
            raise ValidationFailed("unknown responders", [{"field": field, "problem": f"responder {r} does not exist"}
                                                          for r in missing])
        return found

