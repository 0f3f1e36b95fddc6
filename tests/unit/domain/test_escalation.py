"""Unit tests for chalicelib.domain.escalation: the plan frozen at trigger, and who is paged when a step is sent."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from chalicelib.domain.escalation import (
    DEFAULT_DELIVERY_TIMEOUT_S,
    EscalationPlan,
    Policy,
    PolicyTier,
    ResponderContact,
    TierPlan,
    freeze_plan,
    who_to_page,
)
from chalicelib.domain.schedules import Override, Rotation, Schedule

UTC = timezone.utc
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # after the override below ends


def _contact(responder_id: str, **changes: object) -> ResponderContact:
    return ResponderContact(responder_id, responder_id.upper(), f"+1555000000{len(responder_id)}", **changes)


def _plan(tiers: int, repeat: int = 0) -> EscalationPlan:
    return EscalationPlan("p", tuple(TierPlan(30 * (n + 1), (f"r{n + 1}",)) for n in range(tiers)), repeat)


# A daily rotation of "b" alone, overridden by "a" for the whole of 2026-11-25.
SCHEDULE = Schedule("s", "UTC", Rotation(("b",), 24, datetime(2026, 1, 1, 9)),
                    (Override("a", datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)),))


# --- Policy ------------------------------------------------------------------------------------------------------


def test_policy_from_document_fills_the_defaults() -> None:
    policy = Policy.from_document("p1", {"tiers": [{"targets": [{"responder": "r1"}], "timeout_s": 60}]})
    assert policy == Policy("p1", (PolicyTier(60, ({"responder": "r1"},)),), repeat=0, ack_timeout_s=None,
                            dispatch_on_exhaustion=False, delivery_timeout_s=DEFAULT_DELIVERY_TIMEOUT_S,
                            require_verified=False)
    assert DEFAULT_DELIVERY_TIMEOUT_S == 30


def test_policy_from_document_reads_every_option() -> None:
    body = {"tiers": [{"targets": [{"responder": "r1"}, {"schedule": "s1"}], "timeout_s": "45"},
                      {"targets": [{"schedule": "s2"}], "timeout_s": 90}],
            "repeat": 2, "ack_timeout_s": 300, "dispatch_on_exhaustion": True, "delivery_timeout_s": 20,
            "require_verified": True}
    policy = Policy.from_document("p2", body)
    assert [tier.timeout_s for tier in policy.tiers] == [45, 90]
    assert (policy.repeat, policy.ack_timeout_s, policy.dispatch_on_exhaustion, policy.delivery_timeout_s,
            policy.require_verified) == (2, 300, True, 20, True)
    assert policy.responders_named() == {"r1"}
    assert policy.schedules_named() == {"s1", "s2"}


# --- freeze_plan -------------------------------------------------------------------------------------------------


def test_freeze_plan_resolves_schedules_at_the_instant_and_the_override_wins() -> None:
    policy = Policy("p", (PolicyTier(30, ({"schedule": "s"},)),))
    assert freeze_plan(policy, {"s": SCHEDULE}, NOW).tiers[0].responders == ("a",)
    assert freeze_plan(policy, {"s": SCHEDULE}, LATER).tiers[0].responders == ("b",)


def test_freeze_plan_names_a_responder_once_per_tier_in_target_order() -> None:
    policy = Policy("p", (PolicyTier(30, ({"responder": "c"}, {"schedule": "s"}, {"responder": "a"})),))
    assert freeze_plan(policy, {"s": SCHEDULE}, NOW).tiers[0].responders == ("c", "a")


def test_freeze_plan_keeps_schedules_with_nobody_on_call_as_unresolved() -> None:
    not_started = Schedule("late", "UTC", Rotation(("z",), 24, datetime(2027, 1, 1, 9)))
    policy = Policy("p", (PolicyTier(60, ({"responder": "b"}, {"schedule": "missing"}, {"schedule": "late"})),))
    tier = freeze_plan(policy, {"late": not_started}, NOW).tiers[0]
    assert tier == TierPlan(60, ("b",), ("schedule:missing", "schedule:late"))


def test_freeze_plan_ignores_pageability_which_is_decided_at_send_time() -> None:
    policy = Policy("p", (PolicyTier(30, ({"responder": "inactive"}, {"responder": "stopped"},
                                          {"responder": "gone"})),))
    plan = freeze_plan(policy, {}, NOW)
    assert plan.tiers[0].responders == ("inactive", "stopped", "gone")
    directory = {"inactive": _contact("inactive", active=False), "stopped": _contact("stopped", opted_out=True)}
    assert who_to_page(plan.responders_of_step(0), directory).skipped == (
        ("inactive", "inactive"), ("stopped", "opted_out"), ("gone", "deleted"))


def test_freeze_plan_copies_the_policy_options() -> None:
    policy = Policy("p", (PolicyTier(30, ({"responder": "a"},)),), repeat=2, ack_timeout_s=120,
                    dispatch_on_exhaustion=True, delivery_timeout_s=15)
    assert freeze_plan(policy, {}, NOW) == EscalationPlan("p", (TierPlan(30, ("a",)),), 2, 120, True, 15)


def test_freeze_plan_only_responder_replaces_every_tier_with_that_responder() -> None:
    policy = Policy("p", (PolicyTier(45, ({"responder": "a"},)), PolicyTier(90, ({"responder": "b"},))),
                    repeat=3, ack_timeout_s=120, dispatch_on_exhaustion=True)
    plan = freeze_plan(policy, {}, NOW, only_responder="tester")
    assert plan.tiers == (TierPlan(45, ("tester",)),)
    assert (plan.repeat, plan.dispatch_on_exhaustion, plan.ack_timeout_s) == (0, False, 120)
    assert plan.everyone() == ("tester",)


def test_freeze_plan_only_responder_with_no_tiers_waits_60_seconds() -> None:
    assert freeze_plan(Policy("p", ()), {}, NOW, only_responder="tester").tiers == (TierPlan(60, ("tester",)),)


# --- the plan's steps --------------------------------------------------------------------------------------------


def test_step_plan_unrolls_tiers_over_the_repeats() -> None:
    plan = _plan(tiers=2, repeat=2)
    assert plan.total_steps == 6
    assert plan.step_plan() == ([30, 60, 30, 60, 30, 60], [1, 2, 1, 2, 1, 2])


def test_tier_of_step_cycles_through_the_tiers() -> None:
    plan = _plan(tiers=3, repeat=1)
    assert [plan.tier_of_step(s) for s in range(plan.total_steps)] == [1, 2, 3, 1, 2, 3]
    assert [plan.responders_of_step(s) for s in (0, 4)] == [("r1",), ("r2",)]


def test_step_plan_without_repeat_is_one_step_per_tier() -> None:
    assert _plan(tiers=1).step_plan() == ([30], [1])


def test_everyone_lists_each_responder_once_in_tier_order() -> None:
    plan = EscalationPlan("p", (TierPlan(30, ("b", "a")), TierPlan(30, ("c", "b")), TierPlan(30, ("a", "d"))))
    assert plan.everyone() == ("b", "a", "c", "d")
    assert (plan.first_tier_of("c"), plan.first_tier_of("a"), plan.first_tier_of("zed")) == (2, 1, None)


@pytest.mark.parametrize(
    ("tiers", "repeat", "current_step", "acknowledger_tier", "expected"),
    [
        (2, 1, 0, 1, 1),   # tier 1 of 2 acknowledged: tier 2 of the same round
        (2, 1, 1, 1, 1),   # acknowledged from tier 1 while tier 2 was out: still tier 2 of that round
        (2, 1, 1, 2, 2),   # the last tier acknowledged: tier 1 of the next round
        (2, 1, 2, 1, 3),   # second round, tier 1: tier 2 of the second round
        (2, 1, 3, 2, 4),   # last tier of the last round: total_steps, i.e. exhaustion
        (2, 0, 1, 2, 2),   # no repeat, last tier: exhaustion
        (2, 1, 4, 2, 4),   # acknowledged after exhaustion (the exhausted claim is step total_steps): exhaustion
        (3, 1, 4, 1, 4),   # tier 1 acknowledged while round 2's tier 2 was out: round 2's tier 2
        (2, 1, 0, None, 1),  # unknown acknowledger tier: the tier after the current step's
        (2, 1, -1, None, 1),  # no step claimed yet counts as step 0
    ],
)
def test_resume_step_is_the_tier_after_the_acknowledgers(tiers: int, repeat: int, current_step: int,
                                                         acknowledger_tier: int | None, expected: int) -> None:
    plan = _plan(tiers, repeat)
    assert plan.resume_step(current_step, acknowledger_tier) == expected


def test_resume_step_after_the_last_tier_of_the_last_round_is_exhaustion() -> None:
    plan = _plan(tiers=3, repeat=2)
    assert plan.resume_step(plan.total_steps - 1, 3) == plan.total_steps == 9


# --- storage round trip ------------------------------------------------------------------------------------------


def test_plan_to_dict_from_dict_round_trips_also_through_json() -> None:
    plan = EscalationPlan("p", (TierPlan(30, ("a", "b"), ("schedule:s",)), TierPlan(60, ("c",))), repeat=2,
                          ack_timeout_s=300, dispatch_on_exhaustion=True, delivery_timeout_s=15)
    assert EscalationPlan.from_dict(plan.to_dict()) == plan
    assert EscalationPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan  # lists come back as tuples


def test_plan_from_dict_fills_the_defaults_of_an_older_record() -> None:
    plan = EscalationPlan.from_dict({"policy_id": "p", "tiers": [{"timeout_s": "30", "responders": ["a"]}]})
    assert plan == EscalationPlan("p", (TierPlan(30, ("a",), ()),), 0, None, False, DEFAULT_DELIVERY_TIMEOUT_S)


# --- who_to_page -------------------------------------------------------------------------------------------------


def test_who_to_page_skips_deleted_inactive_and_opted_out_with_those_reasons() -> None:
    directory = {"a": _contact("a"), "b": _contact("b", active=False), "c": _contact("c", opted_out=True),
                 "d": None}
    recipients = who_to_page(("a", "b", "c", "d", "e"), directory)
    assert [contact.id for contact in recipients.pageable] == ["a"]
    assert recipients.skipped == (("b", "inactive"), ("c", "opted_out"), ("d", "deleted"), ("e", "deleted"))


def test_who_to_page_says_inactive_for_someone_both_inactive_and_opted_out() -> None:
    recipients = who_to_page(["a"], {"a": _contact("a", active=False, opted_out=True)})
    assert recipients.skipped == (("a", "inactive"),)


def test_who_to_page_keeps_the_plan_order_and_pages_each_responder_once() -> None:
    directory = {name: _contact(name) for name in ("a", "b", "c")}
    recipients = who_to_page(["c", "a", "c", "b", "a"], directory)
    assert [contact.id for contact in recipients.pageable] == ["c", "a", "b"]
    assert recipients.skipped == ()


def test_who_to_page_lists_a_skipped_responder_once() -> None:
    assert who_to_page(["x", "x"], {}).skipped == (("x", "deleted"),)


def test_a_contact_is_pageable_only_when_active_and_opted_in() -> None:
    assert _contact("a").pageable
    assert not _contact("a", active=False).pageable
    assert not _contact("a", opted_out=True).pageable
