"""Counts every AWS request made in this process, who made it, how long it took, and what DynamoDB bills for it.

Every AWS call in the local stack goes through botocore in this one process: the service's boto3 clients, PynamoDB's
own botocore session, powertools' idempotency client, the Step Functions executor's service integrations (moto
runs them with boto3), and the local stand-in for Lambda's SQS event source mapping. Wrapping
`botocore.client.BaseClient._make_api_call` sees all of them without touching service code.

Each call is attributed to an *origin* by the Python stack that made it:
- `api:<route function>`  the API Lambda (a route of app.py)
- `lambda:<handler>`      an event Lambda: `send_pages`, `inbound_sms`, `run_jobs`, `sms_receipts`
- `stepfunctions`         a service integration task of a state machine (moto's executor)
- `sqs-esm`               Lambda's SQS event source mapping (the stack's receivers: receive, delete)
- `carrier`               AWS End User Messaging publishing a two-way SMS reply to the inbound-sms topic
- `bench`                 the benchmark's own calls (baselines, history reads): never counted as service cost

DynamoDB request units are computed from item sizes with the published on-demand rules, because moto's
ConsumedCapacity is a constant: a write is 1 WRU per started KB of the larger of the item before/after (here: after,
read from moto's backend in-process), transactional writes cost 2x, each global secondary index holding the item costs
one more write of its size; a strongly consistent read is 1 RRU per started 4 KB (eventually consistent 0.5), a Query
sums the sizes of the items it returns, a read that finds nothing still costs the minimum. A Query with a filter
is billed for every item it reads, not only those it returns: `items_read` counts them (ScannedCount), the RRU here
are a lower bound for such a Query.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field

from bench.common import ACCOUNT_ID, REGION, ROOT

APP_FILE = str(ROOT / "app.py")
STACK_FILE = str(ROOT / "local" / "stack.py")
BENCH_DIR = str(ROOT / "bench")
SERVICES_DIR = str(ROOT / "chalicelib" / "services")
ADAPTERS_DIR = str(ROOT / "chalicelib" / "adapters")
# app.py's event handlers (Lambda functions of their own); every other route function belongs to the API Lambda.
EVENT_HANDLERS = ("send_pages", "inbound_sms", "run_jobs", "sms_receipts")
# app.py's route decorator calls each route function from its `view` wrapper.
ROUTE_WRAPPER = "view"


@dataclass
class Call:
    origin: str
    service: str
    operation: str
    target: str  # table / queue / topic / "sms"
    started: float  # time.time()
    duration: float  # seconds, client side: serialise + sign + HTTP round trip + parse
    thread: str
    error: str | None = None
    site: str | None = None
    wru: float = 0.0
    rru: float = 0.0
    items_read: int = 0  # DynamoDB items the request read (a Query's ScannedCount; a filter does not reduce it)
    messages: int = 0  # SQS ReceiveMessage: messages returned
    sms_text: str | None = None  # SNS Publish with PhoneNumber
    sms_to: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.service}.{self.operation}" + (f"({self.target})" if self.target else "")


def classify(frame) -> tuple[str, str | None]:
    """(origin, site): site is the innermost service-layer method (and the adapter method it called) that made the
    call, e.g. `PageSender._page > DynamoDBIncidentStore._write`."""
    site = adapter = None
    app_frames: list[str] = []  # names of app.py's functions on the stack, innermost first
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        if site is None and filename.startswith(SERVICES_DIR):
            site = code.co_qualname + (f" > {adapter}" if adapter else "")
        elif adapter is None and filename.startswith(ADAPTERS_DIR):
            adapter = code.co_qualname
        if filename == APP_FILE:
            app_frames.append(code.co_name)
        elif app_frames:  # left app.py: its outermost function is the Lambda entry point
            return _app_origin(app_frames), site or adapter
        elif "/moto/stepfunctions/" in filename:
            return "stepfunctions", None
        elif filename == STACK_FILE:
            if code.co_name == "_receive":
                return "sqs-esm", None
            if code.co_name == "publish_inbound_sms":
                return "carrier", None
            return "local-stack", None
        elif filename.startswith(BENCH_DIR):
            return "bench", site or adapter
        frame = frame.f_back
    if app_frames:
        return _app_origin(app_frames), site or adapter
    return "other", site or adapter


def _app_origin(app_frames: list[str]) -> str:
    for name in app_frames:
        if name in EVENT_HANDLERS:
            return f"lambda:{name}"
    if ROUTE_WRAPPER in app_frames:
        position = app_frames.index(ROUTE_WRAPPER)
        if position > 0:
            return f"api:{app_frames[position - 1]}"
    return f"api:{app_frames[-1]}"


# --- DynamoDB item sizes and request units ----------------------------------------------------------------------------
def _value_size(value: dict) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(v) if isinstance(v, (bytes, bytearray)) else math.ceil(len(v) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(_value_size({"N": x}) for x in v)
    if kind == "BS":
        return sum(len(x) for x in v)
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(x) + 1 for k, x in v.items())
    return 0


def item_size(item: dict | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _kb(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


class _Tables:
    """Reads items and index definitions from moto's backend in this process (no request, not counted)."""

    def __init__(self) -> None:
        self._gsi_keys: dict[str, list[list[str]]] = {}

    @staticmethod
    def _backend():
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[ACCOUNT_ID][REGION]

    def gsi_keys(self, table: str) -> list[list[str]]:
        if table not in self._gsi_keys:
            try:
                indexes = self._backend().get_table(table).global_indexes
                self._gsi_keys[table] = [[k["AttributeName"] for k in index.schema] for index in indexes]
            except Exception:  # noqa: BLE001 - an unknown table: no index writes
                self._gsi_keys[table] = []
        return self._gsi_keys[table]

    def stored(self, table: str, key: dict) -> dict | None:
        try:
            item = self._backend().get_item(table, key)
        except Exception:  # noqa: BLE001
            return None
        return item.to_json()["Attributes"] if item is not None else None

    def write_units(self, table: str, item: dict | None, transactional: bool) -> float:
        size = item_size(item)
        units = _kb(size) * (2 if transactional else 1)
        if item:
            for keys in self.gsi_keys(table):
                if all(k in item for k in keys):
                    units += _kb(size)  # projection ALL: the index holds the whole item
        return units


def ddb_units(tables: _Tables, operation: str, params: dict, response: dict | None, failed: bool) -> tuple[float, float]:
    """(write units, read units) of one DynamoDB request."""
    table = params.get("TableName", "")
    if operation == "GetItem":
        item = (response or {}).get("Item")
        return 0.0, _read_units(item_size(item), params.get("ConsistentRead", False))
    if operation in ("Query", "Scan"):
        total = sum(item_size(i) for i in (response or {}).get("Items", []))
        consistent = params.get("ConsistentRead", False) and not params.get("IndexName")
        return 0.0, _read_units(total, consistent)
    if operation == "PutItem":
        if failed:  # a failed condition still consumes the write, but no index write happens
            return float(_kb(item_size(params["Item"]))), 0.0
        return tables.write_units(table, params["Item"], False), 0.0
    if operation == "UpdateItem":
        stored = tables.stored(table, params["Key"])
        if failed:
            return float(_kb(item_size(stored))), 0.0
        return tables.write_units(table, stored, False), 0.0
    if operation == "DeleteItem":
        return 1.0, 0.0
    if operation == "TransactWriteItems":
        wru = rru = 0.0
        for entry in params.get("TransactItems", []):
            (kind, body), = entry.items()
            name = body.get("TableName", "")
            if kind == "Put":
                wru += tables.write_units(name, body["Item"], True) if not failed else 2 * _kb(item_size(body["Item"]))
            elif kind == "Update":
                stored = tables.stored(name, body["Key"])
                wru += tables.write_units(name, stored, True) if not failed else 2 * _kb(item_size(stored))
            elif kind == "Delete":
                wru += 2
            elif kind == "ConditionCheck":
                rru += 2
        return wru, rru
    if operation == "TransactGetItems":
        return 0.0, sum(2 * _read_units(item_size(r.get("Item")), True) for r in (response or {}).get("Responses", []))
    if operation == "BatchWriteItem":
        wru = 0.0
        for name, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    wru += tables.write_units(name, request["PutRequest"]["Item"], False)
                else:
                    wru += 1
        return wru, 0.0
    return 0.0, 0.0


def items_read(operation: str, response: dict | None) -> int:
    """DynamoDB items a read request read (what it is billed for), found or scanned."""
    response = response or {}
    if operation == "GetItem":
        return 1 if response.get("Item") else 0
    if operation in ("Query", "Scan"):
        return int(response.get("ScannedCount", response.get("Count", 0)))
    if operation == "BatchGetItem":
        return sum(len(items) for items in response.get("Responses", {}).values())
    if operation == "TransactGetItems":
        return sum(1 for entry in response.get("Responses", []) if entry.get("Item"))
    return 0


def _short_table(name: str) -> str:
    return name.split("-", 1)[1] if name.startswith("local-") else name


def _target(service: str, operation: str, params: dict) -> str:
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            names = []
            for entry in params.get("TransactItems", []):
                (kind, body), = entry.items()
                names.append(f"{kind} {_short_table(body.get('TableName', ''))}")
            return ", ".join(names)
        name = _short_table(params.get("TableName", ""))
        return f"{name}/{params['IndexName']}" if params.get("IndexName") else name
    if service == "sqs":
        return params.get("QueueUrl", "").rsplit("/", 1)[-1].removeprefix("local-")
    if service == "sns":
        return "sms" if params.get("PhoneNumber") else params.get("TopicArn", "").rsplit(":", 1)[-1]
    if service == "stepfunctions":
        return params.get("stateMachineArn", params.get("executionArn", "")).rsplit(":", 1)[-1].removeprefix("local-")
    return ""


class AwsCallRecorder:
    def __init__(self, ddb_units: bool = True):
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.ddb_units = ddb_units
        self.capture = None  # optional callable(origin, service, operation, params, response)
        self._tables = _Tables()
        self._original = None

    def install(self) -> AwsCallRecorder:
        from botocore.client import BaseClient

        if self._original is not None:
            return self
        original = BaseClient._make_api_call
        recorder = self

        def _make_api_call(client, operation_name, api_params):
            origin, site = classify(sys._getframe(1))
            service = client.meta.service_model.service_name
            started, t0 = time.time(), time.perf_counter()
            error = None
            response = None
            try:
                response = original(client, operation_name, api_params)
                return response
            except Exception as exc:  # noqa: BLE001 - recorded, then re-raised unchanged
                error = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
                raise
            finally:
                recorder._record(origin, site, service, operation_name, api_params, response, error, started,
                                 time.perf_counter() - t0)

        BaseClient._make_api_call = _make_api_call
        self._original = original
        return self

    def uninstall(self) -> None:
        from botocore.client import BaseClient

        if self._original is not None:
            BaseClient._make_api_call = self._original
            self._original = None

    def _record(self, origin, site, service, operation, params, response, error, started, duration) -> None:
        try:
            call = Call(origin, service, operation, _target(service, operation, params), started, duration,
                        threading.current_thread().name, error, site)
            if service == "dynamodb" and self.ddb_units and origin != "bench":
                call.wru, call.rru = ddb_units(self._tables, operation, params, response, error is not None)
            if service == "dynamodb":
                call.items_read = items_read(operation, response)
            if service == "sqs" and operation == "ReceiveMessage":
                call.messages = len((response or {}).get("Messages", []))
            if service == "sns" and operation == "Publish" and params.get("PhoneNumber"):
                call.sms_text, call.sms_to = params.get("Message"), params.get("PhoneNumber")
            if self.capture is not None:
                self.capture(origin, service, operation, params, response)
        except Exception as exc:  # noqa: BLE001 - the recorder must never break the call it watches
            call = Call(origin, service, operation, "?", started, duration, threading.current_thread().name, error,
                        extra={"recorder_error": repr(exc)})
        with self.lock:
            self.calls.append(call)

    # --- reading ------------------------------------------------------------------------------------------------
    def mark(self) -> int:
        with self.lock:
            return len(self.calls)

    def since(self, mark: int, origin_prefix: str | None = None, thread: str | None = None) -> list[Call]:
        with self.lock:
            calls = self.calls[mark:]
        if origin_prefix is not None:
            calls = [c for c in calls if c.origin.startswith(origin_prefix)]
        if thread is not None:
            calls = [c for c in calls if c.thread == thread]
        return calls
