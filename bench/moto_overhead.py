"""What the local stack's moto costs per escalation, with and without local/moto_fixes.py's executor patches.

    .venv/bin/python -m bench.moto_overhead                      # both arms, 3 runs each, figures as JSON on stdout
    .venv/bin/python -m bench.moto_overhead --runs 5 --n 100 --burst 300 --arms after

Two measurements, each in a fresh process per run (a stack's waiting executions and threads stay in its process):
- `escalations`: N panics pressed by N distinct shoppers (bench/burst_driver.py in its own process, 8 concurrent
  clients), until every incident's first (tier-1) page was sent. Reported: the stack process's CPU seconds
  (`time.process_time`, all its threads: moto, the executor, the API, the SQS receivers) and the wall seconds from
  the first press to the last first page.
- `burst`: B presses the same way; presses/s = accepted / (first press sent .. last press answered), as P4 reports.

Arms: `before` sets LOCAL_MOTO_FIXES_SKIP=executor (moto's Step Functions executor as it ships; the DynamoDB fix,
which predates this benchmark, stays on), `after` applies every patch. Medians of `--runs` runs per arm; the runs of
the two arms alternate, so drifting load on the shared cores hits both alike.
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ARMS = {"before": "executor", "after": ""}
MARK = "MOTO_OVERHEAD_RESULT "


def _arg(name: str, default: str) -> str:
    argv = sys.argv[1:]
    return argv[argv.index(f"--{name}") + 1] if f"--{name}" in argv else default


def _median(values: list[float]) -> float | None:
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker(presses: int, concurrency: int, deadline_s: float) -> dict:
    """One run in this process: start the stack, press, wait for every first page."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    from bench.common import Directory, free_port
    from local.stack import LocalStack

    stack = LocalStack(aws_port=free_port(), api_port=free_port(), dev_port=free_port(), seed=False).start()
    directory = Directory(stack)
    responder = directory.responder()
    directory.route_all_to(directory.policy([[responder]], [3600]))

    def first_pages() -> set[str]:
        return {m["body"].split()[1] for m in stack.sms.listing()
                if m["to"] == responder["phone"] and m["body"].startswith("EMERGENCY")}

    with tempfile.TemporaryDirectory(prefix="bench-moto-") as tmp:
        tokens_file, out_file = Path(tmp) / "tokens.json", Path(tmp) / "presses.json"
        tokens_file.write_text(json.dumps([stack.mint_token("shopper", f"moto-bench-{i}") for i in range(presses)]))
        rss0, threads0 = _rss_mb(), threading.active_count()
        cpu0, wall0 = time.process_time(), time.time()
        driver = subprocess.Popen(
            [sys.executable, "-m", "bench.burst_driver", "--url", stack.api_url, "--presses", str(presses),
             "--concurrency", str(concurrency), "--tokens", str(tokens_file), "--out", str(out_file)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, stderr = driver.communicate(timeout=3600)
        if driver.returncode != 0:
            raise RuntimeError(f"burst driver failed: {stderr[-3000:]}")
        run = json.loads(out_file.read_text())
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

    stats = moto_fixes.stats()
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
        "fixes": stats,
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
    presses, concurrency = int(_arg("n", "100")), int(_arg("concurrency", "8"))
    if _arg("worker", ""):
        result = worker(presses, concurrency, float(_arg("deadline", str(max(120.0, presses * 1.0)))))
        print(MARK + json.dumps(result), flush=True)
        os._exit(0)  # waiting executions hold threads: do not join them
    runs, burst = int(_arg("runs", "3")), int(_arg("burst", "300"))
    arms = _arg("arms", "before,after").split(",")
    raw: dict[str, dict[str, list[dict]]] = {arm: {"escalations": [], "burst": []} for arm in arms}
    for _ in range(runs):
        for arm in arms:
            raw[arm]["escalations"].append(run_worker(arm, presses, concurrency))
            print(f"{arm} escalations {raw[arm]['escalations'][-1]}", file=sys.stderr, flush=True)
    if burst:
        for _ in range(runs):
            for arm in arms:
                raw[arm]["burst"].append(run_worker(arm, burst, concurrency))
                print(f"{arm} burst {raw[arm]['burst'][-1]}", file=sys.stderr, flush=True)
    figures = {}
    for arm in arms:
        esc, bur = raw[arm]["escalations"], raw[arm]["burst"]
        figures[arm] = {
            f"escalations_{presses}": {"cpu_s_median": _median([r["cpu_s"] for r in esc]),
                                       "wall_s_median": _median([r["wall_s"] for r in esc]),
                                       "rss_mb_per_incident_median": _median([r["rss_mb_per_incident"] for r in esc]),
                                       "threads_per_incident_median": _median([r["threads_per_incident"] for r in esc]),
                                       "all_paged": all(r["paged"] == r["presses"] for r in esc),
                                       "runs": [{k: r[k] for k in ("cpu_s", "wall_s", "paged")} for r in esc]},
        }
        if bur:
            figures[arm][f"burst_{burst}"] = {
                "presses_per_s_median": _median([r["presses_per_s"] for r in bur]),
                "cpu_s_median": _median([r["cpu_s"] for r in bur]),
                "wall_s_to_last_page_median": _median([r["wall_s"] for r in bur]),
                "all_paged": all(r["paged"] == r["presses"] for r in bur),
                "runs": [{k: r[k] for k in ("presses_per_s", "cpu_s", "wall_s", "paged")} for r in bur]}
    print(json.dumps({"benchmark": "moto_overhead", "runs_per_arm": runs, "concurrency": concurrency,
                      "loadavg": os.getloadavg(), "arms": figures}, indent=2))


if __name__ == "__main__":
    main()
