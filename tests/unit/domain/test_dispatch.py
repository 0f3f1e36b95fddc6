"""Unit tests for chalicelib.domain.dispatch: requesting emergency dispatch and following its status."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain import dispatch as rules
from chalicelib.domain.errors import DispatchActive, InvalidTransition, ValidationFailed
from chalicelib.domain.incidents import Actor, Incident
from chalicelib.domain.timeline import EventType

T0 = "2026-11-25T15:00:00.000Z"
T1 = "2026-11-25T15:00:05.000Z"
T2 = "2026-11-25T15:00:09.000Z"
ANN = Actor("responder", "r1", "Ann")


def _incident(**changes: object) -> Incident:
    base = Incident(incident_id="inc_1", reference="TS-K3F9QX", kind="panic", severity="sev1", status="triggered",
                    owner="s1", created_at="2026-11-25T14:59:00.000Z", has_location=True)
    return replace(base, **changes)


def _requested(**changes: object) -> Incident:
    return rules.request(_incident(**changes), ANN, "d1", "fake", T0).incident


def _with_status(status: str, **changes: object) -> Incident:
    incident = _requested(**changes)
    return replace(incident, dispatch={**incident.dispatch, "status": status})


# --- request -----------------------------------------------------------------------------------------------------


def test_request_records_a_requested_dispatch_and_its_event() -> None:
    transition = rules.request(_incident(), ANN, "d1", "fake", T0, reason="shots fired")
    dispatch = transition.incident.dispatch
    assert dispatch == {"id": "d1", "status": "requested", "provider": "fake", "provider_id": None,
                        "requested_at": T0, "requested_by": "responder:r1", "updated_at": T0, "automatic": False}
    assert transition.result == dispatch
    [event] = transition.events
    assert (event.type, event.actor, event.at) == (EventType.DISPATCH_REQUESTED, "responder:r1", T0)
    assert event.details == {"dispatch_id": "d1", "provider": "fake", "automatic": False}
    assert event.private == {"reason": "shots fired"}


def test_an_automatic_request_says_so_and_has_no_private_part_without_a_reason() -> None:
    transition = rules.request(_incident(), Actor("system", "escalation"), "d1", "fake", T0, automatic=True)
    assert transition.incident.dispatch["automatic"] is True
    assert transition.events[0].details["automatic"] is True
    assert transition.events[0].private is None


def test_request_refuses_an_incident_without_a_location_naming_location() -> None:
    with pytest.raises(ValidationFailed) as caught:
        rules.request(_incident(has_location=False), ANN, "d1", "fake", T0)
    assert [detail["field"] for detail in caught.value.details] == ["location"]


def test_request_refuses_a_second_active_dispatch_naming_the_current_one() -> None:
    current = _with_status("accepted")
    with pytest.raises(DispatchActive) as caught:
        rules.request(current, ANN, "d2", "fake", T1)
    assert caught.value.extra == {"dispatch": rules.view(current.dispatch)}
    assert caught.value.extra["dispatch"]["id"] == "d1"
    assert "d1" in caught.value.message and "accepted" in caught.value.message


@pytest.mark.parametrize("status", ["requested", "accepted", "psap_contacted"])
def test_every_active_status_blocks_another_request(status: str) -> None:
    with pytest.raises(DispatchActive):
        rules.request(_with_status(status), ANN, "d2", "fake", T1)


@pytest.mark.parametrize("status", ["cancelled", "closed", "failed"])
def test_an_ended_dispatch_allows_a_new_request(status: str) -> None:
    transition = rules.request(_with_status(status), ANN, "d2", "fake", T1)
    assert (transition.incident.dispatch["id"], transition.incident.dispatch["status"]) == ("d2", "requested")


@pytest.mark.parametrize("status", ["resolved", "cancelled", "routed"])
def test_request_refuses_an_incident_that_is_not_open(status: str) -> None:
    with pytest.raises(InvalidTransition, match=status):
        rules.request(_incident(status=status), ANN, "d1", "fake", T0)


def test_request_is_allowed_on_an_acknowledged_incident() -> None:
    assert rules.request(_incident(status="acknowledged"), ANN, "d1", "fake", T0).incident.dispatch is not None


# --- placed ------------------------------------------------------------------------------------------------------


def test_placed_remembers_the_providers_alarm_and_links_it_to_the_incident() -> None:
    transition = rules.placed(_requested(), "d1", "alarm-9", T1)
    assert transition.incident.dispatch["provider_id"] == "alarm-9"
    assert transition.incident.dispatch["updated_at"] == T1
    assert transition.links == (("dispatch#alarm-9", "inc_1"),)
    assert transition.events == ()


def test_placed_for_another_dispatch_or_twice_changes_nothing() -> None:
    incident = _requested()
    assert rules.placed(incident, "d-old", "alarm-9", T1) is None
    assert rules.placed(_incident(), "d1", "alarm-9", T1) is None
    placed = rules.placed(incident, "d1", "alarm-9", T1).incident
    assert rules.placed(placed, "d1", "alarm-9", T2) is None


def test_link_key_names_the_providers_alarm() -> None:
    assert rules.link_key("alarm-9") == "dispatch#alarm-9"


# --- status updates ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new"),
    [("requested", "accepted"), ("requested", "psap_contacted"), ("accepted", "psap_contacted"),
     ("psap_contacted", "closed"), ("requested", "cancelled"), ("accepted", "closed"), ("requested", "failed")],
)
def test_status_moves_forward(current: str, new: str) -> None:
    transition = rules.update_status(_with_status(current), new, T1, "provider:webhook")
    dispatch = transition.incident.dispatch
    assert (dispatch["status"], dispatch["updated_at"], dispatch[f"{new}_at"]) == (new, T1, T1)
    [event] = transition.events
    assert event.type == (EventType.DISPATCH_FAILED if new == "failed" else EventType.DISPATCH_UPDATED)
    assert (event.details, event.actor) == ({"dispatch_id": "d1", "status": new}, "provider:webhook")
    assert transition.result is True


@pytest.mark.parametrize(
    ("current", "late"),
    [("accepted", "accepted"), ("psap_contacted", "accepted"), ("psap_contacted", "psap_contacted"),
     ("closed", "psap_contacted"), ("closed", "cancelled"), ("cancelled", "closed"), ("failed", "accepted"),
     ("accepted", "requested")],
)
def test_a_late_or_duplicate_webhook_changes_nothing(current: str, late: str) -> None:
    assert rules.update_status(_with_status(current), late, T1, "provider:webhook") is None


def test_an_unknown_status_or_no_dispatch_changes_nothing() -> None:
    assert rules.update_status(_requested(), "on_the_moon", T1, "provider:webhook") is None
    assert rules.update_status(_incident(), "accepted", T1, "provider:webhook") is None


def test_accepted_sets_the_first_contact_once() -> None:
    accepted = rules.update_status(_requested(), "accepted", T1, "provider:webhook").incident
    assert accepted.first_contact_at == T1
    contacted = rules.update_status(accepted, "psap_contacted", T2, "provider:webhook").incident
    assert contacted.first_contact_at == T1


def test_psap_contacted_sets_the_first_contact_when_nobody_made_it_before() -> None:
    contacted = rules.update_status(_requested(), "psap_contacted", T2, "provider:webhook").incident
    assert contacted.first_contact_at == T2


def test_a_dispatch_status_keeps_an_acknowledgements_earlier_first_contact() -> None:
    incident = _requested(first_contact_at="2026-11-25T14:59:30.000Z")
    accepted = rules.update_status(incident, "accepted", T1, "provider:webhook").incident
    assert accepted.first_contact_at == "2026-11-25T14:59:30.000Z"


@pytest.mark.parametrize("status", ["cancelled", "closed", "failed"])
def test_an_ending_status_is_not_a_first_contact(status: str) -> None:
    assert rules.update_status(_requested(), status, T1, "system").incident.first_contact_at is None


# --- fail --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["requested", "accepted", "psap_contacted"])
def test_fail_ends_an_active_dispatch_with_the_error(status: str) -> None:
    transition = rules.fail(_with_status(status), "d1", "provider unreachable", T1)
    dispatch = transition.incident.dispatch
    assert (dispatch["status"], dispatch["failed_at"], dispatch["error"]) == ("failed", T1, "provider unreachable")
    [event] = transition.events
    assert (event.type, event.actor) == (EventType.DISPATCH_FAILED, "system:dispatch")
    assert event.details == {"dispatch_id": "d1", "status": "failed", "error": "provider unreachable"}


@pytest.mark.parametrize("status", ["cancelled", "closed", "failed"])
def test_fail_of_an_ended_dispatch_changes_nothing(status: str) -> None:
    assert rules.fail(_with_status(status), "d1", "late error", T1) is None


def test_fail_of_another_dispatch_or_none_changes_nothing() -> None:
    assert rules.fail(_requested(), "d-old", "late error", T1) is None
    assert rules.fail(_incident(), "d1", "late error", T1) is None


# --- views -------------------------------------------------------------------------------------------------------


def test_active_dispatch_is_the_dispatch_only_while_it_is_active() -> None:
    assert rules.active_dispatch(_with_status("accepted"))["id"] == "d1"
    assert rules.active_dispatch(_with_status("closed")) is None
    assert rules.active_dispatch(_incident()) is None


def test_view_hides_the_provider_id_and_who_requested_it() -> None:
    incident = rules.placed(_requested(), "d1", "alarm-9", T1).incident
    incident = rules.update_status(incident, "accepted", T2, "provider:webhook").incident
    assert rules.view(incident.dispatch) == {"id": "d1", "status": "accepted", "provider": "fake",
                                             "requested_at": T0, "updated_at": T2, "accepted_at": T2,
                                             "automatic": False}


def test_view_of_a_failed_dispatch_shows_when_but_not_the_providers_error() -> None:
    failed = rules.fail(_requested(), "d1", "HTTP 500 from alarm-9", T1).incident
    shown = rules.view(failed.dispatch)
    assert shown["failed_at"] == T1
    assert "error" not in shown and "provider_id" not in shown


def test_statuses_are_the_contract_statuses() -> None:
    assert rules.STATUSES == ("requested", "accepted", "psap_contacted", "cancelled", "closed", "failed")
    assert rules.ACTIVE == {"requested", "accepted", "psap_contacted"}
