"""P6 check-ins (issue 17): what starting one costs in AWS requests, and how soon a missed one opens its incident.

- Cost: a check-in may cost at most what an incident costs: one write and one StartExecution (an incident's is one
  TransactWriteItems and one StartExecution). The AWS requests of `POST /v1/check-ins` are recorded for a few
  check-ins (bench/awscalls.py) next to those of `POST /v1/incidents`, both with an Idempotency-Key, both warm.
- Lateness: N check-ins due in D s, started over the HTTP API a little apart (so their due times fall at different
  fractions of a second: the timer counts in whole seconds), none completed. Each must become `missed` and open a
  `missed_check_in` incident within 2 s of `due_at` (p99, on the local stack): lateness = the incident's
  `created_at` - the check-in's `due_at`, both the service's own timestamps. Where it goes, per check-in: the timer
  (its Fire task put the job on the jobs queue: the timer execution's history) and the rest (the jobs queue,
  run_jobs, the incident's transaction).
The policy's responder is inactive: the incidents open as they would, and no pages follow to load the stack.
"""

from __future__ import annotations

import time
import uuid

from bench.awscalls import AwsCallRecorder
from bench.common import (
    PANIC_BODY,
    at,
    cli_args,
    execution_arn,
    execution_history,
    inactive_responder,
    sfn_client,
    start_stack,
    summary,
    world,
    write_result,
)
from local.polling import poll_until

TARGET_LATE_P99_S = 2.0
WRITES = ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem")


def _requests(recorder: AwsCallRecorder, mark: int, route: str) -> list[str]:
    return [c.label for c in recorder.since(mark) if c.origin == f"api:{route}"]


def main() -> None:
    args = cli_args()
    n, due_in_s, spread_s = int(args.get("check-ins", 100)), int(args.get("due-in", 5)), float(args.get("spread", 2.0))
    recorded = int(args.get("recorded", 5))

    stack = start_stack()
    people = world(stack.api_url, stack.dev_url)
    people.route_all_to(people.policy([[inactive_responder(people)]], [60]))

    def shopper():
        return people.as_("shopper", f"p6-{uuid.uuid4().hex[:12]}")

    # --- AWS requests per create, check-in against incident (warm: one of each first) ------------------------------
    recorder = AwsCallRecorder(ddb_units=False).install()
    per_create: dict[str, list[list[str]]] = {"check_in": [], "incident": []}
    for i in range(recorded + 1):
        for kind, path, body, route in (("check_in", "/v1/check-ins", {"due_in_s": 3600}, "start_check_in"),
                                        ("incident", "/v1/incidents", PANIC_BODY, "open_incident")):
            mark = recorder.mark()
            response = shopper().post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            assert response.status_code == 201, response.text
            if i:
                per_create[kind].append(_requests(recorder, mark, route))
    recorder.uninstall()

    def described(runs: list[list[str]]) -> dict:
        common = max(runs, key=runs.count)
        return {"requests": common, "count": len(common),
                "writes": sum(1 for label in common if label.split("(")[0].split(".")[1] in WRITES),
                "start_executions": sum(1 for label in common if ".StartExecution" in label),
                "same_every_time": all(run == common for run in runs)}

    create = {kind: described(runs) for kind, runs in per_create.items()}
    create["within_incident_cost"] = (create["check_in"]["writes"] <= 1 and create["check_in"]["start_executions"] <= 1
                                      and create["check_in"]["count"] <= create["incident"]["count"])

    # --- lateness of missed check-ins -----------------------------------------------------------------------------
    started = []
    for _ in range(n):
        owner = shopper()
        response = owner.post("/v1/check-ins", json={"due_in_s": due_in_s})
        assert response.status_code == 201, response.text
        started.append((owner, response.json()["check_in"]))
        time.sleep(spread_s / max(n, 1))

    def state(entry) -> dict:
        owner, check_in = entry
        return owner.get(f"/v1/check-ins/{check_in['id']}").json()["check_in"]

    def all_missed() -> list[dict] | None:
        states = [state(entry) for entry in started]
        return states if all(s["status"] == "missed" for s in states) else None

    time.sleep(due_in_s)
    missed = poll_until(all_missed, 60, interval=0.5) or [state(entry) for entry in started]
    sfn = sfn_client(stack.aws_url)
    rows = []
    for check_in in missed:
        if check_in["status"] != "missed":
            continue
        incident = people.incident(check_in["incident_id"])
        history = execution_history(sfn, execution_arn(stack.env["TIMER_STATE_MACHINE_ARN"], check_in["id"]))
        fired = next((e["timestamp"].timestamp() for e in history if e["type"] == "TaskSucceeded"), None)
        due = at(check_in["due_at"])
        row = {"id": check_in["id"], "late_s": at(incident["created_at"]) - due, "kind": incident["kind"]}
        if fired is not None:
            row["timer_s"], row["rest_s"] = fired - due, at(incident["created_at"]) - fired
        rows.append(row)

    write_result(args["out"], {
        "benchmark": "p6_checkins",
        "check_ins": n,
        "due_in_s": due_in_s,
        "create": create,
        "missed": len(rows),
        "not_missed": n - len(rows),
        "wrong_kind": sum(1 for r in rows if r["kind"] != "missed_check_in"),
        "late_s": summary(r["late_s"] for r in rows),
        "early": sum(1 for r in rows if r["late_s"] < 0),
        "breakdown_s": {name: summary(r[name] for r in rows if name in r) for name in ("timer_s", "rest_s")},
        "target_late_p99_s": TARGET_LATE_P99_S,
    })
    stack.stop()


if __name__ == "__main__":
    main()
