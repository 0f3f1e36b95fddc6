"""Property tests: whatever JSON a client sends, the API answers 4xx or success, never 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
# Bodies shaped like the real ones, so validation deep inside is exercised too, not only the top-level type check.
ALMOST_INCIDENT = st.fixed_dictionaries(
    {"kind": st.sampled_from(["panic", "fraud", "delivery_issue", "PANIC", ""]) | JSON},
    optional={
        "location": st.fixed_dictionaries({"lat": JSON | st.floats(), "lng": JSON | st.floats()}) | JSON,
        "description": st.text(max_size=50) | JSON,
        "cancel_pin": st.text(alphabet="0123456789a", max_size=8) | JSON,
        "callback_phone": st.from_regex(r"\+1\d{10}", fullmatch=True) | JSON,
        "order_id": JSON,
    },
)

def _send(api, method: str, path: str, body):
    # json.dumps, not requests' json=: it writes Infinity/NaN, which Python's parser on the server also accepts.
    return api.request(method, path, data=json.dumps(body), headers={"Content-Type": "application/json"})


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(body=JSON | ALMOST_INCIDENT)
def test_random_incident_bodies_never_5xx(world, body):
    response = _send(world.fuzz_shopper, "POST", "/v1/incidents", body)
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}


@SETTINGS
@given(body=JSON, path=st.sampled_from(["/v1/responders/fz", "/v1/escalation-policies/fz", "/v1/schedules/fz",
                                        "/v1/routing"]))
def test_random_admin_bodies_never_5xx(world, body, path):
    response = _send(world.admin, "PUT", path, body)
    assert response.status_code < 500, (path, body, response.text)


@SETTINGS
@given(body=JSON)
def test_random_responder_bodies_never_5xx(world, body):
    response = _send(world.fuzz_responder, "POST", "/v1/incidents/inc_missing/resolve", body)
    assert response.status_code < 500, (body, response.text)
