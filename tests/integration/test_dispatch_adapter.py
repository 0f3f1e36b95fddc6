"""HttpAlarmProvider against the local fake provider over real HTTP, and the fake's signed webhooks to a recorder.

No local AWS here: a ThreadingHTTPServer mounts FakeDispatchProvider exactly as the dev server does, and a second
one records the webhooks and checks their signatures with verify_webhook, as the service's route will.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from chalicelib.adapters.dispatch import (
    SIGNATURE_HEADER,
    AlarmRequest,
    DispatchRejected,
    DispatchUnavailable,
    HttpAlarmProvider,
    InvalidWebhook,
    verify_webhook,
)
from local.fake_dispatch import FakeDispatchProvider

API_TOKEN = "dispatch-token-test"
WEBHOOK_SECRET = "whsec-test"
PHONE = "+15557654321"


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    # A short poll interval: shutdown() waits for the loop to notice, 0.5 s per server by default.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def dev_server_handler(provider: FakeDispatchProvider) -> type[BaseHTTPRequestHandler]:
    """The mount the dev server uses (see the final report of the dispatch branch): owns() before reading the body."""

    class DevHandler(JsonHandler):
        def _dispatch_provider(self, method: str) -> bool:
            if not FakeDispatchProvider.owns(self.path):
                return False
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = provider.handle(method, self.path, dict(self.headers.items()), body)
            self._send(status, payload)
            return True

        def do_GET(self) -> None:
            if not self._dispatch_provider("GET"):
                self._send(404, {"error": {"code": "not_found", "message": "no such dev endpoint"}})

        def do_POST(self) -> None:
            if not self._dispatch_provider("POST"):
                self._send(404, {"error": {"code": "not_found", "message": "no such dev endpoint"}})

    return DevHandler


@dataclass
class ReceivedWebhook:
    path: str
    body: bytes
    signature: str | None
    event: object  # the WebhookEvent, or the InvalidWebhook raised


class WebhookRecorder:
    """Stands in for the service's POST /v1/dispatch/webhook: verifies, records, answers 200 or 401."""

    def __init__(self, secret: str):
        self.secret = secret
        self.received: list[ReceivedWebhook] = []
        recorder = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signature = self.headers.get(SIGNATURE_HEADER)
                try:
                    event: object = verify_webhook(body, signature, recorder.secret, now=int(time.time()))
                except InvalidWebhook as exc:
                    event = exc
                recorder.received.append(ReceivedWebhook(self.path, body, signature, event))
                self._send(401 if isinstance(event, InvalidWebhook) else 200, {})

        self.server = serve(Handler)
        self.url = url_of(self.server) + "/v1/dispatch/webhook"


@pytest.fixture
def recorder() -> Iterator[WebhookRecorder]:
    recorder = WebhookRecorder(WEBHOOK_SECRET)
    yield recorder
    stop(recorder.server)


@pytest.fixture
def fake(recorder: WebhookRecorder) -> FakeDispatchProvider:
    return FakeDispatchProvider(lambda: recorder.url, WEBHOOK_SECRET, API_TOKEN)


@pytest.fixture
def dev_url(fake: FakeDispatchProvider) -> Iterator[str]:
    server = serve(dev_server_handler(fake))
    yield url_of(server)
    stop(server)


@pytest.fixture
def provider(dev_url: str) -> HttpAlarmProvider:
    return HttpAlarmProvider(f"{dev_url}/dev/provider", API_TOKEN, timeout_s=2.0)


def alarm_request(key: str = "dsp-1", **overrides) -> AlarmRequest:
    fields = dict(reference="TS-K3F9QX", kind="panic", lat=37.7749, lng=-122.4194, accuracy_m=12.0, phone=PHONE,
                  duress=False, idempotency_key=key)
    fields.update(overrides)
    return AlarmRequest(**fields)


def dispatches(dev_url: str) -> list[dict]:
    response = requests.get(f"{dev_url}/dev/dispatches", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["dispatches"]


def play(dev_url: str, alarm_id: str, status: str) -> requests.Response:
    return requests.post(f"{dev_url}/dev/dispatches/{alarm_id}/status", json={"status": status}, timeout=5)


# --- the adapter against the fake ----------------------------------------------------------------------------


def test_create_is_idempotent_on_the_key(provider, dev_url):
    first = provider.create_alarm(alarm_request("dsp-1"))
    again = provider.create_alarm(alarm_request("dsp-1", lat=37.78))  # a retry that re-read a newer location

    assert again == first
    [alarm] = dispatches(dev_url)
    assert alarm["id"] == first
    assert alarm["reference"] == "TS-K3F9QX"
    assert alarm["kind"] == "panic"
    assert alarm["status"] == "requested"
    assert alarm["phone"] == PHONE
    assert alarm["duress"] is False
    assert alarm["external_id"] == "dsp-1"
    assert alarm["locations"] == [{"lat": 37.7749, "lng": -122.4194, "accuracy": 12.0}]
    assert alarm["created_at"].endswith("Z")


def test_another_key_is_another_alarm(provider, dev_url):
    first = provider.create_alarm(alarm_request("dsp-1"))
    second = provider.create_alarm(alarm_request("dsp-2", reference="TS-ZZZZZZ", phone=None, duress=True))

    assert second != first
    listed = {d["id"]: d for d in dispatches(dev_url)}
    assert set(listed) == {first, second}
    assert "phone" not in listed[second]
    assert listed[second]["duress"] is True
    assert [d["reference"] for d in requests.get(f"{dev_url}/dev/dispatches?reference=TS-ZZZZZZ",
                                                 timeout=5).json()["dispatches"]] == ["TS-ZZZZZZ"]


def test_concurrent_retries_of_one_create_make_one_alarm(provider, dev_url):
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(provider.create_alarm(alarm_request("dsp-race"))))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert len(ids) == 8 and len(set(ids)) == 1
    assert [d["id"] for d in dispatches(dev_url)] == [ids[0]]


def test_locations_are_added_to_the_trail(provider, dev_url):
    alarm_id = provider.create_alarm(alarm_request())
    provider.add_location(alarm_id, 37.7760, -122.4180, 8.0)
    provider.add_location(alarm_id, 37.7771, -122.4170, None)

    [alarm] = dispatches(dev_url)
    assert alarm["locations"] == [
        {"lat": 37.7749, "lng": -122.4194, "accuracy": 12.0},
        {"lat": 37.7760, "lng": -122.4180, "accuracy": 8.0},
        {"lat": 37.7771, "lng": -122.4170, "accuracy": None},
    ]


def test_cancel_marks_the_alarm_cancelled_and_stops_the_trail(provider, dev_url):
    alarm_id = provider.create_alarm(alarm_request())
    provider.cancel(alarm_id, "shopper cancelled with PIN")
    provider.cancel(alarm_id, "retried")  # cancelling twice is harmless, so the service can retry it

    [alarm] = dispatches(dev_url)
    assert alarm["status"] == "cancelled"
    assert alarm["cancel_reason"] == "shopper cancelled with PIN"
    with pytest.raises(DispatchRejected) as rejected:
        provider.add_location(alarm_id, 37.0, -122.0, None)
    assert rejected.value.status == 409


def test_a_bad_token_is_rejected(dev_url, fake):
    intruder = HttpAlarmProvider(f"{dev_url}/dev/provider", "not-the-token", timeout_s=2.0)
    with pytest.raises(DispatchRejected) as rejected:
        intruder.create_alarm(alarm_request())
    assert rejected.value.status == 401
    assert rejected.value.code == "unauthorized"
    assert fake.listing() == []


def test_an_unknown_alarm_is_rejected(provider):
    with pytest.raises(DispatchRejected) as rejected:
        provider.add_location("alm_missing", 37.0, -122.0, None)
    assert rejected.value.status == 404


def test_an_invalid_request_is_rejected_without_echoing_personal_data(provider):
    with pytest.raises(DispatchRejected) as rejected:
        provider.create_alarm(alarm_request(lat=123.0))
    assert rejected.value.status == 422
    assert PHONE not in str(rejected.value) and "123" not in str(rejected.value)


def test_injected_outage_is_unavailable_then_recovers(provider, fake, dev_url):
    fake.fail_next(2)
    for _ in range(2):
        with pytest.raises(DispatchUnavailable) as unavailable:
            provider.create_alarm(alarm_request())
        assert unavailable.value.status == 503
    assert fake.listing() == []

    alarm_id = provider.create_alarm(alarm_request())
    assert [d["id"] for d in dispatches(dev_url)] == [alarm_id]


def test_rate_limiting_is_unavailable_not_rejected(provider, fake):
    fake.fail_next(1, status=429)
    with pytest.raises(DispatchUnavailable) as unavailable:
        provider.cancel("alm_any", "x")
    assert unavailable.value.status == 429


def test_a_provider_that_never_answers_times_out_quickly():
    # Listening but never accepting: the kernel completes the handshake, then nothing ever comes back.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host, port = silent.getsockname()
        provider = HttpAlarmProvider(f"http://{host}:{port}/dev/provider", API_TOKEN, timeout_s=0.2)
        started = time.monotonic()
        with pytest.raises(DispatchUnavailable, match="unreachable"):
            provider.create_alarm(alarm_request())
        assert time.monotonic() - started < 1.5


def test_a_refused_connection_is_unavailable():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        host, port = closed.getsockname()
    provider = HttpAlarmProvider(f"http://{host}:{port}", API_TOKEN, timeout_s=0.5)
    with pytest.raises(DispatchUnavailable):
        provider.add_location("alm_1", 1.0, 2.0, None)


@pytest.mark.parametrize(("status", "body", "headers", "expected"), [
    (500, b"oops", {}, DispatchUnavailable),
    (502, b"", {}, DispatchUnavailable),
    (429, b'{"error": {"code": "rate_limited"}}', {"Retry-After": "7"}, DispatchUnavailable),
    (201, b"<html>not json</html>", {}, DispatchUnavailable),  # a retry with the same key finds the alarm
    (201, b'{"status": "requested"}', {}, DispatchUnavailable),
    (302, b"", {"Location": "http://elsewhere.invalid/"}, DispatchRejected),
    (400, b'{"code": "bad_phone", "message": "+15557654321 is not valid"}', {}, DispatchRejected),
])
def test_provider_answers_map_to_the_two_errors(status, body, headers, expected):
    class Scripted(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    server = serve(Scripted)
    try:
        with pytest.raises(expected) as raised:
            HttpAlarmProvider(url_of(server), API_TOKEN, timeout_s=2.0).create_alarm(alarm_request())
    finally:
        stop(server)
    assert PHONE not in str(raised.value)
    if status == 429:
        assert raised.value.retry_after_s == 7.0
    if status == 400:
        assert raised.value.code == "bad_phone"


def test_the_wire_format(dev_url):
    """Pins what the real provider receives: headers and body of a create."""
    seen: list[tuple[str, dict, dict]] = []

    class Recording(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, dict(self.headers.items()), body))
            payload = b'{"id": "alm_x", "status": "requested"}'
            self.send_response(201)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = serve(Recording)
    try:
        provider = HttpAlarmProvider(url_of(server) + "/api/", API_TOKEN, timeout_s=2.0)
        assert provider.create_alarm(alarm_request("dsp-9", duress=True)) == "alm_x"
        provider.add_location("alm/x y", 1.5, 2.5, 3.0)
        provider.cancel("alm_x", "pin")
    finally:
        stop(server)

    (create_path, create_headers, create_body), (location_path, _, location_body), (cancel_path, _, cancel_body) = seen
    assert create_path == "/api/v1/alarms"
    assert create_headers["Authorization"] == f"Bearer {API_TOKEN}"
    assert create_headers["Idempotency-Key"] == "dsp-9"
    assert create_headers["Content-Type"] == "application/json"
    assert create_body == {"external_id": "dsp-9", "reference": "TS-K3F9QX", "kind": "panic",
                           "location": {"lat": 37.7749, "lng": -122.4194, "accuracy": 12.0},
                           "phone": PHONE, "duress": True}
    assert location_path == "/api/v1/alarms/alm%2Fx%20y/locations"
    assert location_body == {"lat": 1.5, "lng": 2.5, "accuracy": 3.0}
    assert cancel_path == "/api/v1/alarms/alm_x/status"
    assert cancel_body == {"status": "canceled", "reason": "pin"}


def test_logs_carry_no_phone_or_coordinates(provider):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    adapter_logger = logging.getLogger("chalicelib.adapters.dispatch")
    adapter_logger.addHandler(handler)
    previous_level = adapter_logger.level
    adapter_logger.setLevel(logging.INFO)
    try:
        alarm_id = provider.create_alarm(alarm_request())
        provider.add_location(alarm_id, 37.7760, -122.4180, 8.0)
        with pytest.raises(DispatchRejected):
            provider.add_location("alm_missing", 37.7760, -122.4180, 8.0)
    finally:
        adapter_logger.removeHandler(handler)
        adapter_logger.setLevel(previous_level)

    assert len(records) == 3
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in records)
    for secret in (PHONE, "7654321", "37.77", "122.41", API_TOKEN):
        assert secret not in logged
    assert "+1********21" in logged


# --- the dev endpoints and the signed webhooks ---------------------------------------------------------------


def test_played_statuses_reach_the_service_as_signed_webhooks(provider, dev_url, recorder):
    alarm_id = provider.create_alarm(alarm_request())

    for status in ("accepted", "psap_contacted", "psap_contacted", "closed"):
        response = play(dev_url, alarm_id, status)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["webhook_status"] == 200
        assert answer["dispatch"]["id"] == alarm_id
        assert answer["dispatch"]["status"] == status

    assert [r.path for r in recorder.received] == ["/v1/dispatch/webhook"] * 4
    events = [r.event for r in recorder.received]
    assert [e.status for e in events] == ["accepted", "psap_contacted", "psap_contacted", "closed"]
    assert {e.alarm_id for e in events} == {alarm_id}
    assert len({e.event_id for e in events}) == 4  # each a new event: the service deduplicates on event_id
    assert all(r.signature.startswith("t=") and ",v1=" in r.signature for r in recorder.received)
    assert dispatches(dev_url)[0]["status"] == "closed"


def test_a_webhook_signed_with_another_secret_is_refused_by_the_service(provider, dev_url, recorder):
    alarm_id = provider.create_alarm(alarm_request())
    recorder.secret = "the-service-has-rotated"

    answer = play(dev_url, alarm_id, "accepted").json()

    assert answer["webhook_status"] == 401
    [received] = recorder.received
    assert isinstance(received.event, InvalidWebhook)


def test_an_unreachable_service_is_reported_not_hidden(dev_url, fake, recorder, provider):
    alarm_id = provider.create_alarm(alarm_request())
    stop(recorder.server)

    answer = play(dev_url, alarm_id, "accepted").json()

    assert answer["webhook_status"] is None
    assert answer["webhook_error"]
    assert fake.listing()[0]["status"] == "accepted"


def test_playing_an_unknown_dispatch_or_status(provider, dev_url, recorder):
    alarm_id = provider.create_alarm(alarm_request())

    assert play(dev_url, "alm_missing", "accepted").status_code == 404
    for status in ("cancelled", "canceled", "requested", "failed", "", None):
        response = play(dev_url, alarm_id, status)
        assert response.status_code == 422, status
        assert response.json()["error"]["details"][0]["field"] == "status"
    assert requests.post(f"{dev_url}/dev/dispatches/{alarm_id}/status", data=b"{", timeout=5).status_code == 400
    assert recorder.received == []


def test_a_cancelled_dispatch_cannot_be_played_forward(provider, dev_url, recorder):
    alarm_id = provider.create_alarm(alarm_request())
    provider.cancel(alarm_id, "pin")

    response = play(dev_url, alarm_id, "accepted")

    assert response.status_code == 409
    assert recorder.received == []


def test_a_create_without_an_idempotency_key_is_a_programming_error(provider, fake):
    with pytest.raises(ValueError, match="idempotency_key"):
        provider.create_alarm(alarm_request(""))
    assert fake.listing() == []
