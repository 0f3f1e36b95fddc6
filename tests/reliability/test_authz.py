"""Authorisation matrix: every endpoint x every kind of caller x own/other's incident, table-driven; then bad tokens
(expired, malformed, wrongly signed, ...) on every endpoint are 401 before anything else is looked at.

Who may call what is the contract's (../shared/CONTRACT.md), and where the contract is silent (evidence, escalate,
report, review, export), app.py's roles. "Allowed" means the authorisation let the call through: the answer is
neither 401 nor 403 (it may still be a 404/409/422 from the business rules, and never a 5xx). "Denied" means exactly
403 with the contract's error shape (401 for a caller without a token)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import jwt
import pytest
import requests

from tests.conftest import unique, wait_for
from tests.reliability.conftest import PANIC

OWNER, OTHER_SHOPPER = "owner", "other_shopper"
COVERED, OTHER_RESPONDER = "covered_responder", "other_responder"
REVIEWER, ADMIN, ANONYMOUS = "reviewer", "admin", "anonymous"
CALLERS = (OWNER, OTHER_SHOPPER, COVERED, OTHER_RESPONDER, REVIEWER, ADMIN, ANONYMOUS)
EVERYONE = frozenset(CALLERS)
SHOPPERS = frozenset({OWNER, OTHER_SHOPPER})
RESPONDERS = frozenset({COVERED, OTHER_RESPONDER})
REVIEW = frozenset({REVIEWER, ADMIN})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {id}: the owner's incident (by id), {ref}: the same incident by its reference, {rid}: a responder id
    allowed: frozenset
    body: dict | None = None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


ROUTING_KINDS = ("panic", "medical", "threat", "accident", "harassment", "conduct", "fraud", "account_breach", "privacy")
SCHEDULE = {"time_zone": "UTC", "rotation": {"responders": ["r1"], "shift_hours": 24, "handoff": "2026-01-05T09:00:00"}}

MATRIX = (
    Endpoint("GET", "/v1/health", EVERYONE),
    Endpoint("GET", "/review", EVERYONE),  # the reviewer page is a static shell; its data comes from the API
    Endpoint("GET", "/review/incidents/{id}", EVERYONE),
    Endpoint("POST", "/v1/incidents", SHOPPERS, PANIC),
    Endpoint("GET", "/v1/incidents", SHOPPERS | RESPONDERS | REVIEW),  # shoppers: their own only (checked below)
    Endpoint("GET", "/v1/incidents/{id}", {OWNER} | RESPONDERS | REVIEW),
    Endpoint("GET", "/v1/incidents/{ref}", {OWNER} | RESPONDERS | REVIEW),
    Endpoint("POST", "/v1/incidents/{id}/locations", {OWNER}, {"lat": 37.78, "lng": -122.42}),
    Endpoint("POST", "/v1/incidents/{id}/notes", {OWNER} | RESPONDERS, {"text": "matrix"}),
    Endpoint("POST", "/v1/incidents/{id}/attachments", {OWNER} | RESPONDERS,
             {"filename": "a.png", "content_type": "image/png", "size_bytes": 10}),
    Endpoint("GET", "/v1/incidents/{id}/timeline", RESPONDERS | REVIEW),
    Endpoint("GET", "/v1/incidents/{id}/report", REVIEW),
    Endpoint("GET", "/v1/review/metrics", REVIEW),
    Endpoint("GET", "/v1/review/export", REVIEW),
    Endpoint("POST", "/v1/incidents/{id}/escalate", {COVERED}),
    Endpoint("POST", "/v1/incidents/{id}/acknowledge", {COVERED}),
    Endpoint("POST", "/v1/incidents/{ref}/acknowledge", {COVERED}),
    Endpoint("POST", "/v1/incidents/{id}/resolve", {COVERED}, {"outcome": "assisted"}),
    Endpoint("POST", "/v1/incidents/{id}/cancel", {OWNER}, {"reason": "matrix"}),
    Endpoint("POST", "/v1/incidents/{id}/review", {REVIEWER}, {"findings": "matrix"}),
    Endpoint("GET", "/v1/responders", {ADMIN}),
    Endpoint("PUT", "/v1/responders/{rid}", {ADMIN}, {"name": "Matrix", "phone": "+15550009999"}),
    Endpoint("GET", "/v1/responders/{rid}", {ADMIN}),
    Endpoint("DELETE", "/v1/responders/{rid}", {ADMIN}),
    Endpoint("PUT", "/v1/schedules/s-matrix", {ADMIN}, SCHEDULE),
    Endpoint("GET", "/v1/schedules/s-matrix", {ADMIN}),
    Endpoint("PUT", "/v1/escalation-policies/{pid}", {ADMIN}, None),  # body: the policy itself (filled in below)
    Endpoint("GET", "/v1/escalation-policies/{pid}", {ADMIN}),
    Endpoint("PUT", "/v1/routing", {ADMIN}, None),  # body: route everything to the matrix policy (filled in below)
    Endpoint("GET", "/v1/routing", {ADMIN}),
)


class Callers:
    def __init__(self, world):
        self.world = world
        self.covered, self.other = world.responder(), world.responder()
        self.policy_body = {"tiers": [{"targets": [{"responder": self.covered["id"]}], "timeout_s": 3600}]}
        self.policy = unique("p")
        assert world.admin.put(f"/v1/escalation-policies/{self.policy}", json=self.policy_body).status_code == 201
        self.owner = world.as_("shopper")
        self.sessions = {
            OWNER: self.owner.session,
            OTHER_SHOPPER: world.as_("shopper").session,
            COVERED: self.covered["api"].session,
            OTHER_RESPONDER: self.other["api"].session,
            REVIEWER: world.as_("reviewer").session,
            ADMIN: world.as_("admin").session,
            ANONYMOUS: requests.Session(),
        }
        self.routing = {"default": self.policy, **{k: self.policy for k in ROUTING_KINDS}}
        world.route_all_to(self.policy)
        self.incident = world.open_panic(self.owner)
        wait_for(lambda: world.sms.to(self.covered["phone"]), message="the matrix incident's page")

    def url(self, endpoint: Endpoint, responder_id: str) -> str:
        path = endpoint.path.format(id=self.incident["id"], ref=self.incident["reference"], rid=responder_id,
                                    pid=self.policy)
        return self.world.stack.api_url + path

    def body(self, endpoint: Endpoint):
        if endpoint.path == "/v1/routing" and endpoint.method == "PUT":
            return self.routing
        if endpoint.path.startswith("/v1/escalation-policies") and endpoint.method == "PUT":
            return self.policy_body
        return endpoint.body


@pytest.fixture(scope="module")
def callers(world):
    return Callers(world)


def _call(callers: Callers, caller: str, endpoint: Endpoint) -> requests.Response:
    body = callers.body(endpoint)
    # Each caller acts on a responder id of its own, so an admin's DELETE never removes one another cell uses.
    responder_id = f"r-matrix-{caller}"
    kwargs = {"json": body} if body is not None else {}
    return callers.sessions[caller].request(endpoint.method, callers.url(endpoint, responder_id), timeout=30, **kwargs)


@pytest.mark.parametrize("endpoint", MATRIX, ids=lambda e: e.label)
def test_authorisation_matrix(callers, endpoint):
    wrong = []
    for caller in CALLERS:
        response = _call(callers, caller, endpoint)
        status = response.status_code
        if status >= 500:
            wrong.append((caller, status, response.text[:200]))
        elif caller in endpoint.allowed:
            if status in (401, 403):
                wrong.append((caller, status, "should be allowed"))
        elif caller == ANONYMOUS:
            if status != 401 or response.json()["error"]["code"] != "unauthenticated":
                wrong.append((caller, status, "should be 401 unauthenticated"))
        elif status != 403 or response.json()["error"]["code"] != "forbidden":
            wrong.append((caller, status, "should be 403 forbidden"))
    assert wrong == [], f"{endpoint.label}: {wrong}"


def test_shoppers_list_only_their_own_incidents(callers):
    own = callers.sessions[OWNER].get(f"{callers.world.stack.api_url}/v1/incidents", timeout=30).json()["incidents"]
    other = callers.sessions[OTHER_SHOPPER].get(f"{callers.world.stack.api_url}/v1/incidents", timeout=30).json()
    assert callers.incident["id"] in [i["id"] for i in own]
    assert callers.incident["id"] not in [i["id"] for i in other["incidents"]]


def test_a_denied_caller_learns_nothing_about_the_incident(callers):
    """A 403 carries no incident data (no reference, location or status beyond the error)."""
    for caller in (OTHER_SHOPPER,):
        response = callers.sessions[caller].get(f"{callers.world.stack.api_url}/v1/incidents/{callers.incident['id']}",
                                                timeout=30)
        assert response.status_code == 403
        text = response.text
        assert callers.incident["reference"] not in text and "37.77" not in text and "incident" not in response.json()


def test_deactivated_and_unknown_responders_are_refused_everywhere(world, callers):
    gone = world.responder()
    assert world.admin.put(f"/v1/responders/{gone['id']}",
                           json={"name": "gone", "phone": gone["phone"], "active": False}).status_code == 200
    strangers = {"deactivated": gone["api"], "unknown": world.as_("responder", unique("nobody"))}
    incident = callers.incident["id"]
    refused = {}
    for name, api in strangers.items():
        for method, path, body in (("GET", f"/v1/incidents/{incident}", None),
                                   ("GET", f"/v1/incidents/{incident}/timeline", None),
                                   ("GET", "/v1/incidents", None),
                                   ("POST", f"/v1/incidents/{incident}/notes", {"text": "still here"}),
                                   ("POST", f"/v1/incidents/{incident}/acknowledge", None)):
            refused[(name, method, path)] = api.request(method, path, json=body).status_code
    assert all(status == 403 for status in refused.values()), refused


# --- tokens -------------------------------------------------------------------------------------------------------------
def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"sub": "s-token", "role": "admin", "iss": "trust-safety-local", "aud": "trust-safety-api", "iat": now,
              "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_tokens() -> dict[str, str]:
    secret = os.environ["TOKEN_SECRET"]
    now = int(time.time())
    good = jwt.encode(_claims(), secret, algorithm="HS256")
    header, payload, signature = good.split(".")
    unsigned = jwt.encode(_claims(), None, algorithm="none")
    tampered = jwt.utils.base64url_encode(b'{"sub":"x","role":"admin","aud":"trust-safety-api","exp":9999999999}').decode()
    return {
        "missing": None,
        "empty bearer": "Bearer ",
        "not a bearer": f"Basic {good}",
        "garbage": "Bearer not-a-token",
        "three dots": "Bearer a.b.c",
        "truncated": f"Bearer {header}.{payload}",
        "tampered payload": f"Bearer {header}.{tampered}.{signature}",
        "alg none": f"Bearer {unsigned}",
        "expired": f"Bearer {jwt.encode(_claims(iat=now - 100, exp=now - 10), secret, algorithm='HS256')}",
        "not yet valid": f"Bearer {jwt.encode(_claims(nbf=now + 600), secret, algorithm='HS256')}",
        "wrong secret": f"Bearer {jwt.encode(_claims(), 'another-secret-of-enough-length-123', algorithm='HS256')}",
        "HS512 with the right secret": f"Bearer {jwt.encode(_claims(), secret, algorithm='HS512')}",
        "wrong audience": f"Bearer {jwt.encode(_claims(aud='another-api'), secret, algorithm='HS256')}",
        "wrong issuer": f"Bearer {jwt.encode(_claims(iss='someone-else'), secret, algorithm='HS256')}",
        "no expiry": f"Bearer {jwt.encode(_claims(exp=None), secret, algorithm='HS256')}",
        "no subject": f"Bearer {jwt.encode(_claims(sub=None), secret, algorithm='HS256')}",
        "empty subject": f"Bearer {jwt.encode(_claims(sub=''), secret, algorithm='HS256')}",
        "unknown role": f"Bearer {jwt.encode(_claims(role='superuser'), secret, algorithm='HS256')}",
        "role list": f"Bearer {jwt.encode(_claims(role=['admin']), secret, algorithm='HS256')}",
    }


def test_bad_tokens_are_401_on_every_endpoint_before_anything_else(callers):
    """Even with a malformed body: authentication comes first (no 400/404/422 that would reveal anything)."""
    session = requests.Session()
    wrong = []
    for name, header in _bad_tokens().items():
        for endpoint in MATRIX:
            if endpoint.allowed == EVERYONE:
                continue
            headers = {"Authorization": header} if header is not None else {}
            data = b"{not json" if endpoint.method in ("POST", "PUT") else None
            response = session.request(endpoint.method, callers.url(endpoint, "r-matrix-token"), data=data,
                                       headers={**headers, "Content-Type": "application/json"}, timeout=30)
            if response.status_code != 401 or response.json()["error"]["code"] != "unauthenticated":
                wrong.append((name, endpoint.label, response.status_code))
    assert wrong == []


def test_a_valid_token_for_the_matrix_admin_is_accepted(callers):
    """The control for the test above: the same claims, correctly signed, pass."""
    token = jwt.encode(_claims(), os.environ["TOKEN_SECRET"], algorithm="HS256")
    response = requests.get(f"{callers.world.stack.api_url}/v1/routing", headers={"Authorization": f"Bearer {token}"},
                            timeout=30)
    assert response.status_code == 200
