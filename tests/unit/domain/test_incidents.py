"""Unit tests for chalicelib.domain.incidents: kinds, references, PINs and every status change as a Transition."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.errors import AlreadyAcknowledged, Busy, InvalidTransition, RateLimited
from chalicelib.domain.incidents import (
    KIND_RULES,
    KINDS,
    LIFE_SAFETY_KINDS,
    PUBLIC_KINDS,
    Actor,
    Incident,
    KindRule,
    Transition,
    acknowledge,
    cancel,
    deadline_after,
    expire_acknowledgement,
    hash_pin,
    initial_status,
    looks_like_reference,
    new_reference,
    owner_status,
    paging_lease_live,
    pin_matches,
    press_again,
    record_pin_check,
    resolve,
    signal_duress,
)
from chalicelib.domain.sms_commands import CODE_ALPHABET
from chalicelib.domain.timeline import EventType

NOW = "2026-11-25T15:00:00.000Z"
LEASE_S = 10.0
ANN = Actor("responder", "r1", "Ann")
BEN = Actor("responder", "r2", "Ben")
SHOPPER = Actor("shopper", "s1")
CLOSED = ("resolved", "cancelled")


def _incident(**changes: object) -> Incident:
    base = Incident(incident_id="inc_1", reference="TS-K3F9QX", kind="panic", severity="sev1", status="triggered",
                    owner="s1", created_at="2026-11-25T14:59:00.000Z", escalation_tier=1, escalation_step=0,
                    sent_step=0, recorded_step=0, responder_ids=("r1", "r2"))
    return replace(base, **changes)


def _acknowledged(by: Actor = ANN, **changes: object) -> Incident:
    acknowledged = {"status": "acknowledged", "acknowledged_at": "2026-11-25T14:59:30.000Z", "acknowledged_by": by.id,
                    "acknowledged_by_name": by.name, "ack_count": 1, "ack_tier": 1,
                    "first_contact_at": "2026-11-25T14:59:30.000Z"}
    return _incident(**{**acknowledged, **changes})


def _types(transition: Transition) -> list[str]:
    return [event.type for event in transition.events]


# --- kinds and references ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        ("panic", KindRule("sev1", True, True, life_safety=True)),
        ("medical", KindRule("sev1", True, True, life_safety=True)),
        ("threat", KindRule("sev1", True, True, life_safety=True)),
        ("accident", KindRule("sev1", True, True, life_safety=True)),
        ("harassment", KindRule("sev2", True, False)),
        ("conduct", KindRule("sev2", True, False)),
        ("fraud", KindRule("sev3", True, False)),
        ("account_breach", KindRule("sev3", True, False)),
        ("privacy", KindRule("sev3", True, False)),
        ("delivery_issue", KindRule("sev4", False, False)),
        ("missed_check_in", KindRule("sev2", True, False, public=False)),
        ("test", KindRule("sev4", True, False, public=False)),
    ],
)
def test_every_kind_has_its_severity_paging_location_and_audience(kind: str, rule: KindRule) -> None:
    assert KIND_RULES[kind] == rule
    assert initial_status(kind) == ("triggered" if rule.paged else "routed")


def test_kind_rules_name_exactly_the_tested_kinds() -> None:
    assert set(KINDS) == {"panic", "medical", "threat", "accident", "harassment", "conduct", "fraud",
                          "account_breach", "privacy", "delivery_issue", "missed_check_in", "test"}


def test_public_kinds_are_the_contract_kinds_without_missed_check_in_and_test() -> None:
    assert PUBLIC_KINDS == ("panic", "medical", "threat", "accident", "harassment", "conduct", "fraud",
                            "account_breach", "privacy", "delivery_issue")


def test_life_safety_kinds_are_the_four_that_need_a_location() -> None:
    assert LIFE_SAFETY_KINDS == ("panic", "medical", "threat", "accident")
    assert {k for k, rule in KIND_RULES.items() if rule.location_required} == set(LIFE_SAFETY_KINDS)


def test_only_delivery_issues_are_routed_instead_of_paged() -> None:
    assert [k for k, rule in KIND_RULES.items() if not rule.paged] == ["delivery_issue"]


def test_references_use_the_unambiguous_alphabet() -> None:
    for _ in range(200):
        reference = new_reference()
        assert reference.startswith("TS-") and len(reference) == 9
        assert all(c in CODE_ALPHABET for c in reference[3:])
        assert looks_like_reference(reference) and looks_like_reference(reference.lower())


@pytest.mark.parametrize("value", ["TS-0OIL12", "inc_abc", "TS-K3F9Q", "TS-K3F9QXX", "K3F9QX", "XX-K3F9QX", ""])
def test_looks_like_reference_refuses_anything_else(value: str) -> None:
    assert not looks_like_reference(value)


def test_incident_code_is_the_reply_code_of_its_reference() -> None:
    assert _incident().code == "K3F9"


def test_incident_is_open_only_when_triggered_or_acknowledged() -> None:
    assert [s for s in ("triggered", "acknowledged", "resolved", "cancelled", "routed")
            if _incident(status=s).is_open] == ["triggered", "acknowledged"]


def test_a_responder_is_covered_only_when_the_plan_names_it() -> None:
    incident = _incident(responder_ids=("r1",))
    assert incident.covers("r1") and not incident.covers("r2")


def test_life_safety_follows_the_kind_and_is_false_for_an_unknown_kind() -> None:
    assert _incident(kind="medical").life_safety
    assert not _incident(kind="fraud").life_safety
    assert not _incident(kind="retired_kind").life_safety


# --- PINs ------------------------------------------------------------------------------------------------------------


def test_pins_are_salted_per_incident() -> None:
    assert hash_pin("1234", "inc_a") != hash_pin("1234", "inc_b")


def test_pin_matches_only_the_right_pin_and_never_a_missing_hash() -> None:
    stored = hash_pin("1234", "inc_a")
    assert pin_matches("1234", "inc_a", stored)
    assert not pin_matches("1235", "inc_a", stored)
    assert not pin_matches("1234", "inc_b", stored)
    assert not pin_matches("1234", "inc_a", None)


def test_record_pin_check_counts_each_check_below_the_maximum() -> None:
    incident = _incident(pin_checks=2)
    checked = record_pin_check(incident, max_checks=3)
    assert checked.pin_checks == 3
    assert incident.pin_checks == 2  # the record read is left as it was


def test_record_pin_check_raises_rate_limited_at_the_maximum() -> None:
    with pytest.raises(RateLimited):
        record_pin_check(_incident(pin_checks=3), max_checks=3)
    with pytest.raises(RateLimited):
        record_pin_check(_incident(pin_checks=4), max_checks=3)


# --- the paging lease --------------------------------------------------------------------------------------------


def test_paging_lease_is_live_only_within_lease_s_of_now() -> None:
    assert not paging_lease_live(_incident(paging_since=None), NOW, LEASE_S)
    assert paging_lease_live(_incident(paging_since="2026-11-25T14:59:50.001Z"), NOW, LEASE_S)
    assert paging_lease_live(_incident(paging_since=NOW), NOW, LEASE_S)
    assert not paging_lease_live(_incident(paging_since="2026-11-25T14:59:50.000Z"), NOW, LEASE_S)
    assert not paging_lease_live(_incident(paging_since="2026-11-25T14:00:00.000Z"), NOW, LEASE_S)


# --- acknowledge -------------------------------------------------------------------------------------------------


def test_acknowledge_records_who_when_at_which_tier_and_the_first_contact() -> None:
    transition = acknowledge(_incident(escalation_tier=2), ANN, "sms", NOW, LEASE_S)
    incident = transition.incident
    assert (incident.status, incident.acknowledged_by, incident.acknowledged_by_name) == ("acknowledged", "r1", "Ann")
    assert (incident.acknowledged_at, incident.first_contact_at) == (NOW, NOW)
    assert (incident.ack_count, incident.ack_tier) == (1, 2)
    [event] = transition.events
    assert (event.type, event.actor, event.at) == (EventType.ACKNOWLEDGED, "responder:r1", NOW)
    assert event.details == {"via": "sms", "tier": 2, "name": "Ann"}


def test_acknowledge_keeps_an_earlier_first_contact() -> None:
    earlier = "2026-11-25T14:59:40.000Z"  # a dispatch accepted before anyone acknowledged
    transition = acknowledge(_incident(first_contact_at=earlier), ANN, "api", NOW, LEASE_S)
    assert transition.incident.first_contact_at == earlier


def test_first_acknowledgement_wins_and_the_second_is_told_who_won() -> None:
    with pytest.raises(AlreadyAcknowledged) as caught:
        acknowledge(_acknowledged(by=ANN), BEN, "sms", NOW, LEASE_S)
    assert caught.value.extra == {"acknowledged_by": "r1", "acknowledged_by_name": "Ann",
                                  "acknowledged_at": "2026-11-25T14:59:30.000Z"}
    assert "Ann" in caught.value.message


def test_the_same_responder_acknowledging_again_changes_nothing() -> None:
    assert acknowledge(_acknowledged(by=ANN), ANN, "sms", NOW, LEASE_S) is None


@pytest.mark.parametrize("status", ["resolved", "cancelled", "routed"])
def test_acknowledge_refuses_an_incident_that_is_not_triggered(status: str) -> None:
    with pytest.raises(InvalidTransition, match=status):
        acknowledge(_incident(status=status), ANN, "sms", NOW, LEASE_S)


def test_acknowledge_is_busy_while_a_paging_lease_is_live() -> None:
    with pytest.raises(Busy):
        acknowledge(_incident(paging_since="2026-11-25T14:59:55.000Z"), ANN, "sms", NOW, LEASE_S)


def test_acknowledge_proceeds_once_the_paging_lease_expired() -> None:
    transition = acknowledge(_incident(paging_since="2026-11-25T14:59:49.000Z"), ANN, "sms", NOW, LEASE_S)
    assert transition.incident.status == "acknowledged"


# --- resolve -----------------------------------------------------------------------------------------------------


def test_resolve_from_triggered_implies_acknowledge_with_two_events_in_order() -> None:
    transition = resolve(_incident(escalation_tier=1), ANN, "assisted", None, "sms", NOW, LEASE_S)
    incident = transition.incident
    assert _types(transition) == [EventType.ACKNOWLEDGED, EventType.RESOLVED]
    assert transition.events[0].details == {"via": "sms", "tier": 1, "name": "Ann", "implied_by": "resolve"}
    assert transition.events[1].details == {"outcome": "assisted", "via": "sms"}
    assert (incident.status, incident.outcome, incident.resolved_at, incident.resolved_by) == (
        "resolved", "assisted", NOW, "r1")
    assert (incident.acknowledged_at, incident.acknowledged_by, incident.acknowledged_by_name) == (NOW, "r1", "Ann")
    assert (incident.ack_count, incident.ack_tier, incident.first_contact_at) == (1, 1, NOW)


def test_resolve_from_acknowledged_keeps_the_acknowledger_and_writes_one_event() -> None:
    transition = resolve(_acknowledged(by=ANN), BEN, "false_alarm", None, "api", NOW, LEASE_S)
    assert _types(transition) == [EventType.RESOLVED]
    incident = transition.incident
    assert (incident.acknowledged_by, incident.resolved_by, incident.ack_count) == ("r1", "r2", 1)
    assert incident.first_contact_at == "2026-11-25T14:59:30.000Z"


def test_resolve_keeps_its_note_in_the_private_part_of_the_event() -> None:
    transition = resolve(_acknowledged(), ANN, "other", "shopper at 5th and Main", "sms", NOW, LEASE_S)
    assert transition.events[-1].private == {"note": "shopper at 5th and Main"}
    assert "note" not in transition.events[-1].details
    assert resolve(_acknowledged(), ANN, "other", None, "sms", NOW, LEASE_S).events[-1].private is None


@pytest.mark.parametrize("status", ["resolved", "cancelled", "routed"])
def test_resolve_refuses_an_incident_that_is_not_open(status: str) -> None:
    with pytest.raises(InvalidTransition, match=status):
        resolve(_incident(status=status), ANN, "assisted", None, "sms", NOW, LEASE_S)


def test_resolve_from_triggered_is_busy_while_a_paging_lease_is_live() -> None:
    with pytest.raises(Busy):
        resolve(_incident(paging_since=NOW), ANN, "assisted", None, "sms", NOW, LEASE_S)


def test_resolve_from_acknowledged_ignores_a_paging_lease() -> None:
    transition = resolve(_acknowledged(paging_since=NOW), ANN, "assisted", None, "sms", NOW, LEASE_S)
    assert transition.incident.status == "resolved"


# --- cancel ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "notify_paged"), [("triggered", True), ("acknowledged", True), ("routed", False)])
def test_cancel_from_each_cancellable_status(status: str, notify_paged: bool) -> None:
    transition = cancel(_incident(status=status), SHOPPER, "found my friend", NOW, LEASE_S)
    assert (transition.incident.status, transition.incident.cancelled_at) == ("cancelled", NOW)
    [event] = transition.events
    assert (event.type, event.actor) == (EventType.CANCELLED, "shopper:s1")
    assert event.details == {"previous_status": status, "notify_paged": notify_paged}
    assert event.private == {"reason": "found my friend"}


@pytest.mark.parametrize("status", CLOSED)
def test_cancel_refuses_a_closed_incident(status: str) -> None:
    with pytest.raises(InvalidTransition, match=status):
        cancel(_incident(status=status), SHOPPER, None, NOW, LEASE_S)


def test_cancel_from_triggered_is_busy_while_a_paging_lease_is_live() -> None:
    with pytest.raises(Busy):
        cancel(_incident(paging_since=NOW), SHOPPER, None, NOW, LEASE_S)


def test_cancel_without_a_reason_has_no_private_part() -> None:
    assert cancel(_incident(), SHOPPER, None, NOW, LEASE_S).events[0].private is None


# The old rules table, against the transition functions: which status allows which action.
@pytest.mark.parametrize(
    ("status", "can_ack", "can_resolve", "can_cancel"),
    [("triggered", True, True, True), ("acknowledged", False, True, True), ("resolved", False, False, False),
     ("cancelled", False, False, False), ("routed", False, False, True)],
)
def test_which_status_allows_acknowledge_resolve_and_cancel(status: str, can_ack: bool, can_resolve: bool,
                                                            can_cancel: bool) -> None:
    incident = _incident(status=status, acknowledged_by="r9" if status == "acknowledged" else None)
    actions = {
        "ack": (can_ack, lambda: acknowledge(incident, ANN, "sms", NOW, LEASE_S)),
        "resolve": (can_resolve, lambda: resolve(incident, ANN, "other", None, "sms", NOW, LEASE_S)),
        "cancel": (can_cancel, lambda: cancel(incident, SHOPPER, None, NOW, LEASE_S)),
    }
    for name, (allowed, act) in actions.items():
        if allowed:
            assert isinstance(act(), Transition), name
        else:
            with pytest.raises((InvalidTransition, AlreadyAcknowledged)):
                act()


# --- duress ------------------------------------------------------------------------------------------------------

OWNER_VIEW = {"id": "inc_1", "status": "cancelled", "shopper_message": "You cancelled this alert."}


@pytest.mark.parametrize("status", ["triggered", "acknowledged"])
def test_signal_duress_keeps_the_incident_open_and_makes_it_sev1(status: str) -> None:
    incident = _incident(status=status, severity="sev2", kind="harassment")
    transition = signal_duress(incident, SHOPPER, NOW, OWNER_VIEW)
    updated = transition.incident
    assert updated.status == status and updated.is_open
    assert (updated.duress, updated.severity) == (True, "sev1")
    assert (updated.owner_cancelled_at, updated.owner_view) == (NOW, OWNER_VIEW)
    [event] = transition.events
    assert (event.type, event.actor, event.details) == (EventType.DURESS_SIGNALLED, "shopper:s1",
                                                         {"previous_status": status, "reopened": False})


def test_signal_duress_on_a_routed_incident_triggers_it() -> None:
    transition = signal_duress(_incident(status="routed", kind="delivery_issue", severity="sev4"), SHOPPER, NOW,
                               OWNER_VIEW)
    assert (transition.incident.status, transition.incident.severity) == ("triggered", "sev1")
    assert transition.events[0].details == {"previous_status": "routed", "reopened": True}


@pytest.mark.parametrize("status", ["resolved", "cancelled"])
def test_signal_duress_on_a_closed_incident_reopens_it_as_a_new_generation(status: str) -> None:
    closed = _incident(status=status, acknowledged_by="r1", acknowledged_by_name="Ann", escalation_step=3,
                       sent_step=3, recorded_step=3, escalation_exhausted=True)
    updated = signal_duress(closed, SHOPPER, NOW, OWNER_VIEW).incident
    assert updated.status == "triggered" and updated.generation == closed.generation + 1
    assert (updated.escalation_step, updated.sent_step, updated.recorded_step) == (-1, -1, -1)
    assert updated.acknowledged_by is None and not updated.escalation_exhausted


def test_signal_duress_ignores_a_paging_lease() -> None:
    transition = signal_duress(_incident(paging_since=NOW), SHOPPER, NOW, OWNER_VIEW)
    assert transition.incident.duress


def test_signalling_duress_again_changes_nothing_so_the_owners_frozen_view_stays() -> None:
    first = signal_duress(_incident(), SHOPPER, NOW, OWNER_VIEW).incident
    later_view = {**OWNER_VIEW, "cancelled_at": "2026-11-25T15:00:07.000Z"}
    assert signal_duress(first, SHOPPER, "2026-11-25T15:00:07.000Z", later_view) is None


def test_owner_status_shows_cancelled_for_duress_and_the_real_status_otherwise() -> None:
    duress = signal_duress(_incident(), SHOPPER, NOW, OWNER_VIEW).incident
    assert owner_status(duress) == "cancelled"
    assert owner_status(_acknowledged(duress=True)) == "cancelled"
    for status in ("triggered", "acknowledged", "resolved", "cancelled", "routed"):
        assert owner_status(_incident(status=status)) == status


# --- acknowledgement expiry --------------------------------------------------------------------------------------


def test_expire_acknowledgement_returns_the_incident_to_triggered_at_the_resume_step() -> None:
    incident = _acknowledged(by=ANN, escalation_step=2, sent_step=2, recorded_step=2, ack_count=3, ack_tier=1,
                             ack_expiries=1, escalation_exhausted=True)
    transition = expire_acknowledgement(incident, ack_count=3, resume_step=2, now=NOW)
    updated = transition.incident
    assert updated.status == "triggered"
    assert (updated.acknowledged_at, updated.acknowledged_by, updated.acknowledged_by_name) == (None, None, None)
    assert updated.escalation_step == 1  # resume_step - 1: the new execution claims resume_step next
    assert (updated.sent_step, updated.recorded_step) == (1, 1)
    assert updated.ack_expiries == 2
    assert updated.escalation_exhausted is False
    assert updated.first_contact_at == incident.first_contact_at  # the shopper's first contact happened
    [event] = transition.events
    assert (event.type, event.actor) == (EventType.ACK_EXPIRED, "system:ack-timer")
    assert event.details == {"acknowledged_by": "r1", "tier": 1, "resumes_at_step": 2}


def test_expire_acknowledgement_never_moves_sent_step_forward() -> None:
    incident = _acknowledged(escalation_step=0, sent_step=0, recorded_step=0)
    updated = expire_acknowledgement(incident, ack_count=1, resume_step=4, now=NOW).incident
    assert (updated.escalation_step, updated.sent_step, updated.recorded_step) == (3, 0, 0)


def test_expire_acknowledgement_for_an_older_acknowledgement_changes_nothing() -> None:
    assert expire_acknowledgement(_acknowledged(ack_count=2), ack_count=1, resume_step=1, now=NOW) is None


@pytest.mark.parametrize("status", ["triggered", "resolved", "cancelled"])
def test_expire_acknowledgement_of_an_incident_no_longer_acknowledged_changes_nothing(status: str) -> None:
    assert expire_acknowledgement(_incident(status=status, ack_count=1), ack_count=1, resume_step=1, now=NOW) is None


# --- pressing again ----------------------------------------------------------------------------------------------


def test_press_again_counts_and_keeps_the_new_location_private() -> None:
    location = {"lat": 37.77, "lng": -122.41}
    transition = press_again(_incident(pressed_again=1), SHOPPER, location, NOW)
    assert transition.incident.pressed_again == 2
    [event] = transition.events
    assert (event.type, event.details, event.private) == (EventType.PRESSED_AGAIN,
                                                          {"count": 2, "status": "triggered"},
                                                          {"location": location})


def test_press_again_without_a_location_has_no_private_part() -> None:
    assert press_again(_acknowledged(), SHOPPER, None, NOW).events[0].private is None


def test_deadline_after_adds_seconds_to_a_stored_time() -> None:
    assert deadline_after(NOW, 90) == "2026-11-25T15:01:30.000Z"
