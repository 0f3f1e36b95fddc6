"""Runs every benchmark, each in its own process, and writes BENCHMARKS.md.

    python -m bench.run                 # full run (make bench): BENCHMARKS.md at the repository root,
                                        # raw results, logs and the profile under artifacts/bench/
    BENCH_QUICK=1 python -m bench.run   # short mode (CI): everything under artifacts/bench-quick/, BENCHMARKS.md untouched

Sizes can be overridden one by one: BENCH_<BENCHMARK>_<PARAMETER>, e.g. BENCH_P4_PRESSES=300, BENCH_P1_ROUNDS=50,
BENCH_P3_INCIDENTS=10 (parameter names as in SIZES below, upper case, '-' as '_'). BENCH_OUT_DIR moves the output
directory, BENCH_SMS_PART_USD sets the SMS price per part used in P5, BENCH_MOTO_PATCH=0 runs without the benchmark
fix of moto's TransactWriteItems (bench/moto_patch.py). Exits non-zero if any benchmark failed to produce its figure.
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

# module, sizes for the full run, sizes for the quick run, timeout (s) full / quick
BENCHMARKS = {
    "p1": ("p1_intake", {"rounds": 100, "warmup": 10, "profile-posts": 40}, {"rounds": 8, "warmup": 2, "profile-posts": 5},
           900, 180),
    "p2": ("p2_coldstart", {"runs": 10, "nopyc-runs": 3, "importtime-runs": 3},
           {"runs": 3, "nopyc-runs": 1, "importtime-runs": 1}, 600, 180),
    "p3": ("p3_escalation", {"incidents": 20, "tier1-timeout": 2, "tier2-timeout": 5, "stagger": 0.25},
           {"incidents": 3, "tier1-timeout": 2, "tier2-timeout": 5, "stagger": 0.25}, 300, 120),
    "p4": ("p4_burst", {"presses": 1000, "concurrency": 8}, {"presses": 20, "concurrency": 8}, 1500, 180),
    "p5": ("p5_cost", {"repeats": 3, "tier-timeout": 2}, {"repeats": 1, "tier-timeout": 2}, 300, 180),
}
# Only with BENCH_CROSS_CHECK=1 (full mode): P4 again, smaller, on moto as it ships (no TransactWriteItems fix).
CROSS_CHECK = {"p4_unpatched": ("p4_burst", {"presses": 150, "concurrency": 8}, 900, {"BENCH_MOTO_PATCH": "0"})}


def sizes_for(name: str, defaults: dict) -> dict:
    sizes = dict(defaults)
    for key in defaults:
        override = os.environ.get(f"BENCH_{name.upper()}_{key.upper().replace('-', '_')}")
        if override:
            sizes[key] = type(defaults[key])(override)
    return sizes


def run_one(name: str, module: str, sizes: dict, timeout: int, out_dir: Path, extra_env: dict | None = None) -> dict:
    out, log = out_dir / f"{name}.json", out_dir / f"{name}.log"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", f"bench.{module}", "--out", str(out)]
    for key, value in sizes.items():
        command += [f"--{key}", str(value)]
    if name == "p1":
        command += ["--profile-out", str(out_dir / "profile_intake.txt")]
    env = {**os.environ, **(extra_env or {})}
    print(f"[bench] {name}: {' '.join(command[2:])}", flush=True)
    started = time.perf_counter()
    try:
        with log.open("w") as log_file:
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, timeout=timeout)
        status = "ok" if done.returncode == 0 and out.exists() else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired:
        status = f"failed (timed out after {timeout} s)"
    elapsed = time.perf_counter() - started
    print(f"[bench] {name}: {status} in {elapsed:.0f} s (log: {log.relative_to(ROOT) if log.is_relative_to(ROOT) else log})",
          flush=True)
    result = json.loads(out.read_text()) if status == "ok" else {}
    result.update({"status": status, "elapsed_s": elapsed, "sizes": sizes, "log": str(log)})
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
    if not QUICK and os.environ.get("BENCH_CROSS_CHECK", "0") == "1":
        for name, (module, sizes, timeout, env) in CROSS_CHECK.items():
            results[name] = run_one(name, module, sizes_for(name, sizes), timeout, out_dir, env)
    total_s = time.perf_counter() - started

    sms_part_usd = float(os.environ.get("BENCH_SMS_PART_USD", "0.00581"))
    machine = {**machine_before, "loadavg_after": machine_info()["loadavg"]}
    report = render(results, machine, mode, total_s, sms_part_usd, out_dir)
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
