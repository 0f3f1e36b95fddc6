"""The alarm-dispatch provider, played locally: no real monitoring centre exists here, and tests need one.

`FakeDispatchProvider` is framework-free (method, path, headers, body in; status and JSON out) so the dev server
mounts it in a few lines. It answers two families of paths:

- the provider API that `chalicelib.adapters.dispatch.HttpAlarmProvider` speaks, under `/dev/provider/v1/alarms`
  (base URL `http://127.0.0.1:<dev port>/dev/provider`): bearer token required, creates idempotent on
  `Idempotency-Key` (or `external_id`), a location trail and a status per alarm;
- the dev endpoints of contract 4.2: `GET /dev/dispatches[?reference=TS-...]` lists every alarm, oldest first, and
  `POST /dev/dispatches/{id}/status` `{"status": "accepted"|"psap_contacted"|"closed"}` plays what the monitoring
  centre did, then sends the provider's signed webhook to the service synchronously and reports its HTTP status.

Statuses are kept in the service's spelling (`cancelled`); only the provider API's own answers say `canceled`.
Cancelling through the API sends no webhook (the service recorded it when `cancel` returned), and a webhook the
service refused is not retried: posting the same status again sends a fresh event.
"""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from chalicelib.adapters.dispatch import SIGNATURE_HEADER, sign_webhook

PROVIDER_PREFIX = "/dev/provider"
ALARMS_ROUTE = PROVIDER_PREFIX + "/v1/alarms"
DISPATCHES_ROUTE = "/dev/dispatches"
# What the dev endpoint lets a person play; cancelling is the shopper's (through the service), not the console's.
PLAYABLE_STATUSES = ("accepted", "psap_contacted", "closed")
TERMINAL_STATUSES = ("closed", "cancelled")

Answer = tuple[int, dict]


@dataclass
class _Alarm:
    id: str
    reference: str
    kind: str
    phone: str | None
    duress: bool
    external_id: str | None
    created_at: str
    status: str = "requested"
    locations: list[dict] = field(default_factory=list)
    updated_at: str = ""
    cancel_reason: str | None = None

    def view(self) -> dict:
        view: dict[str, Any] = {
            "id": self.id,
            "reference": self.reference,
            "kind": self.kind,
            "status": self.status,
            "duress": self.duress,
            "locations": [dict(location) for location in self.locations],
            "created_at": self.created_at,
            "updated_at": self.updated_at or self.created_at,
        }
        if self.phone:
            view["phone"] = self.phone
        if self.external_id:
            view["external_id"] = self.external_id
        if self.cancel_reason is not None:
            view["cancel_reason"] = self.cancel_reason
        return view


class _Invalid(Exception):
    def __init__(self, field_name: str, problem: str):
        super().__init__(f"{field_name} {problem}")
        self.field_name = field_name
        self.problem = problem


class FakeDispatchProvider:
    """Thread-safe: the dev server answers each request on its own thread."""

    def __init__(self, webhook_url_getter: Callable[[], str], webhook_secret: str, api_token: str, *,
                 webhook_timeout_s: float = 10.0, clock: Callable[[], float] = time.time):
        if not api_token:
            raise ValueError("the fake provider needs an api_token, as the real one does")
        self._webhook_url_getter = webhook_url_getter
        self._webhook_secret = webhook_secret
        self._api_token = api_token
        self._webhook_timeout_s = webhook_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._alarms: dict[str, _Alarm] = {}
        self._alarm_by_key: dict[str, str] = {}
        self._failures_left = 0
        self._failure_status = 503

    # --- public -----------------------------------------------------------------------------------------------

    @staticmethod
    def owns(path: str) -> bool:
        """Whether `handle` answers `path`; lets a server check before it reads the request body."""
        route = urlsplit(path).path
        return (route == PROVIDER_PREFIX or route.startswith(PROVIDER_PREFIX + "/")
                or route == DISPATCHES_ROUTE or route.startswith(DISPATCHES_ROUTE + "/"))

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        """Answers the provider API under /dev/provider/v1/alarms... and the dev endpoints
        GET /dev/dispatches and POST /dev/dispatches/{id}/status; None for any other path."""
        if not self.owns(path):
            return None
        parts = urlsplit(path)
        method = method.upper()
        lowered = {name.lower(): value for name, value in headers.items()}
        if parts.path.startswith(PROVIDER_PREFIX):
            return self._provider_api(method, parts.path, lowered, body)
        return self._dev_api(method, parts.path, parts.query, body)

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` provider API requests answer `status` without doing anything (outage injection)."""
        with self._lock:
            self._failures_left = max(count, 0)
            self._failure_status = status

    def listing(self) -> list[dict]:
        with self._lock:
            return [alarm.view() for alarm in self._alarms.values()]

    # --- provider API -----------------------------------------------------------------------------------------

    def _provider_api(self, method: str, route: str, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return _error(self._failure_status, "injected_failure", "the provider is down (injected)")
        if not self._authorised(headers.get("authorization")):
            return _error(401, "unauthorized", "missing or invalid bearer token")
        segments = route.removeprefix(PROVIDER_PREFIX).strip("/").split("/")
        if segments[:2] != ["v1", "alarms"] or len(segments) > 4:
            return _error(404, "not_found", "no such provider endpoint")
        if len(segments) == 3 and method == "GET":
            return self._get_alarm(unquote(segments[2]))
        if method != "POST" or len(segments) == 3:
            return _error(405, "method_not_allowed", "method not allowed")
        try:
            data = _json_object(body)
        except _Invalid as exc:
            return _error(400, "bad_request", str(exc))
        if len(segments) == 2:
            return self._create(headers.get("idempotency-key"), data)
        alarm_id, action = unquote(segments[2]), segments[3]
        if action == "locations":
            return self._add_location(alarm_id, data)
        if action == "status":
            return self._cancel(alarm_id, data)
        return _error(404, "not_found", "no such provider endpoint")

    def _authorised(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        # compare_digest: a token guessed byte by byte must not be told apart by timing, even locally.
        return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), self._api_token.encode())

    def _create(self, idempotency_key: str | None, data: dict) -> Answer:
        try:
            reference = _text(data, "reference")
            kind = _text(data, "kind")
            location = _location(data.get("location"), "location.")
            phone = _optional_text(data, "phone")
            external_id = _optional_text(data, "external_id")
            duress = data.get("duress", False)
            if not isinstance(duress, bool):
                raise _Invalid("duress", "must be a boolean")
        except _Invalid as exc:
            return _validation_error(exc)
        key = idempotency_key or external_id
        now = self._now()
        with self._lock:
            # Checked and set under one lock: two concurrent retries of one create must not make two alarms.
            existing = self._alarm_by_key.get(key) if key else None
            if existing:
                alarm = self._alarms[existing]
                return 201, {"id": alarm.id, "status": _provider_status(alarm.status)}
            alarm = _Alarm(id="alm_" + secrets.token_hex(12), reference=reference, kind=kind, phone=phone,
                           duress=duress, external_id=external_id, created_at=now, locations=[location])
            self._alarms[alarm.id] = alarm
            if key:
                self._alarm_by_key[key] = alarm.id
            return 201, {"id": alarm.id, "status": alarm.status}

    def _get_alarm(self, alarm_id: str) -> Answer:
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            if alarm is None:
                return _error(404, "not_found", "no such alarm")
            view = alarm.view()
        view["status"] = _provider_status(view["status"])
        return 200, view

    def _add_location(self, alarm_id: str, data: dict) -> Answer:
        try:
            location = _location(data, "")
        except _Invalid as exc:
            return _validation_error(exc)
        now = self._now()
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            if alarm is None:
                return _error(404, "not_found", "no such alarm")
            if alarm.status in TERMINAL_STATUSES:
                return _error(409, "alarm_inactive", f"the alarm is {_provider_status(alarm.status)}")
            alarm.locations.append(location)
            alarm.updated_at = now
            return 201, {"id": alarm.id, "locations": len(alarm.locations)}

    def _cancel(self, alarm_id: str, data: dict) -> Answer:
        if data.get("status") not in ("canceled", "cancelled"):
            return _validation_error(_Invalid("status", "must be canceled"))
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            return _validation_error(_Invalid("reason", "must be a string"))
        now = self._now()
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            if alarm is None:
                return _error(404, "not_found", "no such alarm")
            if alarm.status == "closed":
                return _error(409, "alarm_inactive", "the alarm is closed")
            if alarm.status != "cancelled":  # cancelling twice is a no-op, so the service may retry it
                alarm.status, alarm.cancel_reason, alarm.updated_at = "cancelled", reason, now
            return 200, {"id": alarm.id, "status": "canceled"}

    # --- dev endpoints ----------------------------------------------------------------------------------------

    def _dev_api(self, method: str, route: str, query: str, body: bytes) -> Answer:
        if route == DISPATCHES_ROUTE:
            if method != "GET":
                return _error(405, "method_not_allowed", "method not allowed")
            reference = parse_qs(query).get("reference", [None])[0]
            dispatches = [d for d in self.listing() if reference is None or d["reference"] == reference]
            return 200, {"dispatches": dispatches}
        segments = route.removeprefix(DISPATCHES_ROUTE).strip("/").split("/")
        if len(segments) != 2 or segments[1] != "status":
            return _error(404, "not_found", "no such dev endpoint")
        if method != "POST":
            return _error(405, "method_not_allowed", "method not allowed")
        try:
            data = _json_object(body)
        except _Invalid as exc:
            return _error(400, "bad_request", str(exc))
        return self._play_status(unquote(segments[0]), data.get("status"))

    def _play_status(self, alarm_id: str, status: Any) -> Answer:
        if status not in PLAYABLE_STATUSES:
            return _validation_error(_Invalid("status", "must be one of " + ", ".join(PLAYABLE_STATUSES)))
        now = self._now()
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            if alarm is None:
                return _error(404, "not_found", "no such dispatch")
            if alarm.status in TERMINAL_STATUSES and alarm.status != status:
                return _error(409, "alarm_inactive", f"the dispatch is {alarm.status}")
            alarm.status, alarm.updated_at = status, now
            view = alarm.view()
        # Sent outside the lock: the service may call this provider back while it handles the webhook.
        event = {"event_id": "evt_" + secrets.token_hex(12), "alarm_id": alarm_id, "status": status, "at": now}
        webhook_status, webhook_error = self._send_webhook(event)
        answer: dict[str, Any] = {"dispatch": view, "webhook_status": webhook_status, "event_id": event["event_id"]}
        if webhook_error:
            answer["webhook_error"] = webhook_error
        return 200, answer

    def _send_webhook(self, event: dict) -> tuple[int | None, str | None]:
        """POSTs the signed event; returns the service's HTTP status, or None and why it could not be reached."""
        try:
            url = urlsplit(self._webhook_url_getter())
            if url.scheme not in ("http", "https") or not url.hostname:
                return None, "no webhook URL configured"
            body = json.dumps(event).encode()
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign_webhook(body, self._webhook_secret, int(self._clock())),
            }
            connection_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
            connection = connection_class(url.hostname, url.port, timeout=self._webhook_timeout_s)
            try:
                connection.request("POST", url.path + (f"?{url.query}" if url.query else ""), body=body,
                                   headers=headers)
                response = connection.getresponse()
                response.read()
                return response.status, None
            finally:
                connection.close()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _now(self) -> str:
        moment = datetime.fromtimestamp(self._clock(), timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _provider_status(status: str) -> str:
    return "canceled" if status == "cancelled" else status


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "message": message}}


def _validation_error(exc: _Invalid) -> Answer:
    return 422, {"error": {"code": "validation_error", "message": str(exc),
                           "details": [{"field": exc.field_name, "problem": exc.problem}]}}


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise _Invalid("body", "is not JSON") from exc
    if not isinstance(data, dict):
        raise _Invalid("body", "must be a JSON object")
    return data


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(name, "is required")
    return value


def _optional_text(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _Invalid(name, "must be a string")
    return value or None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _location(data: Any, prefix: str) -> dict:
    if not isinstance(data, dict):
        raise _Invalid(prefix.rstrip(".") or "body", "must be an object with lat and lng")
    lat, lng, accuracy = data.get("lat"), data.get("lng"), data.get("accuracy")
    if not _number(lat) or not -90 <= lat <= 90:
        raise _Invalid(prefix + "lat", "must be between -90 and 90")
    if not _number(lng) or not -180 <= lng <= 180:
        raise _Invalid(prefix + "lng", "must be between -180 and 180")
    if accuracy is not None and (not _number(accuracy) or accuracy < 0):
        raise _Invalid(prefix + "accuracy", "must be a non-negative number")
    return {"lat": lat, "lng": lng, "accuracy": accuracy}
