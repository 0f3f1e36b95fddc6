"""P10 how long the fast tests take (issue 16): the service tests on the in-memory twins of every adapter
(tests/services), and the store contract (tests/contract) run against the in-memory store and against DynamoDB on
moto: the same tests on both, so their ratio is what the twins save.

Each suite is run by pytest in a fresh process (`-p no:cacheprovider`, `--durations=0`), `--runs` times; the figure
is pytest's own session time (collection and fixtures included, interpreter start-up not), and the time of each test
(setup + call + teardown) from its durations report. The environment's IAM_CALLS_FILE is removed: these runs must
not write into a test session's least-privilege record.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from bench.common import ROOT, cli_args, median, summary, write_result

SUITES = {
    "services": ["tests/services"],
    "contract_memory": ["tests/contract", "-k", "memory"],
    "contract_dynamodb": ["tests/contract", "-k", "dynamodb"],
}
TARGET_MEDIAN_TEST_S = 0.1  # "most service tests run in milliseconds" (issue 16)
SESSION = re.compile(r"(\d+) passed.* in ([\d.]+)s")
DURATION = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+(\S+)")


def run_suite(arguments: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "IAM_CALLS_FILE"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
                           "--durations-min=0", *arguments], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pytest {' '.join(arguments)} failed:\n{done.stdout[-3000:]}")
    session = SESSION.search(done.stdout.strip().splitlines()[-1])
    per_test: dict[str, float] = {}
    for line in done.stdout.splitlines():
        match = DURATION.match(line)
        if match:
            per_test[match.group(3)] = per_test.get(match.group(3), 0.0) + float(match.group(1))
    return {"passed": int(session.group(1)), "session_s": float(session.group(2)), "process_s": wall,
            "per_test_s": per_test}


def main() -> None:
    args = cli_args()
    runs = int(args.get("runs", 3))
    results = {}
    for name, arguments in SUITES.items():
        samples = [run_suite(arguments) for _ in range(runs)]
        tests = samples[0]["per_test_s"]
        per_test_median = {test: median(s["per_test_s"].get(test, 0.0) for s in samples) for test in tests}
        slowest = sorted(per_test_median.items(), key=lambda kv: kv[1], reverse=True)[:3]
        results[name] = {
            "command": f"python -m pytest -q {' '.join(arguments)}",
            "tests": samples[0]["passed"],
            "session_s": summary(s["session_s"] for s in samples),
            "process_s": summary(s["process_s"] for s in samples),
            "per_test_s": summary(per_test_median.values()),
            "slowest": [{"test": test, "s": seconds} for test, seconds in slowest],
        }
    memory, dynamodb = results["contract_memory"], results["contract_dynamodb"]
    write_result(args["out"], {
        "benchmark": "suite_time",
        "runs": runs,
        "suites": results,
        "contract_dynamodb_over_memory": dynamodb["session_s"]["p50"] / memory["session_s"]["p50"],
        "target_median_test_s": TARGET_MEDIAN_TEST_S,
    })


if __name__ == "__main__":
    main()
