"""HTTP routes and event handlers: parse, authorise, call a service, map errors. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from pathlib import Path
from datetime import datetime, timezone
from typing import Any

from chalice import Chalice, Response
from pydantic import ValidationError

from chalicelib.auth import Principal, require_role, verify_token
from chalicelib.adapters.failures import is_dependency_failure
from chalicelib.domain.errors import BadRequest, ServiceError, Unavailable, ValidationFailed
from chalicelib.observability import logger
from chalicelib.schemas import (
    AttachmentRequest,
    CancelRequest,
    IncidentCreate,
    InboundSms,
    Location,
    NoteRequest,
    PolicyPut,
    ResolveRequest,
    ReviewRequest,
    ResponderPut,
    RoutingPut,
    SchedulePut,
    validation_details,
)
from chalicelib.services import get_services

MAX_BODY_BYTES = 64 * 1024
PUBLIC = ()
ANY_ROLE = ("shopper", "responder", "reviewer", "admin")
INBOUND_SMS_TOPIC = "inbound-sms"
PAGE_QUEUE = "trust-safety-pages"


class ThreadSafeChalice(Chalice):
    """On Lambda one process serves one request at a time; the local server uses threads, and Chalice keeps the
    current request on the app object. A thread-local slot keeps concurrent local requests apart."""

    _local = threading.local()

    @property  # type: ignore[override]
    def current_request(self):  # noqa: D102
        return getattr(self._local, "request", None)

    @current_request.setter
    def current_request(self, value) -> None:
        self._local.request = value


app = ThreadSafeChalice(app_name="trust-safety-alerts")
log = logger()


# --- plumbing ------------------------------------------------------------------------------------------------------
def _json(body: Any, status: int, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body), status_code=status, headers={"Content-Type": "application/json", **(headers or {})})


def error_response(error: ServiceError) -> Response:
    body: dict = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    body.update(error.extra)
    return _json({"error": body}, error.status)


def _principal(roles: tuple[str, ...]) -> Principal | None:
    if roles == PUBLIC:
        return None
    principal = verify_token(app.current_request.headers.get("authorization"))
    require_role(principal, *roles)
    return principal


def _body(model: type | None) -> Any:
    raw = app.current_request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    if model is None:
        return None
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", [{"field": "body", "problem": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("request body is invalid", validation_details(exc)) from exc


def endpoint(path: str, method: str, roles: tuple[str, ...], body: type | None = None, status: int = 200):
    """Registers a route that authenticates, authorises by role, validates the body, and maps domain errors to the
    contract's error shape. Handlers receive (principal, body, **url_params) and return (json, status) or json."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def view(**params: str) -> Response:
            try:
                principal = _principal(roles)
                if roles != PUBLIC:
                    get_services().register_lambda_context(app.lambda_context)
                result = handler(principal, _body(body), **params)
                if isinstance(result, Response):
                    return result
                if isinstance(result, tuple):
                    return _json(result[0], result[1])
                return _json(result, status)
            except ServiceError as error:
                return error_response(error)
            except Exception as exc:  # noqa: BLE001 - a dependency failing is retryable; anything else is a bug
                if is_dependency_failure(exc):
                    log.warning("dependency failed", extra={"path": path, "error": type(exc).__name__})
                    return error_response(Unavailable("a dependency failed; retry (with the same Idempotency-Key)"))
                log.exception("unhandled error", extra={"path": path, "method": method})
                return _json({"error": {"code": "internal_error", "message": "internal error"}}, 500)

        app.route(path, methods=[method])(view)
        return handler

    return register


def _query(name: str) -> str | None:
    return (app.current_request.query_params or {}).get(name)


def _time_query(name: str) -> datetime | None:
    value = _query(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed("invalid query", [{"field": name, "problem": "must be an ISO 8601 time"}]) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _limit() -> int:
    value = _query("limit") or "50"
    if not value.isdigit() or not 1 <= int(value) <= 200:
        raise ValidationFailed("invalid query", [{"field": "limit", "problem": "must be an integer from 1 to 200"}])
    return int(value)


# --- health --------------------------------------------------------------------------------------------------------
@endpoint("/v1/health", "GET", PUBLIC)
def health(_principal, _body):
    return {"status": "ok"}


# --- shopper -------------------------------------------------------------------------------------------------------
@endpoint("/v1/incidents", "POST", ("shopper",), body=IncidentCreate, status=201)
def open_incident(principal, body):
    key = app.current_request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationFailed("invalid header", [{"field": "Idempotency-Key", "problem": "must be 1 to 255 characters"}])
    return get_services().incidents.open(principal, body, key)


@endpoint("/v1/incidents", "GET", ("shopper", "reviewer", "admin", "responder"))
def list_incidents(principal, _body):
    return get_services().incidents.list(
        principal, _query("status"), _query("kind"), _time_query("since"), _time_query("until"), _limit(), _query("cursor")
    )


@endpoint("/v1/incidents/{incident_id}", "GET", ANY_ROLE)
def get_incident(principal, _body, incident_id):
    return get_services().incidents.get(principal, incident_id)


@endpoint("/v1/incidents/{incident_id}/locations", "POST", ("shopper",), body=Location, status=201)
def add_location(principal, body, incident_id):
    return get_services().incidents.add_location(principal, incident_id, body)


@endpoint("/v1/incidents/{incident_id}/cancel", "POST", ("shopper",), body=CancelRequest)
def cancel_incident(principal, body, incident_id):
    return get_services().incidents.cancel(principal, incident_id, body)


@endpoint("/v1/incidents/{incident_id}/notes", "POST", ("shopper", "responder"), body=NoteRequest, status=201)
def add_note(principal, body, incident_id):
    return get_services().incidents.add_note(principal, incident_id, body)


@endpoint("/v1/incidents/{incident_id}/attachments", "POST", ("shopper", "responder"), body=AttachmentRequest, status=201)
def add_attachment(principal, body, incident_id):
    return get_services().incidents.add_attachment(principal, incident_id, body)


# --- responders ----------------------------------------------------------------------------------------------------
@endpoint("/v1/incidents/{incident_id}/acknowledge", "POST", ("responder",))
def acknowledge(principal, _body, incident_id):
    services = get_services()
    return services.responses.acknowledge_via_api(services.incidents.resolve_id(incident_id), principal.sub)


@endpoint("/v1/incidents/{incident_id}/resolve", "POST", ("responder",), body=ResolveRequest)
def resolve(principal, body, incident_id):
    services = get_services()
    return services.responses.resolve_via_api(services.incidents.resolve_id(incident_id), principal.sub, body.outcome, body.note)


@endpoint("/v1/incidents/{incident_id}/escalate", "POST", ("responder",))
def escalate(principal, _body, incident_id):
    services = get_services()
    return services.responses.escalate_via_api(services.incidents.resolve_id(incident_id), principal.sub)


# --- reviewers -----------------------------------------------------------------------------------------------------
@endpoint("/v1/incidents/{incident_id}/timeline", "GET", ("reviewer", "admin", "responder"))
def timeline(principal, _body, incident_id):
    services = get_services()
    incident = services.incidents.load_for(principal, incident_id)
    return services.review.timeline(incident.incident_id, verify=_query("verify") == "true")


def _incidents_in_range(principal) -> list[dict]:
    services, incidents, cursor = get_services(), [], None
    while True:
        page = services.incidents.list(principal, _query("status"), _query("kind"), _time_query("since"),
                                       _time_query("until"), 200, cursor)
        incidents += page["incidents"]
        cursor = page.get("next_cursor")
        if not cursor:
            return incidents


@endpoint("/v1/review/metrics", "GET", ("reviewer", "admin"))
def review_metrics(principal, _body):
    return {"metrics": get_services().review.metrics(_incidents_in_range(principal))}


@endpoint("/v1/review/export", "GET", ("reviewer", "admin"))
def review_export(principal, _body):
    csv_text = get_services().review.export_csv(_incidents_in_range(principal))
    return Response(body=csv_text, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": 'attachment; filename="incidents.csv"'})


@endpoint("/v1/incidents/{incident_id}/report", "GET", ("reviewer", "admin"))
def incident_report(principal, _body, incident_id):
    services = get_services()
    return services.review.report(services.incidents.load_for(principal, incident_id))


@endpoint("/v1/incidents/{incident_id}/review", "POST", ("reviewer",), body=ReviewRequest, status=201)
def add_review(principal, body, incident_id):
    services = get_services()
    incident = services.incidents.load_for(principal, incident_id)
    return services.review.add_review(incident, principal.sub, body.findings, body.follow_up_actions)


@functools.lru_cache(maxsize=1)
def _review_page() -> str:
    return (Path(__file__).parent / "chalicelib" / "web" / "review.html").read_text()


def _html_page() -> Response:
    # The page is a shell: every datum it shows comes from the API with the reviewer's token.
    return Response(body=_review_page(), status_code=200, headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:"})


@app.route("/review", methods=["GET"])
def review_page():
    return _html_page()


@app.route("/review/incidents/{incident_id}", methods=["GET"])
def review_incident_page(incident_id):
    return _html_page()


# --- admins --------------------------------------------------------------------------------------------------------
ADMIN = ("admin",)


@endpoint("/v1/responders", "GET", ADMIN)
def list_responders(_principal, _body):
    return {"responders": get_services().admin.list_responders()}


@endpoint("/v1/responders/{responder_id}", "PUT", ADMIN, body=ResponderPut)
def put_responder(_principal, body, responder_id):
    view, created = get_services().admin.put_responder(responder_id, body)
    return {"responder": view}, 201 if created else 200


@endpoint("/v1/responders/{responder_id}", "GET", ADMIN)
def get_responder(_principal, _body, responder_id):
    return {"responder": get_services().admin.get_responder(responder_id)}


@endpoint("/v1/responders/{responder_id}", "DELETE", ADMIN)
def delete_responder(_principal, _body, responder_id):
    get_services().admin.delete_responder(responder_id)
    return Response(body="", status_code=204)


@endpoint("/v1/schedules/{schedule_id}", "PUT", ADMIN, body=SchedulePut)
def put_schedule(_principal, body, schedule_id):
    view, created = get_services().admin.put_schedule(schedule_id, body)
    return {"schedule": view}, 201 if created else 200


@endpoint("/v1/schedules/{schedule_id}", "GET", ADMIN)
def get_schedule(_principal, _body, schedule_id):
    return {"schedule": get_services().admin.get_schedule(schedule_id)}


@endpoint("/v1/escalation-policies/{policy_id}", "PUT", ADMIN, body=PolicyPut)
def put_policy(_principal, body, policy_id):
    view, created = get_services().admin.put_policy(policy_id, body)
    return {"policy": view}, 201 if created else 200


@endpoint("/v1/escalation-policies/{policy_id}", "GET", ADMIN)
def get_policy(_principal, _body, policy_id):
    return {"policy": get_services().admin.get_policy(policy_id)}


@endpoint("/v1/routing", "PUT", ADMIN, body=RoutingPut)
def put_routing(_principal, body):
    return {"routing": get_services().admin.put_routing(body)}


@endpoint("/v1/routing", "GET", ADMIN)
def get_routing(_principal, _body):
    return {"routing": get_services().admin.get_routing()}


# --- events --------------------------------------------------------------------------------------------------------
@app.on_sns_message(topic=INBOUND_SMS_TOPIC)
def inbound_sms(event) -> None:
    """Two-way SMS replies. A malformed message is logged and dropped: raising would make SNS retry it forever."""
    get_services().register_lambda_context(event.context)
    try:
        message = InboundSms.model_validate_json(event.message)
    except ValidationError as exc:
        log.warning("malformed inbound SMS dropped", extra={"errors": exc.error_count()})
        return
    get_services().responses.handle_inbound_sms(message)


@app.on_sqs_message(queue=PAGE_QUEUE, batch_size=1)
def send_pages(event) -> None:
    """Page requests from the escalation workflow (and cancel/ack notices). Raising returns the message to the
    queue: it is retried with the queue's visibility timeout and parked on the dead-letter queue after 10 tries."""
    for record in event:
        get_services().escalation.send_requested(json.loads(record.body))
