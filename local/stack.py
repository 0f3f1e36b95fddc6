"""The embedded local stack: moto server (with Step Functions execution), the resources of infra/, the Chalice API,
and the dev server. `python -m local.stack` is what `make run` starts; tests start the same thing on free ports.

What stands in for AWS plumbing, and only here:
- the SNS -> Lambda subscription of the inbound-sms topic: an `http` subscription to the dev server, which wraps the
  notification in the Lambda SNS event and calls the same `inbound_sms` handler Lambda calls;
- the SQS -> Lambda event source mapping of the page queue: a poller thread that wraps messages in the Lambda SQS
  event, calls `send_pages`, and deletes a message only when the handler returned (else SQS redelivers it).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pathlib import Path

REGION = "us-east-1"
# http.server listens with a backlog of 5: fifty phones replying at once got connection resets.
LISTEN_BACKLOG = 128
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
                 ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json"}
ACCOUNT_ID = "123456789012"
log = logging.getLogger("local.stack")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RecordedSms(dict):
    """Replaces moto's SNS `sms_messages` dict so every SMS also gets the time it was sent (moto keeps none)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: dict[str, str] = {}
        self.lock = threading.Lock()

    def __setitem__(self, message_id: str, value: tuple[str, str]) -> None:
        with self.lock:
            self.sent_at[message_id] = _iso(datetime.now(timezone.utc))
            super().__setitem__(message_id, value)

    def listing(self) -> list[dict]:
        with self.lock:
            return [
                {"to": to, "body": body, "message_id": mid, "sent_at": self.sent_at.get(mid)}
                for mid, (to, body) in self.items()
            ]


@dataclass
class LocalStack:
    aws_port: int = 5000
    api_port: int = 8000
    dev_port: int = 8001
    seed: bool = True
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)
    _servers: list[Any] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def aws_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def dev_url(self) -> str:
        return f"http://{self.host}:{self.dev_port}"

    # --- start -------------------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        self._configure_environment()
        self._start_moto()
        self._create_resources()
        self._install_sms_recorder()
        import app as lambda_entry  # after the environment: the app reads it on first use

        self.app = lambda_entry.app
        self.handlers = lambda_entry
        if self.seed:
            from local.seed import seed_demo

            seed_demo()
        self._start_dev_server()
        self._subscribe_inbound_sms()
        self._start_page_poller()
        self._start_api()  # last: once /v1/health answers, everything is ready
        return self

    def _configure_environment(self) -> None:
        # The state machine executor calls back into moto on localhost:$MOTO_PORT (see shared LOCAL-AWS notes).
        os.environ["MOTO_PORT"] = str(self.aws_port)
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ["AWS_DEFAULT_REGION"] = REGION
        os.environ["AWS_REGION"] = REGION
        os.environ["AWS_ENDPOINT_URL"] = self.aws_url
        os.environ.setdefault("TOKEN_SECRET", secrets.token_hex(32))
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    def _start_moto(self) -> None:
        import requests
        from moto.server import ThreadedMotoServer

        from local import moto_fixes

        moto_fixes.apply()

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines drown the service's
        server = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        server.start()
        self._servers.append(server)
        requests.post(f"{self.aws_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=5)

    def _create_resources(self) -> None:
        import boto3

        from local.resources import LocalStackBuilder, service_environment

        created = LocalStackBuilder(boto3.Session(region_name=REGION), self.aws_url).create_all()
        self.env = service_environment(created)
        os.environ.update(self.env)
        from chalicelib.config import settings

        settings.cache_clear()

    def _install_sms_recorder(self) -> None:
        from moto.sns.models import sns_backends

        backend = sns_backends[ACCOUNT_ID][REGION]
        recorder = RecordedSms()
        recorder.update(backend.sms_messages)
        backend.sms_messages = recorder
        self.sms = recorder

    def _start_api(self) -> None:
        from chalice.config import Config
        from chalice.local import create_local_server

        config = Config.create(chalice_stage="local", app_name=self.app.app_name, chalice_app=self.app)
        server = create_local_server(self.app, config, self.host, self.api_port)
        server.server.socket.listen(LISTEN_BACKLOG)
        self._servers.append(server)
        self._thread(server.serve_forever, "api")

    def _start_dev_server(self) -> None:
        server = ThreadingHTTPServer((self.host, self.dev_port), _dev_handler(self))
        server.socket.listen(LISTEN_BACKLOG)
        server.daemon_threads = True
        self._servers.append(server)
        self._thread(server.serve_forever, "dev")

    def _subscribe_inbound_sms(self) -> None:
        import boto3

        sns = boto3.client("sns", region_name=REGION, endpoint_url=self.aws_url)
        sns.subscribe(TopicArn=self.env["INBOUND_SMS_TOPIC_ARN"], Protocol="http", Endpoint=f"{self.dev_url}/dev/sns")

    def _start_page_poller(self) -> None:
        self._thread(self._poll_pages, "page-poller")

    def _thread(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- event source emulation --------------------------------------------------------------------------------
    def deliver_sns(self, notification: dict) -> None:
        event = {"Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": f"{notification.get('TopicArn')}:local",
            "Sns": {
                "Type": notification.get("Type", "Notification"),
                "MessageId": notification.get("MessageId", str(uuid.uuid4())),
                "TopicArn": notification.get("TopicArn"),
                "Subject": notification.get("Subject"),
                "Message": notification.get("Message", ""),
                "Timestamp": notification.get("Timestamp", _iso(datetime.now(timezone.utc))),
                "MessageAttributes": notification.get("MessageAttributes", {}),
            },
        }]}
        self.handlers.inbound_sms(event, None)

    def _poll_pages(self) -> None:
        import boto3

        sqs = boto3.client("sqs", region_name=REGION, endpoint_url=self.aws_url)
        queue_url = self.env["PAGE_QUEUE_URL"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
                ).get("Messages", [])
            except Exception:  # noqa: BLE001 - the endpoint is going away at shutdown
                if self._stopping.is_set():
                    return
                log.exception("page queue poll failed")
                time.sleep(0.5)
                continue
            # Each message is one Lambda invocation (batch_size=1), concurrently, as Lambda would scale out.
            workers = [threading.Thread(target=self._invoke_send_pages, args=(sqs, queue_url, queue_arn, m), daemon=True)
                       for m in messages]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

    def _invoke_send_pages(self, sqs, queue_url: str, queue_arn: str, message: dict) -> None:
        event = {"Records": [{
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        }]}
        try:
            self.handlers.send_pages(event, None)
        except Exception as exc:  # noqa: BLE001 - as on Lambda: the message stays and is redelivered
            log.warning("send_pages failed, message will be redelivered: %s", exc)
            # Lambda's SQS poller makes it visible again after the visibility timeout; shorten that locally.
            try:
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=1)
            except Exception:  # noqa: BLE001
                pass
            return
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # --- dev helpers -------------------------------------------------------------------------------------------
    def mint_token(self, role: str, sub: str) -> str:
        from chalicelib.auth import issue_token

        return issue_token(role, sub, os.environ["TOKEN_SECRET"])

    def publish_inbound_sms(self, origination: str, body: str, destination: str = "+18005550100",
                            previous_message_id: str | None = None) -> str:
        import boto3

        inbound_id = str(uuid.uuid4())
        words = body.strip().split()
        message = {
            "originationNumber": origination,
            "destinationNumber": destination,
            "messageKeyword": words[0].upper() if words else "",
            "messageBody": body,
            "inboundMessageId": inbound_id,
            "previousPublishedMessageId": previous_message_id or "",
        }
        sns = boto3.client("sns", region_name=REGION, endpoint_url=self.aws_url)
        sns.publish(TopicArn=self.env["INBOUND_SMS_TOPIC_ARN"], Message=json.dumps(message))
        return inbound_id

    # --- stop --------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()
        for server in reversed(self._servers):
            try:
                if hasattr(server, "shutdown"):
                    server.shutdown()
                if hasattr(server, "server_close"):
                    server.server_close()
                elif hasattr(server, "server") and hasattr(server.server, "server_close"):
                    server.server.server_close()
                if hasattr(server, "stop"):
                    server.stop()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass


def _dev_handler(stack: LocalStack):
    class DevHandler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json_body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            data = json.loads(raw or b"{}")
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            return data

        def _static(self, relative: str) -> None:
            """The local console (local/console/): plain files, no build step."""
            path = (CONSOLE_DIR / (relative or "index.html")).resolve()
            if CONSOLE_DIR.resolve() not in path.parents or not path.is_file():
                self._send(404, {"error": {"code": "not_found", "message": "no such file"}})
                return
            payload = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            route = self.path.split("?")[0]
            if route == "/" or route.startswith("/console/"):
                self._static(route.removeprefix("/").removeprefix("console/"))
            elif route.startswith("/api/"):
                self._proxy("GET")
            elif self.path.split("?")[0] == "/dev/sms":
                self._send(200, {"messages": stack.sms.listing()})
            elif self.path == "/dev/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": {"code": "not_found", "message": "no such dev endpoint"}})

        def do_PUT(self) -> None:
            self._proxy("PUT")

        def do_DELETE(self) -> None:
            self._proxy("DELETE")

        def _proxy(self, method: str) -> None:
            """/api/<path> -> the API's /<path>: the console is served from this origin and calls the public API
            through it, so the API needs no CORS for a local-only page."""
            import requests

            if not self.path.startswith("/api/"):
                self._send(404, {"error": {"code": "not_found", "message": "no such dev endpoint"}})
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("authorization", "content-type", "idempotency-key")}
            upstream = requests.request(method, stack.api_url + self.path.removeprefix("/api"), data=body,
                                        headers=headers, timeout=30)
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

        def do_POST(self) -> None:
            if self.path.startswith("/api/"):
                self._proxy("POST")
                return
            try:
                body = self._json_body()
            except ValueError:
                self._send(400, {"error": {"code": "bad_request", "message": "body is not a JSON object"}})
                return
            path = self.path.split("?")[0]
            if path == "/dev/tokens":
                role, sub = body.get("role"), body.get("sub")
                if role not in ("shopper", "responder", "reviewer", "admin") or not isinstance(sub, str) or not sub:
                    self._send(422, {"error": {"code": "validation_error", "message": "role and sub are required",
                                               "details": [{"field": "role", "problem": "must be a known role"}]}})
                    return
                self._send(200, {"token": stack.mint_token(role, sub)})
            elif path == "/dev/sms/inbound":
                sender, text = body.get("from"), body.get("body")
                if not isinstance(sender, str) or not isinstance(text, str):
                    self._send(422, {"error": {"code": "validation_error", "message": "from and body are required",
                                               "details": [{"field": "from", "problem": "required"}]}})
                    return
                inbound_id = stack.publish_inbound_sms(sender, text, previous_message_id=body.get("previous_message_id"))
                self._send(202, {"inbound_message_id": inbound_id})
            elif path == "/dev/sns":
                # moto's http delivery of the inbound-sms topic: what Lambda's SNS trigger does on AWS.
                try:
                    stack.deliver_sns(body)
                except Exception:  # noqa: BLE001 - as on Lambda: log; SNS would retry
                    log.exception("inbound SMS handler failed")
                    self._send(500, {"error": {"code": "internal_error", "message": "handler failed"}})
                    return
                self._send(200, {})
            else:
                self._send(404, {"error": {"code": "not_found", "message": "no such dev endpoint"}})

    return DevHandler


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stack = LocalStack(
        aws_port=int(os.environ.get("LOCAL_AWS_PORT", "5000")),
        api_port=int(os.environ.get("PORT", "8000")),
        dev_port=int(os.environ.get("DEV_PORT", "8001")),
        seed=os.environ.get("SEED", "1") != "0",
    ).start()
    print(f"local AWS   {stack.aws_url}")
    print(f"API         {stack.api_url}/v1/health")
    print(f"console     {stack.dev_url}/")
    print(f"dev server  {stack.dev_url}  (POST /dev/tokens, GET /dev/sms, POST /dev/sms/inbound)")
    print(f"review      {stack.api_url}/review")
    print(f"inbound-sms {stack.env['INBOUND_SMS_TOPIC_ARN']}")
    print("ready. Ctrl-C stops everything.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    stack.stop()


if __name__ == "__main__":
    main()
