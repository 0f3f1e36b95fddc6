"""Logging, metrics and tracing with aws-lambda-powertools, and masking of personal data in logs.

Phone numbers and coordinates never reach a log line in clear: `mask_phone` keeps the country code and the last
two digits (enough to tell two responders apart), `mask_location` keeps one decimal (about 10 km).

`install_observability(app)` registers one Chalice middleware for every handler (the HTTP routes of api_handler,
inbound_sms, send_pages): each log line of an invocation carries its Lambda context (request id, function, cold
start), and on Lambda each invocation is an X-Ray subsegment with every AWS call (boto3 and PynamoDB, via botocore)
under it. Powertools and the X-Ray SDK are imported on first use, never at import: cold starts stay short.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from contextlib import ExitStack
from functools import lru_cache
from typing import Any

SERVICE = "trust-safety-alerts"
METRICS_NAMESPACE = "TrustSafetyAlerts"
_PHONE = re.compile(r"\+\d{7,15}")


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:2] + "*" * max(len(phone) - 4, 0) + phone[-2:]


def mask_location(lat: float | None, lng: float | None) -> str | None:
    if lat is None or lng is None:
        return None
    return f"{round(lat, 1)},{round(lng, 1)}"


def mask_text(text: str) -> str:
    """For free text that may quote a number (an SMS body)."""
    return _PHONE.sub(lambda m: mask_phone(m.group(0)) or "", text)


@lru_cache(maxsize=1)
def logger() -> Any:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    root = Logger(service=SERVICE)
    # The services log through the standard library (no powertools in the domain); give their loggers the same
    # structured JSON output, so every line carries the service name and whatever `extra` fields the caller set.
    # Their parent "chalicelib" gets powertools' handler; it stops there, or Lambda's root handler prints it twice.
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    services_logger = logging.getLogger("chalicelib")
    copy_config_to_registered_loggers(source_logger=root, include={"chalicelib"})
    services_logger.handlers = [h for h in services_logger.handlers if isinstance(h.formatter, LambdaPowertoolsFormatter)]
    services_logger.propagate = False
    return root


def count(name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
    """One EMF metric line now (not buffered: event handlers and HTTP routes share a process locally)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=getattr(MetricUnit, unit), value=value, namespace=METRICS_NAMESPACE) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)


# --- Lambda context and tracing -------------------------------------------------------------------------------------
_cold_start = True
_cold_start_lock = threading.Lock()


def _take_cold_start() -> bool:
    """True for the first invocation this process serves (each Lambda function is a process of its own)."""
    global _cold_start
    with _cold_start_lock:
        cold, _cold_start = _cold_start, False
        return cold


def lambda_context_keys(context: Any, cold_start: bool) -> dict[str, Any]:
    """The log keys powertools' inject_lambda_context adds, read defensively: the local stack passes Chalice's
    stand-in context (no request id) or none at all."""
    keys: dict[str, Any] = {"cold_start": cold_start}
    for key, attribute in (("function_name", "function_name"), ("function_memory_size", "memory_limit_in_mb"),
                           ("function_arn", "invoked_function_arn"), ("function_request_id", "aws_request_id")):
        value = getattr(context, attribute, None)
        if value not in (None, ""):
            keys[key] = value
    return keys


def tracing_enabled() -> bool:
    """Powertools' own rule: trace only inside Lambda (LAMBDA_TASK_ROOT set), unless POWERTOOLS_TRACE_DISABLED."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on")
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not disabled and not os.environ.get("AWS_SAM_LOCAL")


@lru_cache(maxsize=1)
def tracer() -> Any:
    """The powertools Tracer, created on the first traced invocation (the X-Ray SDK costs ~0.2 s to set up).

    Only botocore is patched: every AWS call, boto3's and PynamoDB's, becomes a subsegment (service, operation,
    table or queue; never request payloads). Patching everything X-Ray supports would import more at cold start."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=("botocore",))


def _describe(event: Any) -> tuple[Any, str, dict[str, str]]:
    """(Lambda context, subsegment name, annotations) for a Chalice middleware event."""
    from chalice.app import Request

    if isinstance(event, Request):
        context = event.lambda_context
        request_context = event.context or {}
        route = f"{request_context.get('httpMethod', event.method)} {request_context.get('resourcePath', event.path)}"
        return context, f"## {getattr(context, 'function_name', None) or 'api_handler'}", {"route": route}
    context = getattr(event, "context", None)
    return context, f"## {getattr(context, 'function_name', None) or type(event).__name__}", {}


def observe_invocation(event: Any, get_response: Any) -> Any:
    """Chalice middleware: Lambda context on every log line of the invocation; on Lambda, one X-Ray subsegment."""
    context, name, annotations = _describe(event)
    cold_start = _take_cold_start()
    keys = lambda_context_keys(context, cold_start)
    root = logger()
    # Thread-safe (context variable) keys: the local stack serves requests on threads; Lambda has one at a time.
    root.thread_safe_append_keys(**keys)
    try:
        with ExitStack() as stack:
            if tracing_enabled():
                subsegment = stack.enter_context(tracer().provider.in_subsegment(name=name))
                subsegment.put_annotation(key="ColdStart", value=cold_start)
                subsegment.put_annotation(key="Service", value=SERVICE)
                for key, value in annotations.items():
                    subsegment.put_annotation(key=key, value=value)
            return get_response(event)
    finally:
        root.thread_safe_remove_keys(list(keys))


def install_observability(app: Any) -> None:
    """Call once in app.py, after creating the app: `install_observability(app)`. Registers the middleware for every
    handler type (Chalice collects middleware lazily, so handlers defined later are covered too). Idempotent."""
    if getattr(app, "_observability_installed", False):
        return
    app.register_middleware(observe_invocation, "all")
    app._observability_installed = True
