"""Check-ins: a shopper says "check on me in N minutes"; if she has not completed it by then, it is missed and an
incident opens at her last known location. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.domain.errors import InvalidTransition

ACTIVE, COMPLETED, MISSED = "active", "completed", "missed"
MIN_DUE_IN_S, MAX_DUE_IN_S = 5, 86_400


@dataclass(frozen=True)
class CheckIn:
    check_in_id: str
    owner: str
    status: str
    created_at: str
    due_at: str
    request_hash: str | None = None
    order_id: str | None = None
    completed_at: str | None = None
    missed_at: str | None = None
    incident_id: str | None = None
    location: dict | None = None   # the last known location (personal: expires with the retention period)
    note: str | None = None
    version: int = 0


def complete(check_in: CheckIn, now: str) -> CheckIn | None:
    """None when already completed (a repeat is harmless)."""
    if check_in.status == COMPLETED:
        return None
    if check_in.status == MISSED:
        raise InvalidTransition(f"check-in was missed at {check_in.missed_at}; incident {check_in.incident_id} is open",
                                extra={"incident_id": check_in.incident_id})
    return replace(check_in, status=COMPLETED, completed_at=now)


def add_location(check_in: CheckIn, location: dict) -> CheckIn:
    if check_in.status != ACTIVE:
        raise InvalidTransition(f"check-in is {check_in.status}")
    return replace(check_in, location=location)


def miss(check_in: CheckIn, incident_id: str, now: str) -> CheckIn | None:
    """None unless still active (completed in time, or already missed by an earlier delivery of the timer)."""
    if check_in.status != ACTIVE:
        return None
    return replace(check_in, status=MISSED, missed_at=now, incident_id=incident_id)


def view(check_in: CheckIn) -> dict:
    shown = {"id": check_in.check_in_id, "status": check_in.status, "created_at": check_in.created_at,
             "due_at": check_in.due_at}
    for name in ("order_id", "completed_at", "missed_at", "incident_id", "location", "note"):
        value = getattr(check_in, name)
        if value is not None:
            shown[name] = value
    return shown
