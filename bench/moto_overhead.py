"""P9 the local stack's ceiling (issue 18.5): what moto costs per escalation, with and without the executor patches of
local/moto_fixes.py (the parsed definition cached, jsonpath parsers cached, one boto3 client per task service).

    python -m bench.moto_overhead --out /tmp/p9.json                     # both arms, sizes as below
    python -m bench.moto_overhead --out /tmp/p9.json --runs 5 --n 100 --burst 300 --arms after

Two measurements, each run in a fresh process (a stack's waiting executions and threads stay in its process):
- `escalations`: N panics pressed by N shoppers (bench/burst_driver.py in its own process, C concurrent clients),
  until every incident's first (tier-1) page was sent. Reported: the stack process's CPU seconds per 100
  escalations (`time.process_time`, all its threads: moto, the executor, the API, the queue receivers) and the wall
  seconds from the first press to the last first page.
- `burst`: B presses the same way; presses/s = accepted / (first press sent .. last press answered), as P4 reports.

Arms: `before` sets LOCAL_MOTO_FIXES_SKIP=executor (moto's Step Functions executor as it ships; the DynamoDB fix,
which keeps transactions atomic under concurrency, stays on), `after` applies every patch. Medians of `--runs` runs
per arm; the runs of the two arms alternate, so drifting load on the shared cores hits both alike.
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

from bench.burst_driver import run_in_subprocess
from bench.common import ROOT, cli_args, median, start_stack, world, write_result

ARMS = {"before": "executor", "after": ""}
MARK = "MOTO_OVERHEAD_RESULT "
TARGET_SPEEDUP = 1.8  # issue 18.5: "about twice as fast"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker(presses: int, concurrency: int, deadline_s: float) -> dict:
    """One run in this process: start the stack, press, wait for every first page."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    stack = start_stack()
    people = world(stack.api_url, stack.dev_url)
    responder = people.responder()
    people.route_all_to(people.policy([[responder]], [3600]))

    def first_pages() -> set[str]:
        return {m["body"].split()[1] for m in stack.sms.listing()
                if m["to"] == responder["phone"] and m["body"].startswith("EMERGENCY")}

    tokens = [stack.mint_token("shopper", f"p9-{i}") for i in range(presses)]
    rss0, threads0 = _rss_mb(), threading.active_count()
    cpu0, wall0 = time.process_time(), time.time()
    with tempfile.TemporaryDirectory(prefix="bench-p9-") as tmp:
        run = run_in_subprocess(stack.api_url, tokens, concurrency, Path(tmp))
    accepted = [r for r in run["presses"] if r["status"] == 201]
    references = {r["reference"] for r in accepted}
    first_sent = min(r["sent"] for r in run["presses"])
    intake_s = max(r["done"] for r in accepted) - first_sent if accepted else None
    paged: set[str] = set()
    while time.time() - wall0 < deadline_s:
        paged = first_pages() & references
        if paged == references:
            break
        time.sleep(0.05)
    cpu1, wall1 = time.process_time(), time.time()
    from local import moto_fixes

    return {
        "presses": presses,
        "accepted": len(accepted),
        "paged": len(paged),
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - first_sent,
        "intake_s": intake_s,
        "presses_per_s": len(accepted) / intake_s if intake_s else None,
        # What the waiting executions hold (each waits in its Wait state once paged).
        "rss_mb_per_incident": (_rss_mb() - rss0) / presses,
        "threads_per_incident": (threading.active_count() - threads0) / presses,
        "fixes": moto_fixes.stats(),
    }


def run_worker(arm: str, presses: int, concurrency: int) -> dict:
    env = dict(os.environ, LOCAL_MOTO_FIXES_SKIP=ARMS[arm])
    proc = subprocess.run([sys.executable, "-m", "bench.moto_overhead", "--worker", "1", "--n", str(presses),
                           "--concurrency", str(concurrency)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    lines = [line.removeprefix(MARK) for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    args = cli_args()
    presses, concurrency = int(args.get("n", 100)), int(args.get("concurrency", 8))
    if args.get("worker"):
        result = worker(presses, concurrency, float(args.get("deadline", max(120.0, presses * 1.0))))
        print(MARK + json.dumps(result), flush=True)
        os._exit(0)  # waiting executions hold threads: do not join them
    runs, burst = int(args.get("runs", 3)), int(args.get("burst", 300))
    arms = args.get("arms", "before,after").split(",")
    raw: dict[str, dict[str, list[dict]]] = {arm: {"escalations": [], "burst": []} for arm in arms}
    for measurement, size in (("escalations", presses), ("burst", burst)):
        for _ in range(runs if size else 0):
            for arm in arms:
                raw[arm][measurement].append(run_worker(arm, size, concurrency))
                print(f"{arm} {measurement} {raw[arm][measurement][-1]}", file=sys.stderr, flush=True)
    figures = {}
    for arm in arms:
        esc, bur = raw[arm]["escalations"], raw[arm]["burst"]
        figures[arm] = {
            "escalations": {"n": presses,
                            "cpu_s_per_100_median": median(r["cpu_s"] * 100 / presses for r in esc),
                            "wall_s_median": median(r["wall_s"] for r in esc),
                            "rss_mb_per_incident_median": median(r["rss_mb_per_incident"] for r in esc),
                            "threads_per_incident_median": median(r["threads_per_incident"] for r in esc),
                            "all_paged": all(r["paged"] == r["presses"] for r in esc),
                            "runs": [{k: r[k] for k in ("cpu_s", "wall_s", "paged")} for r in esc]},
        }
        if bur:
            figures[arm]["burst"] = {
                "n": burst,
                "presses_per_s_median": median(r["presses_per_s"] for r in bur if r["presses_per_s"]),
                "cpu_s_median": median(r["cpu_s"] for r in bur),
                "wall_s_to_last_page_median": median(r["wall_s"] for r in bur),
                "all_paged": all(r["paged"] == r["presses"] for r in bur),
                "runs": [{k: r[k] for k in ("presses_per_s", "cpu_s", "wall_s", "paged")} for r in bur]}
    result = {"benchmark": "moto_overhead", "runs_per_arm": runs, "concurrency": concurrency, "arms": figures,
              "target_speedup": TARGET_SPEEDUP}
    if "before" in figures and "after" in figures and burst:
        result["burst_speedup"] = (figures["after"]["burst"]["presses_per_s_median"]
                                   / figures["before"]["burst"]["presses_per_s_median"])
        result["cpu_per_escalation_ratio"] = (figures["after"]["escalations"]["cpu_s_per_100_median"]
                                              / figures["before"]["escalations"]["cpu_s_per_100_median"])
    write_result(args["out"], result)


if __name__ == "__main__":
    main()
