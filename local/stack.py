"""The embedded local stack: moto server (with Step Functions execution), the resources of infra/, the Chalice API,
and the dev server (local/dev_server.py). `python -m local.stack` is what `make run` starts; tests start the same
thing on free ports.

What stands in for AWS plumbing, and only here:
- the SNS -> Lambda subscription of the inbound-sms topic: an `http` subscription to the dev server, which wraps the
  notification in the Lambda SNS event and calls the same `inbound_sms` handler Lambda calls (retrying a failure
  twice, as Lambda's asynchronous invocation does);
- the SQS -> Lambda event source mappings of the page and jobs queues: receiver threads that each take one message
  at a time (batch size 1, as configured), call `send_pages` / `run_jobs`, and delete the message only when the
  handler returned (else SQS delivers it again);
- SNS SMS delivery status logs -> `sms_receipts`: the dev server plays the carrier (POST /dev/sms/{id}/status);
- End User Messaging voice calls: the dev server records them (GET /dev/calls); the dispatch provider: played by
  local/fake_dispatch.py under /dev/provider and /dev/dispatches.
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
from http.server import ThreadingHTTPServer
from typing import Any

from local import iam_recorder

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# http.server listens with a backlog of 5: fifty phones replying at once got connection resets.
LISTEN_BACKLOG = 128
# Lambda's SQS event source mapping scales out per queue; locally this many receivers per queue (the deployment sets
# the same MaximumConcurrency on send_pages).
RECEIVERS = {"send_pages": 4, "run_jobs": 4}
FUNCTION_TIMEOUT_MS = {"api_handler": 30_000, "inbound_sms": 30_000, "send_pages": 60_000, "run_jobs": 60_000,
                       "sms_receipts": 30_000}
log = logging.getLogger("local.stack")


@dataclass
class LocalStack:
    aws_port: int = 5000
    api_port: int = 8000
    dev_port: int = 8001
    seed: bool = True
    # A state file to keep incidents and the directory across restarts (local/state.py); None: memory only.
    state_file: str | None = None
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
        iam_recorder.install_from_environment()  # IAM_CALLS_FILE set (tests): record each Lambda's AWS calls
        self._configure_environment()
        self._start_moto()
        self._create_resources()
        from local.carrier import Carrier

        self.sms = Carrier.install(ACCOUNT_ID, REGION)
        import app as lambda_entry  # after the environment: the app reads it on first use

        self.app = lambda_entry.app
        self.handlers = lambda_entry
        iam_recorder.attribute_api_calls(self.app)  # while recording: the API routes' calls are api_handler's
        from chalice.test import Client

        self.events = Client(self.app).events
        self.state = None
        loaded = None
        if self.state_file:
            from pathlib import Path

            from local.state import LocalState

            self.state = LocalState(Path(self.state_file), self)
            loaded = self.state.load()
        if self.seed and loaded is None:
            from local.seed import seed_demo

            seed_demo()
        self._start_dev_server()
        self._subscribe_inbound_sms()
        for function, queue_env in (("send_pages", "PAGE_QUEUE_URL"), ("run_jobs", "JOBS_QUEUE_URL")):
            for number in range(RECEIVERS[function]):
                self._thread(lambda f=function, q=queue_env: self._receive(f, self.env[q]), f"{function}-{number}")
        if self.state is not None:
            if loaded is not None:
                from chalicelib.services import get_services

                self.restarted = self.state.rearm(get_services())
            self._thread(self.state.keep_saving, "state")
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
        os.environ["LOCAL_STACK"] = "1"
        os.environ.setdefault("TOKEN_SECRET", secrets.token_hex(32))
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ["DISPATCH_API_URL"] = f"{self.dev_url}/dev/provider"
        os.environ.setdefault("DISPATCH_API_TOKEN", secrets.token_hex(16))
        os.environ.setdefault("DISPATCH_WEBHOOK_SECRET", secrets.token_hex(32))
        os.environ["VOICE_PROVIDER"] = "dev"
        os.environ["VOICE_DEV_URL"] = f"{self.dev_url}/dev/calls"
        os.environ.setdefault("EMAIL_FROM", "alerts@trust-safety.local")

    def _start_moto(self) -> None:
        import requests
        from moto.server import ThreadedMotoServer

        from local import moto_fixes

        moto_fixes.apply()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines drown the service's
        server = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        server.start()
        self._servers.append(server)
        requests.post(f"{self.aws_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                      timeout=5)

    def _create_resources(self) -> None:
        import boto3

        from local.resources import LocalStackBuilder, service_environment

        session = boto3.Session(region_name=REGION)
        created = LocalStackBuilder(session, self.aws_url).create_all()
        self.env = service_environment(created)
        os.environ.update(self.env)
        # SES sends only from a verified identity, locally as on AWS.
        session.client("ses", endpoint_url=self.aws_url).verify_email_identity(EmailAddress=os.environ["EMAIL_FROM"])
        from chalicelib.config import settings

        settings.cache_clear()

    def _start_api(self) -> None:
        from chalice.config import Config
        from chalice.local import create_local_server

        config = Config.create(chalice_stage="local", app_name=self.app.app_name, chalice_app=self.app)
        server = create_local_server(self.app, config, self.host, self.api_port)
        server.server.socket.listen(LISTEN_BACKLOG)
        self._servers.append(server)
        self._thread(server.serve_forever, "api")

    def _start_dev_server(self) -> None:
        from local.dev_server import dev_handler
        from local.fake_dispatch import FakeDispatchProvider

        self.dispatch = FakeDispatchProvider(lambda: f"{self.api_url}/v1/dispatch/webhook",
                                             os.environ["DISPATCH_WEBHOOK_SECRET"], os.environ["DISPATCH_API_TOKEN"])
        self.calls: list[dict] = []
        server = ThreadingHTTPServer((self.host, self.dev_port), dev_handler(self))
        server.socket.listen(LISTEN_BACKLOG)
        server.daemon_threads = True
        self._servers.append(server)
        self._thread(server.serve_forever, "dev")

    def _subscribe_inbound_sms(self) -> None:
        import boto3

        sns = boto3.client("sns", region_name=REGION, endpoint_url=self.aws_url)
        sns.subscribe(TopicArn=self.env["INBOUND_SMS_TOPIC_ARN"], Protocol="http", Endpoint=f"{self.dev_url}/dev/sns")

    def _thread(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- invoking the functions, as Lambda would ---------------------------------------------------------------
    def invoke(self, function: str, event: dict) -> Any:
        """Every event handler call goes through here (one Lambda invocation, with its own context)."""
        from chalice.local import LambdaContext

        context = LambdaContext(function, 512, FUNCTION_TIMEOUT_MS[function])
        with iam_recorder.function_context(function):
            return getattr(self.handlers, function)(event, context)

    def deliver_sns(self, notification: dict) -> None:
        """The inbound-sms topic's delivery to `inbound_sms`. Lambda invokes SNS subscribers asynchronously and
        retries a failed invocation twice; so does this."""
        event = self.events.generate_sns_event(notification.get("Message", ""), notification.get("Subject") or "")
        record = event["Records"][0]
        record["EventSubscriptionArn"] = f"{notification.get('TopicArn')}:local"
        record["Sns"].update({"MessageId": notification.get("MessageId", str(uuid.uuid4())),
                              "TopicArn": notification.get("TopicArn"),
                              "Timestamp": notification.get("Timestamp", record["Sns"]["Timestamp"]),
                              "MessageAttributes": notification.get("MessageAttributes", {})})
        for attempt in range(3):
            try:
                self.invoke("inbound_sms", event)
                return
            except Exception:  # noqa: BLE001 - as on Lambda: retried, then (there) the dead-letter queue
                log.exception("inbound_sms failed (attempt %d of 3)", attempt + 1)
                if attempt == 2:
                    raise
                time.sleep(0.5 * (attempt + 1))

    def _receive(self, function: str, queue_url: str) -> None:
        """One receiver of Lambda's SQS event source mapping: one message at a time, continuously."""
        import boto3

        sqs = boto3.client("sqs", region_name=REGION, endpoint_url=self.aws_url)
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                               AttributeNames=["All"]).get("Messages", [])
            except Exception:  # noqa: BLE001 - the endpoint is going away at shutdown
                if self._stopping.is_set():
                    return
                log.exception("queue poll failed")
                time.sleep(0.5)
                continue
            for message in messages:
                event = self.events.generate_sqs_event([message["Body"]], queue_arn.rsplit(":", 1)[-1])
                event["Records"][0].update({
                    "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                    "attributes": message.get("Attributes", {}), "md5OfBody": message.get("MD5OfBody"),
                    "eventSourceARN": queue_arn, "awsRegion": REGION})
                try:
                    self.invoke(function, event)
                except Exception as exc:  # noqa: BLE001 - as on Lambda: the message stays and is delivered again
                    log.warning("%s failed, the message will be delivered again: %s", function, exc)
                    continue
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # --- dev helpers -------------------------------------------------------------------------------------------
    def mint_token(self, role: str, sub: str) -> str:
        from local.tokens import issue_token

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

    def sms_receipt(self, message_id: str, status: str) -> dict:
        """The carrier's delivery receipt, as SNS delivery status logging and a Logs subscription deliver it."""
        event = self.sms.receipt_event(message_id, status)
        return self.invoke("sms_receipts", event)

    # --- stop --------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stops taking work, lets the handlers that run finish (a page published is also recorded), saves the state,
        then shuts the servers down."""
        self._stopping.set()
        for thread in self._threads:
            if thread.name.startswith(tuple(RECEIVERS)):
                thread.join(timeout=30)
        if getattr(self, "state", None) is not None:
            try:
                self.state.stop()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.exception("could not save the local state")
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


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stack = LocalStack(
        aws_port=int(os.environ.get("LOCAL_AWS_PORT", "5000")),
        api_port=int(os.environ.get("PORT", "8000")),
        dev_port=int(os.environ.get("DEV_PORT", "8001")),
        seed=os.environ.get("SEED", "1") != "0",
        state_file=None if os.environ.get("PERSIST", "1") == "0" else os.environ.get("LOCAL_STATE_FILE",
                                                                                   ".local-state/state.json"),
    ).start()
    print(f"local AWS   {stack.aws_url}")
    print(f"API         {stack.api_url}/v1/health")
    print(f"console     {stack.dev_url}/")
    print(f"dev server  {stack.dev_url}  (POST /dev/tokens, GET /dev/sms, POST /dev/sms/inbound, GET /dev/dispatches)")
    print(f"review      {stack.api_url}/review")
    print(f"inbound-sms {stack.env['INBOUND_SMS_TOPIC_ARN']}")
    if stack.state is not None:
        restarted = getattr(stack, "restarted", None)
        print(f"state       {stack.state.path} (PERSIST=0 for memory only)"
              + (f"; restored, timers restarted: {restarted}" if restarted else ""))
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
