"""Runs every benchmark, each in its own process, and writes BENCHMARKS.md.

    python -m bench.run                 # full run (make bench, about an hour on 2 cores): BENCHMARKS.md at the
                                        # repository root; raw results, logs and the profile under artifacts/bench/
    BENCH_QUICK=1 python -m bench.run   # short mode (the test suite runs it, a few minutes): everything under
                                        # artifacts/bench-quick/, BENCHMARKS.md untouched

Sizes can be overridden one by one: BENCH_<BENCHMARK>_<PARAMETER>, e.g. BENCH_P4_PRESSES=300, BENCH_P1_ROUNDS=50,
BENCH_P8_SIZES=250,1000 (parameter names as in BENCHMARKS below, upper case, '-' as '_'). BENCH_OUT_DIR moves the
output directory (BENCHMARKS.md is then written there), BENCH_SMS_PART_USD sets the SMS price per part used in P5.
Exits non-zero if any benchmark failed to produce its figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, machine_info

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")

# name: module, sizes for the full run, sizes for the quick run, timeout (s) full / quick
BENCHMARKS = {
    "p1": ("p1_intake", {"rounds": 1000, "warmup": 20, "record-posts": 20, "profile-posts": 40},
           {"rounds": 10, "warmup": 2, "record-posts": 2, "profile-posts": 2}, 3600, 180),
    "p2": ("p2_coldstart", {"runs": 20, "nopyc-runs": 3, "importtime-runs": 3},
           {"runs": 3, "nopyc-runs": 1, "importtime-runs": 1}, 900, 180),
    "p3": ("p3_escalation", {"incidents": 20, "stagger": 0.25, "burst": 100, "tier1-timeout": 2, "tier2-timeout": 5},
           {"incidents": 2, "stagger": 0.25, "burst": 6, "tier1-timeout": 2, "tier2-timeout": 3}, 1200, 180),
    "p4": ("p4_burst", {"presses": 1000, "concurrency": 8, "rate-presses": 300, "rates": "1,3", "rate-timeouts": "20,20"},
           {"presses": 12, "concurrency": 8, "rate-presses": 6, "rates": "1,3", "rate-timeouts": "2,2"}, 3600, 240),
    "p5": ("p5_cost", {"repeats": 3, "tier-timeout": 2}, {"repeats": 1, "tier-timeout": 2}, 900, 240),
    # 100 check-ins falling due over 20 s (5 a second). Over 2 s (50 a second) the local stack is past its ceiling
    # (P9: ~30 presses/s on 2 cores) and its jobs queue, not the timer, makes them late: p99 +4.6 s measured.
    "p6": ("p6_checkins", {"check-ins": 100, "due-in": 5, "spread": 20.0, "recorded": 5},
           {"check-ins": 4, "due-in": 5, "spread": 1.0, "recorded": 2}, 900, 120),
    "p7": ("p7_ack", {"acks": 50, "recorded": 10}, {"acks": 3, "recorded": 2}, 900, 120),
    "p8": ("p8_review_reads", {"sizes": "250,1000,10000"}, {"sizes": "40,120"}, 2400, 120),
    "p9": ("moto_overhead", {"runs": 3, "n": 100, "burst": 300, "concurrency": 8},
           {"runs": 1, "n": 6, "burst": 8, "concurrency": 8}, 3600, 180),
    "p10": ("suite_time", {"runs": 3}, {"runs": 1}, 900, 180),
}


def sizes_for(name: str, defaults: dict) -> dict:
    sizes = dict(defaults)
    for key in defaults:
        override = os.environ.get(f"BENCH_{name.upper()}_{key.upper().replace('-', '_')}")
        if override:
            sizes[key] = type(defaults[key])(override)
    return sizes


def command_for(module: str, sizes: dict, out: str) -> list[str]:
    command = ["-m", f"bench.{module}", "--out", out]
    for key, value in sizes.items():
        command += [f"--{key}", str(value)]
    return command


def run_one(name: str, module: str, sizes: dict, timeout: int, out_dir: Path) -> dict:
    out, log = out_dir / f"{name}.json", out_dir / f"{name}.log"
    out.unlink(missing_ok=True)
    command = command_for(module, sizes, str(out))
    if name == "p1":
        command += ["--profile-out", str(out_dir / "profile_intake.txt")]
    # The benchmarks measure the service alone: a test session's least-privilege recorder (local/iam_recorder.py,
    # on when IAM_CALLS_FILE is set) would wrap every AWS call they time, and fill that session's record.
    env = {k: v for k, v in os.environ.items() if k != "IAM_CALLS_FILE"}
    print(f"[bench] {name}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    try:
        with log.open("w") as log_file:
            done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, stdout=log_file,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        status = "ok" if done.returncode == 0 and out.exists() else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired:
        status = f"failed (timed out after {timeout} s)"
    elapsed = time.perf_counter() - started
    print(f"[bench] {name}: {status} in {elapsed:.0f} s (log: {log})", flush=True)
    result = json.loads(out.read_text()) if status == "ok" else {}
    result.update({"status": status, "elapsed_s": elapsed, "sizes": sizes, "log": str(log),
                   "command": "python " + " ".join(command_for(module, sizes, f"/tmp/{name}.json"))})
    if status != "ok":
        result["log_tail"] = log.read_text()[-3000:] if log.exists() else ""
    return result


def main() -> int:
    from bench.report import missing_figures, render

    mode = "quick" if QUICK else "full"
    out_dir = Path(os.environ.get("BENCH_OUT_DIR") or ROOT / "artifacts" / ("bench-quick" if QUICK else "bench"))
    out_dir.mkdir(parents=True, exist_ok=True)
    machine_before = machine_info()
    started = time.perf_counter()
    results: dict[str, dict] = {}
    for name, (module, full, quick, full_timeout, quick_timeout) in BENCHMARKS.items():
        sizes = sizes_for(name, quick if QUICK else full)
        results[name] = run_one(name, module, sizes, quick_timeout if QUICK else full_timeout, out_dir)
    total_s = time.perf_counter() - started

    sms_part_usd = float(os.environ.get("BENCH_SMS_PART_USD", "0.00581"))
    machine = {**machine_before, "loadavg_after": machine_info()["loadavg"]}
    report = render(results, machine, mode, total_s, sms_part_usd)
    target = ROOT / "BENCHMARKS.md" if not QUICK and not os.environ.get("BENCH_OUT_DIR") else out_dir / "BENCHMARKS.md"
    target.write_text(report)
    (out_dir / "results.json").write_text(json.dumps(
        {"mode": mode, "machine": machine, "total_s": total_s, "sms_part_usd": sms_part_usd, "results": results},
        indent=2, default=str))
    missing = missing_figures(results)
    print(f"[bench] wrote {target} ({mode} mode, {total_s:.0f} s)" + (f"; missing figures: {missing}" if missing else ""))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
