"""P3 escalation precision: how late tier 2 is paged, measured from when tier 1 was SENT.

A tier's timeout counts from when its pages were sent (contract 4.3): the sender answers the state machine's task
token once tier 1's SMS are out, and only then does the Wait begin. So tier 2 is due at (tier-1 SMS sent + T1) and
the exhausted page at (tier-2 SMS sent + T2); lateness is the SMS's send time (moto's SNS, millisecond precision)
minus that. Early is a bug: escalation would overtake the tier it must wait for.

Two phases on one local stack (in this process, to read moto's SMS log and the execution histories, and to see when
each send_pages invocation starts), each with its own responders and a 2-tier policy (T1, T2 s, nobody answers):
- `unloaded`: N incidents opened over the HTTP API one every `stagger` s after one unmeasured warm-up incident;
- `burst`: B presses at once by B shoppers (bench/burst_driver.py in another process), so tier 2's page requests
  queue behind other incidents' pages, as in a regional incident.

Where tier 2's lateness goes, per incident (from the execution history and the handler's start):
- token:  the Wait began - tier-1 SMS sent         (the sender records the page, then answers the token)
- timer:  Wait exited - Wait began - T1            (moto's Wait state)
- claim:  tier 2's page request queued - Wait exited (NextStep, ClaimStep's conditional write, sqs:sendMessage)
- queue:  send_pages started - request queued      (the SQS event source: here the local stack's receivers)
- sender: SMS sent - send_pages started            (lease, reads, the page claim, SNS publish)
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.burst_driver import run_in_subprocess
from bench.common import (
    PANIC_BODY,
    at,
    cli_args,
    execution_arn,
    execution_history,
    sfn_client,
    start_stack,
    summary,
    world,
    write_result,
)
from local.polling import poll_until

TARGET_P99_S = 1.5  # unloaded: tier-2 page at most 1.5 s late at p99, never early
EARLY_TOLERANCE_S = 0.001  # the SMS log and the history keep milliseconds


def _events(history: list[dict], kind: str, state: str | None = None) -> list[datetime]:
    """Timestamps of `kind` events, of state `state` where the event names one, in order."""
    found = []
    for event in history:
        if event["type"] != kind:
            continue
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
        if state is None or details.get("name") == state:
            found.append(event["timestamp"])
    return found


def _submitted_after(history: list[dict], moment: datetime) -> datetime | None:
    """When the first page request after `moment` was put on the queue (its task's TaskSubmitted event)."""
    return next((e["timestamp"] for e in history if e["type"] == "TaskSubmitted" and e["timestamp"] > moment), None)


class Phase:
    """One policy, its incidents, and the measurement of their pages."""

    def __init__(self, stack, t1: int, t2: int):
        self.stack, self.t1, self.t2 = stack, t1, t2
        self.people = world(stack.api_url, stack.dev_url)
        self.first, self.second = self.people.responder(), self.people.responder()

    def route(self) -> None:
        self.people.route_all_to(self.people.policy([[self.first], [self.second]], [self.t1, self.t2]))

    def sms(self, reference: str, phone: str, prefix: str) -> list[dict]:
        return [m for m in self.stack.sms.listing()
                if m["to"] == phone and m["body"].startswith(prefix) and reference in m["body"]]

    def all_exhausted(self, incidents: list[dict]) -> bool:
        exhausted = {m["body"] for m in self.stack.sms.listing()
                     if m["to"] == self.first["phone"] and m["body"].startswith("EXHAUSTED")}
        return all(any(i["reference"] in body for body in exhausted) for i in incidents)

    def measure(self, incidents: list[dict], handler_starts: dict, sfn, deadline_s: float) -> dict:
        finished = poll_until(lambda: self.all_exhausted(incidents), deadline_s, interval=0.2)
        rows, missing = [], []
        for incident in incidents:
            tier1 = self.sms(incident["reference"], self.first["phone"], "EMERGENCY")
            tier2 = self.sms(incident["reference"], self.second["phone"], "EMERGENCY")
            exhausted = self.sms(incident["reference"], self.first["phone"], "EXHAUSTED")
            if not (tier1 and tier2 and exhausted):
                missing.append({"id": incident["id"], "tier1": len(tier1), "tier2": len(tier2),
                                "exhausted": len(exhausted)})
                continue
            tier1_sent = max(at(m["sent_at"]) for m in tier1)
            tier2_sent, exhausted_sent = at(tier2[0]["sent_at"]), at(exhausted[0]["sent_at"])
            row = {
                "id": incident["id"],
                "tier2_late_s": tier2_sent - (tier1_sent + self.t1),
                "exhausted_late_s": exhausted_sent - (tier2_sent + self.t2),
                "press_to_tier1_s": tier1_sent - incident["posted"],
                "tier1_pages": len(tier1),
                "tier2_pages": len(tier2),
            }
            history = execution_history(sfn, execution_arn(self.stack.env["ESCALATION_STATE_MACHINE_ARN"],
                                                           incident["id"]))
            waits_began = _events(history, "WaitStateEntered")
            waits_ended = _events(history, "WaitStateExited")
            if waits_began and waits_ended:
                began, ended = waits_began[0].timestamp(), waits_ended[0].timestamp()
                row["token_s"] = began - tier1_sent
                row["timer_s"] = ended - began - self.t1
                queued = _submitted_after(history, waits_ended[0])
                if queued is not None:
                    row["claim_s"] = queued.timestamp() - ended
                    started = handler_starts.get((incident["id"], "page", 1))
                    if started is not None:
                        row["queue_s"] = started - queued.timestamp()
                        row["sender_s"] = tier2_sent - started
            rows.append(row)

        def column(name: str) -> list[float]:
            return [r[name] for r in rows if name in r]

        return {
            "incidents": len(incidents),
            "tier_timeouts_s": [self.t1, self.t2],
            "all_finished": bool(finished),
            "measured": len(rows),
            "missing": missing,
            "tier2_late_s": summary(column("tier2_late_s")),
            "exhausted_late_s": summary(column("exhausted_late_s")),
            "press_to_tier1_s": summary(column("press_to_tier1_s")),
            "early": sum(1 for r in rows if min(r["tier2_late_s"], r["exhausted_late_s"]) < -EARLY_TOLERANCE_S),
            "pages_sent_twice": sum(1 for r in rows if r["tier1_pages"] > 1 or r["tier2_pages"] > 1),
            "breakdown_tier2_s": {k: summary(column(k)) for k in ("token_s", "timer_s", "claim_s", "queue_s",
                                                                 "sender_s")},
            "rows": rows,
        }


def main() -> None:
    args = cli_args()
    n, stagger, burst = int(args.get("incidents", 20)), float(args.get("stagger", 0.25)), int(args.get("burst", 100))
    t1, t2 = int(args.get("tier1-timeout", 2)), int(args.get("tier2-timeout", 5))
    concurrency = int(args.get("concurrency", 8))

    stack = start_stack()
    handler_starts: dict[tuple, float] = {}
    send_pages = stack.handlers.send_pages

    def timed_send_pages(event, context):
        now = time.time()
        for record in event["Records"]:
            body = json.loads(record["body"])
            handler_starts.setdefault((body.get("incident_id"), body.get("action"), body.get("step")), now)
        return send_pages(event, context)

    stack.handlers.send_pages = timed_send_pages  # the stack looks the handler up on the module for each message
    sfn = sfn_client(stack.aws_url)
    phases = {}

    unloaded = Phase(stack, t1, t2)
    unloaded.route()

    def open_incident() -> dict:
        shopper = unloaded.people.as_("shopper")  # each incident its own shopper: a second press joins the first
        posted = time.time()
        response = shopper.post("/v1/incidents", json=PANIC_BODY)
        assert response.status_code == 201, response.text
        return {**response.json()["incident"], "posted": posted}

    warm = open_incident()
    poll_until(lambda: unloaded.sms(warm["reference"], unloaded.first["phone"], "EMERGENCY"), 30)
    incidents = []
    for _ in range(n):
        incidents.append(open_incident())
        time.sleep(stagger)
    phases["unloaded"] = {"stagger_s": stagger, **unloaded.measure(incidents, handler_starts, sfn, t1 + t2 + 60)}

    loaded = Phase(stack, t1, t2)
    loaded.route()
    tokens = [stack.mint_token("shopper", f"p3-burst-{i}") for i in range(burst)]
    with tempfile.TemporaryDirectory(prefix="bench-p3-") as tmp:
        run = run_in_subprocess(stack.api_url, tokens, concurrency, Path(tmp))
    accepted = [{"id": p["id"], "reference": p["reference"], "posted": p["sent"]}
                for p in run["presses"] if p["status"] == 201]
    # Every incident's four SMS (two pages, two exhausted) go through the one page queue.
    deadline = t1 + t2 + 60 + burst * 2.0
    phases["burst"] = {"presses": burst, "concurrency": concurrency, "accepted": len(accepted),
                       **loaded.measure(accepted, handler_starts, sfn, deadline)}

    write_result(args["out"], {"benchmark": "p3_escalation", "target_p99_s": TARGET_P99_S, "phases": phases})
    stack.stop()


if __name__ == "__main__":
    main()
