"""Personal data masking, structured logs, and what install_observability adds: the Lambda context on every log line
and an X-Ray subsegment per invocation on Lambda."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chalicelib import observability
from chalicelib.observability import logger, mask_location, mask_phone, mask_text

ROOT = Path(__file__).resolve().parents[2]


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


# --- install_observability: Lambda context on every log line, X-Ray on Lambda -----------------------------------------
class FakeLambdaContext:
    function_name = "stack-send_pages"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stack-send_pages"

    def __init__(self, request_id: str):
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def json_lines(monkeypatch):
    """Formatted JSON lines of the service loggers, through the powertools formatter the Lambdas use."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    logger()
    services = logging.getLogger("chalicelib")
    formatter = next(h.formatter for h in services.handlers if isinstance(h.formatter, LambdaPowertoolsFormatter))
    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(formatter.format(record)))

    handler = Collect()
    services.addHandler(handler)
    monkeypatch.setattr(observability, "_cold_start", True)
    yield lines
    services.removeHandler(handler)


def small_app():
    from chalice import Chalice

    app = Chalice(app_name="observed")
    observability.install_observability(app)
    observability.install_observability(app)  # idempotent
    probe = logging.getLogger("chalicelib.probe")

    @app.route("/v1/ping")
    def ping():
        probe.warning("in route")
        return {"ok": True}

    @app.on_sqs_message(queue="q")
    def send_pages(event):
        probe.warning("in sqs handler")

    @app.on_sns_message(topic="t")
    def inbound_sms(event):
        probe.warning("in sns handler")

    return app, send_pages, inbound_sms


def api_event(path: str) -> dict:
    return {"resource": path, "path": path, "httpMethod": "GET", "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": f"/api{path}", "stage": "api",
                               "requestId": "apigw-1", "identity": {"sourceIp": "127.0.0.1"}}}


def test_every_handler_logs_with_its_lambda_context_and_cold_start(json_lines):
    app, send_pages, inbound_sms = small_app()
    assert len([m for m in app.middleware_handlers if m[0] is observability.observe_invocation]) == 1
    response = app(api_event("/v1/ping"), FakeLambdaContext("req-api"))
    assert response["statusCode"] == 200
    send_pages({"Records": [{"body": "{}", "receiptHandle": "h", "messageId": "m", "attributes": {},
                             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q"}]}, FakeLambdaContext("req-sqs"))
    inbound_sms({"Records": [{"Sns": {"Message": "{}", "Subject": None, "MessageAttributes": {},
                                      "TopicArn": "arn:aws:sns:us-east-1:123456789012:t"}}]}, FakeLambdaContext("req-sns"))
    by_message = {line["message"]: line for line in json_lines}
    assert by_message["in route"]["function_request_id"] == "req-api"
    assert by_message["in route"]["cold_start"] is True
    assert by_message["in sqs handler"]["function_request_id"] == "req-sqs"
    assert by_message["in sqs handler"]["cold_start"] is False
    assert by_message["in sns handler"]["function_request_id"] == "req-sns"
    assert by_message["in sns handler"]["function_name"] == "stack-send_pages"
    assert by_message["in sns handler"]["function_memory_size"] == 512
    # Nothing of an invocation sticks to the lines after it.
    logging.getLogger("chalicelib.probe").warning("after")
    assert "function_request_id" not in json_lines[-1]


def test_a_missing_context_is_tolerated(json_lines):
    _, send_pages, _ = small_app()
    send_pages({"Records": []}, None)  # the local stack passes no context to event handlers
    logging.getLogger("chalicelib.probe").warning("after")
    assert json_lines[-1]["message"] == "after"


def test_tracing_is_off_outside_lambda_and_the_tracer_is_never_built(json_lines, monkeypatch):
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setattr(observability, "tracer", lambda: pytest.fail("tracer built outside Lambda"))
    _, send_pages, _ = small_app()
    send_pages({"Records": []}, FakeLambdaContext("r"))
    assert observability.tracing_enabled() is False
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    assert observability.tracing_enabled() is True
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert observability.tracing_enabled() is False


def test_importing_observability_loads_neither_powertools_nor_xray():
    code = "import sys; import chalicelib.observability; print(sorted(m for m in ('aws_lambda_powertools', " \
           "'aws_xray_sdk', 'chalice') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


TRACE_PROBE = textwrap.dedent("""
    import json, os, socket, sys
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:%d" % sock.getsockname()[1]
    from chalice import Chalice
    from chalicelib.observability import install_observability
    app = Chalice(app_name="t")
    install_observability(app)

    @app.on_sqs_message(queue="q")
    def send_pages(event):
        return None

    class Context:
        function_name, memory_limit_in_mb, invoked_function_arn, aws_request_id = "stack-send_pages", 512, "arn", "r1"

    send_pages({"Records": []}, Context())
    sock.settimeout(10)
    print(sock.recv(65535).decode().split("\\n", 1)[1])
""")


def test_on_lambda_each_invocation_is_an_xray_subsegment():
    """The real powertools Tracer and X-Ray SDK, in a process of their own (they patch botocore), sending to a UDP
    socket standing in for the X-Ray daemon."""
    env = {**os.environ, "LAMBDA_TASK_ROOT": "/var/task", "PYTHONPATH": str(ROOT),
           "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    out = subprocess.run([sys.executable, "-c", TRACE_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    subsegment = json.loads(out.stdout)
    assert subsegment["name"] == "## stack-send_pages" and subsegment["type"] == "subsegment"
    assert subsegment["annotations"] == {"ColdStart": True, "Service": "trust-safety-alerts"}
    assert subsegment["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
