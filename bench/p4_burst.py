"""P4 burst: N panic presses as fast as C concurrent shoppers can send them (bench/burst_driver.py, another process)
against the local stack's HTTP API. Reports incidents accepted per second, the time from the first press until every
accepted incident's tier-1 page was sent, and anything lost (a press never accepted, an accepted incident never paged,
an incident paged twice). The policy has one tier with one responder and a long timeout, so the only pages in the
window are tier-1 pages.

Everything on the AWS side runs in this one process on this machine (moto's DynamoDB, Step Functions, SQS and SNS,
the API, and the stand-in for the SQS event source with up to 10 concurrent send_pages): the rates are this
machine's, not AWS's. No SMS origination throughput limit is emulated (see BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import (
    ROOT,
    Directory,
    cli_args,
    parse_iso,
    start_stack,
    summary,
    wait_until,
    write_result,
)


def main() -> None:
    args = cli_args()
    presses, concurrency = int(args.get("presses", 1000)), int(args.get("concurrency", 8))
    page_deadline = float(args.get("page-deadline", max(120.0, presses * 0.5)))

    stack = start_stack()
    directory = Directory(stack)
    responder = directory.responder()
    directory.route_all_to(directory.policy([[responder]], [3600]))

    # Queue depth while the burst drains: the outbox absorbing what the sender cannot take at once.
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=stack.aws_url)
    depth: list[tuple[float, int]] = []
    sampling = threading.Event()

    def sample_depth() -> None:
        while not sampling.is_set():
            try:
                attrs = sqs.get_queue_attributes(QueueUrl=stack.env["PAGE_QUEUE_URL"],
                                                  AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
                depth.append((time.time(), int(attrs["ApproximateNumberOfMessages"])))
            except Exception:  # noqa: BLE001 - sampling only
                pass
            sampling.wait(1.0)

    def first_pages() -> dict[str, str]:
        """reference -> sent_at of its first tier-1 page; also counts duplicates."""
        seen: dict[str, str] = {}
        for message in stack.sms.listing():
            if message["to"] == responder["phone"] and message["body"].startswith("EMERGENCY"):
                reference = message["body"].split()[1]
                counts[reference] = counts.get(reference, 0) + 1 if reference in seen else 1
                seen.setdefault(reference, message["sent_at"])
        return seen

    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-p4-") as tmp:
        tokens_file, out_file = Path(tmp) / "tokens.json", Path(tmp) / "presses.json"
        tokens_file.write_text(json.dumps([stack.mint_token("shopper", f"bench-shopper-{i}") for i in range(50)]))
        threading.Thread(target=sample_depth, daemon=True).start()
        driver = subprocess.run(
            [sys.executable, "-m", "bench.burst_driver", "--url", stack.api_url, "--presses", str(presses),
             "--concurrency", str(concurrency), "--tokens", str(tokens_file), "--out", str(out_file)],
            cwd=ROOT, capture_output=True, text=True, timeout=3600,
        )
        if driver.returncode != 0:
            raise RuntimeError(f"burst driver failed: {driver.stderr[-3000:]}")
        run = json.loads(out_file.read_text())

    results = run["presses"]
    accepted = [r for r in results if r["status"] == 201]
    references = {r["reference"] for r in accepted}
    first_sent = min(r["sent"] for r in results)
    last_accepted = max((r["done"] for r in accepted), default=first_sent)
    intake_s = last_accepted - first_sent

    def all_paged():
        pages = first_pages()
        return pages if references <= pages.keys() else None

    paged = wait_until(all_paged, timeout=page_deadline, interval=1.0) or first_pages()
    sampling.set()
    counts.clear()
    paged = first_pages()
    paged_accepted = {ref: at for ref, at in paged.items() if ref in references}
    press_by_ref = {r["reference"]: r for r in accepted}
    press_to_page = [parse_iso(at).timestamp() - press_by_ref[ref]["sent"] for ref, at in paged_accepted.items()]
    last_page = max((parse_iso(at).timestamp() for at in paged_accepted.values()), default=None)
    first_page = min((parse_iso(at).timestamp() for at in paged_accepted.values()), default=None)

    # Stored incidents, read straight from moto's backend (the incidents table holds only this run's incidents).
    from moto.dynamodb.models import dynamodb_backends

    stored = len(dynamodb_backends["123456789012"]["us-east-1"].get_table(stack.env["INCIDENTS_TABLE"]))

    write_result(args["out"], {
        "benchmark": "p4_burst",
        "presses": presses,
        "concurrency": concurrency,
        "accepted": len(accepted),
        "not_accepted": len(results) - len(accepted),
        "not_accepted_statuses": sorted({str(r["status"]) for r in results if r["status"] != 201}),
        "retried_presses": sum(1 for r in results if r["attempts"] > 1),
        "stored_incidents": stored,
        "intake_s": intake_s,
        "accepted_per_s": len(accepted) / intake_s if intake_s > 0 else None,
        "press_latency_s": summary(r["done"] - r["sent"] for r in accepted),
        "paged": len(paged_accepted),
        "lost": presses - len(paged_accepted),
        "accepted_not_paged": len(references - paged_accepted.keys()),
        "duplicate_pages": sum(1 for ref, c in counts.items() if c > 1 and ref in references),
        "first_press_to_last_page_s": (last_page - first_sent) if last_page else None,
        "press_to_page_s": summary(press_to_page),
        "pages_per_s": (len(paged_accepted) - 1) / (last_page - first_page) if last_page and last_page > first_page else None,
        "max_queue_depth": max((d for _t, d in depth), default=0),
        "page_deadline_s": page_deadline,
    })
    stack.stop()
    os._exit(0)  # thousands of Step Functions executions are still waiting out their timers: no need to join them


if __name__ == "__main__":
    main()
