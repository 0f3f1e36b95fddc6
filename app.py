"""HTTP routes and event handlers: parse, authorise, call a service, map errors. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalice import Chalice, Response
from pydantic import ValidationError

from chalicelib.auth import verify_token
from chalicelib.domain import errors
from chalicelib.observability import install_observability, logger
from chalicelib.schemas import (
    AttachmentRequest,
    CancelRequest,
    CheckInCreate,
    DispatchRequest,
    IncidentCreate,
    InboundSms,
    Location,
    NoteRequest,
    PolicyPut,
    ResolveRequest,
    ResponderPut,
    ReviewRequest,
    RoutingPut,
    SchedulePut,
    validation_details,
)

MAX_BODY_BYTES = 64 * 1024
PUBLIC = ()
ANY_ROLE = ("shopper", "responder", "reviewer", "admin")
ADMIN = ("admin",)
REVIEW = ("reviewer", "admin")
INBOUND_SMS_TOPIC = "inbound-sms"
PAGE_QUEUE = "trust-safety-pages"
JOBS_QUEUE = "trust-safety-jobs"
# What each error means over HTTP (the contract's status codes). Subclasses share their parent's status.
STATUS = {
    errors.BadRequest: 400, errors.Unauthenticated: 401, errors.Forbidden: 403, errors.NotFound: 404,
    errors.Conflict: 409, errors.ValidationFailed: 422, errors.RateLimited: 429, errors.Unavailable: 503,
}


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
install_observability(app)
log = logger()


def services():
    from chalicelib.services import get_services  # deferred: the first request wires the AWS adapters

    return get_services()


def principal_of(role: str, sub: str):
    from chalicelib.services.access import Principal

    return Principal(role, sub)


# --- plumbing ------------------------------------------------------------------------------------------------------
def _json(body: Any, status: int, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body), status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def status_of(error: errors.ServiceError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def error_response(error: errors.ServiceError) -> Response:
    body: dict = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    body.update(error.extra)
    return _json({"error": body}, status_of(error))


def _principal(roles: tuple[str, ...]):
    if roles == PUBLIC:
        return None
    verified = verify_token(app.current_request.headers.get("authorization"))
    if verified.role not in roles:
        raise errors.Forbidden(f"role {verified.role} may not do this", extra={"allowed_roles": list(roles)})
    return principal_of(verified.role, verified.sub)


def _body(model: type | None) -> Any:
    raw = app.current_request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise errors.BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    if model is None:
        return None
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise errors.BadRequest("body is not valid JSON (or nests too deeply)") from exc
    if not isinstance(data, dict):
        raise errors.ValidationFailed("body must be a JSON object", [{"field": "body", "problem": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.ValidationFailed("request body is invalid", validation_details(exc)) from exc
    except RecursionError as exc:
        raise errors.BadRequest("body nests too deeply") from exc


def _dependency_failed(exc: BaseException) -> bool:
    from chalicelib.adapters.failures import is_dependency_failure

    return is_dependency_failure(exc)


def endpoint(path: str, method: str, roles: tuple[str, ...], body: type | None = None, status: int = 200):
    """Registers a route that authenticates, authorises by role, validates the body, and maps errors to the
    contract's error shape. Handlers receive (principal, body, **url_params) and return (json, status) or json."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def view(**params: str) -> Response:
            try:
                principal = _principal(roles)
                _register_context(app.lambda_context)
                result = handler(principal, _body(body), **params)
                if isinstance(result, Response):
                    return result
                if isinstance(result, tuple):
                    return _json(result[0], result[1])
                return _json(result, status)
            except errors.ServiceError as error:
                return error_response(error)
            except Exception as exc:  # noqa: BLE001 - a dependency failing is retryable; anything else is a bug
                if _dependency_failed(exc):
                    log.warning("dependency failed", extra={"path": path, "error": type(exc).__name__})
                    return error_response(errors.Unavailable("a dependency failed; retry (with the same Idempotency-Key)"))
                log.exception("unhandled error", extra={"path": path, "method": method})
                return _json({"error": {"code": "internal_error", "message": "internal error"}}, 500)

        app.route(path, methods=[method])(view)
        return handler

    return register


def _register_context(context: Any) -> None:
    from chalicelib.services import register_lambda_context

    register_lambda_context(context)


def _deadline(context: Any, default_s: float = 10.0, margin_s: float = 3.0):
    """Until the Lambda's own deadline, less a margin to answer (and, for events, to fail so the event is
    delivered again rather than cut off mid-write)."""
    from chalicelib.adapters.store import Deadline

    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return Deadline.after(max(1.0, context.get_remaining_time_in_millis() / 1000 - margin_s))
    return Deadline.after(default_s)


def _query(name: str) -> str | None:
    return (app.current_request.query_params or {}).get(name)


def _limit() -> int:
    value = _query("limit") or "50"
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses: a 500) and other scripts' digits, and a
    # few thousand digits make int() raise as well.
    if not (value.isascii() and value.isdigit() and len(value) <= 3) or not 1 <= int(value) <= 200:
        raise errors.ValidationFailed.field("limit", "must be an integer from 1 to 200")
    return int(value)


def _idempotency_key() -> str | None:
    key = app.current_request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise errors.ValidationFailed.field("Idempotency-Key", "must be 1 to 255 characters")
    return key


def _incident(principal, incident_id: str):
    return services().intake.load_for(principal, incident_id)


# --- health --------------------------------------------------------------------------------------------------------
@endpoint("/v1/health", "GET", PUBLIC)
def health(_principal, _body):
    return {"status": "ok"}


# --- shopper -------------------------------------------------------------------------------------------------------
@endpoint("/v1/incidents", "POST", ("shopper", "admin"), body=IncidentCreate, status=201)
def open_incident(principal, body):
    if principal.role == "admin" and body.kind != "test":
        raise errors.Forbidden("admins open only test incidents")
    return services().intake.open(principal, body, _idempotency_key())


@endpoint("/v1/incidents", "GET", ANY_ROLE)
def list_incidents(principal, _body):
    review = services().review
    query = review.query(principal, _query("status"), _query("kind"), _query("since"), _query("until"), _query("cursor"))
    return review.list(principal, query, _limit(), _query("status"))


@endpoint("/v1/incidents/{incident_id}", "GET", ANY_ROLE)
def get_incident(principal, _body, incident_id):
    return services().intake.get(principal, incident_id)


@endpoint("/v1/incidents/{incident_id}/locations", "POST", ("shopper",), body=Location, status=201)
def add_location(principal, body, incident_id):
    return services().intake.add_location(principal, incident_id, body.model_dump())


@endpoint("/v1/incidents/{incident_id}/cancel", "POST", ("shopper",), body=CancelRequest)
def cancel_incident(principal, body, incident_id):
    return services().intake.cancel(principal, incident_id, body.pin, body.reason)


@endpoint("/v1/incidents/{incident_id}/notes", "POST", ("shopper", "responder"), body=NoteRequest, status=201)
def add_note(principal, body, incident_id):
    return services().intake.add_note(principal, incident_id, body.text)


@endpoint("/v1/incidents/{incident_id}/attachments", "POST", ("shopper", "responder"), body=AttachmentRequest,
          status=201)
def add_attachment(principal, body, incident_id):
    return services().intake.add_attachment(principal, incident_id, body)


@endpoint("/v1/check-ins", "POST", ("shopper",), body=CheckInCreate, status=201)
def start_check_in(principal, body):
    return services().checkins.create(principal, body, _idempotency_key())


@endpoint("/v1/check-ins/{check_in_id}", "GET", ("shopper", "reviewer", "admin"))
def get_check_in(principal, _body, check_in_id):
    return services().checkins.get(principal, check_in_id)


@endpoint("/v1/check-ins/{check_in_id}/locations", "POST", ("shopper",), body=Location, status=201)
def check_in_location(principal, body, check_in_id):
    return services().checkins.add_location(principal, check_in_id, body.model_dump())


@endpoint("/v1/check-ins/{check_in_id}/complete", "POST", ("shopper",))
def complete_check_in(principal, _body, check_in_id):
    return services().checkins.complete(principal, check_in_id)


# --- responders ----------------------------------------------------------------------------------------------------
@endpoint("/v1/incidents/{incident_id}/acknowledge", "POST", ("responder",))
def acknowledge(principal, _body, incident_id):
    return services().responding.acknowledge_as(principal, _incident(principal, incident_id))


@endpoint("/v1/incidents/{incident_id}/resolve", "POST", ("responder",), body=ResolveRequest)
def resolve(principal, body, incident_id):
    return services().responding.resolve_as(principal, _incident(principal, incident_id), body.outcome, body.note)


@endpoint("/v1/incidents/{incident_id}/escalate", "POST", ("responder",))
def escalate(principal, _body, incident_id):
    return services().responding.escalate_as(principal, _incident(principal, incident_id))


@endpoint("/v1/incidents/{incident_id}/dispatch", "POST", ("responder", "admin"), body=DispatchRequest, status=202)
def request_dispatch(principal, body, incident_id):
    return services().responding.dispatch_as(principal, _incident(principal, incident_id), body.reason)


@app.route("/v1/dispatch/webhook", methods=["POST"])
def dispatch_webhook():
    """The dispatch provider's status webhooks: authenticated by its signature over the raw body, not a token."""
    from chalicelib.adapters.dispatch import InvalidWebhookBody, InvalidWebhookSignature

    request = app.current_request
    try:
        return _json(services().dispatching.webhook(request.raw_body or b"",
                                                    request.headers.get("x-dispatch-signature")), 200)
    except InvalidWebhookSignature:
        return error_response(errors.Unauthenticated("invalid webhook signature"))
    except InvalidWebhookBody as exc:
        return error_response(errors.ValidationFailed("invalid webhook body", [{"field": "body", "problem": str(exc)}]))
    except errors.ServiceError as error:
        return error_response(error)
    except Exception as exc:  # noqa: BLE001 - the provider retries a 5xx
        if _dependency_failed(exc):
            return error_response(errors.Unavailable("a dependency failed; retry"))
        log.exception("unhandled error in the dispatch webhook")
        return _json({"error": {"code": "internal_error", "message": "internal error"}}, 500)


# --- reviewers -----------------------------------------------------------------------------------------------------
@endpoint("/v1/incidents/{incident_id}/timeline", "GET", ("reviewer", "admin", "responder"))
def timeline(principal, _body, incident_id):
    return services().review.timeline(_incident(principal, incident_id), verify=_query("verify") == "true")


def _range_query(principal):
    return services().review.query(principal, _query("status"), _query("kind"), _query("since"), _query("until"),
                                   None)


@endpoint("/v1/review/metrics", "GET", REVIEW)
def review_metrics(principal, _body):
    return services().review.metrics(_range_query(principal))


@endpoint("/v1/review/export", "GET", REVIEW)
def review_export(principal, _body):
    csv_text = services().review.export_csv(_range_query(principal))
    return Response(body=csv_text, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": 'attachment; filename="incidents.csv"'})


@endpoint("/v1/incidents/{incident_id}/report", "GET", REVIEW)
def incident_report(principal, _body, incident_id):
    return services().review.report(_incident(principal, incident_id))


@endpoint("/v1/incidents/{incident_id}/review", "POST", ("reviewer",), body=ReviewRequest, status=201)
def add_review(principal, body, incident_id):
    return services().review.add_review(_incident(principal, incident_id), principal.sub, body.findings,
                                        body.follow_up_actions)


@functools.lru_cache(maxsize=1)
def _review_page() -> str:
    return (Path(__file__).parent / "chalicelib" / "web" / "review.html").read_text()


def _html_page() -> Response:
    # The page is a shell: every datum it shows comes from the API with the reviewer's token.
    return Response(body=_review_page(), status_code=200, headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                   "img-src 'self' blob: data:"})


@app.route("/review", methods=["GET"])
def review_page():
    return _html_page()


@app.route("/review/incidents/{incident_id}", methods=["GET"])
def review_incident_page(incident_id):
    return _html_page()


# --- admins --------------------------------------------------------------------------------------------------------
@endpoint("/v1/responders", "GET", ADMIN)
def list_responders(_principal, _body):
    verified = _query("verified")
    if verified not in (None, "true", "false"):
        raise errors.ValidationFailed.field("verified", "must be true or false")
    return {"responders": services().admin.list_responders(None if verified is None else verified == "true")}


@endpoint("/v1/responders/{responder_id}", "PUT", ADMIN, body=ResponderPut)
def put_responder(_principal, body, responder_id):
    view, created = services().admin.put_responder(responder_id, body)
    return {"responder": view}, 201 if created else 200


@endpoint("/v1/responders/{responder_id}", "GET", ADMIN)
def get_responder(_principal, _body, responder_id):
    return {"responder": services().admin.get_responder(responder_id)}


@endpoint("/v1/responders/{responder_id}", "DELETE", ADMIN)
def delete_responder(_principal, _body, responder_id):
    services().admin.delete_responder(responder_id)
    return Response(body="", status_code=204)


@endpoint("/v1/responders/{responder_id}/test-page", "POST", ("admin", "responder"), status=202)
def test_page(principal, _body, responder_id):
    if principal.role == "responder":
        if principal.sub != responder_id:
            raise errors.Forbidden("responders test only their own phone")
        services().access.active_responder(principal)  # a deactivated (or unknown) responder can do nothing
    return {"test_page": services().admin.send_test_page(responder_id)}


@endpoint("/v1/schedules/{schedule_id}", "PUT", ADMIN, body=SchedulePut)
def put_schedule(_principal, body, schedule_id):
    view, created = services().admin.put_schedule(schedule_id, body)
    return {"schedule": view}, 201 if created else 200


@endpoint("/v1/schedules/{schedule_id}", "GET", ADMIN)
def get_schedule(_principal, _body, schedule_id):
    return {"schedule": services().admin.get_schedule(schedule_id)}


@endpoint("/v1/escalation-policies/{policy_id}", "PUT", ADMIN, body=PolicyPut)
def put_policy(_principal, body, policy_id):
    view, created = services().admin.put_policy(policy_id, body)
    return {"policy": view}, 201 if created else 200


@endpoint("/v1/escalation-policies/{policy_id}", "GET", ADMIN)
def get_policy(_principal, _body, policy_id):
    return {"policy": services().admin.get_policy(policy_id)}


@endpoint("/v1/routing", "PUT", ADMIN, body=RoutingPut)
def put_routing(_principal, body):
    return {"routing": services().admin.put_routing(body)}


@endpoint("/v1/routing", "GET", ADMIN)
def get_routing(_principal, _body):
    return {"routing": services().admin.get_routing()}


# --- events --------------------------------------------------------------------------------------------------------
@app.on_sns_message(topic=INBOUND_SMS_TOPIC)
def inbound_sms(event) -> None:
    """Two-way SMS replies. A malformed message is logged and dropped (raising would make SNS retry it forever);
    a reply that cannot be committed before this invocation's deadline raises, so SNS delivers it again."""
    _register_context(event.context)
    try:
        message = InboundSms.model_validate_json(event.message)
    except ValidationError as exc:
        log.warning("malformed inbound SMS dropped", extra={"errors": exc.error_count()})
        return
    services().inbox.receive(message, _deadline(event.context))


def _receive_count(record) -> int:
    attributes = record.to_dict().get("attributes", {}) if hasattr(record, "to_dict") else {}
    try:
        return int(attributes.get("ApproximateReceiveCount", "1"))
    except (TypeError, ValueError):
        return 1


def _each_record(event, handle: Callable[[dict, int], None], queue_url: Callable[[], str]) -> None:
    """Raising returns the message to the queue, to be delivered again; it is made visible again within seconds
    (the queue's own visibility timeout is six times the function's, as AWS advises for Lambda event sources, far
    too long to wait for a page), and parked on the dead-letter queue after the queue's maximum receives."""
    _register_context(event.context)
    for record in event:
        count = _receive_count(record)
        try:
            handle(json.loads(record.body), count)
        except Exception:
            _retry_soon(queue_url(), record.receipt_handle, count)
            raise


def _retry_soon(queue_url: str, receipt_handle: str, receive_count: int) -> None:
    from chalicelib.adapters.clients import aws_client

    try:
        aws_client("sqs").change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                                    VisibilityTimeout=min(30, 2 ** receive_count))
    except Exception:  # noqa: BLE001 - then the queue's own visibility timeout applies
        log.warning("could not shorten the retry delay")


def _queue_url(name: str) -> Callable[[], str]:
    def url() -> str:
        from chalicelib.config import settings

        return getattr(settings(), name)

    return url


@app.on_sqs_message(queue=PAGE_QUEUE, batch_size=1)
def send_pages(event) -> None:
    """Page requests from the escalation workflow, notices and status SMS (services/escalation.py)."""
    _each_record(event, lambda body, count: services().sender.handle(body, count), _queue_url("page_queue_url"))


@app.on_sqs_message(queue=JOBS_QUEUE, batch_size=1)
def run_jobs(event) -> None:
    """Timers firing, deferred starts, dispatch calls, delivery checks: work that never waits behind SMS."""
    _each_record(event, lambda body, count: services().jobs.handle(body, count), _queue_url("jobs_queue_url"))


@app.lambda_function(name="sms_receipts")
def sms_receipts(event, context) -> dict:
    """SNS SMS delivery status logs, through a CloudWatch Logs subscription: each log line is one receipt."""
    from aws_lambda_powertools.utilities.parser import parse
    from aws_lambda_powertools.utilities.parser.models import CloudWatchLogsModel

    _register_context(context)
    logs = parse(event=event, model=CloudWatchLogsModel)
    recorded = 0
    for entry in logs.awslogs.decoded_data.logEvents:
        try:
            receipt = json.loads(entry.message)
            message_id = receipt["notification"]["messageId"]
            status = {"SUCCESS": "delivered", "FAILURE": "failed"}[receipt["status"]]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable delivery status log line skipped")
            continue
        published_at, answered_at = _receipt_times(receipt)
        recorded += services().deliveries.receipt(message_id, status, answered_at, published_at)
    return {"recorded": recorded}


def _receipt_times(receipt: dict) -> tuple[str | None, str | None]:
    """(published, answered) from an SNS SMS delivery status log line: `notification.timestamp` is the publish, and
    `delivery.dwellTimeMs` the time until the carrier answered."""
    from chalicelib.domain.clock import TimeFormatError, iso, parse_iso, plus_seconds

    stamp = receipt.get("notification", {}).get("timestamp")
    try:
        published = iso(parse_iso(stamp.replace(" ", "T"))) if stamp else None
    except (TimeFormatError, AttributeError):
        return None, None
    dwell_ms = receipt.get("delivery", {}).get("dwellTimeMs")
    if published is None or not isinstance(dwell_ms, (int, float)) or isinstance(dwell_ms, bool) or dwell_ms < 0:
        return published, published
    return published, plus_seconds(published, dwell_ms / 1000)
