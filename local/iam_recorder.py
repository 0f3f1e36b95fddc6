"""Records every AWS call each Lambda function makes on the local stack, as the IAM permissions it needs.

moto enforces no resource-scoped IAM, so a call the deployed role would deny succeeds locally. This module closes
that gap: while the tests run, every botocore call (boto3's and PynamoDB's: both go through
`BaseClient._make_api_call`) and every presigned S3 POST/URL made while a Lambda handler runs is turned into the
(action, resource ARN) pairs IAM authorises it by, and written to a JSON-lines file. tests/infra/test_least_privilege.py
evaluates them against each function's role in the packaged template.

Which function a call belongs to is a context variable set around each handler invocation (`function_context`):
local/stack.py wraps the two event handler invocations, and `attribute_api_calls(app)` does it for the API routes. Calls made outside a handler (test set-up, seeding, and the
Step Functions executor's own threads inside the moto server) belong to no function and are not recorded; the state
machine's role is checked statically from its definition instead.

Enabled by IAM_CALLS_FILE=<path> in the environment (tests/conftest.py sets it for the whole session, so the e2e
test's `python -m local.stack` subprocess records into the same file). Without it, `function_context` is a cheap
no-op and nothing is patched.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlparse

CALLS_FILE_ENV = "IAM_CALLS_FILE"
ACCOUNT_ID = "123456789012"

_function: ContextVar[str | None] = ContextVar("lambda_function", default=None)


@contextmanager
def function_context(name: str) -> Iterator[None]:
    """Marks the calls made inside as made by the Lambda function `name` (api_handler, inbound_sms, send_pages)."""
    token = _function.set(name)
    try:
        yield
    finally:
        _function.reset(token)


def current_function() -> str | None:
    return _function.get()


def attribute_api_calls(app: Any, name: str = "api_handler") -> None:
    """Marks the calls of every HTTP route of `app` as made by the API function, with a Chalice middleware (Chalice's
    local server calls the app itself, so there is no invocation point outside it to wrap). Only while recording."""
    if _installed is None or getattr(app, "_iam_recorder_attached", False):
        return

    def in_function_context(event: Any, get_response: Any) -> Any:
        with function_context(name):
            return get_response(event)

    app.register_middleware(in_function_context, "http")
    app._iam_recorder_attached = True


# --- calls -> IAM (action, resources) --------------------------------------------------------------------------------
# A permission is (action, candidates): IAM allows the call if the role allows the action on any one candidate (SES
# checks the address identity or its domain's, whichever is verified). "*" stands for "no resource ARN".
Permission = tuple[str, list[str]]

_DYNAMODB_TRANSACTION_ITEMS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                               "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
# API operations authorised by another action's name.
_SAME_AS = {
    "sqs": {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
            "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"},
    "sns": {"PublishBatch": "Publish"},
    "s3": {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
           "HeadBucket": "ListBucket", "ListObjectVersions": "ListBucketVersions"},
}


def dynamodb_table_arn(name: str, region: str, account: str = ACCOUNT_ID) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def sqs_queue_arn(url: str, region: str) -> str:
    path = urlparse(url).path.strip("/").split("/")
    account, name = (path[-2], path[-1]) if len(path) >= 2 else (ACCOUNT_ID, path[-1])
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _dynamodb(operation: str, params: dict, region: str) -> list[Permission]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        permissions = []
        for item in params.get("TransactItems", []):
            for kind, body in item.items():
                permissions.append((f"dynamodb:{_DYNAMODB_TRANSACTION_ITEMS[kind]}",
                                    [dynamodb_table_arn(body["TableName"], region)]))
        return permissions
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", [dynamodb_table_arn(table, region)]) for table in params.get("RequestItems", {})]
    if "TableName" in params:
        arn = dynamodb_table_arn(params["TableName"], region)
        if params.get("IndexName"):
            arn = f"{arn}/index/{params['IndexName']}"
        return [(f"dynamodb:{operation}", [arn])]
    return [(f"dynamodb:{operation}", ["*"])]


def _sqs(operation: str, params: dict, region: str) -> list[Permission]:
    action = f"sqs:{_SAME_AS['sqs'].get(operation, operation)}"
    if "QueueUrl" in params:
        return [(action, [sqs_queue_arn(params["QueueUrl"], region)])]
    if operation == "GetQueueUrl":
        account = params.get("QueueOwnerAWSAccountId", ACCOUNT_ID)
        return [(action, [f"arn:aws:sqs:{region}:{account}:{params['QueueName']}"])]
    return [(action, ["*"])]


def _sns(operation: str, params: dict, region: str) -> list[Permission]:
    action = f"sns:{_SAME_AS['sns'].get(operation, operation)}"
    target = params.get("TopicArn") or params.get("TargetArn")
    return [(action, [target] if target else ["*"])]  # Publish(PhoneNumber=...): a phone number has no ARN


def _states(operation: str, params: dict, region: str) -> list[Permission]:
    for key in ("stateMachineArn", "executionArn", "activityArn", "mapRunArn", "resourceArn"):
        if key in params:
            return [(f"states:{operation}", [params[key]])]
    return [(f"states:{operation}", ["*"])]  # SendTaskSuccess/Failure/Heartbeat: a task token, no ARN


def s3_permissions(operation: str, params: dict) -> list[Permission]:
    action = f"s3:{_SAME_AS['s3'].get(operation, operation)}"
    bucket, key = params.get("Bucket"), params.get("Key")
    if bucket and key is not None:
        permissions = [(action, [f"arn:aws:s3:::{bucket}/{key}"])]
        if operation == "CopyObject":
            source = params["CopySource"]
            source = f"{source['Bucket']}/{source['Key']}" if isinstance(source, dict) else source.lstrip("/")
            permissions.append(("s3:GetObject", [f"arn:aws:s3:::{source.split('?')[0]}"]))
        return permissions
    return [(action, [f"arn:aws:s3:::{bucket}"] if bucket else ["*"])]


def _address(value: str) -> str:
    match = re.search(r"<([^>]+)>", value)
    return (match.group(1) if match else value).strip()


def _ses(operation: str, params: dict, region: str) -> list[Permission]:
    sender = params.get("FromEmailAddress") or params.get("Source")
    action = f"ses:{operation}"
    if not sender:
        return [(action, ["*"])]
    address = _address(sender)
    identities = [f"arn:aws:ses:{region}:{ACCOUNT_ID}:identity/{address}",
                  f"arn:aws:ses:{region}:{ACCOUNT_ID}:identity/{address.rsplit('@', 1)[-1]}"]
    permissions = [(action, identities)]
    if params.get("ConfigurationSetName"):
        permissions.append((action, [f"arn:aws:ses:{region}:{ACCOUNT_ID}:configuration-set/"
                                     f"{params['ConfigurationSetName']}"]))
    return permissions


def _sms_voice(operation: str, params: dict, region: str) -> list[Permission]:
    action = f"sms-voice:{operation}"
    identity = params.get("OriginationIdentity")
    if not identity:
        return [(action, ["*"])]
    if identity.startswith("arn:"):
        return [(action, [identity])]
    kind = next((k for k in ("phone-number", "pool", "sender-id") if identity.startswith(k.split("-")[0] + "-")),
                "phone-number")
    return [(action, [f"arn:aws:sms-voice:{region}:{ACCOUNT_ID}:{kind}/{identity}"])]


_BY_SERVICE = {"dynamodb": _dynamodb, "sqs": _sqs, "sns": _sns, "stepfunctions": _states, "ses": _ses,
               "sesv2": _ses, "pinpoint-sms-voice-v2": _sms_voice}


def requested_permissions(service: str, prefix: str, operation: str, params: dict, region: str) -> list[Permission]:
    """The IAM permissions one API call needs. `service` is botocore's service name, `prefix` the IAM one."""
    if service == "s3":
        return s3_permissions(operation, params)
    mapper = _BY_SERVICE.get(service)
    if mapper:
        return mapper(operation, params, region)
    return [(f"{prefix}:{operation}", ["*"])]


# --- recording ---------------------------------------------------------------------------------------------------
class Recorder:
    """Patches botocore once per process and appends one JSON line per distinct (function, operation, permission)."""

    def __init__(self, path: str):
        self.path = path
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()
        self._originals: dict[str, Any] = {}

    def install(self) -> Recorder:
        import botocore.client
        import botocore.signers

        recorder = self
        original_call = botocore.client.BaseClient._make_api_call
        original_post = botocore.signers.generate_presigned_post
        original_url = botocore.signers.generate_presigned_url
        self._originals = {"call": original_call, "post": original_post, "url": original_url}

        def _make_api_call(client: Any, operation_name: str, api_params: dict) -> Any:
            recorder.record_call(client, operation_name, api_params)
            return original_call(client, operation_name, api_params)

        def generate_presigned_post(client: Any, Bucket: str, Key: str, *args: Any, **kwargs: Any) -> Any:  # noqa: N803
            recorder.record(client, "s3", "GeneratePresignedPost", s3_permissions("PutObject", {"Bucket": Bucket, "Key": Key}))
            return original_post(client, Bucket, Key, *args, **kwargs)

        def generate_presigned_url(client: Any, ClientMethod: str, Params: dict | None = None,  # noqa: N803
                                   *args: Any, **kwargs: Any) -> Any:
            operation = client.meta.method_to_api_mapping.get(ClientMethod, ClientMethod)
            recorder.record_call(client, operation, Params or {}, presigned=True)
            return original_url(client, ClientMethod, Params, *args, **kwargs)

        botocore.client.BaseClient._make_api_call = _make_api_call
        # Bound into each S3 client class when botocore creates it: patched before the first S3 client is made.
        botocore.signers.generate_presigned_post = generate_presigned_post
        botocore.signers.generate_presigned_url = generate_presigned_url
        return self

    def uninstall(self) -> None:
        import botocore.client
        import botocore.signers

        if self._originals:
            botocore.client.BaseClient._make_api_call = self._originals["call"]
            botocore.signers.generate_presigned_post = self._originals["post"]
            botocore.signers.generate_presigned_url = self._originals["url"]
            self._originals = {}

    def record_call(self, client: Any, operation: str, params: dict, presigned: bool = False) -> None:
        if current_function() is None:
            return
        model = client.meta.service_model
        try:
            permissions = requested_permissions(model.service_name, model.signing_name, operation, params,
                                                client.meta.region_name)
        except Exception as exc:  # noqa: BLE001 - a call this mapper cannot read is itself a finding
            permissions = [(f"{model.signing_name}:{operation}", [f"<unreadable: {type(exc).__name__}: {exc}>"])]
        self.record(client, model.service_name, f"{operation}{' (presigned)' if presigned else ''}", permissions)

    def record(self, client: Any, service: str, operation: str, permissions: list[Permission]) -> None:
        function = current_function()
        if function is None:
            return
        lines = []
        with self._lock:
            for action, candidates in permissions:
                key = (function, service, operation, action, tuple(candidates))
                if key in self._seen:
                    continue
                self._seen.add(key)
                lines.append(json.dumps({"function": function, "service": service, "operation": operation,
                                         "action": action, "resources": candidates, "pid": os.getpid()}) + "\n")
        if lines:
            # One O_APPEND write per line: lines from several processes (the e2e stack) never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                for line in lines:
                    os.write(fd, line.encode())
            finally:
                os.close(fd)


_installed: Recorder | None = None


def install_from_environment() -> Recorder | None:
    """Installs the recorder once per process if IAM_CALLS_FILE is set; returns it (None when recording is off)."""
    global _installed
    path = os.environ.get(CALLS_FILE_ENV)
    if not path:
        return None
    if _installed is None:
        _installed = Recorder(path).install()
    return _installed


def read_calls(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.strip()]
