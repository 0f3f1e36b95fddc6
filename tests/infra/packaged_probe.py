"""Runs INSIDE the unpacked deployment.zip, under `python -I -S` in an empty virtual environment (started by
tests/infra/test_package.py): nothing but the zip's files and the standard library can be imported, as on Lambda.

argv: <unpacked zip dir> <input json>. The input names the handlers to import, the modules the code imports, the
tokens to verify, and the API requests to serve. Prints one JSON report on stdout.
"""

import importlib
import importlib.util
import json
import sys
import time
import uuid


class Context:
    """What Lambda passes as the context object."""

    function_name = "trust-safety-alerts-package-test-api_handler"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 29

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)


def api_event(method, resource, path_parameters, token, body=None, headers=None):
    """An API Gateway REST proxy event, as API Gateway sends it to the Lambda."""
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", value)
    all_headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Host": "example.test",
                   **(headers or {})}
    return {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": all_headers, "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters or None, "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "path": "/api" + path, "stage": "api",
                           "requestId": str(uuid.uuid4()), "accountId": "123456789012", "apiId": "probe",
                           "identity": {"sourceIp": "198.51.100.7", "userAgent": "probe"},
                           "requestTimeEpoch": int(time.time() * 1000)},
        "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
    }


def timeline_of(app, incident_id, admin_token):
    response = app.app(api_event("GET", "/v1/incidents/{incident_id}/timeline", {"incident_id": incident_id},
                                 admin_token), Context())
    return json.loads(response["body"])["events"]


def delivery_log_event(message_id):
    """What a CloudWatch Logs subscription filter delivers for one SNS SMS delivery status line (gzip, base64)."""
    import base64
    import gzip

    stamp = time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime())
    line = {"notification": {"messageId": message_id, "timestamp": stamp},
            "delivery": {"destination": "+15555550100", "smsType": "Transactional", "providerResponse": "Delivered",
                         "dwellTimeMs": 100, "priceInUSD": 0.00645},
            "status": "SUCCESS"}
    payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012",
               "logGroup": "sns/us-east-1/123456789012/DirectPublishToPhoneNumber", "logStream": message_id,
               "subscriptionFilters": ["sms-receipts"],
               "logEvents": [{"id": "1", "timestamp": int(time.time() * 1000), "message": json.dumps(line)}]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def missed_check_in(app, spec):
    """A check-in opened through the packaged API is not completed: its timer (the timer state machine, executed by
    the local AWS) puts `check_in_due` on the jobs queue, and the packaged run_jobs opens the missed_check_in
    incident, as Lambda's SQS trigger would run it."""
    import boto3

    request = spec["check_in"]
    token = spec["tokens"]["shopper"]
    created = app.app(api_event("POST", "/v1/check-ins", None, token, request["body"], request.get("headers")),
                      Context())
    result = {"created_status": created["statusCode"]}
    if created["statusCode"] != 201:
        result["created_body"] = json.loads(created["body"] or "null")
        return result
    check_in_id = json.loads(created["body"])["check_in"]["id"]
    sqs = boto3.client("sqs")
    deadline, job = time.monotonic() + request.get("wait_s", 40), None
    while time.monotonic() < deadline and job is None:
        for message in sqs.receive_message(QueueUrl=spec["jobs_queue_url"], WaitTimeSeconds=1, MaxNumberOfMessages=10,
                                           AttributeNames=["All"]).get("Messages", []):
            if json.loads(message["Body"]).get("check_in_id") == check_in_id:
                job = message
    result["job"] = json.loads(job["Body"]) if job else None
    if job is None:
        return result
    app.run_jobs({"Records": [{
        "messageId": job["MessageId"], "receiptHandle": job["ReceiptHandle"], "body": job["Body"],
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": spec["jobs_queue_arn"], "awsRegion": "us-east-1"}]}, Context())
    sqs.delete_message(QueueUrl=spec["jobs_queue_url"], ReceiptHandle=job["ReceiptHandle"])
    shown = app.app(api_event("GET", "/v1/check-ins/{check_in_id}", {"check_in_id": check_in_id}, token), Context())
    result["check_in"] = json.loads(shown["body"]).get("check_in")
    incident_id = (result["check_in"] or {}).get("incident_id")
    if incident_id:
        opened = app.app(api_event("GET", "/v1/incidents/{incident_id}", {"incident_id": incident_id},
                                   spec["tokens"]["admin"]), Context())
        result["incident"] = json.loads(opened["body"]).get("incident")
    return result


def main():
    package_dir, input_path = sys.argv[1], sys.argv[2]
    sys.path.insert(0, package_dir)
    spec = json.load(open(input_path))
    report = {"sys_path": sys.path, "visible_dev_packages": [], "import_errors": {}, "handlers": {}}

    for name in spec["dev_only"]:
        if importlib.util.find_spec(name) is not None:
            report["visible_dev_packages"].append(name)
    for name in spec["modules"]:
        try:
            module = importlib.import_module(name)
            if not getattr(module, "__file__", "").startswith(package_dir) and name.split(".")[0] not in sys.stdlib_module_names:
                report["import_errors"][name] = "imported from outside the package: " + str(module.__file__)
        except Exception as exc:  # noqa: BLE001 - reported, the test fails on it
            report["import_errors"][name] = type(exc).__name__ + ": " + str(exc)
    for handler in spec["handlers"]:
        module, attribute = handler.rsplit(".", 1)
        report["handlers"][handler] = callable(getattr(importlib.import_module(module), attribute))

    from chalicelib.auth import verify_token

    principal = verify_token("Bearer " + spec["tokens"]["shopper"])
    report["verified"] = {"role": principal.role, "sub": principal.sub}

    import app

    report["responses"] = []
    for request in spec["requests"]:
        token = spec["tokens"][request["as"]]
        event = api_event(request["method"], request["resource"], request.get("path_parameters"), token,
                          request.get("body"), request.get("headers"))
        response = app.app(event, Context())
        report["responses"].append({"status": response["statusCode"], "body": json.loads(response["body"] or "null")})

    # The page request the escalation put on the queue, through the packaged sender, as Lambda's SQS trigger would.
    incident = report["responses"][-1]["body"].get("incident", {})
    if spec.get("page_queue_url") and incident:
        import boto3

        sqs = boto3.client("sqs")
        deadline, messages = time.monotonic() + 20, []
        while time.monotonic() < deadline and not messages:
            messages = sqs.receive_message(QueueUrl=spec["page_queue_url"], WaitTimeSeconds=1,
                                           MaxNumberOfMessages=1).get("Messages", [])
        report["page_request"] = messages[0]["Body"] if messages else None
        if messages:
            message = messages[0]
            app.send_pages({"Records": [{
                "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": spec["page_queue_arn"], "awsRegion": "us-east-1"}]}, Context())
            events = timeline_of(app, incident["id"], spec["tokens"]["admin"])
            report["timeline"] = [e["type"] for e in events]
            # The carrier's receipt for that page, as SNS delivery status logging and the log group's subscription
            # filter hand it to the packaged sms_receipts (powertools' CloudWatchLogsModel parses it).
            message_ids = [e["details"].get("message_id") for e in events if e["type"] == "paged"]
            if message_ids and message_ids[0]:
                report["receipt"] = app.sms_receipts(delivery_log_event(message_ids[0]), Context())
                report["timeline_after_receipt"] = [e["type"] for e in timeline_of(app, incident["id"],
                                                                                    spec["tokens"]["admin"])]
    if spec.get("check_in"):
        report["check_in"] = missed_check_in(app, spec)
    import sysconfig

    stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    report["loaded_from_outside"] = sorted(
        f"{name}: {module.__file__}" for name, module in list(sys.modules.items())
        if name not in ("__main__", "__mp_main__") and getattr(module, "__file__", None)
        and not module.__file__.startswith((package_dir, *stdlib)))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
