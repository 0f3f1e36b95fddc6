"""Emergency dispatch: asking an alarm-dispatch provider (a monitoring centre that contacts 911) to send help to the
shopper's location, and following its status. Pure.

Statuses only move forward: requested -> accepted -> psap_contacted -> closed; cancelled and failed end it too. A
provider's webhook that arrives late or twice cannot move a dispatch back.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.errors import DispatchActive, InvalidTransition, ValidationFailed
from chalicelib.domain.incidents import Actor, Incident, Transition
from chalicelib.domain.timeline import EventType, NewEvent

REQUESTED, ACCEPTED, PSAP_CONTACTED, CANCELLED, CLOSED, FAILED = (
    "requested", "accepted", "psap_contacted", "cancelled", "closed", "failed")
STATUSES = (REQUESTED, ACCEPTED, PSAP_CONTACTED, CANCELLED, CLOSED, FAILED)
ACTIVE = frozenset({REQUESTED, ACCEPTED, PSAP_CONTACTED})
_RANK = {REQUESTED: 0, ACCEPTED: 1, PSAP_CONTACTED: 2, CANCELLED: 3, CLOSED: 3, FAILED: 3}
# Provider statuses a webhook may report.
WEBHOOK_STATUSES = frozenset({ACCEPTED, PSAP_CONTACTED, CLOSED, CANCELLED})


def link_key(provider_alarm_id: str) -> str:
    return f"dispatch#{provider_alarm_id}"


def active_dispatch(incident: Incident) -> dict | None:
    dispatch = incident.dispatch
    return dispatch if dispatch and dispatch.get("status") in ACTIVE else None


def request(incident: Incident, actor: Actor, dispatch_id: str, provider: str, now: str,
            automatic: bool = False, reason: str | None = None) -> Transition:
    if not incident.has_location:
        raise ValidationFailed.field("location", "the incident has no location to send emergency services to",
                                     "the incident has no location")
    if not incident.is_open:
        raise InvalidTransition(f"incident is {incident.status}; emergency dispatch is for open incidents")
    current = active_dispatch(incident)
    if current is not None:
        raise DispatchActive(f"dispatch {current['id']} is already {current['status']}",
                             extra={"dispatch": view(current)})
    dispatch = {"id": dispatch_id, "status": REQUESTED, "provider": provider, "provider_id": None,
                "requested_at": now, "requested_by": str(actor), "updated_at": now, "automatic": automatic}
    event = NewEvent(EventType.DISPATCH_REQUESTED, {"dispatch_id": dispatch_id, "provider": provider,
                                                    "automatic": automatic}, str(actor), now,
                     private={"reason": reason} if reason else None)
    return Transition(replace(incident, dispatch=dispatch), (event,), result=dispatch)


def placed(incident: Incident, dispatch_id: str, provider_alarm_id: str, now: str) -> Transition | None:
    """The provider accepted the request and named its alarm: remember it (webhooks name only the alarm)."""
    dispatch = incident.dispatch
    if not dispatch or dispatch["id"] != dispatch_id or dispatch.get("provider_id") == provider_alarm_id:
        return None
    updated = replace(incident, dispatch={**dispatch, "provider_id": provider_alarm_id, "updated_at": now})
    return Transition(updated, links=((link_key(provider_alarm_id), incident.incident_id),))


def update_status(incident: Incident, status: str, now: str, source: str,
                  provider_alarm_id: str | None = None) -> Transition | None:
    """A status from the provider (or the service's own cancel/failure). None when it would move backwards, or when
    it is about another alarm than the incident's current dispatch (a late webhook of an earlier one)."""
    dispatch = incident.dispatch
    if not dispatch or status not in _RANK or _RANK[status] <= _RANK[dispatch["status"]]:
        return None
    if provider_alarm_id is not None and dispatch.get("provider_id") != provider_alarm_id:
        return None
    changed = {**dispatch, "status": status, "updated_at": now, f"{status}_at": now}
    first_contact = incident.first_contact_at
    if status in (ACCEPTED, PSAP_CONTACTED) and first_contact is None:
        first_contact = now
    event_type = EventType.DISPATCH_FAILED if status == FAILED else EventType.DISPATCH_UPDATED
    event = NewEvent(event_type, {"dispatch_id": dispatch["id"], "status": status}, source, now)
    return Transition(replace(incident, dispatch=changed, first_contact_at=first_contact), (event,), result=True)


def fail(incident: Incident, dispatch_id: str, reason: str, now: str) -> Transition | None:
    dispatch = incident.dispatch
    if not dispatch or dispatch["id"] != dispatch_id or dispatch["status"] not in ACTIVE:
        return None
    changed = {**dispatch, "status": FAILED, "updated_at": now, "failed_at": now, "error": reason}
    event = NewEvent(EventType.DISPATCH_FAILED, {"dispatch_id": dispatch_id, "status": FAILED, "error": reason},
                     "system:dispatch", now)
    return Transition(replace(incident, dispatch=changed), (event,))


def view(dispatch: dict) -> dict:
    shown = {"id": dispatch["id"], "status": dispatch["status"], "provider": dispatch["provider"],
             "requested_at": dispatch["requested_at"], "updated_at": dispatch["updated_at"]}
    for name in ("accepted_at", "psap_contacted_at", "closed_at", "cancelled_at", "failed_at", "automatic"):
        if dispatch.get(name) is not None:
            shown[name] = dispatch[name]
    return shown
