"""P5 cost per incident: every AWS request one incident makes on the local stack, priced with public us-east-1 prices.

Scenarios, each run on its own with nothing else going on (one warm-up incident first, not counted):
- `acknowledged` (typical): panic POST with Idempotency-Key -> tier-1 page -> the responder replies `ACK <code>`
  (confirmation SMS) -> later `RES <code> note` (confirmation SMS) -> the timer wakes, finds it acknowledged, stops.
- `unacknowledged`: 2 tiers, nobody answers: tier-1 page, tier-2 page, exhausted page to both.

Counted from the run: AWS requests by origin (bench/awscalls.py), DynamoDB write/read request units from item sizes,
Step Functions state transitions from get_execution_history (one per state entered), Lambda invocations and their
durations measured in-process (wall time; billed per started ms at the configured 512 MB), SQS requests (the event
source mapping's empty long polls are a fixed cost per month, not per incident: left out), SMS parts (GSM-7 segments
of each text).
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter

from bench.awscalls import AwsCallRecorder
from bench.common import (
    ROOT,
    Directory,
    chalice_client,
    cli_args,
    execution_arn,
    execution_history,
    post_panic,
    sfn_client,
    start_stack,
    wait_until,
    write_result,
)

LAMBDA_MEMORY_MB = json.loads((ROOT / ".chalice" / "config.json").read_text()).get("lambda_memory_size", 128)

# Public us-east-1 list prices (the issue's, plus the three other services an incident touches).
PRICES = {
    "sfn_transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "ddb_wru": 0.625 / 1e6,  # DynamoDB on-demand write request unit
    "ddb_rru": 0.125 / 1e6,  # DynamoDB on-demand read request unit
    "lambda_gb_s": 0.0000166667,  # Lambda x86 duration
    "lambda_request": 0.20 / 1e6,  # Lambda requests
    "sqs_request": 0.40 / 1e6,  # SQS standard queue requests (not in the list)
    "sns_publish": 0.50 / 1e6,  # SNS topic publish, inbound-sms (not in the list)
    "apigw_request": 3.50 / 1e6,  # API Gateway REST API request, Chalice's default (not in the list)
}


def _sms_parts(text: str) -> int:
    from chalicelib.domain.sms_texts import sms_parts

    return sms_parts(text)


class LambdaLog:
    """Wall time of each handler invocation, as Lambda would bill it (per started millisecond)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, float, float]] = []  # (function, started, seconds)
        self.lock = threading.Lock()

    def wrap(self, name: str, handler):
        def timed(event, context):
            started, t0 = time.time(), time.perf_counter()
            try:
                return handler(event, context)
            finally:
                with self.lock:
                    self.entries.append((name, started, time.perf_counter() - t0))

        return timed

    def add(self, name: str, started: float, seconds: float) -> None:
        with self.lock:
            self.entries.append((name, started, seconds))

    def since(self, mark: int) -> list[tuple[str, float, float]]:
        with self.lock:
            return self.entries[mark:]


def price(calls, lambdas, transitions: int) -> dict:
    """Line items of one incident."""
    wru = sum(c.wru for c in calls)
    rru = sum(c.rru for c in calls)
    sqs = [c for c in calls if c.service == "sqs" and not (c.operation == "ReceiveMessage" and c.messages == 0)]
    topic_publishes = [c for c in calls if c.service == "sns" and c.operation == "Publish" and c.sms_text is None]
    sms_out = [c for c in calls if c.sms_text is not None]
    api_requests = sum(1 for name, *_ in lambdas if name == "api")
    billed_ms = [math.ceil(seconds * 1000) for _name, _s, seconds in lambdas]
    gb_s = sum(billed_ms) / 1000 * LAMBDA_MEMORY_MB / 1024
    items = [
        ("Step Functions state transitions", transitions, PRICES["sfn_transition"]),
        ("DynamoDB write request units", wru, PRICES["ddb_wru"]),
        ("DynamoDB read request units", rru, PRICES["ddb_rru"]),
        ("Lambda requests", len(lambdas), PRICES["lambda_request"]),
        (f"Lambda GB-s ({LAMBDA_MEMORY_MB} MB, {sum(billed_ms)} ms billed)", gb_s, PRICES["lambda_gb_s"]),
        ("SQS requests (send, receive with messages, delete)", len(sqs), PRICES["sqs_request"]),
        ("SNS topic publishes (inbound SMS)", len(topic_publishes), PRICES["sns_publish"]),
        ("API Gateway REST requests", api_requests, PRICES["apigw_request"]),
    ]
    lines = [{"item": name, "quantity": qty, "unit_usd": unit, "usd": qty * unit} for name, qty, unit in items]
    return {
        "lines": lines,
        "aws_usd": sum(line["usd"] for line in lines),
        "sms_out": [{"text": c.sms_text, "parts": _sms_parts(c.sms_text)} for c in sms_out],
        "sms_out_parts": sum(_sms_parts(c.sms_text) for c in sms_out),
        "lambda_invocations": dict(Counter(name for name, *_ in lambdas)),
        "lambda_ms": {name: [round(s * 1000, 1) for n, _t, s in lambdas if n == name] for name in {n for n, *_ in lambdas}},
        "wru": wru,
        "rru": rru,
        "transitions": transitions,
    }


def main() -> None:
    args = cli_args()
    repeats = int(args.get("repeats", 3))
    timeout_s = int(args.get("tier-timeout", 2))

    stack = start_stack()
    recorder = AwsCallRecorder(ddb_units=True).install()
    lambdas = LambdaLog()
    stack.handlers.send_pages = lambdas.wrap("send_pages", stack.handlers.send_pages)
    stack.handlers.inbound_sms = lambdas.wrap("inbound_sms", stack.handlers.inbound_sms)

    directory = Directory(stack)
    roster: dict[str, dict] = {}

    def new_roster() -> None:
        """Fresh responders and policy per incident: replies are rate limited per phone number (5 per 10 min)."""
        roster["first"], roster["second"] = directory.responder(), directory.responder()
        directory.route_all_to(directory.policy([[roster["first"]], [roster["second"]]], [timeout_s, timeout_s]))

    client = chalice_client()
    token = stack.mint_token("shopper", "bench-p5")
    sfn = sfn_client(stack)

    def texts_to(phone: str, reference: str, prefix: str) -> list[dict]:
        return [m for m in stack.sms.listing() if m["to"] == phone and m["body"].startswith(prefix) and reference in m["body"]]

    def open_incident() -> dict:
        started, t0 = time.time(), time.perf_counter()
        response = post_panic(client, token, uuid.uuid4().hex)
        lambdas.add("api", started, time.perf_counter() - t0)
        assert response.status_code == 201, response.body
        return json.loads(response.body)["incident"]

    def finish(incident: dict) -> None:
        def done():
            return sfn.describe_execution(executionArn=execution_arn(stack, incident["id"]))["status"] != "RUNNING"

        wait_until(done, timeout=2 * timeout_s + 20, interval=0.2)
        time.sleep(2.0)  # trailing work: the last page request's delete, the poller's next receive

    def acknowledged() -> dict:
        first = roster["first"]
        incident = open_incident()
        ref, code = incident["reference"], incident["code"]
        assert wait_until(lambda: texts_to(first["phone"], ref, "EMERGENCY"), 30), "no tier-1 page"
        stack.publish_inbound_sms(first["phone"], f"ACK {code}")
        assert wait_until(lambda: texts_to(first["phone"], ref, "You acknowledged"), 30), "no ACK confirmation"
        stack.publish_inbound_sms(first["phone"], f"RES {code} helped the shopper")
        assert wait_until(lambda: texts_to(first["phone"], ref, "Resolved"), 30), "no RES confirmation"
        finish(incident)
        return incident

    def unacknowledged() -> dict:
        first, second = roster["first"], roster["second"]
        incident = open_incident()
        ref = incident["reference"]
        assert wait_until(lambda: texts_to(first["phone"], ref, "EXHAUSTED") and texts_to(second["phone"], ref, "EXHAUSTED"),
                          2 * timeout_s + 30), "no exhausted pages"
        finish(incident)
        return incident

    new_roster()
    acknowledged()  # warm-up: first-use wiring of every handler
    scenarios = {}
    for name, run, times in (("acknowledged", acknowledged, repeats), ("unacknowledged", unacknowledged, max(1, repeats - 1))):
        runs = []
        for _ in range(times):
            new_roster()  # set up over the API before the counting starts
            mark, lmark = recorder.mark(), len(lambdas.entries)
            incident = run()
            calls = [c for c in recorder.since(mark) if c.origin not in ("bench", "local-stack")]
            history = execution_history(stack, incident["id"], sfn)
            transitions = sum(1 for e in history if e["type"].endswith("StateEntered"))
            priced = price(calls, lambdas.since(lmark), transitions)
            priced["requests"] = dict(Counter(f"{c.origin} {c.label}" for c in calls
                                              if not (c.operation == "ReceiveMessage" and c.messages == 0)))
            priced["empty_receives"] = sum(1 for c in calls if c.operation == "ReceiveMessage" and c.messages == 0)
            priced["request_count"] = sum(priced["requests"].values())
            priced["sites"] = dict(Counter(f"{c.origin} {c.label} <- {c.site}" for c in calls if c.site))
            priced["errors"] = dict(Counter(f"{c.label}: {c.error}" for c in calls if c.error))
            runs.append(priced)
        scenarios[name] = {"runs": runs, "aws_usd": [r["aws_usd"] for r in runs]}

    write_result(args["out"], {
        "benchmark": "p5_cost",
        "repeats": repeats,
        "tier_timeout_s": timeout_s,
        "lambda_memory_mb": LAMBDA_MEMORY_MB,
        "prices": PRICES,
        "scenarios": scenarios,
    })
    stack.stop()


if __name__ == "__main__":
    main()
