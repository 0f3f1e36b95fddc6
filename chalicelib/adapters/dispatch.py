"""Emergency dispatch: the port to an alarm-dispatch provider, its HTTP adapter, and the provider's signed webhooks.

An alarm-dispatch provider (the Noonlight kind) runs a monitoring centre: given a location trail and a callback
phone, its operators call the person and contact 911 (the PSAP) for them. The service asks for one alarm per
dispatch, forwards later locations, cancels it when the shopper cancels with the right PIN, and learns what the
centre did from the provider's webhooks.

The HTTP API spoken by `HttpAlarmProvider` (modelled on Noonlight's Dispatch API, trimmed to what the service needs;
every request carries `Authorization: Bearer <token>` and JSON bodies):

    POST {base}/v1/alarms                  header Idempotency-Key: <dispatch id>
         {"external_id": "<dispatch id>", "reference": "TS-K3F9QX", "kind": "panic",
          "location": {"lat": 37.77, "lng": -122.41, "accuracy": 12.0}, "phone": "+15551234567", "duress": false}
         -> 201 {"id": "<alarm id>", "status": "requested"}
         A repeat with the same Idempotency-Key returns the same alarm, so a create that timed out can be retried.
    POST {base}/v1/alarms/{id}/locations   {"lat": 37.78, "lng": -122.42, "accuracy": 8.0}  -> 201
    POST {base}/v1/alarms/{id}/status      {"status": "canceled", "reason": "shopper cancelled with PIN"}  -> 200

Errors: a timeout, a connection failure, 429 or any 5xx raise `DispatchUnavailable` (retry later); any other 4xx
(401 bad token, 404 unknown alarm, 409 alarm already closed, 422 invalid body) or a redirect raises
`DispatchRejected`. Each call is bounded by `timeout_s` per socket operation and is never retried here: the caller
owns the retry policy.

Webhooks back to the service: `POST` with the JSON body
`{"event_id": "...", "alarm_id": "...", "status": "accepted"|"psap_contacted"|"closed"|"canceled", "at": "<ISO 8601>"}`
and the header `X-Dispatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of f"{t}." + body>` (Stripe's scheme: the
timestamp is signed with the body, so a captured request cannot be replayed after `tolerance_s`).

Phones and coordinates never reach a log line or an exception message in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from chalicelib.domain.clock import TimeFormatError, parse_iso
from chalicelib.observability import mask_location, mask_phone

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dispatch-Signature"
SIGNATURE_SCHEME = "v1"
# The service's statuses after a webhook; the provider spells the last one "canceled".
WEBHOOK_STATUSES = frozenset({"accepted", "psap_contacted", "closed", "cancelled"})
_STATUS_SPELLINGS = {"canceled": "cancelled"}
_USER_AGENT = "trust-safety-alerts/dispatch"


@dataclass(frozen=True)
class AlarmRequest:
    reference: str
    kind: str
    lat: float
    lng: float
    accuracy_m: float | None
    # The shopper's callback phone (E.164), so the monitoring centre can call them.
    phone: str | None
    duress: bool = False
    # The service's dispatch id: the provider creates at most one alarm per key, which makes a create safe to retry.
    idempotency_key: str = ""


class DispatchUnavailable(Exception):
    """Provider outage: timeout, connection error, 5xx, 429. Retryable."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class DispatchRejected(Exception):
    """The provider refused the request (4xx other than 429). Not retryable."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class DispatchProvider(Protocol):
    name: str

    def create_alarm(self, request: AlarmRequest) -> str:
        """Returns the provider's alarm id."""
        ...

    def add_location(self, alarm_id: str, lat: float, lng: float, accuracy_m: float | None) -> None: ...

    def cancel(self, alarm_id: str, reason: str) -> None: ...


class HttpAlarmProvider:
    """The real adapter, standard library only: the Lambda packages carry no HTTP client library."""

    name = "alarm-api"

    def __init__(self, base_url: str, api_token: str, timeout_s: float = 3.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("dispatch base_url must be an http(s) URL")
        if not api_token:
            raise ValueError("dispatch api_token is required")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")
        self._api_token = api_token
        self.timeout_s = timeout_s

    def create_alarm(self, request: AlarmRequest) -> str:
        if not request.idempotency_key:
            # Without a key, a retried create after a timeout could send emergency services twice.
            raise ValueError("AlarmRequest.idempotency_key is required: pass the dispatch id")
        payload = {
            "external_id": request.idempotency_key,
            "reference": request.reference,
            "kind": request.kind,
            "location": {"lat": request.lat, "lng": request.lng, "accuracy": request.accuracy_m},
            "phone": request.phone,
            "duress": request.duress,
        }
        answer = _decode_json(self._post("/v1/alarms", payload, idempotency_key=request.idempotency_key))
        alarm_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(alarm_id, str) or not alarm_id:
            # The alarm may exist without us knowing its id; retrying with the same key returns it.
            raise DispatchUnavailable("dispatch provider answered the create without an alarm id")
        log.info("dispatch alarm created", extra={
            "provider": self.name, "reference": request.reference, "alarm_id": alarm_id, "kind": request.kind,
            "duress": request.duress, "phone": mask_phone(request.phone),
            "approx_location": mask_location(request.lat, request.lng),
        })
        return alarm_id

    def add_location(self, alarm_id: str, lat: float, lng: float, accuracy_m: float | None) -> None:
        self._post(f"/v1/alarms/{quote(alarm_id, safe='')}/locations", {"lat": lat, "lng": lng, "accuracy": accuracy_m})
        log.info("dispatch location added", extra={
            "provider": self.name, "alarm_id": alarm_id, "approx_location": mask_location(lat, lng),
        })

    def cancel(self, alarm_id: str, reason: str) -> None:
        self._post(f"/v1/alarms/{quote(alarm_id, safe='')}/status", {"status": "canceled", "reason": reason})
        log.info("dispatch alarm cancelled", extra={"provider": self.name, "alarm_id": alarm_id})

    def _post(self, path: str, payload: dict, idempotency_key: str | None = None) -> bytes:
        """One POST; returns the raw body of a 2xx answer or raises one of the two dispatch errors.

        http.client rather than urllib.request: no proxy from the environment, no redirect-following of a POST,
        and every failure mode is visible here."""
        operation = f"POST {path}"
        headers = {
            "Authorization": f"Bearer {self._api_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        body = json.dumps(payload).encode()
        connection_class = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=self.timeout_s)
        try:
            connection.request("POST", self._base_path + path, body=body, headers=headers)
            response = connection.getresponse()
            status = response.status
            raw = response.read()
            retry_after = response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:
            # OSError covers timeouts, refused and reset connections, DNS and TLS failures.
            log.warning("dispatch provider unreachable", extra={
                "provider": self.name, "operation": operation, "error": type(exc).__name__,
            })
            raise DispatchUnavailable(f"dispatch provider unreachable: {operation}: {type(exc).__name__}") from exc
        finally:
            connection.close()

        if 200 <= status < 300:
            return raw
        code = _error_code(raw)
        log.warning("dispatch provider refused", extra={
            "provider": self.name, "operation": operation, "http_status": status, "code": code,
        })
        # Only the status and the provider's error code go into the message: its free text may echo the phone.
        message = f"dispatch provider answered {status} to {operation}" + (f" ({code})" if code else "")
        if status == 429 or status >= 500:
            raise DispatchUnavailable(message, status=status, retry_after_s=_seconds(retry_after))
        raise DispatchRejected(message, status=status, code=code)


def _decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        # Retrying with the same idempotency key returns the same alarm, so an unreadable answer is worth a retry.
        raise DispatchUnavailable("dispatch provider answered with a body that is not JSON") from exc


def _error_code(raw: bytes) -> str | None:
    """The provider's machine-readable error code, from `{"error": {"code": ...}}` or `{"code": ...}`."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    code = error.get("code") if isinstance(error, dict) else data.get("code")
    return code[:64] if isinstance(code, str) else None


def _seconds(header: str | None) -> float | None:
    try:
        return max(float(header), 0.0) if header else None
    except ValueError:
        return None  # an HTTP date: rare enough that the caller's own backoff is fine


# --- webhooks --------------------------------------------------------------------------------------------------


class InvalidWebhook(Exception):
    """A webhook the service must not act on."""


class InvalidWebhookSignature(InvalidWebhook):
    """Missing, malformed, wrong or expired signature: answer 401 and change nothing."""


class InvalidWebhookBody(InvalidWebhook):
    """Correctly signed, but not the shape the provider promised."""


@dataclass(frozen=True)
class WebhookEvent:
    alarm_id: str
    # One of WEBHOOK_STATUSES, in the service's spelling.
    status: str
    # The provider's event id: webhooks are retried, so the service deduplicates on it.
    event_id: str
    at: str


def sign_webhook(body: bytes, secret: str, timestamp: int) -> str:
    """The `X-Dispatch-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},{SIGNATURE_SCHEME}={_signature(body, secret, timestamp)}"


def verify_webhook(body: bytes, signature_header: str | None, secret: str, now: int,
                   tolerance_s: int = 300) -> WebhookEvent:
    """Checks the signature first (nothing from an unsigned body is trusted), then parses the event.

    Several `v1=` entries are accepted, any one matching, so the provider can sign with two secrets while one is
    being rotated. A timestamp more than `tolerance_s` away from `now`, in either direction, is refused."""
    if not secret:
        raise ValueError("dispatch webhook secret is not configured")
    timestamp, signatures = _parse_signature_header(signature_header)
    if abs(now - timestamp) > tolerance_s:
        raise InvalidWebhookSignature("signature timestamp is outside the tolerance")
    expected = _signature(body, secret, timestamp)
    # compare_digest: the time taken must not reveal how much of a forged signature was right.
    expected_bytes = expected.encode()
    if not any(hmac.compare_digest(expected_bytes, candidate.encode("utf-8", "replace")) for candidate in signatures):
        raise InvalidWebhookSignature("signature does not match")
    return _parse_webhook_body(body)


def _signature(body: bytes, secret: str, timestamp: int) -> str:
    if not secret:
        # An empty key is a key everyone knows: a misconfigured deployment must fail loudly, not accept forgeries.
        raise ValueError("dispatch webhook secret is not configured")
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise InvalidWebhookSignature(f"{SIGNATURE_HEADER} header is missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise InvalidWebhookSignature(f"{SIGNATURE_HEADER} header is malformed")
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                raise InvalidWebhookSignature(f"{SIGNATURE_HEADER} header has a bad timestamp")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
        # Other schemes are ignored, as Stripe does, so the provider can add one without breaking us.
    if timestamp is None or not signatures:
        raise InvalidWebhookSignature(f"{SIGNATURE_HEADER} header needs t= and {SIGNATURE_SCHEME}=")
    return timestamp, signatures


def _parse_webhook_body(body: bytes) -> WebhookEvent:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError included; RecursionError: nested too deeply
        raise InvalidWebhookBody("webhook body is not JSON (or nests too deeply)") from exc
    if not isinstance(data, dict):
        raise InvalidWebhookBody("webhook body must be a JSON object")
    fields: dict[str, str] = {}
    for name in ("event_id", "alarm_id", "status", "at"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidWebhookBody(f"webhook field {name} must be a non-empty string")
        fields[name] = value
    status = _STATUS_SPELLINGS.get(fields["status"], fields["status"])
    if status not in WEBHOOK_STATUSES:
        raise InvalidWebhookBody("webhook field status is not a known status")
    try:
        parse_iso(fields["at"], bounded=False)
    except TimeFormatError as exc:
        raise InvalidWebhookBody("webhook field at must be an ISO 8601 time") from exc
    return WebhookEvent(alarm_id=fields["alarm_id"], status=status, event_id=fields["event_id"], at=fields["at"])
