"""Unit tests for chalicelib.domain.shopper: the sentence the app shows the shopper, and her status SMS."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.incidents import Incident
from chalicelib.domain.shopper import (
    CALL_911,
    DISPATCH_MESSAGES,
    acknowledged_sms,
    cancelled_message,
    dispatch_sms,
    exhausted_sms,
    resolved_sms,
    shopper_message,
)
from chalicelib.domain.sms_texts import is_gsm7, sms_parts

REF = "TS-K3F9QX"
LONG_NAME = "Maximilian-Alexander Wolfeschlegelsteinhausenbergerdorff " * 6


def _incident(**changes: object) -> Incident:
    base = Incident(incident_id="inc_1", reference=REF, kind="panic", severity="sev1", status="triggered",
                    owner="s1", created_at="2026-11-25T15:00:00.000Z", escalation_tier=1)
    return replace(base, **changes)


def _acknowledged(**changes: object) -> Incident:
    return _incident(**{"status": "acknowledged", "acknowledged_by": "r1", "acknowledged_by_name": "Ann", **changes})


def _one_gsm_part(text: str) -> None:
    assert is_gsm7(text), text
    assert sms_parts(text) == 1, text


# --- shopper_message ---------------------------------------------------------------------------------------------


def test_a_new_alert_says_the_team_is_being_alerted_and_to_call_911_if_in_danger() -> None:
    for tier in (0, 1):
        assert shopper_message(_incident(escalation_tier=tier)) == (
            "We are alerting our safety team now. If you are in immediate danger, call 911.")


def test_an_escalated_alert_says_more_responders_are_being_alerted() -> None:
    assert shopper_message(_incident(escalation_tier=2)) == (
        "We are still reaching our safety team and are alerting more responders now. "
        "If you are in immediate danger, call 911.")


def test_an_exhausted_escalation_tells_the_shopper_to_call_911_now() -> None:
    message = shopper_message(_incident(escalation_tier=3, escalation_exhausted=True))
    assert message == "Nobody from our safety team has answered yet. Call 911 now if you are in danger. We keep trying."


def test_an_acknowledged_alert_names_the_responder() -> None:
    assert shopper_message(_acknowledged()) == (
        f"Ann from our safety team is on it. Stay somewhere safe and keep your phone with you. {CALL_911}")


def test_an_acknowledged_alert_without_a_name_says_a_responder() -> None:
    assert shopper_message(_acknowledged(acknowledged_by_name=None)).startswith("A responder from our safety team")


def test_an_acknowledgement_after_exhaustion_names_the_responder() -> None:
    assert shopper_message(_acknowledged(escalation_exhausted=True)).startswith("Ann from our safety team is on it.")


def test_a_resolved_alert_says_so_with_its_reference() -> None:
    assert shopper_message(_incident(status="resolved")) == (
        "Your alert TS-K3F9QX is resolved. If you need help again, press the button.")


def test_a_cancelled_alert_shows_the_cancelled_message() -> None:
    assert shopper_message(_incident(status="cancelled")) == cancelled_message() == (
        "You cancelled this alert. If you need help, press the button again.")


def test_a_routed_report_went_to_support() -> None:
    assert shopper_message(_incident(status="routed", kind="delivery_issue")) == (
        f"Your report TS-K3F9QX went to our support team; they will contact you. {CALL_911}")


@pytest.mark.parametrize("status", ["requested", "accepted", "psap_contacted"])
def test_an_active_dispatch_tells_what_emergency_services_know(status: str) -> None:
    message = shopper_message(_incident(dispatch={"id": "d1", "status": status}))
    assert message == f"{DISPATCH_MESSAGES[status]} Stay somewhere safe and keep your phone with you."


def test_an_active_dispatch_on_an_acknowledged_alert_also_names_the_responder() -> None:
    message = shopper_message(_acknowledged(dispatch={"id": "d1", "status": "psap_contacted"}))
    assert message == ("911 has been contacted and is sending help to your last location. Ann from our safety team "
                       "is on it too. Stay somewhere safe and keep your phone with you.")


@pytest.mark.parametrize("status", ["cancelled", "closed", "failed"])
def test_an_ended_dispatch_falls_back_to_the_alerts_own_status(status: str) -> None:
    assert shopper_message(_incident(dispatch={"id": "d1", "status": status})) == shopper_message(_incident())
    assert shopper_message(_acknowledged(dispatch={"id": "d1", "status": status})) == shopper_message(_acknowledged())


def test_a_dispatch_on_a_resolved_alert_shows_it_resolved() -> None:
    resolved = _incident(status="resolved", dispatch={"id": "d1", "status": "psap_contacted"})
    assert shopper_message(resolved) == shopper_message(_incident(status="resolved"))


@pytest.mark.parametrize(
    "incident",
    [_incident(duress=True), _acknowledged(duress=True), _incident(duress=True, escalation_exhausted=True),
     _incident(duress=True, dispatch={"id": "d1", "status": "psap_contacted"})],
)
def test_duress_shows_the_owner_the_cancelled_message_and_staff_the_real_one(incident: Incident) -> None:
    assert shopper_message(incident) == cancelled_message()
    assert shopper_message(incident, for_owner=False) == shopper_message(replace(incident, duress=False))
    assert shopper_message(incident, for_owner=False) != cancelled_message()


# --- the shopper's SMS -------------------------------------------------------------------------------------------


def test_acknowledged_sms_names_the_responder_and_the_reference() -> None:
    assert acknowledged_sms(REF, "Ann") == (
        "Help is coming: Ann from our safety team is on TS-K3F9QX. Stay somewhere safe.")


def test_acknowledged_sms_converts_the_name_to_one_gsm7_line() -> None:
    assert acknowledged_sms(REF, "Zoë “Z”\nO’Brien 🚓") == (
        "Help is coming: Zoe \"Z\" O'Brien ? from our safety team is on TS-K3F9QX. Stay somewhere safe.")


@pytest.mark.parametrize("name", [None, "", "   ", "\u200b"])
def test_acknowledged_sms_without_a_name_says_a_responder(name: str | None) -> None:
    assert acknowledged_sms(REF, name) == (
        "Help is coming: a responder from our safety team is on TS-K3F9QX. Stay somewhere safe.")


def test_acknowledged_sms_truncates_a_long_name_to_one_part() -> None:
    text = acknowledged_sms(REF, LONG_NAME)
    _one_gsm_part(text)
    assert text.startswith("Help is coming: Maximilian")
    assert text.endswith(" from our safety team is on TS-K3F9QX. Stay somewhere safe.")
    assert len(text) == 160


def test_acknowledged_sms_counts_extension_characters_as_two_septets() -> None:
    text = acknowledged_sms(REF, "€" * 200)
    _one_gsm_part(text)
    assert text.count("€") == (160 - len(acknowledged_sms(REF, "x")) + 1) // 2


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=400)))
def test_acknowledged_sms_is_one_gsm7_part_for_any_name(name: str | None) -> None:
    _one_gsm_part(acknowledged_sms(REF, name))


def test_exhausted_sms_tells_the_shopper_to_call_911() -> None:
    text = exhausted_sms(REF)
    assert "TS-K3F9QX" in text and "call 911 now" in text
    _one_gsm_part(text)


def test_resolved_sms_names_the_reference() -> None:
    text = resolved_sms(REF)
    assert text == "Your alert TS-K3F9QX is resolved. If you need help again, press the button."
    _one_gsm_part(text)


def test_dispatch_sms_is_sent_only_when_911_was_contacted() -> None:
    text = dispatch_sms(REF, "psap_contacted")
    assert text is not None and text.startswith("911 has been contacted for your alert TS-K3F9QX")
    _one_gsm_part(text)
    for status in ("requested", "accepted", "cancelled", "closed", "failed"):
        assert dispatch_sms(REF, status) is None


def test_shopper_sms_keep_a_lowercase_reference_gsm7_and_uppercase() -> None:
    for text in (acknowledged_sms("ts-k3f9qx", "Ann"), exhausted_sms("ts-k3f9qx"), resolved_sms("ts-k3f9qx")):
        assert "TS-K3F9QX" in text
        _one_gsm_part(text)
