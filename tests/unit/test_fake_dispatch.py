"""The local provider's framework-free core: which paths it owns, and the answers a mount must pass through as-is."""

from __future__ import annotations

import json

import pytest

from local.fake_dispatch import FakeDispatchProvider

TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CREATE = {"reference": "TS-AAAAAA", "kind": "panic", "location": {"lat": 1.0, "lng": 2.0, "accuracy": None}}


@pytest.fixture
def fake() -> FakeDispatchProvider:
    return FakeDispatchProvider(lambda: "", "secret", TOKEN, clock=lambda: 1_760_000_000.5)


def call(fake: FakeDispatchProvider, method: str, path: str, body: object = None, headers: dict | None = None):
    raw = b"" if body is None else json.dumps(body).encode()
    return fake.handle(method, path, AUTH if headers is None else headers, raw)


@pytest.mark.parametrize("path", ["/dev/sms", "/dev/providers", "/dev/dispatchesX", "/v1/alarms", "/",
                                  "/api/dev/dispatches"])
def test_other_paths_are_not_answered(fake, path):
    assert not FakeDispatchProvider.owns(path)
    assert call(fake, "GET", path) is None
    assert call(fake, "POST", path, {}) is None


@pytest.mark.parametrize("path", ["/dev/provider", "/dev/provider/v1/alarms", "/dev/dispatches?reference=TS-1",
                                  "/dev/dispatches/alm_1/status"])
def test_its_own_paths_are_owned(path):
    assert FakeDispatchProvider.owns(path)


def test_header_names_are_case_insensitive(fake):
    status, answer = call(fake, "POST", "/dev/provider/v1/alarms", CREATE,
                          headers={"authorization": f"bearer {TOKEN}", "idempotency-key": "k"})
    again = call(fake, "POST", "/dev/provider/v1/alarms", CREATE, headers={"AUTHORIZATION": f"Bearer {TOKEN}",
                                                                           "IDEMPOTENCY-KEY": "k"})
    assert status == 201 and again == (201, answer)


def test_external_id_alone_also_deduplicates(fake):
    first = call(fake, "POST", "/dev/provider/v1/alarms", {**CREATE, "external_id": "dsp-1"})
    second = call(fake, "POST", "/dev/provider/v1/alarms", {**CREATE, "external_id": "dsp-1"})
    assert first == second and len(fake.listing()) == 1


def test_without_any_key_each_create_is_a_new_alarm(fake):
    call(fake, "POST", "/dev/provider/v1/alarms", CREATE)
    call(fake, "POST", "/dev/provider/v1/alarms", CREATE)
    assert len(fake.listing()) == 2


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_the_provider_api_needs_the_bearer_token(fake, headers):
    status, answer = call(fake, "POST", "/dev/provider/v1/alarms", CREATE, headers=headers)
    assert status == 401 and answer["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("body", "field"), [
    ({**CREATE, "reference": ""}, "reference"),
    ({**CREATE, "kind": None}, "kind"),
    ({**CREATE, "location": None}, "location"),
    ({**CREATE, "location": {"lat": 91, "lng": 0}}, "location.lat"),
    ({**CREATE, "location": {"lat": True, "lng": 0}}, "location.lat"),
    ({**CREATE, "location": {"lat": 0, "lng": "0"}}, "location.lng"),
    ({**CREATE, "location": {"lat": 0, "lng": 0, "accuracy": -1}}, "location.accuracy"),
    ({**CREATE, "phone": 15551234567}, "phone"),
    ({**CREATE, "duress": "yes"}, "duress"),
])
def test_invalid_creates_are_422_naming_the_field(fake, body, field):
    status, answer = call(fake, "POST", "/dev/provider/v1/alarms", body)
    assert status == 422
    assert answer["error"]["details"] == [{"field": field, "problem": answer["error"]["details"][0]["problem"]}]
    assert fake.listing() == []


def test_wrong_methods_and_unknown_endpoints(fake):
    assert call(fake, "GET", "/dev/provider/v1/alarms")[0] == 405
    assert call(fake, "DELETE", "/dev/provider/v1/alarms/alm_1")[0] == 405
    assert call(fake, "POST", "/dev/provider/v1/alarms/alm_1/video", {})[0] == 404
    assert call(fake, "POST", "/dev/provider/v2/alarms", {})[0] == 404
    assert call(fake, "POST", "/dev/dispatches", {})[0] == 405
    assert call(fake, "GET", "/dev/dispatches/alm_1/status")[0] == 405
    assert call(fake, "POST", "/dev/dispatches/alm_1", {})[0] == 404


def test_a_body_that_is_not_a_json_object_is_400(fake):
    assert fake.handle("POST", "/dev/provider/v1/alarms", AUTH, b"[1]")[0] == 400
    assert fake.handle("POST", "/dev/provider/v1/alarms", AUTH, b"\xff")[0] == 400


def test_injected_failures_come_before_auth_and_are_counted(fake):
    fake.fail_next(2, status=502)
    assert call(fake, "POST", "/dev/provider/v1/alarms", CREATE, headers={})[0] == 502
    assert call(fake, "POST", "/dev/provider/v1/alarms", CREATE)[0] == 502
    assert call(fake, "GET", "/dev/dispatches")[0] == 200  # dev endpoints are never failed
    assert call(fake, "POST", "/dev/provider/v1/alarms", CREATE)[0] == 201


def test_the_provider_view_of_an_alarm_uses_the_provider_spelling(fake):
    _, created = call(fake, "POST", "/dev/provider/v1/alarms", CREATE)
    alarm_id = created["id"]
    assert call(fake, "POST", f"/dev/provider/v1/alarms/{alarm_id}/status", {"status": "canceled"}) == \
        (200, {"id": alarm_id, "status": "canceled"})
    status, view = call(fake, "GET", f"/dev/provider/v1/alarms/{alarm_id}")
    assert status == 200 and view["status"] == "canceled"
    assert fake.listing()[0]["status"] == "cancelled"
    assert fake.listing()[0]["created_at"] == "2025-10-09T08:53:20.500Z"


def test_only_cancel_is_accepted_on_the_status_endpoint(fake):
    _, created = call(fake, "POST", "/dev/provider/v1/alarms", CREATE)
    status, _ = call(fake, "POST", f"/dev/provider/v1/alarms/{created['id']}/status", {"status": "closed"})
    assert status == 422


def test_a_closed_alarm_cannot_be_cancelled(fake):
    _, created = call(fake, "POST", "/dev/provider/v1/alarms", CREATE)
    status, answer = call(fake, "POST", f"/dev/dispatches/{created['id']}/status", {"status": "closed"})
    assert status == 200 and answer["webhook_status"] is None and answer["webhook_error"]
    status, answer = call(fake, "POST", f"/dev/provider/v1/alarms/{created['id']}/status", {"status": "canceled"})
    assert status == 409 and answer["error"]["code"] == "alarm_inactive"


def test_listing_returns_copies(fake):
    call(fake, "POST", "/dev/provider/v1/alarms", CREATE)
    fake.listing()[0]["locations"].append({"lat": 0, "lng": 0})
    assert len(fake.listing()[0]["locations"]) == 1
