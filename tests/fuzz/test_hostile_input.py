"""Contract 4.4: "Unreadable or absurd input anywhere (deep nesting, out-of-range dates, wrong key types) is 400/422,
never 500." Driven through the HTTP API of the in-process stack, with a caller allowed to make each call and real
ids that caller may act on, so nothing stops at 401/403/404 before the input is read.

- every operation with a body: bodies nested 3,000 levels deep (exactly 400), texts with non-string keys (400),
  and generated hostile bodies: deep nesting, wrong value types, odd keys, over-long values;
- the dispatch provider's webhook, correctly signed, with the same bodies (400/422, never 500), and unsigned (401);
- `since`/`until` of GET /v1/incidents, /v1/review/metrics and /v1/review/export: year 1, year 9999, offsets up to
  +-23:59 that overflow, malformed times, any datetime at all; answered 200 or 422 naming the parameter at fault;
- query parameters of the wrong type (`limit`, `cursor`, `verified`);
- dates inside bodies (a schedule's handoff and overrides).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, unique
from tests.fuzz.conftest import LIFE_SAFETY_LOCATION
from tests.fuzz.strategies import BAD_KEY_TEXTS, EXTREME_DATES, hostile_dates, nest, raw_bodies

DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text())
MAX_BODY_BYTES = 64 * 1024
RANGE_ENDPOINTS = ("/v1/incidents", "/v1/review/metrics", "/v1/review/export")
HOSTILE = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))

# A body each operation accepts: the base hostile values are merged into, so the rest of the body is plausible.
VALID_BODIES = {
    "POST /v1/incidents": {"kind": "panic", "location": LIFE_SAFETY_LOCATION},
    "POST /v1/incidents/{incident_id}/locations": {"lat": 37.78, "lng": -122.42},
    "POST /v1/incidents/{incident_id}/cancel": {"reason": "fuzz"},
    "POST /v1/incidents/{incident_id}/notes": {"text": "fuzz"},
    "POST /v1/incidents/{incident_id}/attachments": {"filename": "a.png", "content_type": "image/png",
                                                     "size_bytes": 10},
    "POST /v1/check-ins": {"due_in_s": 86_400},
    "POST /v1/check-ins/{check_in_id}/locations": {"lat": 37.78, "lng": -122.42},
    "POST /v1/incidents/{incident_id}/resolve": {"outcome": "assisted"},
    "POST /v1/incidents/{incident_id}/dispatch": {"reason": "fuzz"},
    "POST /v1/incidents/{incident_id}/review": {"findings": "fuzz"},
    "PUT /v1/responders/{responder_id}": {"name": "Fuzz", "phone": "+15550001111"},
    "PUT /v1/schedules/{schedule_id}": {"time_zone": "UTC", "rotation": {"responders": ["r1"], "shift_hours": 24,
                                                                         "handoff": "2026-01-05T09:00:00"}},
    "PUT /v1/escalation-policies/{policy_id}": {"tiers": [{"targets": [{"responder": "r1"}], "timeout_s": 60}]},
    "PUT /v1/routing": {"default": "p1"},
    "POST /v1/dispatch/webhook": {"event_id": "evt-1", "alarm_id": "alm-unknown", "status": "accepted",
                                  "at": "2026-01-05T09:00:00+00:00"},
}


def _body_operations() -> list[tuple[str, str, list[str], str]]:
    found = []
    for path, methods in DOCUMENT["paths"].items():
        for method, operation in methods.items():
            if "requestBody" in operation:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                found.append((method.upper(), path, operation["x-roles"], ref.rsplit("/", 1)[-1]))
    return found


BODY_OPERATIONS = _body_operations()


def _fields(schema_name: str) -> tuple[str, ...]:
    return tuple(DOCUMENT["components"]["schemas"][schema_name].get("properties", {}))


class Target:
    """Where one operation is sent: an allowed caller, and ids it may act on (a fresh incident and check-in)."""

    def __init__(self, scene, method: str, path: str, roles: list[str]):
        self.scene, self.method, self.path = scene, method, path
        self.label = f"{method} {path}"
        shopper = scene.world.as_("shopper")
        incident = scene.fresh_incident(shopper) if "{incident_id}" in path else None
        check_in = None
        if "{check_in_id}" in path:
            response = shopper.post("/v1/check-ins", json={"due_in_s": 86_400})
            assert response.status_code == 201, response.text
            check_in = response.json()["check_in"]
        self.url = path.format(incident_id=incident and incident["id"], check_in_id=check_in and check_in["id"],
                               responder_id=unique("fz-r"), schedule_id=unique("fz-s"), policy_id=unique("fz-p"))
        role = roles[0] if roles else None
        self.api = shopper if role == "shopper" else scene.apis.get(role) if role else None

    def send(self, text: str | bytes):
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        headers = {"Content-Type": "application/json"}
        if self.path == "/v1/dispatch/webhook":
            headers["X-Dispatch-Signature"] = self.scene.sign(data)
            import requests

            return requests.post(self.scene.world.stack.api_url + self.url, data=data, headers=headers, timeout=30)
        return self.api.request(self.method, self.url, data=data, headers=headers)


def _depth_past_the_limit(text: str) -> bool:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped = not escaped and char == "\\"
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest > 1000


def expected_statuses(text: str, webhook: bool) -> set[int] | None:
    """What the answer must be, from the body alone; None where only "never 5xx, the error shape" is known."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES and not webhook:
        return {400}
    if _depth_past_the_limit(text):
        # Past Python's recursion limit: unreadable (400), or read and refused (422) while hypothesis has raised the
        # interpreter-wide limit (it does, to make its own stack overflows reliable).
        return {400, 422}
    try:
        json.loads(text.encode("utf-8", "surrogatepass"))  # bytes, as the service reads them (a BOM is allowed)
    except RecursionError:
        return None  # near the limit: depends on the parsing thread's own stack
    except ValueError:
        return {422} if webhook else {400}
    return None


def _check(response, text: str, webhook: bool) -> str | None:
    """A problem with the answer to `text`, or None."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    expected = expected_statuses(text, webhook)
    if expected is not None and status not in expected:
        return f"{status} where {sorted(expected)} was due: {response.text[:300]}"
    if status >= 400:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            return f"{status} without the contract's error shape: {response.text[:300]}"
        if not (isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
            return f"{status} without the contract's error shape: {response.text[:300]}"
    return None


def _short(text: str) -> str:
    return text if len(text) <= 120 else f"{text[:60]}...({len(text)} chars)...{text[-40:]}"


# --- bodies --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, roles, schema_name", BODY_OPERATIONS, ids=lambda v: str(v))
def test_a_body_nested_3000_deep_is_refused_on_every_operation(scene, method, path, roles, schema_name):
    """The issue's example, on every operation that reads a body: alone, and as one field of a valid body."""
    target = Target(scene, method, path, roles)
    webhook = path == "/v1/dispatch/webhook"
    field = next(iter(_fields(schema_name)))
    rest = {k: v for k, v in VALID_BODIES[target.label].items() if k != field}
    wrong = []
    for shape in ("list", "object", "mixed"):
        nested = nest(3000, shape)
        for text in (nested, json.dumps(rest)[:-1] + (", " if rest else "") + f'"{field}": {nested}}}'):
            response = target.send(text)
            if response.status_code not in (400, 422) or _check(response, text, webhook):
                wrong.append((shape, _short(text), response.status_code, response.text[:200]))
    assert wrong == [], wrong


@pytest.mark.parametrize("method, path, roles, schema_name", BODY_OPERATIONS, ids=lambda v: str(v))
def test_objects_whose_keys_are_not_strings_are_400(scene, method, path, roles, schema_name):
    """`{1: "x"}` and its kind are not JSON: 400 (422 from the webhook, whose body is its signed event)."""
    target = Target(scene, method, path, roles)
    webhook = path == "/v1/dispatch/webhook"
    wrong = [(text, problem) for text in BAD_KEY_TEXTS
             if (problem := _check(target.send(text), text, webhook)) is not None]
    assert wrong == [], wrong


@pytest.mark.parametrize("method, path, roles, schema_name", BODY_OPERATIONS, ids=lambda v: str(v))
def test_hostile_bodies_are_4xx_never_5xx(scene, method, path, roles, schema_name):
    """Generated: deep nesting (bare or in a field), wrong value types for the model's own fields, odd keys, values
    over the size limit, merged into a valid body or alone. 400 for what is not JSON or too big, never 5xx."""
    target = Target(scene, method, path, roles)
    webhook = path == "/v1/dispatch/webhook"
    seen: Counter = Counter()

    @HOSTILE
    @given(text=raw_bodies(_fields(schema_name), VALID_BODIES[target.label]))
    def run(text):
        response = target.send(text)
        seen[response.status_code] += 1
        problem = _check(response, text, webhook)
        assert problem is None, (target.label, _short(text), problem)

    run()
    print(f"\n{target.label}: {dict(sorted(seen.items()))}")
    assert seen and max(seen) < 500


def test_the_webhook_refuses_unsigned_and_badly_signed_bodies_with_401(scene, world):
    import requests

    url = world.stack.api_url + "/v1/dispatch/webhook"
    body = json.dumps(VALID_BODIES["POST /v1/dispatch/webhook"]).encode()
    good = scene.sign(body)
    timestamp, signature = good.split(",")
    signatures = {
        "missing": None, "empty": "", "garbage": "not a signature", "no v1": timestamp, "no t": signature,
        "wrong secret": f"{timestamp},v1={'0' * 64}", "old": f"t=1000000000,{signature}",
        "far future": f"t=99999999999999999999999999,{signature}", "non-ASCII digits": f"t=١٧٠٠٠٠٠٠٠٠,{signature}",
        "for another body": scene.sign(body + b" "), "deep body, forged": f"{timestamp},v1={'f' * 64}",
    }
    wrong = {}
    for name, header in signatures.items():
        data = nest(3000, "list").encode() if name == "deep body, forged" else body
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["X-Dispatch-Signature"] = header.encode()  # bytes: requests would refuse non-Latin-1 text
        response = requests.post(url, data=data, headers=headers, timeout=30)
        if response.status_code != 401 or response.json()["error"]["code"] != "unauthenticated":
            wrong[name] = (response.status_code, response.text[:200])
    assert wrong == {}


# --- dates ---------------------------------------------------------------------------------------------------------
def _range_callers(scene) -> dict:
    """Who reads each range: a shopper's list reads her own index, everyone else's the sharded monthly one."""
    return {"/v1/incidents": (scene.shopper, scene.world.reviewer, scene.responder["api"]),
            "/v1/review/metrics": (scene.world.reviewer, scene.world.admin),
            "/v1/review/export": (scene.world.reviewer,)}


def _range_problem(response, params: dict) -> str | None:
    status = response.status_code
    if status not in (200, 422):
        return f"{status}: {response.text[:200]}"
    if status == 422:
        fields = [d["field"] for d in response.json()["error"].get("details", [])]
        if not fields or not set(fields) <= set(params):
            return f"422 naming {fields}, not a parameter that was sent ({sorted(params)})"
    return None


@pytest.mark.parametrize("path", RANGE_ENDPOINTS)
@pytest.mark.parametrize("name", ("since", "until"))
def test_extreme_dates_in_a_time_range_are_422_never_500(scene, path, name):
    """Every listed extreme or malformed time as `since` or `until` (alone: the other takes its default), for every
    caller of the endpoint. Year 1 and year 9999 with offsets overflow datetime if not guarded; times outside what
    the service stores (1970-9000) are 422, and the error names the parameter."""
    wrong = []
    for api in _range_callers(scene)[path][:2]:  # the responder's list is the reviewer's, filtered
        for value in EXTREME_DATES:
            params = {name: value}
            problem = _range_problem(api.get(path, params=params), params)
            if problem:
                wrong.append((api.sub, _short(value), problem))
    assert wrong == [], wrong


@pytest.mark.parametrize("path", RANGE_ENDPOINTS)
def test_a_valid_time_with_an_extreme_one_names_the_extreme_one(scene, path):
    recent = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    api = _range_callers(scene)[path][-1]
    wrong = []
    for bad in ("0001-01-01T00:00:00", "9999-12-31T23:59:59-23:59", "garbage!"):
        for good_name, bad_name in (("since", "until"), ("until", "since")):
            response = api.get(path, params={good_name: recent, bad_name: bad})
            details = response.json()["error"]["details"] if response.status_code == 422 else []
            if response.status_code != 422 or [d["field"] for d in details] != [bad_name]:
                wrong.append((good_name, bad_name, bad, response.status_code, response.text[:200]))
    assert wrong == [], wrong


RECENT = st.integers(min_value=-90 * 24, max_value=24).map(
    lambda hours: (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat())


@settings(max_examples=50, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(since=st.none() | RECENT | hostile_dates(), until=st.none() | RECENT | hostile_dates(),
       path=st.sampled_from(RANGE_ENDPOINTS), data=st.data())
def test_any_time_range_is_200_or_422(scene, since, until, path, data):
    api = data.draw(st.sampled_from(_range_callers(scene)[path]))
    params = {k: v for k, v in (("since", since), ("until", until)) if v is not None}
    problem = _range_problem(api.get(path, params=params), params)
    assert problem is None, (path, params, problem)


@settings(max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(when=hostile_dates(), where=st.sampled_from(("handoff", "start", "end")))
def test_extreme_dates_in_a_schedule_are_422_never_500(scene, world, when, where):
    responder = scene.responder["id"]
    body = {"time_zone": "UTC",
            "rotation": {"responders": [responder], "shift_hours": 24, "handoff": "2026-01-05T09:00:00"},
            "overrides": [{"responder": responder, "start": "2026-01-05T09:00:00Z", "end": "2026-01-06T09:00:00Z"}]}
    if where == "handoff":
        body["rotation"]["handoff"] = when
    else:
        body["overrides"][0][where] = when
    schedule = unique("fz-s")
    response = world.admin.put(f"/v1/schedules/{schedule}", json=body)
    assert response.status_code in (201, 422), (where, when, response.status_code, response.text[:300])
    if response.status_code == 201:  # accepted: reading it back (which computes who is on call now) works too
        read = world.admin.get(f"/v1/schedules/{schedule}")
        assert read.status_code == 200, (where, when, read.text[:300])


# --- query parameters of the wrong type ----------------------------------------------------------------------------
def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode()


BAD_LIMITS = ("0", "201", "-1", "+5", " 5", "5 ", "5.0", "1e2", "0x10", "NaN", "²", "١٠", "５", "9" * 50, "9" * 5_000)
BAD_CURSORS = ("x", "!!!", "====", _cursor("no separator"), _cursor("|"), _cursor("not a time|inc_1"),
               _cursor("0001-01-01T00:00:00|inc_1"), _cursor("9999-12-31T23:59:59-23:59|inc_1"),
               base64.urlsafe_b64encode(b"\xff\xfe|x").decode())
ODD_CURSORS = (_cursor("2026-01-01T00:00:00.000Z|" + "a" * 3_000), _cursor("2026-01-01T00:00:00.000Z|\x00"),
               _cursor("2026-01-01T00:00:00.000Z|"))


def test_query_parameters_of_the_wrong_type_are_422(scene, world):
    reviewer = world.reviewer
    wrong = []
    for limit in BAD_LIMITS:
        response = reviewer.get("/v1/incidents", params={"limit": limit})
        if response.status_code != 422 or response.json()["error"]["details"][0]["field"] != "limit":
            wrong.append(("limit", _short(limit), response.status_code, response.text[:200]))
    for cursor in BAD_CURSORS:
        response = reviewer.get("/v1/incidents", params={"cursor": cursor})
        if response.status_code != 422 or response.json()["error"]["details"][0]["field"] != "cursor":
            wrong.append(("cursor", cursor[:60], response.status_code, response.text[:200]))
    for cursor in ODD_CURSORS:  # well-formed, naming no incident: an empty page or 422, never 5xx
        response = reviewer.get("/v1/incidents", params={"cursor": cursor})
        if response.status_code not in (200, 422):
            wrong.append(("cursor", cursor[:60], response.status_code, response.text[:200]))
    for verified in ("yes", "1", "TRUE", "", "true "):
        response = world.admin.get("/v1/responders", params={"verified": verified})
        if response.status_code != 422:
            wrong.append(("verified", verified, response.status_code, response.text[:200]))
    for name in ("status", "kind"):
        for value in ("", "x" * 5_000, "\x00", "😀", "triggered' OR '1'='1"):
            response = reviewer.get("/v1/incidents", params={name: value})
            if response.status_code not in (200, 422):
                wrong.append((name, _short(value), response.status_code, response.text[:200]))
    assert wrong == [], wrong
