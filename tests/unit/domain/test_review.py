from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.review import IncidentFacts, percentile, review_metrics, timeline_durations

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _incident(
    n: int,
    kind: str,
    status: str,
    *,
    ack: float | None = None,
    by: str | None = None,
    resolved: float | None = None,
    outcome: str | None = None,
    depth: int = 1,
    exhausted: bool = False,
) -> IncidentFacts:
    return IncidentFacts(
        incident_id=f"i{n}",
        reference=f"REF-{n}",
        kind=kind,
        status=status,
        created_at=T0,
        acknowledged_at=None if ack is None else _at(ack),
        acknowledged_by=by,
        resolved_at=None if resolved is None else _at(resolved),
        outcome=outcome,
        escalation_depth=depth,
        exhausted=exhausted,
    )


# Hand-computed fixture. Acknowledged: 10, 20, 30, 40, 100 s (i1..i5); i6/i7/i8 never acknowledged.
# Resolved: 60, 300, 100.5, 200 s. Paged depths (i1..i7): 1, 2, 1, 3, 2, 3, 1; i8 routed (depth 0).
INCIDENTS = [
    _incident(1, "panic", "resolved", ack=10, by="r1", resolved=60, outcome="assisted", depth=1),
    _incident(2, "medical", "resolved", ack=20, by="r2", resolved=300, outcome="medical_dispatched", depth=2),
    _incident(3, "panic", "acknowledged", ack=30, by="r1", depth=1),
    _incident(4, "theft", "resolved", ack=40, by="r1", resolved=100.5, outcome="false_alarm", depth=3),
    _incident(5, "panic", "resolved", ack=100, by="r3", resolved=200, outcome="police_dispatched", depth=2),
    _incident(6, "medical", "triggered", depth=3, exhausted=True),
    _incident(7, "panic", "cancelled", depth=1),
    _incident(8, "theft", "routed", depth=0),
]

EXPECTED = {
    "incidents": 8,
    "by_kind": {"medical": 2, "panic": 4, "theft": 2},
    "by_status": {"acknowledged": 1, "cancelled": 1, "resolved": 4, "routed": 1, "triggered": 1},
    "by_outcome": {"assisted": 1, "false_alarm": 1, "medical_dispatched": 1, "police_dispatched": 1},
    # n=5: p50 rank ceil(2.5)=3 -> 30; p90 rank ceil(4.5)=5 -> 100.
    "time_to_acknowledge_s": {"count": 5, "p50": 30.0, "p90": 100.0, "max": 100.0},
    # sorted [60, 100.5, 200, 300], n=4: p50 rank 2 -> 100.5; p90 rank ceil(3.6)=4 -> 300.
    "time_to_resolve_s": {"count": 4, "p50": 100.5, "p90": 300.0, "max": 300.0},
    # 13 / 7 = 1.857142... -> 1.857
    "escalation_depth": {"max": 3, "mean": 1.857, "distribution": {"1": 3, "2": 2, "3": 2}},
    "exhausted": 1,
    "acknowledgements_by_responder": {"r1": 3, "r2": 1, "r3": 1},
    # None of these facts carries a first contact, a dispatch, duress, expiries or deliveries.
    "press_to_first_contact_s": {"count": 0, "p50": None, "p90": None, "max": None},
    "dispatches": {"requested": 0, "time_to_psap_contacted_s": {"count": 0, "p50": None, "p90": None, "max": None}},
    "duress": 0,
    "missed_check_ins": 0,
    "ack_expiries": 0,
    "deliveries_by_tier": {},
}


# --- percentile -------------------------------------------------------------------------------------------------


def test_percentile_nearest_rank_on_known_values():
    values = [10.0, 20.0, 30.0, 40.0, 100.0]
    assert percentile(values, 50) == 30.0
    assert percentile(values, 90) == 100.0
    assert percentile(values, 20) == 10.0  # rank ceil(1.0) = 1
    assert percentile(values, 21) == 20.0  # rank ceil(1.05) = 2
    assert percentile(values, 80) == 40.0  # rank ceil(4.0) = 4


def test_percentile_empty_is_none():
    assert percentile([], 50) is None
    assert percentile([], 100) is None


def test_percentile_single_value():
    for p in (0.001, 1, 50, 90, 100):
        assert percentile([7.5], p) == 7.5


def test_percentile_p100_is_max():
    assert percentile([3.0, 9.0, 1.0, 4.0], 100) == 9.0


def test_percentile_unsorted_input_and_not_mutated():
    values = [100.0, 10.0, 40.0, 30.0, 20.0]
    original = list(values)
    assert percentile(values, 50) == 30.0
    assert percentile(values, 90) == 100.0
    assert values == original


def test_percentile_exact_integer_rank_does_not_round_up():
    # 90 % of 10 is exactly rank 9; float 0.9 * 10 arithmetic must not push it to rank 10.
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 90) == 9.0
    assert percentile(values, 10) == 1.0
    assert percentile(values, 70) == 7.0


def test_percentile_with_duplicates():
    assert percentile([5.0, 5.0, 5.0, 1.0], 50) == 5.0


@pytest.mark.parametrize("p", [0, -1, 100.0001, 150])
def test_percentile_rejects_out_of_range_p(p):
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], p)


finite_floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite_floats, min_size=1, max_size=50))
def test_percentile_property_ordering_and_membership(values):
    p50 = percentile(values, 50)
    p90 = percentile(values, 90)
    p100 = percentile(values, 100)
    assert p50 <= p90 <= p100 == max(values)
    assert p50 in values and p90 in values and p100 in values


@settings(max_examples=200, deadline=None)
@given(
    st.lists(finite_floats, min_size=1, max_size=50),
    st.floats(min_value=0.01, max_value=100),
    st.floats(min_value=0.01, max_value=100),
)
def test_percentile_property_monotone_in_p(values, p, q):
    lo, hi = sorted((p, q))
    assert percentile(values, lo) <= percentile(values, hi)
    assert min(values) <= percentile(values, lo)


# --- review_metrics ---------------------------------------------------------------------------------------------


def test_review_metrics_known_set():
    assert review_metrics(INCIDENTS) == EXPECTED


def test_review_metrics_is_json_serialisable():
    result = review_metrics(INCIDENTS)
    assert json.loads(json.dumps(result)) == result


def test_review_metrics_independent_of_input_order_and_accepts_generator():
    result = review_metrics(i for i in reversed(INCIDENTS))
    assert result == EXPECTED
    assert list(result["by_kind"]) == ["medical", "panic", "theft"]


def test_review_metrics_empty():
    assert review_metrics([]) == {
        "incidents": 0,
        "by_kind": {},
        "by_status": {},
        "by_outcome": {},
        "time_to_acknowledge_s": {"count": 0, "p50": None, "p90": None, "max": None},
        "time_to_resolve_s": {"count": 0, "p50": None, "p90": None, "max": None},
        "escalation_depth": {"max": None, "mean": None, "distribution": {}},
        "exhausted": 0,
        "acknowledgements_by_responder": {},
        "press_to_first_contact_s": {"count": 0, "p50": None, "p90": None, "max": None},
        "dispatches": {"requested": 0, "time_to_psap_contacted_s": {"count": 0, "p50": None, "p90": None, "max": None}},
        "duress": 0,
        "missed_check_ins": 0,
        "ack_expiries": 0,
        "deliveries_by_tier": {},
    }


def test_unacknowledged_incidents_excluded_from_ack_percentiles():
    # A 1000 s ack would dominate p90/max if the unacknowledged ones were counted as anything.
    incidents = [
        _incident(1, "panic", "resolved", ack=5, by="r1", resolved=50),
        _incident(2, "panic", "triggered", depth=2),
        _incident(3, "panic", "cancelled"),
        _incident(4, "panic", "triggered", depth=3, exhausted=True),
    ]
    result = review_metrics(incidents)
    assert result["time_to_acknowledge_s"] == {"count": 1, "p50": 5.0, "p90": 5.0, "max": 5.0}
    assert result["time_to_resolve_s"] == {"count": 1, "p50": 50.0, "p90": 50.0, "max": 50.0}
    assert result["acknowledgements_by_responder"] == {"r1": 1}
    assert result["by_outcome"] == {}


def test_only_routed_incidents_have_no_escalation_stats():
    incidents = [_incident(1, "info", "routed", depth=0), _incident(2, "info", "routed", depth=0)]
    result = review_metrics(incidents)
    assert result["escalation_depth"] == {"max": None, "mean": None, "distribution": {}}
    assert result["by_status"] == {"routed": 2}


def test_distribution_keys_are_strings_sorted_numerically():
    incidents = [_incident(n, "panic", "triggered", depth=d) for n, d in enumerate([10, 2, 9, 2])]
    result = review_metrics(incidents)
    assert list(result["escalation_depth"]["distribution"].items()) == [("2", 2), ("9", 1), ("10", 1)]
    assert result["escalation_depth"]["max"] == 10
    assert result["escalation_depth"]["mean"] == 5.75


def test_durations_rounded_to_milliseconds():
    incidents = [_incident(1, "panic", "resolved", ack=1.23456, by="r1", resolved=61.0004)]
    result = review_metrics(incidents)
    assert result["time_to_acknowledge_s"]["p50"] == 1.235
    assert result["time_to_resolve_s"]["max"] == 61.0


# --- timeline_durations -----------------------------------------------------------------------------------------

EVENTS = [
    {"seq": 1, "at": "2024-05-01T12:00:00Z", "type": "created", "actor": "shopper-1", "details": {"kind": "panic"}},
    {"seq": 2, "at": "2024-05-01T12:00:01.500Z", "type": "paged", "details": {"tier": 1, "to": "r1"}},
    {"seq": 3, "at": "2024-05-01T12:00:01.600Z", "type": "paged", "details": {"tier": 1, "to": "r2"}},
    {"seq": 4, "at": "2024-05-01T12:02:01.500Z", "type": "escalated", "details": {"from_tier": 1, "to_tier": 2}},
    {"seq": 5, "at": "2024-05-01T12:02:02+00:00", "type": "paged", "details": {"tier": 2, "to": "r3"}},
    {"seq": 6, "at": "2024-05-01T12:02:45.250Z", "type": "acknowledged", "actor": "r3", "details": {}},
    {"seq": 7, "at": "2024-05-01T12:03:00Z", "type": "acknowledged", "actor": "r1", "details": {}},
    {"seq": 8, "at": "2024-05-01T12:10:00Z", "type": "resolved", "actor": "r3", "details": {"outcome": "assisted"}},
]


def _page(at: str, to: str | None, tier: int | None, **extra: object) -> dict:
    return {"at": at, "to": to, "tier": tier, "responder": None, "purpose": "page", "delivery": None, "delivered_after_s": None,
            "failover": [], **extra}


def test_timeline_durations_hand_made_events():
    assert timeline_durations(EVENTS) == {
        "press_to_first_contact_s": 165.25,  # the first acknowledgement
        "dispatch_to_psap_contacted_s": None,
        "time_to_first_page_s": 1.5,
        "time_to_acknowledge_s": 165.25,  # first ack (seq 6), not the later one
        "time_to_resolve_s": 600.0,
        "time_to_cancel_s": None,
        "tiers_paged": [1, 2],
        "paged": [
            _page("2024-05-01T12:00:01.500Z", "r1", 1),
            _page("2024-05-01T12:00:01.600Z", "r2", 1),
            _page("2024-05-01T12:02:02+00:00", "r3", 2),
        ],
    }


def test_timeline_durations_cancelled_before_page():
    events = [
        {"seq": 1, "at": "2024-05-01T12:00:00Z", "type": "created", "details": {}},
        {"seq": 2, "at": "2024-05-01T12:00:07.125Z", "type": "cancelled", "actor": "shopper-1", "details": {}},
    ]
    assert timeline_durations(events) == {
        "press_to_first_contact_s": None,
        "dispatch_to_psap_contacted_s": None,
        "time_to_first_page_s": None,
        "time_to_acknowledge_s": None,
        "time_to_resolve_s": None,
        "time_to_cancel_s": 7.125,
        "tiers_paged": [],
        "paged": [],
    }


def test_timeline_durations_empty_and_missing_created():
    empty = {
        "press_to_first_contact_s": None,
        "dispatch_to_psap_contacted_s": None,
        "time_to_first_page_s": None,
        "time_to_acknowledge_s": None,
        "time_to_resolve_s": None,
        "time_to_cancel_s": None,
        "tiers_paged": [],
        "paged": [],
    }
    assert timeline_durations([]) == empty
    # Without a created event there is no origin to measure from, but the paged list is still reported.
    result = timeline_durations([EVENTS[1]])
    assert result["time_to_first_page_s"] is None
    assert result["paged"] == [_page("2024-05-01T12:00:01.500Z", "r1", 1)]
    assert result["tiers_paged"] == [1]


def test_timeline_durations_tolerates_missing_details_and_naive_timestamps():
    events = [
        {"seq": 1, "at": "2024-05-01T12:00:00", "type": "created"},
        {"seq": 2, "at": "2024-05-01T12:00:03Z", "type": "paged", "details": None},
    ]
    result = timeline_durations(events)
    assert result["time_to_first_page_s"] == 3.0
    assert result["paged"] == [_page("2024-05-01T12:00:03Z", None, None)]
    assert result["tiers_paged"] == []
    assert json.loads(json.dumps(result)) == result


# --- second release: first contact, dispatch, duress, check-ins, expiries, deliveries ---------------------------


def _facts(n: int, kind: str, status: str, **fields: object) -> IncidentFacts:
    at = {name: _at(fields.pop(name)) for name in ("first_contact_at", "dispatch_requested_at",
                                                   "dispatch_psap_contacted_at") if name in fields}
    return IncidentFacts(incident_id=f"i{n}", reference=f"REF-{n}", kind=kind, status=status, created_at=T0,
                         **at, **fields)


# First contact: 10 s (i1), 25 s (i2, a dispatch accepted before its ack). Dispatches: i1 (psap after 60 s), i2.
# Duress: i3. Missed check-ins: i2, i4. Expiries: 2 + 1. Deliveries per tier summed over i1..i3.
SECOND_RELEASE = [
    _facts(1, "panic", "resolved", first_contact_at=10, dispatch_requested_at=20, dispatch_psap_contacted_at=80,
           deliveries={"1": {"sent": 2, "delivered": 1, "failed": 1, "delivery_s": [1.5]}}),
    _facts(2, "missed_check_in", "acknowledged", first_contact_at=25, dispatch_requested_at=5, ack_expiries=2,
           deliveries={"1": {"sent": 1, "delivered": 1, "failed": 0, "delivery_s": [3.0]},
                       "2": {"sent": 1, "delivered": 0, "failed": 1, "delivery_s": []}}),
    _facts(3, "panic", "triggered", duress=True,
           deliveries={"10": {"sent": 1, "delivered": 1, "failed": 0, "delivery_s": [0.25]},
                       "2": {"sent": 2, "delivered": 2, "delivery_s": [2.0, 4.0]}}),
    _facts(4, "missed_check_in", "triggered", exhausted=True, ack_expiries=1),
]


def test_review_metrics_second_release_keys_on_a_hand_computed_set():
    result = review_metrics(SECOND_RELEASE)
    # [10, 25]: p50 rank 1 -> 10, p90 rank ceil(1.8) = 2 -> 25.
    assert result["press_to_first_contact_s"] == {"count": 2, "p50": 10.0, "p90": 25.0, "max": 25.0}
    assert result["dispatches"] == {"requested": 2,
                                    "time_to_psap_contacted_s": {"count": 1, "p50": 60.0, "p90": 60.0, "max": 60.0}}
    assert (result["duress"], result["missed_check_ins"], result["ack_expiries"]) == (1, 2, 3)
    assert result["deliveries_by_tier"] == {
        "1": {"sent": 3, "delivered": 2, "failed": 1,
              "time_to_delivery_s": {"count": 2, "p50": 1.5, "p90": 3.0, "max": 3.0}},
        "2": {"sent": 3, "delivered": 2, "failed": 1,
              "time_to_delivery_s": {"count": 2, "p50": 2.0, "p90": 4.0, "max": 4.0}},
        "10": {"sent": 1, "delivered": 1, "failed": 0,
               "time_to_delivery_s": {"count": 1, "p50": 0.25, "p90": 0.25, "max": 0.25}},
    }
    assert list(result["deliveries_by_tier"]) == ["1", "2", "10"]  # numeric order
    assert json.loads(json.dumps(result)) == result


def test_a_dispatch_never_contacting_911_counts_as_requested_only():
    result = review_metrics([_facts(1, "panic", "triggered", dispatch_requested_at=5)])
    assert result["dispatches"] == {"requested": 1,
                                    "time_to_psap_contacted_s": {"count": 0, "p50": None, "p90": None, "max": None}}


DISPATCH_EVENTS = [
    {"seq": 1, "at": "2024-05-01T12:00:00Z", "type": "created", "details": {"kind": "panic"}},
    {"seq": 2, "at": "2024-05-01T12:00:01Z", "type": "paged",
     "details": {"tier": 1, "to": "+15550000001", "responder": "r1", "message_id": "m1"}},
    {"seq": 3, "at": "2024-05-01T12:00:01.500Z", "type": "paged",
     "details": {"tier": 1, "to": "+15550000002", "responder": "r2", "message_id": "m2"}},
    {"seq": 4, "at": "2024-05-01T12:00:03.250Z", "type": "page_delivered", "details": {"message_id": "m1"}},
    {"seq": 5, "at": "2024-05-01T12:00:05Z", "type": "page_failed", "details": {"message_id": "m2"}},
    {"seq": 6, "at": "2024-05-01T12:00:06Z", "type": "page_failover", "details": {"message_id": "m2",
                                                                                  "channel": "voice"}},
    {"seq": 7, "at": "2024-05-01T12:00:06Z", "type": "page_failover", "details": {"message_id": "m2",
                                                                                  "channel": "email"}},
    {"seq": 8, "at": "2024-05-01T12:00:10Z", "type": "dispatch_requested", "details": {"dispatch_id": "d1"}},
    {"seq": 9, "at": "2024-05-01T12:00:20Z", "type": "dispatch_updated", "details": {"status": "accepted"}},
    {"seq": 10, "at": "2024-05-01T12:00:30Z", "type": "acknowledged", "actor": "responder:r1", "details": {}},
    {"seq": 11, "at": "2024-05-01T12:01:10Z", "type": "dispatch_updated", "details": {"status": "psap_contacted"}},
    {"seq": 12, "at": "2024-05-01T12:01:11Z", "type": "page_delivered", "details": {"message_id": "m-unknown"}},
    {"seq": 13, "at": "2024-05-01T12:02:00Z", "type": "dispatch_updated", "details": {"status": "accepted"}},
]


def test_timeline_durations_first_contact_is_the_dispatch_acceptance_before_the_ack():
    result = timeline_durations(DISPATCH_EVENTS)
    assert result["press_to_first_contact_s"] == 20.0
    assert result["time_to_acknowledge_s"] == 30.0


def test_timeline_durations_dispatch_to_psap_contacted_counts_from_the_request():
    assert timeline_durations(DISPATCH_EVENTS)["dispatch_to_psap_contacted_s"] == 60.0


def test_timeline_durations_per_page_delivery_and_failover():
    assert timeline_durations(DISPATCH_EVENTS)["paged"] == [
        _page("2024-05-01T12:00:01Z", "+15550000001", 1, responder="r1", delivery="delivered",
              delivered_after_s=2.25),
        _page("2024-05-01T12:00:01.500Z", "+15550000002", 1, responder="r2", delivery="failed",
              failover=["voice", "email"]),
    ]


def test_timeline_durations_first_contact_is_the_ack_when_it_comes_first():
    events = [DISPATCH_EVENTS[0], {"seq": 2, "at": "2024-05-01T12:00:07Z", "type": "acknowledged", "details": {}},
              *DISPATCH_EVENTS[7:9]]
    assert timeline_durations(events)["press_to_first_contact_s"] == 7.0


def test_timeline_durations_psap_contacted_without_a_request_has_no_duration():
    events = [DISPATCH_EVENTS[0], DISPATCH_EVENTS[10]]
    result = timeline_durations(events)
    assert result["dispatch_to_psap_contacted_s"] is None
    assert result["press_to_first_contact_s"] == 70.0  # 911 contacted is still a first contact
