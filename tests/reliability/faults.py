"""Fault injection on the service's own AWS clients, through botocore's `before-send` event hook.

The stack runs in the test process, so the clients the service uses are reachable: `aws_client(...)` (SNS, SQS,
Step Functions, and the boto3 DynamoDB client of the idempotency layer) and every PynamoDB connection (found through
the models and the garbage collector, so a connection a refactoring adds is covered too). Nothing in the production
code changes: a hook answers in place of AWS, before the request leaves the client, and botocore's own retry logic
sees the fault exactly as it would see AWS's (throttling and 5xx are retried with backoff, the rest is raised).

Kinds of fault:
- ``throttle``: the service's throttling error (HTTP 400, a throttling code botocore retries);
- ``5xx``: HTTP 500 InternalServerError;
- ``commit_then_5xx``: the request is really sent (the write happens) and the answer is replaced by a 500: the
  ambiguous failure after which a client cannot know whether its write landed;
- ``reject``: a non-retryable client error (HTTP 400; e.g. SNS InvalidParameter): botocore raises it at once;
- ``delay``: the request is held for ``delay_s`` seconds, then sent.

A `Faults` object is used as a fixture: every hook it registers is unregistered at teardown, even when the test fails.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from botocore.awsrequest import AWSResponse

# botocore's event names use the service's hyphenised id: Step Functions is "sfn".
_CLIENT_NAME = {"sfn": "stepfunctions", "dynamodb": "dynamodb", "sns": "sns", "sqs": "sqs"}
_JSON_ERROR_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#", "sqs": "com.amazonaws.sqs#", "sfn": ""}
_REJECT_CODE = {"dynamodb": "ValidationException", "sns": "InvalidParameter", "sqs": "InvalidParameterValue",
                "sfn": "InvalidExecutionInput"}
_THROTTLE_CODE = {"dynamodb": "ProvisionedThroughputExceededException", "sns": "Throttling",
                  "sqs": "RequestThrottled", "sfn": "ThrottlingException"}


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_kwargs):
        yield self._body


def _error_response(service: str, url: str, status: int, code: str, message: str) -> AWSResponse:
    request_id = str(uuid.uuid4())
    if service == "sns":  # query protocol: an XML ErrorResponse
        body = (f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    else:  # JSON protocols
        body = json.dumps({"__type": _JSON_ERROR_PREFIX.get(service, "") + code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}
    return AWSResponse(url, status, headers, _Raw(body))


def request_params(request: Any) -> dict:
    """The API parameters of a prepared request (JSON body, or the query protocol's form body)."""
    body = request.body or b""
    if hasattr(body, "read"):  # a stream: leave it alone
        return {}
    if isinstance(body, str):
        body = body.encode()
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError:
        return {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}


@dataclass
class Rule:
    service: str
    operation: str | None
    kind: str
    times: int | None = None  # how many matching attempts to affect; None: every one until the fault is removed
    match: Callable[[dict], bool] | None = None
    delay_s: float = 0.0
    hits: list[tuple[float, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, operation: str, params: dict) -> bool:
        if self.operation is not None and operation != self.operation:
            return False
        if self.match is not None and not self.match(params):
            return False
        with self._lock:
            if self.times is not None and len(self.hits) >= self.times:
                return False
            self.hits.append((time.monotonic(), operation))
            return True

    @property
    def count(self) -> int:
        return len(self.hits)


def service_clients(service: str) -> list[Any]:
    """Every botocore client through which the service calls `service` (deduplicated)."""
    from chalicelib.adapters.clients import aws_client
    from chalicelib.services import get_services

    get_services()  # wires the service first: binding the models replaces their connections (and clients)
    clients = [aws_client(_CLIENT_NAME[service])]
    if service == "sns":
        clients.append(aws_client("sns", "sms"))  # SMS are published by a client that never retries
    if service == "dynamodb":
        from pynamodb.connection.base import Connection
        from pynamodb.models import Model

        import chalicelib.adapters.models as models

        for value in vars(models).values():
            if isinstance(value, type) and issubclass(value, Model) and value is not Model:
                value._get_connection()  # creates the model's connection if it has none yet
        for obj in gc.get_objects():
            if isinstance(obj, Connection):
                clients.append(obj.client)
    unique: dict[int, Any] = {}
    for client in clients:
        unique.setdefault(id(client), client)
    return list(unique.values())


class Faults:
    """Registers fault rules on the service's clients; `clear()` removes every hook it registered."""

    def __init__(self) -> None:
        self._registered: list[tuple[Any, str, Callable, str]] = []
        self.rules: list[Rule] = []

    def add(self, service: str, operation: str | None, kind: str, *, times: int | None = None,
            match: Callable[[dict], bool] | None = None, delay_s: float = 0.0) -> Rule:
        assert kind in ("throttle", "5xx", "commit_then_5xx", "reject", "delay"), kind
        rule = Rule(service, operation, kind, times, match, delay_s)
        self.rules.append(rule)
        event = f"before-send.{service}" + (f".{operation}" if operation else "")
        for client in service_clients(service):
            handler = self._handler(rule)
            unique_id = f"fault-{uuid.uuid4().hex}"
            client.meta.events.register(event, handler, unique_id=unique_id)
            self._registered.append((client, event, handler, unique_id))
        return rule

    def _handler(self, rule: Rule) -> Callable:
        def before_send(request, event_name: str, **_kwargs):
            operation = event_name.rsplit(".", 1)[-1]
            if not rule.take(operation, request_params(request)):
                return None
            if rule.kind == "delay":
                time.sleep(rule.delay_s)
                return None  # then botocore sends it for real
            if rule.kind == "commit_then_5xx":
                from botocore.httpsession import URLLib3Session

                URLLib3Session().send(request)  # the write really happens; its answer is lost
                return _error_response(rule.service, request.url, 500, "InternalServerError", "injected after commit")
            if rule.kind == "throttle":
                return _error_response(rule.service, request.url, 400, _THROTTLE_CODE[rule.service], "injected throttle")
            if rule.kind == "reject":
                return _error_response(rule.service, request.url, 400, _REJECT_CODE[rule.service], "injected rejection")
            return _error_response(rule.service, request.url, 500, "InternalServerError", "injected 5xx")

        return before_send

    def remove(self, rule: Rule) -> None:
        keep = []
        for client, event, handler, unique_id in self._registered:
            if getattr(handler, "__closure__", None) and any(c.cell_contents is rule for c in handler.__closure__):
                client.meta.events.unregister(event, handler, unique_id=unique_id)
            else:
                keep.append((client, event, handler, unique_id))
        self._registered = keep

    def clear(self) -> None:
        for client, event, handler, unique_id in self._registered:
            client.meta.events.unregister(event, handler, unique_id=unique_id)
        self._registered.clear()


@pytest.fixture()
def faults(stack):
    """Fault injection on the service's AWS clients; every hook is removed at teardown, even when the test fails."""
    injector = Faults()
    try:
        yield injector
    finally:
        injector.clear()
