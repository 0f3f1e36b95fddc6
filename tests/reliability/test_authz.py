"""Authorisation matrix: every route x every kind of caller, on one incident and one check-in, table-driven; then
bad tokens (expired, malformed, wrongly signed, ...) on every endpoint are 401 before anything else is looked at.

Who may call what is the contract's (../shared/CONTRACT.md), and where the contract is silent (evidence, escalate,
report, review, export), app.py's roles. Need-to-know (contract 4.4): a responder reads, notes, attaches and acts only
on incidents whose frozen plan names her (`Incident.responder_ids`), and only while active; reviewers and admins read
every incident; a shopper only her own incidents and check-ins.

The callers: the owner shopper, another shopper, a responder the incident's plan names, an active responder it does
not name, a responder the plan names who was deactivated after it opened, a responder id that does not exist, a
reviewer, an admin, and nobody (no token).

"Allowed" means the authorisation let the call through: the answer is neither 401 nor 403 (it may still be a
404/409/422 from the business rules, and never a 5xx). "Denied" means exactly 403 with the contract's error shape
(401 for a caller without a token). The dispatch provider's webhook is authenticated by its signature, not a token:
a bad signature is 401 whoever calls."""

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
COVERED, UNCOVERED, DEACTIVATED, UNKNOWN = "covered_responder", "uncovered_responder", "deactivated_responder", \
    "unknown_responder"
REVIEWER, ADMIN, ANONYMOUS = "reviewer", "admin", "anonymous"
CALLERS = (OWNER, OTHER_SHOPPER, COVERED, UNCOVERED, DEACTIVATED, UNKNOWN, REVIEWER, ADMIN, ANONYMOUS)
EVERYONE = frozenset(CALLERS)
SHOPPERS = frozenset({OWNER, OTHER_SHOPPER})
ACTIVE_RESPONDERS = frozenset({COVERED, UNCOVERED})
REVIEW = frozenset({REVIEWER, ADMIN})
# Callers who must learn nothing about the owner's incident.
DENIED_READERS = (OTHER_SHOPPER, UNCOVERED, DEACTIVATED, UNKNOWN)


@dataclass(frozen=True)
class Endpoint:
    method: str
    # {id}: the owner's incident (by id), {ref}: the same incident by its reference, {cid}: the owner's check-in,
    # {rid}: a responder id of the caller's own (so an admin's DELETE never removes one another cell uses),
    # {covered}: the covered responder's id, {me}: the caller's own id, {pid}: the matrix policy
    path: str
    allowed: frozenset
    body: dict | None = None
    # The one status every caller gets (the webhook: a bad signature is 401 whoever calls).
    always: int | None = None
    headers: tuple = ()

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}" + (f" ({self.body['kind']})" if self.body and "kind" in self.body else "")


ROUTING_KINDS = ("panic", "medical", "threat", "accident", "harassment", "conduct", "fraud", "account_breach", "privacy")
SCHEDULE = {"time_zone": "UTC", "rotation": {"responders": ["r1"], "shift_hours": 24, "handoff": "2026-01-05T09:00:00"}}
SECRET_DESCRIPTION = "matrix-secret-description-7f3a"
SECRET_PHONE = "+15557770123"
SECRET_ORDER = "matrix-order-91c2"

# Order matters where a call changes state: reads first; then dispatch while the incident is open (covered: 202,
# admin: 409 already under way); escalate, acknowledge and resolve; cancel and review after it closed.
MATRIX = (
    Endpoint("GET", "/v1/health", EVERYONE),
    Endpoint("GET", "/review", EVERYONE),  # the reviewer page is a static shell; its data comes from the API
    Endpoint("GET", "/review/incidents/{id}", EVERYONE),
    Endpoint("GET", "/v1/incidents", SHOPPERS | ACTIVE_RESPONDERS | REVIEW),  # each sees her own (checked below)
    Endpoint("GET", "/v1/incidents/{id}", {OWNER, COVERED} | REVIEW),
    Endpoint("GET", "/v1/incidents/{ref}", {OWNER, COVERED} | REVIEW),
    Endpoint("GET", "/v1/incidents/{id}/timeline", {COVERED} | REVIEW),
    Endpoint("GET", "/v1/incidents/{ref}/timeline", {COVERED} | REVIEW),
    Endpoint("GET", "/v1/incidents/{id}/report", REVIEW),
    Endpoint("GET", "/v1/review/metrics", REVIEW),
    Endpoint("GET", "/v1/review/export", REVIEW),
    Endpoint("POST", "/v1/incidents/{id}/locations", {OWNER}, {"lat": 37.78, "lng": -122.42}),
    Endpoint("POST", "/v1/incidents/{id}/notes", {OWNER, COVERED}, {"text": "matrix"}),
    Endpoint("POST", "/v1/incidents/{ref}/notes", {OWNER, COVERED}, {"text": "matrix"}),
    Endpoint("POST", "/v1/incidents/{id}/attachments", {OWNER, COVERED},
             {"filename": "a.png", "content_type": "image/png", "size_bytes": 10}),
    Endpoint("POST", "/v1/incidents/{id}/dispatch", {COVERED, ADMIN}, {"reason": "matrix"}),
    Endpoint("POST", "/v1/incidents/{id}/escalate", {COVERED}),
    Endpoint("POST", "/v1/incidents/{id}/acknowledge", {COVERED}),
    Endpoint("POST", "/v1/incidents/{ref}/acknowledge", {COVERED}),
    Endpoint("POST", "/v1/incidents/{id}/resolve", {COVERED}, {"outcome": "assisted"}),
    Endpoint("POST", "/v1/incidents/{id}/cancel", {OWNER}, {"reason": "matrix"}),
    Endpoint("POST", "/v1/incidents/{id}/review", {REVIEWER}, {"findings": "matrix"}),
    # Shoppers open incidents (the owner's second press joins her open one); admins only kind test (403 otherwise).
    Endpoint("POST", "/v1/incidents", SHOPPERS, PANIC),
    Endpoint("POST", "/v1/incidents", SHOPPERS | {ADMIN}, {"kind": "test", "test_responder": "{covered}"}),
    # Check-ins: only their shopper writes; reviewers and admins read.
    Endpoint("POST", "/v1/check-ins", SHOPPERS, {"due_in_s": 86_400}),
    Endpoint("GET", "/v1/check-ins/{cid}", {OWNER} | REVIEW),
    Endpoint("POST", "/v1/check-ins/{cid}/locations", {OWNER}, {"lat": 37.78, "lng": -122.42}),
    Endpoint("POST", "/v1/check-ins/{cid}/complete", {OWNER}),
    # Test pages: an admin, or the responder herself while active.
    Endpoint("POST", "/v1/responders/{covered}/test-page", {ADMIN, COVERED}),
    Endpoint("POST", "/v1/responders/{me}/test-page", {ADMIN, COVERED, UNCOVERED}),
    Endpoint("POST", "/v1/dispatch/webhook", frozenset(), {"event_id": "e1", "alarm_id": "a1", "status": "accepted",
                                                            "at": "2026-01-05T09:00:00+00:00"}, always=401,
             headers=(("X-Dispatch-Signature", "t=1700000000,v1=" + "0" * 64),)),
    Endpoint("GET", "/v1/responders", {ADMIN}),
    Endpoint("GET", "/v1/responders?verified=true", {ADMIN}),
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
        self.covered, self.uncovered, self.deactivated = world.responder(), world.responder(), world.responder()
        # The deactivated responder is in the plan (tier 2): deactivation alone must cut her access.
        self.policy_body = {"tiers": [{"targets": [{"responder": self.covered["id"]}], "timeout_s": 3600},
                                      {"targets": [{"responder": self.deactivated["id"]}], "timeout_s": 3600}]}
        self.policy = unique("p")
        assert world.admin.put(f"/v1/escalation-policies/{self.policy}", json=self.policy_body).status_code == 201
        self.owner = world.as_("shopper")
        unknown = world.as_("responder", unique("nobody"))
        self.ids = {COVERED: self.covered["id"], UNCOVERED: self.uncovered["id"],
                    DEACTIVATED: self.deactivated["id"], UNKNOWN: unknown.sub}
        self.sessions = {
            OWNER: self.owner.session,
            OTHER_SHOPPER: world.as_("shopper").session,
            COVERED: self.covered["api"].session,
            UNCOVERED: self.uncovered["api"].session,
            DEACTIVATED: self.deactivated["api"].session,
            UNKNOWN: unknown.session,
            REVIEWER: world.as_("reviewer").session,
            ADMIN: world.as_("admin").session,
            ANONYMOUS: requests.Session(),
        }
        self.routing = {"default": self.policy, **{k: self.policy for k in ROUTING_KINDS}}
        world.route_all_to(self.policy)
        self.incident = world.open_panic(self.owner, description=SECRET_DESCRIPTION, callback_phone=SECRET_PHONE,
                                         order_id=SECRET_ORDER)
        wait_for(lambda: world.sms.to(self.covered["phone"]), message="the matrix incident's page")
        response = world.admin.put(f"/v1/responders/{self.deactivated['id']}",
                                   json={"name": "gone", "phone": self.deactivated["phone"], "active": False})
        assert response.status_code == 200, response.text
        response = self.owner.post("/v1/check-ins", json={"due_in_s": 86_400})
        assert response.status_code == 201, response.text
        self.check_in = response.json()["check_in"]

    def url(self, endpoint: Endpoint, caller: str) -> str:
        path = endpoint.path.format(id=self.incident["id"], ref=self.incident["reference"], cid=self.check_in["id"],
                                    rid=f"r-matrix-{caller}", covered=self.covered["id"],
                                    me=self.ids.get(caller, f"r-matrix-{caller}"), pid=self.policy)
        return self.world.stack.api_url + path

    def body(self, endpoint: Endpoint):
        if endpoint.path == "/v1/routing" and endpoint.method == "PUT":
            return self.routing
        if endpoint.path.startswith("/v1/escalation-policies") and endpoint.method == "PUT":
            return self.policy_body
        if endpoint.body and endpoint.body.get("test_responder") == "{covered}":
            return {**endpoint.body, "test_responder": self.covered["id"]}
        return endpoint.body


@pytest.fixture(scope="module")
def callers(world):
    return Callers(world)


def _call(callers: Callers, caller: str, endpoint: Endpoint) -> requests.Response:
    body = callers.body(endpoint)
    kwargs = {"json": body} if body is not None else {}
    return callers.sessions[caller].request(endpoint.method, callers.url(endpoint, caller), timeout=30,
                                            headers=dict(endpoint.headers), **kwargs)


def _error_code(response: requests.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def test_the_matrix_covers_every_route(stack):
    routed = {(m, p) for p, methods in stack.app.routes.items() for m in methods}
    in_matrix = {(e.method, e.path.split("?")[0].format(id="{incident_id}", ref="{incident_id}", cid="{check_in_id}",
                                                         rid="{responder_id}", covered="{responder_id}",
                                                         me="{responder_id}", pid="{policy_id}")
                  .replace("/s-matrix", "/{schedule_id}")) for e in MATRIX}
    assert routed - in_matrix == set(), routed - in_matrix


@pytest.mark.parametrize("endpoint", MATRIX, ids=lambda e: e.label)
def test_authorisation_matrix(callers, endpoint):
    wrong = []
    for caller in CALLERS:
        response = _call(callers, caller, endpoint)
        status = response.status_code
        if status >= 500:
            wrong.append((caller, status, response.text[:200]))
        elif endpoint.always is not None:
            if status != endpoint.always:
                wrong.append((caller, status, f"should be {endpoint.always}"))
        elif caller in endpoint.allowed:
            if status in (401, 403):
                wrong.append((caller, status, "should be allowed: " + response.text[:200]))
        elif caller == ANONYMOUS:
            if status != 401 or _error_code(response) != "unauthenticated":
                wrong.append((caller, status, "should be 401 unauthenticated"))
        elif status != 403 or _error_code(response) != "forbidden":
            wrong.append((caller, status, "should be 403 forbidden: " + response.text[:200]))
    assert wrong == [], f"{endpoint.label}: {wrong}"


def test_dispatch_by_a_covering_responder_or_an_admin_is_202_409_or_422(world, callers):
    """On an incident of its own (open, then closed): never 403 for those allowed, whatever the state."""
    shopper = world.as_("shopper")
    callers.world.route_all_to(callers.policy)
    incident = world.open_panic(shopper)
    seen = []
    for caller in (COVERED, ADMIN, COVERED):
        seen.append((caller, _dispatch(callers, caller, incident["id"]).status_code))
    callers.sessions[COVERED].post(f"{world.stack.api_url}/v1/incidents/{incident['id']}/resolve",
                                   json={"outcome": "assisted"}, timeout=30)
    seen.append((ADMIN, _dispatch(callers, ADMIN, incident["id"]).status_code))
    assert seen[0] == (COVERED, 202), seen
    assert all(status in (202, 409, 422) for _, status in seen), seen
    for caller in (OWNER, OTHER_SHOPPER, UNCOVERED, DEACTIVATED, UNKNOWN, REVIEWER):
        response = _dispatch(callers, caller, incident["id"])
        assert response.status_code == 403 and _error_code(response) == "forbidden", (caller, response.text)


def _dispatch(callers: Callers, caller: str, incident_id: str) -> requests.Response:
    return callers.sessions[caller].post(f"{callers.world.stack.api_url}/v1/incidents/{incident_id}/dispatch",
                                         json={"reason": "matrix"}, timeout=30)


def test_each_caller_lists_only_what_she_may_read(callers):
    def listed(caller: str) -> list[str]:
        response = callers.sessions[caller].get(f"{callers.world.stack.api_url}/v1/incidents", timeout=30)
        assert response.status_code == 200, (caller, response.text)
        return [i["id"] for i in response.json()["incidents"]]

    assert callers.incident["id"] in listed(OWNER)
    assert callers.incident["id"] in listed(COVERED)
    assert callers.incident["id"] in listed(REVIEWER)
    assert callers.incident["id"] not in listed(OTHER_SHOPPER)
    assert callers.incident["id"] not in listed(UNCOVERED)


# Every call a denied reader might try on the incident, by id (the reference is what must not leak).
PROBES = (
    ("GET", "/v1/incidents/{id}", None),
    ("GET", "/v1/incidents/{id}/timeline", None),
    ("GET", "/v1/incidents/{id}/report", None),
    ("POST", "/v1/incidents/{id}/notes", {"text": "let me in"}),
    ("POST", "/v1/incidents/{id}/attachments", {"filename": "a.png", "content_type": "image/png", "size_bytes": 10}),
    ("POST", "/v1/incidents/{id}/acknowledge", None),
    ("POST", "/v1/incidents/{id}/resolve", {"outcome": "assisted"}),
    ("POST", "/v1/incidents/{id}/escalate", None),
    ("POST", "/v1/incidents/{id}/dispatch", {}),
    ("POST", "/v1/incidents/{id}/locations", {"lat": 1, "lng": 2}),
    ("POST", "/v1/incidents/{id}/cancel", {}),
    ("GET", "/v1/check-ins/{cid}", None),
)


def test_a_denied_caller_learns_nothing_about_the_incident(callers):
    """Each kind of denied caller (another shopper, a responder the plan does not name, a deactivated responder the
    plan names, an unknown responder id), on every call: exactly 403, and the body holds the error only: no
    location, description, phone, order, reference, code or status of the incident."""
    incident = callers.world.incident(callers.incident["id"])  # as a reviewer sees it now
    secrets = {"reference": incident["reference"], "code": incident["code"], "lat": "37.77", "lng": "-122.41",
               "description": SECRET_DESCRIPTION, "phone": SECRET_PHONE, "order": SECRET_ORDER,
               "phone digits": SECRET_PHONE.lstrip("+")}
    # ("routed" is also an English word of the 403's message: the incident's own status is checked whatever it is.)
    statuses = {incident["status"], "triggered", "acknowledged", "resolved", "cancelled"}
    leaks = []
    for caller in DENIED_READERS:
        for method, path, body in PROBES:
            url = callers.world.stack.api_url + path.format(id=incident["id"], cid=callers.check_in["id"])
            response = callers.sessions[caller].request(method, url, json=body, timeout=30)
            if response.status_code != 403:
                leaks.append((caller, method, path, response.status_code, response.text[:200]))
                continue
            payload = response.json()
            text = response.text
            found = [name for name, value in secrets.items() if value in text]
            found += [f"status {s}" for s in statuses if s in text]
            if set(payload) != {"error"} or "incident" in payload["error"] or "check_in" in payload["error"]:
                found.append(f"keys {sorted(payload)} / {sorted(payload.get('error', {}))}")
            if found:
                leaks.append((caller, method, path, found, text[:200]))
    assert leaks == [], leaks


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
            if endpoint.allowed == EVERYONE or endpoint.always is not None:
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
