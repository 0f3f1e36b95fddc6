"""P3 escalation precision: N incidents on a 2-tier policy (tier 1 waits T1 s, tier 2 waits T2 s, nobody answers) on
the local stack; how late the tier-2 page (due T1 s after tier 1's Wait began) and the exhausted page (due T2 s after
tier 2's Wait began) were sent, from the state machine's own history and the SMS send times.

Incidents are opened over the HTTP API one every `stagger` seconds, so their timers end at different moments (a
realistic trickle; P4 is the burst). One warm-up incident runs first and is not measured.

Where the lateness goes, per incident (medians reported):
- timer:   WaitStateExited - due                     (the Wait state itself; moto's timer here)
- claim:   RequestPages TaskStateExited - WaitStateExited (NextStep, StepsLeft, ClaimStep updateItem, sqs:sendMessage)
- queue:   send_pages start - RequestPages exited    (the SQS event source: Lambda's poller, here the local one)
- sender:  SMS sent - send_pages start               (lease, reads, timeline write, page claim, SNS publish)
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import requests

from bench.common import (
    PANIC_BODY,
    Directory,
    cli_args,
    execution_history,
    parse_iso,
    sfn_client,
    start_stack,
    summary,
    wait_deadlines,
    wait_until,
    write_result,
)


def _exited(history: list[dict], state: str, after) -> datetime | None:
    for event in history:
        details = event.get("stateExitedEventDetails") or {}
        if event["type"].endswith("StateExited") and details.get("name") == state and event["timestamp"] >= after:
            return event["timestamp"]
    return None


def _wait_exits(history: list[dict]) -> list[datetime]:
    return [e["timestamp"] for e in history if e["type"] == "WaitStateExited"]


def main() -> None:
    args = cli_args()
    n = int(args.get("incidents", 20))
    t1, t2 = int(args.get("tier1-timeout", 2)), int(args.get("tier2-timeout", 5))
    stagger = float(args.get("stagger", 0.25))

    stack = start_stack()
    handler_starts: dict[tuple, float] = {}
    original = stack.handlers.send_pages

    def timed_send_pages(event, context):
        now = time.time()
        for record in event["Records"]:
            body = json.loads(record["body"])
            handler_starts.setdefault((body["incident_id"], body["action"], body.get("step")), now)
        return original(event, context)

    stack.handlers.send_pages = timed_send_pages  # the local event source looks the handler up on each message

    directory = Directory(stack)
    first, second = directory.responder(), directory.responder()
    directory.route_all_to(directory.policy([[first], [second]], [t1, t2]))
    shopper = requests.Session()
    shopper.headers["Authorization"] = f"Bearer {stack.mint_token('shopper', 'bench-p3')}"

    def open_incident() -> dict:
        posted = time.time()
        response = shopper.post(f"{stack.api_url}/v1/incidents", json=PANIC_BODY, timeout=30)
        response.raise_for_status()
        return {**response.json()["incident"], "posted": posted}

    def sms_for(reference: str) -> list[dict]:
        return [m for m in stack.sms.listing() if reference in m["body"]]

    warm = open_incident()
    wait_until(lambda: sms_for(warm["reference"]), timeout=30)

    incidents = []
    for _ in range(n):
        incidents.append(open_incident())
        time.sleep(stagger)

    def all_exhausted() -> bool:
        bodies = [m["body"] for m in stack.sms.listing() if m["body"].startswith("EXHAUSTED") and m["to"] == first["phone"]]
        return all(any(i["reference"] in body for body in bodies) for i in incidents)

    finished = wait_until(all_exhausted, timeout=t1 + t2 + 30, interval=0.2)

    client = sfn_client(stack)
    rows, missing = [], []
    for incident in incidents:
        messages = sms_for(incident["reference"])
        tier1 = [m for m in messages if m["to"] == first["phone"] and m["body"].startswith("EMERGENCY")]
        tier2 = [m for m in messages if m["to"] == second["phone"] and m["body"].startswith("EMERGENCY")]
        exhausted = [m for m in messages if m["to"] == first["phone"] and m["body"].startswith("EXHAUSTED")]
        history = execution_history(stack, incident["id"], client)
        due = wait_deadlines(history)
        if not (tier1 and tier2 and exhausted and len(due) == 2):
            missing.append({"id": incident["id"], "tier1": len(tier1), "tier2": len(tier2), "exhausted": len(exhausted),
                            "waits": len(due)})
            continue
        tier2_sent, exhausted_sent = parse_iso(tier2[0]["sent_at"]), parse_iso(exhausted[0]["sent_at"])
        wait_exit = _wait_exits(history)
        enqueued = _exited(history, "RequestPages", wait_exit[0])
        started = handler_starts.get((incident["id"], "page", 1))
        row = {
            "id": incident["id"],
            "tier2_late_s": (tier2_sent - due[0]).total_seconds(),
            "exhausted_late_s": (exhausted_sent - due[1]).total_seconds(),
            "press_to_tier1_s": parse_iso(tier1[0]["sent_at"]).timestamp() - incident["posted"],
            "tier2_pages": len(tier2),
            "timer_s": (wait_exit[0] - due[0]).total_seconds(),
        }
        if enqueued is not None:
            row["claim_s"] = (enqueued - wait_exit[0]).total_seconds()
            if started is not None:
                row["queue_s"] = started - enqueued.timestamp()
                row["sender_s"] = tier2_sent.timestamp() - started
        rows.append(row)

    def col(name: str) -> list[float]:
        return [r[name] for r in rows if name in r]

    write_result(args["out"], {
        "benchmark": "p3_escalation",
        "incidents": n,
        "tier_timeouts_s": [t1, t2],
        "stagger_s": stagger,
        "all_finished": bool(finished),
        "measured": len(rows),
        "missing": missing,
        "tier2_late_s": summary(col("tier2_late_s")),
        "exhausted_late_s": summary(col("exhausted_late_s")),
        "press_to_tier1_s": summary(col("press_to_tier1_s")),
        "early": sum(1 for r in rows if r["tier2_late_s"] < 0 or r["exhausted_late_s"] < 0),
        "duplicate_tier2_pages": sum(1 for r in rows if r["tier2_pages"] > 1),
        "breakdown_tier2_s": {k: summary(col(k)) for k in ("timer_s", "claim_s", "queue_s", "sender_s")},
        "rows": rows,
    })
    stack.stop()


if __name__ == "__main__":
    main()
