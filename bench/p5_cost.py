"""P5 cost per incident and per check-in: every AWS request one of them makes on the local stack, priced with public
us-east-1 list prices.

Scenarios, each run on its own with nothing else going on, with a fresh roster and policy (one warm-up incident
first, not counted):
- `acknowledged` (typical): panic POST with Idempotency-Key -> tier-1 page -> the responder replies `ACK <code>`
  (confirmation SMS) -> `RES <code> note` (confirmation SMS) -> the timer wakes, finds it resolved, stops.
- `unacknowledged`: 2 tiers, nobody answers: tier-1 page, tier-2 page, exhausted page to both.
- `failover`: the tier-1 page fails at the carrier; the responder (voice and email on file) gets the call and the
  email, then ACKs and resolves by SMS. The policy's `delivery_timeout_s` is 5 s, so the delivery check the page
  scheduled runs (and finds the page failed over already) within the scenario.
- `check_in_completed`: a check-in started and completed before it is due (its timer stopped).
- `check_in_missed`: a check-in not completed: its timer fires, a `missed_check_in` incident opens and is paged,
  ACKed and resolved as in `acknowledged`. The check-in's own cost is this minus an incident.
The carrier answers every SMS with a delivery receipt, as SNS delivery status logging does for every SMS of the
account (the deployment subscribes `sms_receipts` to all of them): each receipt is a log line ingested and one
`sms_receipts` invocation.

Counted from the run: AWS requests by origin (bench/awscalls.py), DynamoDB write/read request units from item sizes,
Step Functions state transitions of every execution the scenario started (one per state entered), Lambda invocations
and their durations measured in-process (wall time; billed per started ms at the configured memory), SQS requests
(the event source mapping's empty long polls are a fixed cost per month, not per incident: left out), SMS parts
(GSM-7 segments of each text), emails (SES), voice calls (one started minute each), log lines ingested.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

from bench.awscalls import AwsCallRecorder
from bench.common import (
    PANIC_BODY,
    ROOT,
    api_event,
    cli_args,
    execution_history,
    invoke_api,
    settle,
    sfn_client,
    start_stack,
    state_transitions,
    world,
    write_result,
)
from local.polling import poll_until
from tests.support.people import new_phone, unique

LAMBDA_MEMORY_MB = json.loads((ROOT / ".chalice" / "config.json").read_text()).get("lambda_memory_size", 128)
TARGET_INCIDENT_USD = 0.001  # per typical incident, everything but SMS
# Public us-east-1 list prices (the issue's, plus the other services an incident touches).
PRICES = {
    "sfn_transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "ddb_wru": 0.625 / 1e6,  # DynamoDB on-demand write request unit
    "ddb_rru": 0.125 / 1e6,  # DynamoDB on-demand read request unit
    "lambda_gb_s": 0.0000166667,  # Lambda x86 duration
    "lambda_request": 0.20 / 1e6,  # Lambda requests
    "sqs_request": 0.40 / 1e6,  # SQS standard queue requests
    "sns_publish": 0.50 / 1e6,  # SNS topic publish, inbound-sms
    "apigw_request": 3.50 / 1e6,  # API Gateway REST API request, Chalice's default
    "ses_email": 0.10 / 1000,  # SES outbound email
    "logs_ingested_gb": 0.50,  # CloudWatch Logs ingestion: SNS SMS delivery status log lines
}
SCENARIOS = ("acknowledged", "unacknowledged", "failover", "check_in_completed", "check_in_missed")


def _sms_parts(text: str) -> int:
    from chalicelib.domain.sms_texts import sms_parts

    return sms_parts(text)


class LambdaLog:
    """Wall time of each handler invocation, as Lambda would bill it (per started millisecond)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, float]] = []  # (function, seconds)
        self.lock = threading.Lock()

    def wrap(self, name: str, handler):
        def timed(event, context):
            t0 = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                self.add(name, time.perf_counter() - t0)

        return timed

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.entries.append((name, seconds))

    def mark(self) -> int:
        with self.lock:
            return len(self.entries)

    def since(self, mark: int) -> list[tuple[str, float]]:
        with self.lock:
            return self.entries[mark:]


class Carrier:
    """Answers every SMS the stack sends with a delivery receipt, as SNS delivery status logging does: `delivered`,
    or `failed` for numbers told to fail. Each receipt runs in a thread of its own (Lambda runs them concurrently)."""

    def __init__(self, stack):
        self.stack = stack
        self.fail_phones: set[str] = set()
        self.answered: set[str] = set()
        self.log_bytes = 0
        self.lock = threading.Lock()
        self.running: list[threading.Thread] = []
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True, name="bench-carrier").start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for message in self.stack.sms.listing():
                if message["message_id"] in self.answered:
                    continue
                self.answered.add(message["message_id"])
                status = "failed" if message["to"] in self.fail_phones else "delivered"
                thread = threading.Thread(target=self._receipt, args=(message["message_id"], status), daemon=True)
                with self.lock:
                    self.running.append(thread)
                thread.start()

    def _receipt(self, message_id: str, status: str) -> None:
        event = self.stack.sms.receipt_event(message_id, status)
        payload = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
        with self.lock:
            self.log_bytes += sum(len(entry["message"].encode()) for entry in payload["logEvents"])
        self.stack.invoke("sms_receipts", event)

    def idle(self) -> bool:
        """Every SMS sent so far has its receipt recorded."""
        with self.lock:
            running = [t for t in self.running if t.is_alive()]
            self.running = running
        return not running and all(m["message_id"] in self.answered for m in self.stack.sms.listing())

    def stop(self) -> None:
        self._stop.set()


def price(calls, lambdas: list[tuple[str, float]], transitions: int, voice_calls: int, log_bytes: int,
          voice_minute_usd: float) -> dict:
    """Line items of one scenario run."""
    wru = sum(c.wru for c in calls)
    rru = sum(c.rru for c in calls)
    sqs = [c for c in calls if c.service == "sqs" and not (c.operation == "ReceiveMessage" and c.messages == 0)]
    topic_publishes = [c for c in calls if c.service == "sns" and c.operation == "Publish" and c.sms_text is None]
    emails = [c for c in calls if c.service == "ses" and c.operation == "SendEmail"]
    sms_out = [c for c in calls if c.sms_text is not None]
    api_requests = sum(1 for name, _s in lambdas if name == "api")
    billed_ms = {name: sum(math.ceil(s * 1000) for n, s in lambdas if n == name) for name, _s in lambdas}
    gb_s = sum(billed_ms.values()) / 1000 * LAMBDA_MEMORY_MB / 1024
    items = [
        ("Step Functions state transitions", transitions, PRICES["sfn_transition"]),
        ("DynamoDB write request units", wru, PRICES["ddb_wru"]),
        ("DynamoDB read request units", rru, PRICES["ddb_rru"]),
        ("Lambda requests", len(lambdas), PRICES["lambda_request"]),
        (f"Lambda GB-s ({LAMBDA_MEMORY_MB} MB, {sum(billed_ms.values())} ms billed)", gb_s, PRICES["lambda_gb_s"]),
        ("SQS requests (send, receive with messages, delete)", len(sqs), PRICES["sqs_request"]),
        ("SNS topic publishes (inbound SMS)", len(topic_publishes), PRICES["sns_publish"]),
        ("API Gateway REST requests", api_requests, PRICES["apigw_request"]),
        ("SES emails (failover)", len(emails), PRICES["ses_email"]),
        ("Voice calls (failover, one started minute each)", voice_calls, voice_minute_usd),
        ("CloudWatch Logs ingested, GB (SMS delivery status)", log_bytes / 1e9, PRICES["logs_ingested_gb"]),
    ]
    lines = [{"item": name, "quantity": qty, "unit_usd": unit, "usd": qty * unit} for name, qty, unit in items]
    return {
        "lines": lines,
        "aws_usd": sum(line["usd"] for line in lines),
        "sms_out": [{"text": c.sms_text, "parts": _sms_parts(c.sms_text)} for c in sms_out],
        "sms_out_parts": sum(_sms_parts(c.sms_text) for c in sms_out),
        "lambda_invocations": dict(Counter(name for name, _s in lambdas)),
        "lambda_billed_ms": billed_ms,
        "wru": wru,
        "rru": rru,
        "transitions": transitions,
    }


def main() -> None:
    args = cli_args()
    repeats = int(args.get("repeats", 3))
    timeout_s = int(args.get("tier-timeout", 2))
    voice_minute_usd = float(args.get("voice-minute-usd", 0.013))

    stack = start_stack()
    recorder = AwsCallRecorder(ddb_units=True).install()
    lambdas = LambdaLog()
    for name in ("send_pages", "inbound_sms", "run_jobs", "sms_receipts"):
        setattr(stack.handlers, name, lambdas.wrap(name, getattr(stack.handlers, name)))
    carrier = Carrier(stack)
    people = world(stack.api_url, stack.dev_url)
    sfn = sfn_client(stack.aws_url)
    machines = (stack.env["ESCALATION_STATE_MACHINE_ARN"], stack.env["TIMER_STATE_MACHINE_ARN"])
    roster: dict[str, dict] = {}

    def executions() -> set[str]:
        found = set()
        for machine in machines:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
                found |= {e["executionArn"] for e in page["executions"]}
        return found

    def new_roster(scenario: str) -> None:
        """A fresh policy per run (routing is global): two tiers, or one responder with voice and email."""
        if scenario == "failover":
            responder = {"id": unique("r"), "phone": new_phone()}
            response = people.admin.put(f"/v1/responders/{responder['id']}", json={
                "name": "Failover", "phone": responder["phone"], "voice": True, "email": "failover@example.com"})
            assert response.status_code == 201, response.text
            policy = unique("p")
            response = people.admin.put(f"/v1/escalation-policies/{policy}", json={
                "tiers": [{"targets": [{"responder": responder["id"]}], "timeout_s": timeout_s}],
                "delivery_timeout_s": 5})
            assert response.status_code == 201, response.text
            roster["first"] = responder
            carrier.fail_phones = {responder["phone"]}
        else:
            roster["first"], roster["second"] = people.responder(), people.responder()
            policy = people.policy([[roster["first"]], [roster["second"]]], [timeout_s, timeout_s])
            carrier.fail_phones = set()
        people.route_all_to(policy)

    def call_api(shopper: str, method: str, resource: str, body: dict | None = None, path: dict | None = None,
                 headers: dict | None = None) -> dict:
        event = api_event(method, resource, stack.mint_token("shopper", shopper), body, path, headers)
        t0 = time.perf_counter()
        status, answer = invoke_api(stack.app, event)
        lambdas.add("api", time.perf_counter() - t0)
        assert status in (200, 201), answer
        return answer

    def texts_to(phone: str, reference: str, prefix: str) -> list[dict]:
        return [m for m in stack.sms.listing()
                if m["to"] == phone and m["body"].startswith(prefix) and reference in m["body"]]

    def open_incident() -> dict:
        return call_api(f"p5-{uuid.uuid4().hex[:8]}", "POST", "/v1/incidents", PANIC_BODY,
                        headers={"Idempotency-Key": uuid.uuid4().hex})["incident"]

    def acknowledge_and_resolve(incident: dict) -> None:
        first = roster["first"]
        reference, code = incident["reference"], incident["reference"][3:7]
        assert poll_until(lambda: texts_to(first["phone"], reference, "EMERGENCY"), 30), "no tier-1 page"
        stack.publish_inbound_sms(first["phone"], f"ACK {code}")
        assert poll_until(lambda: texts_to(first["phone"], reference, "You acknowledged"), 30), "no ACK confirmation"
        stack.publish_inbound_sms(first["phone"], f"RES {code} helped the shopper")
        assert poll_until(lambda: texts_to(first["phone"], reference, "Resolved"), 30), "no RES confirmation"

    def acknowledged() -> None:
        acknowledge_and_resolve(open_incident())

    def unacknowledged() -> None:
        reference = open_incident()["reference"]
        assert poll_until(lambda: texts_to(roster["first"]["phone"], reference, "EXHAUSTED")
                          and texts_to(roster["second"]["phone"], reference, "EXHAUSTED"), 2 * timeout_s + 30)

    def failover() -> None:
        calls_before, lambda_mark = len(stack.calls), lambdas.mark()
        incident = open_incident()
        assert poll_until(lambda: len(stack.calls) > calls_before, 30), "no failover call"
        acknowledge_and_resolve(incident)
        # The page's delivery check (a job delayed by delivery_timeout_s = 5) runs, and finds it failed over already.
        assert poll_until(lambda: any(name == "run_jobs" for name, _s in lambdas.since(lambda_mark)), 30), \
            "the delivery check did not run"

    def check_in_completed() -> None:
        shopper = f"p5-{uuid.uuid4().hex[:8]}"
        check_in = call_api(shopper, "POST", "/v1/check-ins", {"due_in_s": 600})["check_in"]
        call_api(shopper, "POST", "/v1/check-ins/{check_in_id}/complete", path={"check_in_id": check_in["id"]})

    def check_in_missed() -> None:
        call_api(f"p5-{uuid.uuid4().hex[:8]}", "POST", "/v1/check-ins", {"due_in_s": 5})
        # Missed, its incident opened and paged: the page to the roster's tier 1 says so (watching the SMS log makes
        # no request that would count).
        page = poll_until(lambda: next((m for m in stack.sms.listing() if m["to"] == roster["first"]["phone"]
                                        and m["body"].startswith("EMERGENCY")), None), 30)
        assert page, "the missed check-in's incident was not paged"
        acknowledge_and_resolve({"reference": page["body"].split()[1]})

    runs_of: dict[str, Callable[[], None]] = {
        "acknowledged": acknowledged, "unacknowledged": unacknowledged, "failover": failover,
        "check_in_completed": check_in_completed, "check_in_missed": check_in_missed}

    def finish(before: set[str]) -> set[str]:
        """Waits until every execution the run started has ended (a stopped timer counts) and every SMS has its
        receipt, then for the trailing work (the last deletes, the poller's next receive) to go quiet. Returns the
        executions the run started."""
        def done() -> tuple[set[str]] | None:
            new = executions() - before
            running = [arn for arn in new if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"]
            return (new,) if not running and carrier.idle() else None

        finished = poll_until(done, 2 * timeout_s + 60, interval=0.3)
        assert finished, "the scenario's executions or receipts did not finish"
        settle(window=0.5, busy=0.05, timeout=10)
        return finished[0]

    new_roster("acknowledged")
    before = executions()
    acknowledged()  # warm-up: first-use wiring of every handler
    finish(before)
    scenarios = {}
    for name in SCENARIOS:
        runs = []
        for _ in range(repeats if name == "acknowledged" else max(1, repeats - 1)):
            new_roster(name)  # set up over the API before the counting starts
            before = executions()
            settle(window=0.5, busy=0.05, timeout=10)
            mark, lambda_mark, calls_mark = recorder.mark(), lambdas.mark(), len(stack.calls)
            log_bytes = carrier.log_bytes
            runs_of[name]()
            new = finish(before)
            calls = [c for c in recorder.since(mark) if c.origin not in ("bench", "local-stack", "other")]
            transitions = sum(state_transitions(execution_history(sfn, arn)) for arn in new)
            priced = price(calls, lambdas.since(lambda_mark), transitions, len(stack.calls) - calls_mark,
                           carrier.log_bytes - log_bytes, voice_minute_usd)
            countable = [c for c in calls if not (c.operation == "ReceiveMessage" and c.messages == 0)]
            priced["requests"] = dict(Counter(f"{c.origin} {c.label}" for c in countable))
            priced["empty_receives"] = len(calls) - len(countable)
            priced["request_count"] = len(countable)
            priced["sites"] = dict(Counter(f"{c.origin} {c.label} <- {c.site}" for c in calls if c.site))
            priced["errors"] = dict(Counter(f"{c.label}: {c.error}" for c in calls if c.error))
            priced["executions"] = len(new)
            runs.append(priced)
        scenarios[name] = {"runs": runs, "aws_usd": [r["aws_usd"] for r in runs]}
    carrier.stop()

    write_result(args["out"], {
        "benchmark": "p5_cost",
        "repeats": repeats,
        "tier_timeout_s": timeout_s,
        "lambda_memory_mb": LAMBDA_MEMORY_MB,
        "prices": {**PRICES, "voice_minute": voice_minute_usd},
        "target_incident_usd": TARGET_INCIDENT_USD,
        "scenarios": scenarios,
    })
    stack.stop()


if __name__ == "__main__":
    main()
