"""The shopper's side: open, idempotency, validation, authorisation, locations, notes, cancel with PIN."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests

from tests.conftest import unique, wait_for

PANIC = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}


@pytest.fixture()
def routed(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [60]))
    return responder


def _executions(world, incident_id: str) -> list[dict]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=world.stack.aws_url)
    executions = sfn.list_executions(stateMachineArn=world.stack.env["ESCALATION_STATE_MACHINE_ARN"], maxResults=1000)
    return [e for e in executions["executions"] if e["name"].startswith(incident_id)]


@pytest.mark.parametrize(
    "kind, severity, status",
    [("panic", "sev1", "triggered"), ("medical", "sev1", "triggered"), ("threat", "sev1", "triggered"),
     ("accident", "sev1", "triggered"), ("harassment", "sev2", "triggered"), ("conduct", "sev2", "triggered"),
     ("fraud", "sev3", "triggered"), ("account_breach", "sev3", "triggered"), ("privacy", "sev3", "triggered"),
     ("delivery_issue", "sev4", "routed")],
)
def test_every_kind_gets_its_severity_and_status(world, routed, kind, severity, status):
    body = {"kind": kind, "location": PANIC["location"]}
    incident = world.as_("shopper").post("/v1/incidents", json=body).json()["incident"]
    assert (incident["severity"], incident["status"]) == (severity, status)
    assert incident["reference"].startswith("TS-") and len(incident["reference"]) == 9


def test_kind_routes_to_its_own_policy(world):
    general, security = world.responder(), world.responder()
    general_policy, security_policy = world.policy([[general]], [60]), world.policy([[security]], [60])
    assert world.admin.put("/v1/routing", json={"default": general_policy, "fraud": security_policy}).status_code == 200
    fraud = world.as_("shopper").post("/v1/incidents", json={"kind": "fraud", "description": "card"}).json()["incident"]
    panic = world.open_panic()
    assert fraud["escalation"]["policy"] == security_policy and panic["escalation"]["policy"] == general_policy
    wait_for(lambda: world.sms.to(security["phone"]), message="security page")
    wait_for(lambda: world.sms.to(general["phone"]), message="general page")
    assert len(world.sms.to(security["phone"])) == 1 and len(world.sms.to(general["phone"])) == 1


def test_same_key_same_body_returns_the_same_incident(world, routed):
    shopper = world.as_("shopper")
    key = unique("key")
    first = shopper.post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key})
    second = shopper.post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    # The same incident, as it is now (a replay shows its current status, not a stale copy).
    same = ("id", "reference", "kind", "created_at", "location")
    assert {k: first.json()["incident"][k] for k in same} == {k: second.json()["incident"][k] for k in same}
    assert len(_executions(world, first.json()["incident"]["id"])) == 1


def test_same_key_other_body_is_409(world, routed):
    shopper = world.as_("shopper")
    key = unique("key")
    assert shopper.post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key}).status_code == 201
    other = shopper.post("/v1/incidents", json={**PANIC, "kind": "medical"}, headers={"Idempotency-Key": key})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_same_key_from_another_shopper_is_another_incident(world, routed):
    key = unique("key")
    a = world.as_("shopper").post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key}).json()
    b = world.as_("shopper").post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key}).json()
    assert a["incident"]["id"] != b["incident"]["id"]


def test_twenty_concurrent_duplicates_make_one_incident_and_one_execution(world, routed):
    shopper = world.as_("shopper")
    key = unique("key")
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(
            lambda _: shopper.post("/v1/incidents", json=PANIC, headers={"Idempotency-Key": key}), range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    ids = {r.json()["incident"]["id"] for r in responses}
    assert len(ids) == 1
    (incident_id,) = ids
    assert len(_executions(world, incident_id)) == 1
    wait_for(lambda: world.sms.to(routed["phone"]), message="page")
    assert len(world.sms.to(routed["phone"])) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kind": "panic"}, "location"),
        ({"kind": "alien_abduction", "location": PANIC["location"]}, "kind"),
        ({"kind": "panic", "location": {"lat": 91, "lng": 0}}, "location.lat"),
        ({"kind": "panic", "location": {"lat": 0, "lng": -180.5}}, "location.lng"),
        ({"kind": "panic", "location": {"lat": "north", "lng": 0}}, "location.lat"),
        ({"kind": "panic", "location": {"lat": 0, "lng": 0, "accuracy_m": -1}}, "location.accuracy_m"),
        ({**PANIC, "description": "x" * 2001}, "description"),
        ({**PANIC, "cancel_pin": "12"}, "cancel_pin"),
        ({**PANIC, "cancel_pin": "abcd"}, "cancel_pin"),
        ({**PANIC, "callback_phone": "555-1234"}, "callback_phone"),
        ({**PANIC, "surprise": True}, "surprise"),
        ({"location": PANIC["location"]}, "kind"),
    ],
)
def test_validation_names_the_bad_field(world, body, field):
    response = world.as_("shopper").post("/v1/incidents", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]], error


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b"null", b"\"panic\""])
def test_malformed_bodies_are_4xx(world, raw):
    response = world.as_("shopper").post("/v1/incidents", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert "error" in response.json()


def test_oversize_body_is_400(world):
    response = world.as_("shopper").post("/v1/incidents", data=b"{" + b" " * 70_000 + b"}",
                                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic abc", "Bearer a.b.c"])
def test_missing_or_invalid_token_is_401(world, header):
    headers = {"Authorization": header} if header else {}
    response = requests.post(f"{world.stack.api_url}/v1/incidents", json=PANIC, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_expired_and_wrongly_signed_tokens_are_401(world):
    import os
    import time

    import jwt

    now = int(time.time())
    claims = {"sub": "s", "role": "shopper", "iss": "trust-safety-local", "aud": "trust-safety-api"}
    expired = jwt.encode({**claims, "iat": now - 100, "exp": now - 10}, os.environ["TOKEN_SECRET"], algorithm="HS256")
    forged = jwt.encode({**claims, "iat": now, "exp": now + 100}, "not-the-secret", algorithm="HS256")
    for token in (expired, forged):
        response = requests.get(f"{world.stack.api_url}/v1/incidents/x", headers={"Authorization": f"Bearer {token}"},
                                timeout=10)
        assert response.status_code == 401, token


@pytest.mark.parametrize("role", ["responder", "reviewer", "admin"])
def test_only_shoppers_open_incidents(world, role):
    assert world.as_(role).post("/v1/incidents", json=PANIC).status_code == 403


def test_shoppers_see_and_change_only_their_own(world, routed):
    owner, other = world.as_("shopper"), world.as_("shopper")
    incident = world.open_panic(owner)
    path = f"/v1/incidents/{incident['id']}"
    assert owner.get(path).status_code == 200
    assert other.get(path).status_code == 403
    assert other.post(f"{path}/locations", json={"lat": 1, "lng": 1}).status_code == 403
    assert other.post(f"{path}/cancel", json={}).status_code == 403
    assert other.post(f"{path}/notes", json={"text": "hi"}).status_code == 403
    assert world.reviewer.get(path).status_code == 200
    assert routed["api"].get(path).status_code == 200
    assert owner.get("/v1/incidents/inc_does_not_exist").status_code == 404
    assert owner.get("/v1/incidents/TS-ZZZZZZ").status_code == 404


def test_location_trail_updates_the_incident_and_the_next_page(world):
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [1, 60]))
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    response = shopper.post(f"/v1/incidents/{incident['id']}/locations", json={"lat": 37.8, "lng": -122.5})
    assert response.status_code == 201
    assert response.json()["incident"]["location"]["lat"] == 37.8
    page = wait_for(lambda: world.sms.to(second["phone"]), message="tier-2 page")
    assert "q=37.8,-122.5" in page[0]["body"]
    locations = [e["details"] for e in world.timeline(incident["id"]) if e["type"] == "location_updated"]
    assert locations == [{"lat": 37.8, "lng": -122.5, "accuracy_m": None}]


def test_notes_from_owner_and_responder(world, routed):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    assert shopper.post(f"/v1/incidents/{incident['id']}/notes", json={"text": "he left"}).status_code == 201
    assert routed["api"].post(f"/v1/incidents/{incident['id']}/notes", json={"text": "calling"}).status_code == 201
    assert world.reviewer.post(f"/v1/incidents/{incident['id']}/notes", json={"text": "x"}).status_code == 403
    notes = [(e["actor"], e["details"]["text"]) for e in world.timeline(incident["id"]) if e["type"] == "note_added"]
    assert notes == [(f"shopper:{shopper.sub}", "he left"), (f"responder:{routed['id']}", "calling")]


def test_cancel_with_wrong_pin_is_403_recorded_and_locks_after_five(world, routed):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper, cancel_pin="135790")
    path = f"/v1/incidents/{incident['id']}/cancel"
    for _ in range(5):
        assert shopper.post(path, json={"pin": "000000"}).status_code == 403
    assert shopper.post(path, json={"pin": "135790"}).status_code == 429  # locked, even with the right PIN
    assert world.incident(incident["id"])["status"] == "triggered"
    rejected = [e for e in world.timeline(incident["id"]) if e["type"] == "cancel_rejected"]
    assert len(rejected) == 5
    assert "135790" not in json.dumps(world.timeline(incident["id"]))


def test_cancel_with_right_pin_and_without_pin_when_none_was_set(world, routed):
    shopper = world.as_("shopper")
    with_pin = world.open_panic(shopper, cancel_pin="4321")
    assert shopper.post(f"/v1/incidents/{with_pin['id']}/cancel", json={"pin": "4321"}).status_code == 200
    without_pin = world.open_panic(shopper)
    response = shopper.post(f"/v1/incidents/{without_pin['id']}/cancel", json={"reason": "mistap"})
    assert response.status_code == 200 and response.json()["incident"]["status"] == "cancelled"
    again = shopper.post(f"/v1/incidents/{without_pin['id']}/cancel", json={})  # a retry: same answer
    assert again.status_code == 200 and again.json()["incident"]["status"] == "cancelled"


def test_health_needs_no_token(world):
    assert requests.get(f"{world.stack.api_url}/v1/health", timeout=5).json() == {"status": "ok"}


def test_evidence_upload_through_a_presigned_post(world, routed):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    path = f"/v1/incidents/{incident['id']}/attachments"
    response = shopper.post(path, json={"filename": "screenshot.png", "content_type": "image/png", "size_bytes": 2048})
    assert response.status_code == 201, response.text
    upload = response.json()["upload"]
    stored = requests.post(upload["url"], data=upload["fields"], files={"file": ("screenshot.png", b"\x89PNG" + b"0" * 100)},
                           timeout=10)
    assert stored.status_code in (200, 204), stored.text
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=world.stack.aws_url)
    key = response.json()["attachment"]["key"]
    obj = s3.get_object(Bucket=world.stack.env["EVIDENCE_BUCKET"], Key=key)
    assert obj["ContentType"] == "image/png" and obj["Body"].read().startswith(b"\x89PNG")
    listed = shopper.get(f"/v1/incidents/{incident['id']}").json()["incident"]["attachments"]
    assert [a["filename"] for a in listed] == ["screenshot.png"]
    assert "attachment_added" in [e["type"] for e in world.timeline(incident["id"])]


@pytest.mark.parametrize("body, field", [
    ({"filename": "a.exe", "content_type": "application/x-msdownload", "size_bytes": 10}, "content_type"),
    ({"filename": "big.png", "content_type": "image/png", "size_bytes": 50 * 1024 * 1024}, "size_bytes"),
    ({"filename": "../etc/passwd", "content_type": "text/plain", "size_bytes": 10}, "filename"),
])
def test_evidence_limits(world, routed, body, field):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    response = shopper.post(f"/v1/incidents/{incident['id']}/attachments", json=body)
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == field
    assert world.as_("shopper").post(f"/v1/incidents/{incident['id']}/attachments",
                                     json={"filename": "a.png", "content_type": "image/png", "size_bytes": 1}).status_code == 403


def test_a_press_with_a_key_and_a_cold_cache_is_one_read_one_transaction_and_one_start(world, routed):
    """Issue 18.3: the idempotency claim rides in the incident's own transaction and the directory is read in one
    go, so a panic press (cold routing plan, as presses seconds apart find it) costs one directory read, one
    TransactWriteItems and one StartExecution, and nothing else on the way to the 201."""
    from chalicelib.services import get_services
    from tests.reliability.faults import service_clients

    recorded: list[tuple[int, str]] = []

    def record(event_name, **_):
        recorded.append((threading.get_ident(), event_name.rsplit(".", 1)[-1]))

    clients = service_clients("dynamodb") + service_clients("sfn")
    for client in clients:
        client.meta.events.register("after-call.*.*", record, unique_id="hot-path")
    get_services().admin._plan = None  # the routing plan cached by a warm Lambda: cold, as bench P1 measures
    try:
        response = world.as_("shopper").post("/v1/incidents", json={"kind": "panic", "location": {"lat": 1, "lng": 2}},
                                             headers={"Idempotency-Key": unique("press")})
    finally:
        for client in clients:
            client.meta.events.unregister("after-call.*.*", unique_id="hot-path")
    assert response.status_code == 201, response.text
    # The press is served on one thread (the service starts none); the tier-1 page its escalation sends meanwhile
    # runs on another, through the same clients, and is not the press's cost.
    press_thread = next((thread for thread, call in recorded if call == "StartExecution"), None)
    calls = [call for thread, call in recorded if thread == press_thread]
    writes = [c for c in calls if c not in ("GetItem", "BatchGetItem", "Query")]
    reads = [c for c in calls if c in ("GetItem", "BatchGetItem", "Query")]
    assert writes == ["TransactWriteItems", "StartExecution"], recorded
    assert len(reads) == 1, recorded
