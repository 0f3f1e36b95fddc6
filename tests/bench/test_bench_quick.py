"""The benchmarks run (not timed): `BENCH_QUICK=1 python -m bench.run` in a subprocess, into a temporary directory,
must exit 0 and produce every figure of BENCHMARKS.md. The numbers themselves are not checked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## Summary", "## P1 Intake overhead", "## P2 Cold start", "## P3 Escalation precision", "## P4 Burst",
            "## P5 Cost per incident")


def test_quick_benchmarks_produce_every_figure(tmp_path):
    env = {**os.environ, "BENCH_QUICK": "1", "BENCH_OUT_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bench.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"bench.run failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"

    report = (tmp_path / "BENCHMARKS.md").read_text()
    for section in SECTIONS:
        assert section in report, f"{section} missing from the quick BENCHMARKS.md"
    assert "not measured" not in report and "failed" not in report.split("## Machine")[0]

    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert {name: r["status"] for name, r in results.items()} == {f"p{i}": "ok" for i in range(1, 6)}
    p1, p2, p3, p4, p5 = (results[f"p{i}"] for i in range(1, 6))
    assert p1["ratios"]["post/bare"]["p50"] > 0 and p1["ratios"]["post_key/bare_key"]["p99"] > 0
    assert p1["calls"]["post_key"]["sequence"], "the AWS call list per POST"
    assert p1["profile"]["cumulative_ms_per_post"], "the hot path profile"
    assert p2["ratio_app_to_boto3"] > 0 and p2["import_ms"]["app"]["n"] >= 3
    assert p3["tier2_late_s"]["n"] == p3["incidents"] and p3["tier2_late_s"]["p99"] is not None
    assert p4["accepted_per_s"] > 0 and p4["lost"] is not None and p4["first_press_to_last_page_s"] is not None
    typical = p5["scenarios"]["acknowledged"]["runs"][0]
    assert typical["aws_usd"] > 0 and typical["transitions"] > 0 and typical["sms_out_parts"] >= 1
