"""Review metrics for auditors: pure aggregation over incident facts and timelines.

Nothing here does I/O; callers load incidents/events and pass them in, so the
numbers can be unit-tested against hand-computed expectations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.clock import parse_iso

__all__ = ["IncidentFacts", "percentile", "review_metrics", "timeline_durations"]

# Durations are reported to the millisecond: finer precision is noise for human review
# and keeps the JSON stable across float representation quirks.
_DECIMALS = 3


@dataclass(frozen=True)
class IncidentFacts:
    incident_id: str
    reference: str
    kind: str
    status: str  # triggered | acknowledged | resolved | cancelled | routed
    created_at: datetime  # aware UTC
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None  # responder id
    resolved_at: datetime | None = None
    outcome: str | None = None  # assisted | police_dispatched | medical_dispatched | false_alarm | no_contact | other
    escalation_depth: int = 1  # highest tier that was paged (0 when never paged, e.g. routed)
    exhausted: bool = False
    duress: bool = False
    ack_expiries: int = 0
    dispatch_requested_at: datetime | None = None
    dispatch_psap_contacted_at: datetime | None = None
    # Press to the first human contact the shopper got: the first acknowledgement or a dispatch accepted.
    first_contact_at: datetime | None = None
    # Per tier number: {"sent": n, "delivered": n, "failed": n, "delivery_s": [seconds from sent to delivered]}
    deliveries: dict[str, dict[str, Any]] | None = None


def percentile(values: list[float], p: float) -> float | None:
    """Return the ``p``-th percentile of ``values`` using the nearest-rank method.

    Nearest-rank: sort the values ascending and return the element at 1-based rank
    ``ceil(p / 100 * n)``. The result is therefore always one of the input values
    (no interpolation), which is what reviewers expect when they read "p90 = 100 s":
    some real incident actually took 100 s. ``p = 100`` yields the maximum; small
    ``p`` yields the minimum.

    ``values`` need not be sorted and is not modified. Returns ``None`` for empty
    input. Raises ``ValueError`` when ``p`` is outside ``(0, 100]``.
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile p must be in (0, 100], got {p!r}")
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    # p * n / 100 (rather than p / 100 * n) keeps integer cases exact, e.g. 0.9 * 10 must not round up to rank 10.
    rank = math.ceil(p * n / 100)
    # Clamp defends against float edge cases pushing rank to 0 or n + 1.
    rank = min(max(rank, 1), n)
    return ordered[rank - 1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), _DECIMALS)


def _seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def _duration_summary(durations: list[float]) -> dict[str, Any]:
    return {
        "count": len(durations),
        "p50": _round(percentile(durations, 50)),
        "p90": _round(percentile(durations, 90)),
        "max": _round(max(durations)) if durations else None,
    }


def _sorted_counts(counter: Counter[str]) -> dict[str, int]:
    # Sorted keys make the output deterministic regardless of input order, which keeps
    # API responses diffable and tests exact.
    return {key: counter[key] for key in sorted(counter)}


def review_metrics(incidents: Iterable[IncidentFacts]) -> dict[str, Any]:
    """Aggregate incident facts into a JSON-serialisable review summary.

    - ``time_to_acknowledge_s`` covers only incidents with ``acknowledged_at`` set; never-acknowledged
      incidents are excluded rather than counted as zero or infinity, so they cannot distort percentiles.
    - ``time_to_resolve_s`` likewise covers only incidents with ``resolved_at`` set.
    - ``escalation_depth`` covers only paged incidents (depth >= 1); routed/never-paged incidents would
      otherwise drag the mean down without saying anything about escalation.
    - ``acknowledgements_by_responder`` counts incidents by ``acknowledged_by``.
    """
    total = 0
    by_kind: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    by_responder: Counter[str] = Counter()
    depth_counts: Counter[int] = Counter()
    ack_durations: list[float] = []
    resolve_durations: list[float] = []
    exhausted = 0
    duress = 0
    missed_check_ins = 0
    ack_expiries = 0
    dispatches = 0
    to_psap: list[float] = []
    first_contact: list[float] = []
    tiers: dict[str, dict[str, Any]] = {}

    for incident in incidents:
        total += 1
        by_kind[incident.kind] += 1
        by_status[incident.status] += 1
        if incident.outcome is not None:
            by_outcome[incident.outcome] += 1
        if incident.acknowledged_at is not None:
            ack_durations.append(_seconds_between(incident.created_at, incident.acknowledged_at))
        if incident.acknowledged_by is not None:
            by_responder[incident.acknowledged_by] += 1
        if incident.resolved_at is not None:
            resolve_durations.append(_seconds_between(incident.created_at, incident.resolved_at))
        if incident.escalation_depth >= 1:
            depth_counts[incident.escalation_depth] += 1
        if incident.exhausted:
            exhausted += 1
        duress += incident.duress
        missed_check_ins += incident.kind == "missed_check_in"
        ack_expiries += incident.ack_expiries
        if incident.dispatch_requested_at is not None:
            dispatches += 1
            if incident.dispatch_psap_contacted_at is not None:
                to_psap.append(_seconds_between(incident.dispatch_requested_at, incident.dispatch_psap_contacted_at))
        if incident.first_contact_at is not None:
            first_contact.append(_seconds_between(incident.created_at, incident.first_contact_at))
        for tier, stats in (incident.deliveries or {}).items():
            into = tiers.setdefault(str(tier), {"sent": 0, "delivered": 0, "failed": 0, "delivery_s": []})
            for name in ("sent", "delivered", "failed"):
                into[name] += int(stats.get(name, 0))
            into["delivery_s"].extend(float(v) for v in stats.get("delivery_s", ()))

    paged = sum(depth_counts.values())
    if paged:
        depth_max: int | None = max(depth_counts)
        depth_mean: float | None = _round(sum(d * c for d, c in depth_counts.items()) / paged)
    else:
        depth_max = None
        depth_mean = None

    return {
        "incidents": total,
        "by_kind": _sorted_counts(by_kind),
        "by_status": _sorted_counts(by_status),
        "by_outcome": _sorted_counts(by_outcome),
        "time_to_acknowledge_s": _duration_summary(ack_durations),
        "time_to_resolve_s": _duration_summary(resolve_durations),
        "escalation_depth": {
            "max": depth_max,
            "mean": depth_mean,
            # JSON object keys must be strings; sort numerically so "10" follows "9".
            "distribution": {str(depth): depth_counts[depth] for depth in sorted(depth_counts)},
        },
        "exhausted": exhausted,
        "acknowledgements_by_responder": _sorted_counts(by_responder),
        "press_to_first_contact_s": _duration_summary(first_contact),
        "dispatches": {"requested": dispatches, "time_to_psap_contacted_s": _duration_summary(to_psap)},
        "duress": duress,
        "missed_check_ins": missed_check_ins,
        "ack_expiries": ack_expiries,
        "deliveries_by_tier": {
            tier: {"sent": stats["sent"], "delivered": stats["delivered"], "failed": stats["failed"],
                   "time_to_delivery_s": _duration_summary(stats["delivery_s"])}
            for tier, stats in sorted(tiers.items(), key=lambda item: int(item[0]))
        },
    }


def _parse_at(value: str) -> datetime:
    # Stored timestamps are UTC; a naive one is read as UTC so mixing it with aware ones cannot raise.
    return parse_iso(value)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    details = event.get("details")
    return details if isinstance(details, dict) else {}


def timeline_durations(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Summarise one incident's timeline (events oldest first, as the API returns them).

    Durations are seconds from the first ``created`` event to the first ``paged``,
    ``acknowledged``, ``resolved`` and ``cancelled`` event respectively, or ``None``
    when either end is missing. ``tiers_paged`` is the sorted distinct ``details["tier"]``
    of ``paged`` events and ``paged`` lists ``{"at", "to", "tier"}`` per ``paged`` event
    (``at`` kept as the original string so the API can echo it unchanged).
    """
    first_at: dict[str, datetime] = {}
    paged: list[dict[str, Any]] = []
    tiers: set[Any] = set()
    by_message: dict[str, dict[str, Any]] = {}
    dispatch: dict[str, datetime] = {}
    first_contact: datetime | None = None

    for event in events:
        event_type = event.get("type")
        details = _details(event)
        if event_type in ("created", "paged", "acknowledged", "resolved", "cancelled") and event_type not in first_at:
            first_at[event_type] = _parse_at(event["at"])
        if event_type == "paged":
            tier = details.get("tier")
            purpose = details.get("purpose", "page")
            page = {"at": event["at"], "to": details.get("to"), "tier": tier, "responder": details.get("responder"),
                    "purpose": purpose, "delivery": None, "delivered_after_s": None, "failover": []}
            paged.append(page)
            if details.get("message_id"):
                by_message[details["message_id"]] = page
            # Exhaustion and duress notices page everyone again; they are not a tier of the escalation.
            if tier is not None and purpose == "page":
                tiers.add(tier)
        elif event_type in ("page_delivered", "page_failed") and details.get("message_id") in by_message:
            page = by_message[details["message_id"]]
            page["delivery"] = "delivered" if event_type == "page_delivered" else "failed"
            if event_type == "page_delivered":
                page["delivered_after_s"] = _round(_seconds_between(_parse_at(page["at"]), _parse_at(event["at"])))
        elif event_type == "page_failover" and details.get("message_id") in by_message:
            by_message[details["message_id"]]["failover"].append(details.get("channel"))
        elif event_type == "dispatch_requested" and "requested" not in dispatch:
            dispatch["requested"] = _parse_at(event["at"])
        elif event_type == "dispatch_updated" and details.get("status") not in dispatch:
            dispatch[details.get("status")] = _parse_at(event["at"])
            if details.get("status") in ("accepted", "psap_contacted") and first_contact is None:
                first_contact = _parse_at(event["at"])
        if event_type == "acknowledged" and first_contact is None:
            first_contact = _parse_at(event["at"])

    created = first_at.get("created")

    def since_created(event_type: str) -> float | None:
        at = first_at.get(event_type)
        if created is None or at is None:
            return None
        return _round(_seconds_between(created, at))

    def dispatch_seconds(status: str) -> float | None:
        if "requested" not in dispatch or status not in dispatch:
            return None
        return _round(_seconds_between(dispatch["requested"], dispatch[status]))

    return {
        "press_to_first_contact_s": (_round(_seconds_between(created, first_contact))
                                     if created is not None and first_contact is not None else None),
        "dispatch_to_psap_contacted_s": dispatch_seconds("psap_contacted"),
        "time_to_first_page_s": since_created("paged"),
        "time_to_acknowledge_s": since_created("acknowledged"),
        "time_to_resolve_s": since_created("resolved"),
        "time_to_cancel_s": since_created("cancelled"),
        "tiers_paged": sorted(tiers),
        "paged": paged,
    }
