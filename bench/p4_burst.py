"""P4 burst: N panic presses at once against the stack as `make run` starts it (local/subprocess_stack.py, HTTP only),
and a check that nothing was lost: every press accepted, stored as an incident, escalated by its own Step Functions
execution, and paged, tier after tier, never a tier early.

Scenarios, each on a fresh stack:
- `burst`: one tier, one responder, a long timeout; no SMS rate limit. The local stack's throughput, and the count.
- `rate_<r>`: issue 18.1's case: two tiers of T s, the sender held to r SMS a second (`SMS_RATE_PER_S`: 10DLC sends
  1 a second, toll-free 3), so the page queue is far slower than tier 1's timeout. Every tier-1 responder must be
  paged for every incident, and tier 2 never before its incident's tier-1 SMS was sent + T (a tier's timer starts
  when its pages are sent). The first release skipped tier 1 for 249 of 300 incidents here.

Presses come from C concurrent shoppers in this process (bench/burst_driver.py), each press a different shopper with
an Idempotency-Key, retried with the same key on 429/5xx/connection errors. Counts are read as an operator would:
stored incidents with a DynamoDB Scan (COUNT) of the incidents table, executions with ListExecutions, pages from the
dev server's SMS log (GET /dev/sms: recipient, text, send time).
"""

from __future__ import annotations

import threading
from pathlib import Path

import boto3

from bench.burst_driver import dev_tokens, press_all
from bench.common import REGION, at, cli_args, int_list, summary, world, write_result
from local.polling import poll_until
from local.subprocess_stack import StackProcess
from tests.support.people import Sms

EARLY_TOLERANCE_S = 0.05  # the SMS log keeps milliseconds; the same bound as tests/e2e/test_burst_pages_every_tier.py


class Counts:
    """The stack's own record, read over its AWS endpoint."""

    def __init__(self, aws_url: str):
        kwargs = {"region_name": REGION, "endpoint_url": aws_url, "aws_access_key_id": "local",
                  "aws_secret_access_key": "local"}
        self.ddb, self.sfn, self.sqs = (boto3.client(s, **kwargs) for s in ("dynamodb", "stepfunctions", "sqs"))
        self.table = next(t for t in self.ddb.list_tables()["TableNames"] if t.endswith("-incidents"))
        self.machine = next(m["stateMachineArn"] for m in self.sfn.list_state_machines()["stateMachines"]
                            if m["name"].endswith("-escalation"))
        self.queue = next(u for u in self.sqs.list_queues()["QueueUrls"] if u.endswith("-pages"))

    def stored_incidents(self) -> int:
        total, start = 0, None
        while True:
            kwargs = {"TableName": self.table, "Select": "COUNT", "ConsistentRead": True}
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.ddb.scan(**kwargs)
            total += page["Count"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return total

    def executions(self) -> dict[str, int]:
        by_status: dict[str, int] = {}
        for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.machine):
            for execution in page["executions"]:
                by_status[execution["status"]] = by_status.get(execution["status"], 0) + 1
        return by_status

    def queue_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _pages(sms, phone: str) -> dict[str, list[dict]]:
    """reference -> every page (EMERGENCY ...) sent to `phone`, oldest first (`sms`: tests/support/people.py's Sms)."""
    pages: dict[str, list[dict]] = {}
    for message in sms.to(phone):
        if message["body"].startswith("EMERGENCY"):
            pages.setdefault(message["body"].split()[1], []).append(message)
    return pages


def scenario(name: str, log_dir: Path, presses: int, concurrency: int, timeouts: list[int], rate: float | None) -> dict:
    environment = {"SEED": "0", **({"SMS_RATE_PER_S": str(rate)} if rate else {})}
    with StackProcess(log_dir / f"p4-{name}-stack.log", **environment) as stack:
        people = world(stack.api, stack.dev)
        tiers = [people.responder() for _ in timeouts]
        people.route_all_to(people.policy([[r] for r in tiers], timeouts))
        counts, sms = Counts(stack.aws), Sms(stack.dev)
        tokens = dev_tokens(stack.dev, "shopper", [f"p4-{name}-{i}" for i in range(presses)])

        depth: list[int] = []
        stop_sampling = threading.Event()

        def sample_depth() -> None:
            while not stop_sampling.is_set():
                try:
                    depth.append(counts.queue_depth())
                except Exception:  # noqa: BLE001 - sampling only
                    pass
                stop_sampling.wait(1.0)

        threading.Thread(target=sample_depth, daemon=True).start()
        run = press_all(stack.api, tokens, concurrency)
        accepted = [p for p in run["presses"] if p["status"] == 201]
        references = {p["reference"] for p in accepted}
        first_sent = min(p["sent"] for p in run["presses"])
        intake_s = max((p["done"] for p in accepted), default=first_sent) - first_sent

        # Every incident reaches the last tier: as long as the queue needs for every tier's pages at the rate (or
        # at the stack's own few pages a second on two cores), with a quarter to spare, plus the timeouts before the
        # last tier.
        sms_per_s = rate or 3.0
        deadline = 180 + 1.25 * len(timeouts) * presses / sms_per_s + sum(timeouts[:-1])
        last_tier = tiers[-1]["phone"]
        poll_until(lambda: references <= set(_pages(sms, last_tier)), deadline, interval=2.0)
        stop_sampling.set()
        pages = [_pages(sms, responder["phone"]) for responder in tiers]
        stored, executions = counts.stored_incidents(), counts.executions()

    by_press = {p["reference"]: p for p in accepted}
    first_pages = {ref: at(found[0]["sent_at"]) for ref, found in pages[0].items() if ref in references}
    result = {
        "presses": presses,
        "concurrency": concurrency,
        "tier_timeouts_s": timeouts,
        "sms_rate_per_s": rate,
        "accepted": len(accepted),
        "not_accepted": presses - len(accepted),
        "not_accepted_statuses": sorted({str(p["status"]) for p in run["presses"] if p["status"] != 201}),
        "retried_presses": sum(1 for p in run["presses"] if p["attempts"] > 1),
        "intake_s": intake_s,
        "accepted_per_s": len(accepted) / intake_s if intake_s > 0 else None,
        "press_latency_s": summary(p["done"] - p["sent"] for p in accepted),
        "stored_incidents": stored,
        "executions": sum(executions.values()),
        "executions_by_status": executions,
        "paged_by_tier": [len(references & set(found)) for found in pages],
        "not_paged_by_tier": [len(references - set(found)) for found in pages],
        "paged_twice_by_tier": [sum(1 for ref, found in tier.items() if ref in references and len(found) > 1)
                                for tier in pages],
        "press_to_tier1_s": summary(first_pages[ref] - by_press[ref]["sent"] for ref in first_pages),
        "first_press_to_last_tier1_page_s": (max(first_pages.values()) - first_sent) if first_pages else None,
        "max_queue_depth": max(depth, default=0),
        "stack_startup_s": stack.startup_s,
    }
    if len(first_pages) > 1:
        span = max(first_pages.values()) - min(first_pages.values())
        result["tier1_pages_per_s"] = (len(first_pages) - 1) / span if span > 0 else None
    if len(timeouts) > 1:
        # Tier 2 may not be paged before its incident's tier-1 SMS was sent + tier 1's timeout.
        margins = [at(pages[1][ref][0]["sent_at"]) - (first_pages[ref] + timeouts[0])
                   for ref in first_pages if ref in pages[1]]
        result["tier2_after_tier1_plus_timeout_s"] = summary(margins)
        result["tier2_early"] = sum(1 for margin in margins if margin < -EARLY_TOLERANCE_S)
    result["lost"] = presses - min(len(accepted), stored, result["executions"], result["paged_by_tier"][0])
    result["ok"] = (result["lost"] == 0 and stored == len(accepted) == result["executions"]
                    and not any(result["not_paged_by_tier"]) and not any(result["paged_twice_by_tier"])
                    and not result.get("tier2_early"))
    return result


def main() -> None:
    args = cli_args()
    out = Path(args["out"])
    log_dir = out.parent
    scenarios = {"burst": scenario("burst", log_dir, int(args.get("presses", 1000)), int(args.get("concurrency", 8)),
                                   [3600], None)}
    rate_presses = int(args.get("rate-presses", 300))
    rate_timeouts = int_list(args.get("rate-timeouts", "20,20"))
    for rate in int_list(args.get("rates", "1,3")):
        scenarios[f"rate_{rate}"] = scenario(f"rate_{rate}", log_dir, rate_presses, int(args.get("concurrency", 8)),
                                             rate_timeouts, float(rate))
    write_result(out, {"benchmark": "p4_burst", "scenarios": scenarios})


if __name__ == "__main__":
    main()
