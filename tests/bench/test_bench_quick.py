"""The benchmarks run (not timed): `BENCH_QUICK=1 python -m bench.run` in a subprocess, into a temporary directory,
must exit 0 and produce every section and figure of BENCHMARKS.md. The numbers themselves are not checked here: the
quick sizes are too small to judge anything, and speed is measured, not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## Summary", "## Machine and run", "## How to reproduce", "## P1 Intake overhead", "## P2 Cold start",
            "## P3 Escalation precision", "## P4 Burst", "## P5 Cost per incident and per check-in", "## P6 Check-ins",
            "## P7 ACK by SMS", "## P8 Reviewer reads", "## P9 The local stack's ceiling", "## P10 Fast tests")
BENCHMARKS = [f"p{i}" for i in range(1, 11)]


def test_quick_benchmarks_produce_every_section_and_figure(tmp_path):
    env = {**os.environ, "BENCH_QUICK": "1", "BENCH_OUT_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bench.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"bench.run failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"

    report = (tmp_path / "BENCHMARKS.md").read_text()
    for section in SECTIONS:
        assert section in report, f"{section} missing from the quick BENCHMARKS.md"
    summary = report.split("## Machine and run")[0]
    assert "not measured" not in summary and "incomplete result" not in summary and "failed" not in summary
    for label in (f"| P{i} |" for i in range(1, 11)):
        assert label in summary, f"{label} has no row in the summary"
    assert summary.count("python -m bench.") >= 10, "every figure names the command that reproduces it"

    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert {name: r["status"] for name, r in results.items()} == {name: "ok" for name in BENCHMARKS}
    p1, p2, p3, p4, p5, p6, p7, p8, p9, p10 = (results[name] for name in BENCHMARKS)

    assert set(p1["arms_ms"]) == {"bare", "post_key", "post_key_cold"}
    assert {"p50", "p99", "targets"} <= set(p1["headline"]) and set(p1["ratios"]) == {"post_key/bare", "post_key_cold/bare"}
    assert p1["calls"]["post_key_cold"]["sequence"] and p1["calls"]["bare"]["sequence"], "the AWS calls per POST"
    assert p1["profile"]["cumulative_ms_per_post"] and p1["profile"]["top_own_time"], "the hot path profile"

    assert {"boto3", "app", "app_first"} == set(p2["ms"]) and p2["ratio_app_first_to_boto3"] > 0
    assert {"import", "first", "warm"} == set(p2["app_first_parts_ms"]) and p2["importtime"]["app_first"]["total_ms"]

    for phase in ("unloaded", "burst"):
        measured = p3["phases"][phase]
        assert measured["tier2_late_s"]["n"] == measured["incidents"], f"{phase}: every incident measured"
        assert {"early", "exhausted_late_s", "breakdown_tier2_s"} <= set(measured)

    assert {"burst", "rate_1", "rate_3"} == set(p4["scenarios"])
    for name, scenario in p4["scenarios"].items():
        assert {"stored_incidents", "executions", "paged_by_tier", "lost", "ok"} <= set(scenario), name
    assert all("tier2_early" in p4["scenarios"][name] for name in ("rate_1", "rate_3"))

    assert set(p5["scenarios"]) == {"acknowledged", "unacknowledged", "failover", "check_in_completed", "check_in_missed"}
    typical = p5["scenarios"]["acknowledged"]["runs"][0]
    assert typical["aws_usd"] > 0 and typical["transitions"] > 0 and typical["sms_out_parts"] >= 1
    assert typical["lambda_invocations"].get("sms_receipts"), "delivery receipts are in the cost"
    failover = p5["scenarios"]["failover"]["runs"][0]
    assert any(line["item"].startswith("Voice calls") and line["quantity"] for line in failover["lines"])

    assert p6["create"]["check_in"]["requests"] and "within_incident_cost" in p6["create"]
    assert p6["late_s"]["n"] == p6["check_ins"]

    assert p7["sequence"] and p7["publish_to_confirmation_s"]["n"] == p7["acks"]

    assert [entry["incidents"] for entry in p8["results"]] == p8["incident_counts"]
    for entry in p8["results"]:
        assert set(entry["requests"]) == {"list_first", "list_deep", "list_filtered", "metrics", "export"}
        assert all(request["items_read"] > 0 for request in entry["requests"].values())

    assert {"before", "after"} == set(p9["arms"]) and p9["burst_speedup"] > 0

    assert p10["suites"]["services"]["tests"] > 0 and p10["contract_dynamodb_over_memory"] > 0
