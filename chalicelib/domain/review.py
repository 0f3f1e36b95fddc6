"""Review metrics for auditors: pure aggregation over incident facts and timelines.

Nothing here does I/O; callers load incidents/events and pass them in, so the
numbers can be unit-tested against hand-computed expectations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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
    }


def _parse_at(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    # Stored timestamps are UTC; treat a naive one as UTC so mixing it with aware ones cannot raise.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


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

    for event in events:
        event_type = event.get("type")
        if event_type in ("created", "paged", "acknowledged", "resolved", "cancelled") and event_type not in first_at:
            first_at[event_type] = _parse_at(event["at"])
        if event_type == "paged":
            details = _details(event)
            tier = details.get("tier")
            paged.append({"at": event["at"], "to": details.get("to"), "tier": tier})
            if tier is not None:
                tiers.add(tier)

    created = first_at.get("created")

    def since_created(event_type: str) -> float | None:
        at = first_at.get(event_type)
        if created is None or at is None:
            return None
        return _round(_seconds_between(created, at))

    return {
        "time_to_first_page_s": since_created("paged"),
        "time_to_acknowledge_s": since_created("acknowledged"),
        "time_to_resolve_s": since_created("resolved"),
        "time_to_cancel_s": since_created("cancelled"),
        "tiers_paged": sorted(tiers),
        "paged": paged,
    }
