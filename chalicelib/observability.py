"""Logging, metrics and tracing with aws-lambda-powertools, and masking of personal data in logs.

Phone numbers and coordinates never reach a log line in clear: `mask_phone` keeps the country code and the last
two digits (enough to tell two responders apart), `mask_location` keeps one decimal (about 10 km).
"""

from __future__ import annotations

import logging
import re
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
