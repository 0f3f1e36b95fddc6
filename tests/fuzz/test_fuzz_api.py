"""Property tests: whatever a client sends, the API answers 4xx or success, never 5xx, with the contract's error shape.

Bodies are ordinary generated JSON, bodies shaped like the real ones (so validation deep inside is reached), and the
hostile bodies of tests/fuzz/strategies.py (nesting thousands of levels deep, non-string keys, wrong value types,
odd keys), sent as raw text.

The responder test acts as a responder the incident's frozen plan names, on incidents in every state (triggered,
acknowledged, closed), with every responder action: so it exercises the state machine and the dispatch, not only
validation (as a responder nobody routed to, every call would stop at 403).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chalicelib.domain.incidents import OUTCOMES
from tests.fuzz.strategies import raw_bodies

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
# Bodies shaped like the real ones, so validation deep inside is exercised too, not only the top-level type check.
ALMOST_INCIDENT = st.fixed_dictionaries(
    {"kind": st.sampled_from(["panic", "fraud", "delivery_issue", "PANIC", "", "test", "missed_check_in"]) | JSON},
    optional={
        "location": st.fixed_dictionaries({"lat": JSON | st.floats(), "lng": JSON | st.floats()}) | JSON,
        "description": st.text(max_size=50) | JSON,
        "cancel_pin": st.text(alphabet="0123456789a", max_size=8) | JSON,
        "duress_pin": st.text(alphabet="0123456789", min_size=3, max_size=7) | JSON,
        "callback_phone": st.from_regex(r"\+1\d{10}", fullmatch=True) | JSON,
        "order_id": JSON,
        "test_responder": st.sampled_from(["r1", "", "fz"]) | JSON,
    },
)
INCIDENT_FIELDS = ("kind", "location", "order_id", "description", "cancel_pin", "duress_pin", "callback_phone",
                   "test_responder")
PANIC = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41}}


def _send(api, method: str, path: str, body):
    # json.dumps, not requests' json=: it writes Infinity/NaN, which Python's parser on the server also accepts.
    return api.request(method, path, data=json.dumps(body), headers={"Content-Type": "application/json"})


def _send_raw(api, method: str, path: str, text: str):
    return api.request(method, path, data=text.encode("utf-8", "surrogatepass"),
                       headers={"Content-Type": "application/json"})


def _assert_answered(response, sent) -> None:
    assert response.status_code < 500, (str(sent)[:300], response.text[:300])
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}, response.text[:300]


SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(body=JSON | ALMOST_INCIDENT)
def test_random_incident_bodies_never_5xx(world, body):
    _assert_answered(_send(world.fuzz_shopper, "POST", "/v1/incidents", body), body)


@SETTINGS
@given(text=raw_bodies(INCIDENT_FIELDS, PANIC))
def test_hostile_incident_bodies_never_5xx(world, text):
    _assert_answered(_send_raw(world.fuzz_shopper, "POST", "/v1/incidents", text), text)


ADMIN_PATHS = ["/v1/responders/fz", "/v1/escalation-policies/fz", "/v1/schedules/fz", "/v1/routing"]
ADMIN_FIELDS = ("name", "phone", "active", "voice", "email", "tiers", "repeat", "ack_timeout_s", "delivery_timeout_s",
                "dispatch_on_exhaustion", "require_verified", "time_zone", "rotation", "overrides", "default", "panic")


@SETTINGS
@given(body=JSON, path=st.sampled_from(ADMIN_PATHS))
def test_random_admin_bodies_never_5xx(world, body, path):
    _assert_answered(_send(world.admin, "PUT", path, body), (path, body))


@SETTINGS
@given(text=raw_bodies(ADMIN_FIELDS), path=st.sampled_from(ADMIN_PATHS))
def test_hostile_admin_bodies_never_5xx(world, text, path):
    _assert_answered(_send_raw(world.admin, "PUT", path, text), (path, text))


# --- a covered responder, on incidents in every state --------------------------------------------------------------
class Incidents:
    """Incidents the scene's responder covers: one kept triggered (replaced once it is not), one acknowledged by
    her, one closed. `statuses` counts (action, state, answer) for the guard test below."""

    def __init__(self, scene):
        self.scene = scene
        self.triggered = scene.fresh_incident()
        self.acknowledged = self._acknowledged()
        closed = scene.fresh_incident()
        resolved = scene.responder["api"].post(f"/v1/incidents/{closed['id']}/resolve", json={"outcome": "assisted"})
        assert resolved.status_code == 200, resolved.text
        self.closed = closed
        self.statuses: Counter = Counter()

    def _acknowledged(self) -> dict:
        incident = self.scene.fresh_incident()
        response = self.scene.responder["api"].post(f"/v1/incidents/{incident['id']}/acknowledge")
        assert response.status_code == 200, response.text
        return incident

    def pick(self, state: str) -> dict:
        return getattr(self, state)

    def answered(self, state: str, action: str, response) -> None:
        self.statuses[(action, state, response.status_code)] += 1
        if response.status_code >= 300:
            return
        # An action that moved an incident on leaves its slot in another state: refill the slot.
        if state == "triggered" and action in ("acknowledge", "resolve"):
            self.triggered = self.scene.fresh_incident()
        if state == "acknowledged" and action == "resolve":
            self.acknowledged = self._acknowledged()


@pytest.fixture(scope="module")
def incidents(scene):
    return Incidents(scene)


ACTIONS = ("resolve", "acknowledge", "escalate", "dispatch", "notes", "attachments")
ACTION_BODIES = {
    "resolve": st.fixed_dictionaries(
        {"outcome": st.sampled_from(OUTCOMES + ("", "OTHER", "resolved")) | JSON},
        optional={"note": st.text(max_size=40) | JSON}),
    "dispatch": st.fixed_dictionaries({}, optional={"reason": st.text(max_size=40) | JSON}),
    "notes": st.fixed_dictionaries({"text": st.text(max_size=40) | JSON}),
    "attachments": st.fixed_dictionaries({
        "filename": st.sampled_from(["a.png", "../x", "", "a\x00b"]) | JSON,
        "content_type": st.sampled_from(["image/png", "text/html", ""]) | JSON,
        "size_bytes": st.integers(min_value=-1, max_value=11 * 1024 * 1024) | JSON}),
    "acknowledge": st.just({}),
    "escalate": st.just({}),
}


@st.composite
def responder_calls(draw):
    action = draw(st.sampled_from(ACTIONS))
    state = draw(st.sampled_from(("triggered", "acknowledged", "closed")))
    by_reference = draw(st.booleans())
    body = draw(ACTION_BODIES[action] | JSON)
    return action, state, by_reference, body


VALID_ACTION_BODIES = {"resolve": {"outcome": "assisted", "note": "fuzz"}, "dispatch": {"reason": "fuzz"},
                       "notes": {"text": "fuzz"}, "acknowledge": {}, "escalate": {},
                       "attachments": {"filename": "a.png", "content_type": "image/png", "size_bytes": 10}}


def _every_action_in_every_state(test):
    """Explicit examples first: each action, with a valid body, on an incident in each state (the generated ones
    alone would leave some transitions untried on a given run)."""
    for state in ("triggered", "acknowledged", "closed"):
        for action in ACTIONS:
            test = example(call=(action, state, state == "acknowledged", VALID_ACTION_BODIES[action]))(test)
    return test


@settings(max_examples=80, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(call=responder_calls())
@_every_action_in_every_state
def test_random_responder_bodies_never_5xx(incidents, scene, call):
    """A responder the incident's plan names: authorisation lets every call through (never 401/403), and whatever
    the body and the incident's state, the answer is a success, 404/409/422 or 400, never 5xx."""
    action, state, by_reference, body = call
    incident = incidents.pick(state)
    target = incident["reference"] if by_reference else incident["id"]
    response = _send(scene.responder["api"], "POST", f"/v1/incidents/{target}/{action}", body)
    incidents.answered(state, action, response)
    _assert_answered(response, (action, state, body))
    assert response.status_code not in (401, 403), (action, state, response.text[:300])


def test_the_responder_fuzzing_reached_the_state_machine(incidents):
    """A guard on the test above: each action succeeded at least once and was refused by a business rule (409 or
    422) at least once across the states, so the run exercised transitions and not only validation."""
    by_action: dict[str, set[int]] = {}
    for (action, _state, status), _count in incidents.statuses.items():
        by_action.setdefault(action, set()).add(status)
    print(f"\nresponder fuzzing: {dict(sorted(incidents.statuses.items()))}")
    assert set(by_action) == set(ACTIONS), by_action
    for action in ACTIONS:
        assert any(s < 300 for s in by_action[action]), (action, by_action[action])
        assert any(s in (409, 422) for s in by_action[action]), (action, by_action[action])
    assert not any(s in (401, 403) or s >= 500 for statuses in by_action.values() for s in statuses), by_action
