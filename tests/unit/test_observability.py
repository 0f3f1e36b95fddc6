"""Personal data masking and structured logs."""

from __future__ import annotations

import json
import logging

from chalicelib.observability import logger, mask_location, mask_phone, mask_text


def test_phone_numbers_keep_country_code_and_last_two_digits():
    assert mask_phone("+14155550123") == "+1********23"
    assert mask_phone(None) is None
    assert mask_text("call me on +14155550123 now") == "call me on +1********23 now"


def test_locations_are_coarsened_to_about_ten_kilometres():
    assert mask_location(37.7749, -122.4194) == "37.8,-122.4"
    assert mask_location(None, 1.0) is None


def test_service_loggers_write_json_through_one_powertools_handler():
    logger()
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    services = logging.getLogger("chalicelib")
    # One JSON output, and no propagation to the root handler Lambda installs (which would print each line again).
    # (pytest adds its own capture handlers beside ours while the suite runs; they are not counted.)
    json_handlers = [h for h in services.handlers if isinstance(h.formatter, LambdaPowertoolsFormatter)]
    assert services.propagate is False and len(json_handlers) == 1
    record = logging.getLogger("chalicelib.services.escalation").makeRecord(
        "chalicelib.services.escalation", logging.WARNING, __file__, 1, "probe", (), None, extra={"incident_id": "inc_1"})
    line = json.loads(json_handlers[0].formatter.format(record))
    assert line["message"] == "probe" and line["incident_id"] == "inc_1"
    assert line["service"] == "trust-safety-alerts"
