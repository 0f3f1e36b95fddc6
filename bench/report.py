"""BENCHMARKS.md from the benchmarks' JSON results. Every sentence with a number in it is computed here from the run,
except the "before" figures: the first release's, kept here because the file they were measured for is rewritten by
every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import ROOT

# The first release's figures: BENCHMARKS.md of commit d8390c4 (2026-11-25, `make bench` on this machine), and where
# that file had no figure, the re-measurements filed in the issues (issue 18: reviewer reads, the burst on a slow
# number; issue 18.5: the local stack's ceiling before local/moto_fixes.py's executor patches).
BEFORE = {
    "p1": "p50 2.48x, p99 2.68x (warm cache: 66.5 vs 26.8 ms); cold cache p50 3.46x (issue 18.3)",
    "p2": "1.71x (`import app` + `get_services()`)",
    "p3_unloaded": "p99 +0.352 s, measured from when tier 2's wait began (the tier-1 page request queued)",
    "p3_burst": "tier 1 never paged for 249 of 300 incidents of a burst (issue 18.1)",
    "p4_burst": "1000 presses: 6.9/s accepted, every tier-1 page 184.9 s after the first press, 0 lost (SMS counted)",
    "p4_rate": "tier 1 paged for 51 of 300 incidents; the rest went straight to tier 2 (issue 18.1, 2 tiers of 20 s)",
    "p5_incident": "$0.0003003 + 3 SMS parts; pages one part",
    "p8": "2,000 incidents: list 2,000 items read / 4.0 s, metrics 11,009 items / 23.1 s, export 24.0 s (issue 18.2)",
    "p9": "5.3 presses/s, 32.3 CPU s per 100 escalations (moto's executor as it ships; after the patches 14.4 and "
          "21.3, issue 18.5)",
}
NOT_KNOWN = "n/a (new)"


# --- formatting ------------------------------------------------------------------------------------------------------
def ms(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} ms"


def sec(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f} s" if sign else f"{value:.{digits}f} s"


def ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "$0"
    return f"${value:.7f}".rstrip("0") if value < 0.01 else f"${value:.4f}"


def test_time(value: float | None) -> str:
    """pytest reports durations in hundredths of a second."""
    return "n/a" if value is None else ("< 0.01 s" if value < 0.005 else f"{value:.2f} s")


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**missed**")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ok(result: dict | None) -> bool:
    return bool(result) and result.get("status") == "ok"


def failed_block(name: str, result: dict | None) -> str:
    if result is None:
        return f"_{name} did not run._\n"
    tail = (result.get("log_tail") or "").strip()[-1500:]
    return f"**{name} failed: {result.get('status')}.** Log: `{result.get('log')}`\n\n```\n{tail}\n```\n"


def spread(s: dict, digits: int = 3, sign: bool = True) -> str:
    return f"p50 {sec(s.get('p50'), digits, sign)}, p99 {sec(s.get('p99'), digits, sign)}, max {sec(s.get('max'), digits, sign)}"


def reproduce(result: dict | None) -> str:
    return f"`{result['command']}`" if result and result.get("command") else ""


def _median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda run: run["aws_usd"])
    return ordered[(len(ordered) - 1) // 2]


# --- the summary's figures: (measured text, met or None) from a benchmark's result ---------------------------------
def p1_figure(r: dict) -> tuple[str, bool]:
    head, arms = r["headline"], r["arms_ms"]
    text = (f"p50 {ratio(head['p50'])}, p99 {ratio(head['p99'])} ({ms(arms['post_key_cold']['p50'])} vs "
            f"{ms(arms['bare']['p50'])}, n={arms['bare']['n']}); warm cache p50 "
            f"{ratio(r['ratios']['post_key/bare']['p50'])}")
    return text, head["p50"] <= head["targets"]["p50"] and head["p99"] <= head["targets"]["p99"]


def p2_figure(r: dict) -> tuple[str, bool]:
    m = r["ms"]
    text = (f"{ratio(r['ratio_app_first_to_boto3'])} ({ms(m['app_first']['p50'])} vs {ms(m['boto3']['p50'])}, medians "
            f"of {m['boto3']['n']}); `import app` alone {ratio(r['ratio_app_to_boto3'])}")
    return text, r["ratio_app_first_to_boto3"] <= r["target"]


def p3_figure(phase: str, target_p99: float | None):
    def figure(r: dict) -> tuple[str, bool]:
        p = r["phases"][phase]
        s = p["tier2_late_s"]
        text = f"tier 2: {spread(s)}; early {p['early']} of {p['measured']}, a page missing for {len(p['missing'])}"
        met = p["early"] == 0 and not p["missing"] and p["measured"] == p["incidents"] and s.get("n", 0) > 0
        if target_p99 is not None:
            met = met and 0 <= s["min"] and s["p99"] <= target_p99
        return text, met
    return figure


def p4_figure(scenario: str):
    def figure(r: dict) -> tuple[str, bool]:
        x = r["scenarios"][scenario]
        text = (f"{x['presses']} presses: {x['accepted']} accepted, {x['stored_incidents']} stored, {x['executions']} "
                f"executions, tier 1 paged for {x['paged_by_tier'][0]}")
        if len(x["tier_timeouts_s"]) > 1:
            margin = x["tier2_after_tier1_plus_timeout_s"]
            text += (f", tier 2 for {x['paged_by_tier'][1]}, never before tier 1 + {x['tier_timeouts_s'][0]} s: "
                     f"{x['tier2_early']} early (closest {sec(margin.get('min'), sign=True)})")
        else:
            text += f"; {x['accepted_per_s']:.1f} accepted/s, last tier-1 page {sec(x['first_press_to_last_tier1_page_s'], 1)} after the first press"
        return text + f"; {x['lost']} lost", x["ok"]
    return figure


def p5_incident_figure(r: dict, sms_part_usd: float) -> tuple[str, bool]:
    typical = _median_run(r["scenarios"]["acknowledged"]["runs"])
    pages = [m for s in r["scenarios"].values() for run in s["runs"] for m in run["sms_out"]
             if m["text"].startswith(("EMERGENCY", "EXHAUSTED"))]
    one_part = bool(pages) and all(m["parts"] == 1 for m in pages)
    text = (f"{usd(typical['aws_usd'])} per typical incident without SMS (+ {typical['sms_out_parts']} SMS parts = "
            f"{usd(typical['sms_out_parts'] * sms_part_usd)}); pages {'all one part' if one_part else 'NOT all one part'}")
    return text, typical["aws_usd"] < r["target_incident_usd"] and one_part


def p5_check_in_figure(r: dict) -> tuple[str, bool]:
    completed = _median_run(r["scenarios"]["check_in_completed"]["runs"])
    missed = _median_run(r["scenarios"]["check_in_missed"]["runs"])
    typical = _median_run(r["scenarios"]["acknowledged"]["runs"])
    text = (f"completed {usd(completed['aws_usd'])}; missed {usd(missed['aws_usd'])} with its incident paged, ACKed "
            f"and resolved (a typical incident: {usd(typical['aws_usd'])})")
    return text, completed["aws_usd"] <= typical["aws_usd"]


def p6_create_figure(r: dict) -> tuple[str, bool]:
    c = r["create"]
    text = (f"{c['check_in']['count']} requests ({', '.join(c['check_in']['requests'])}) against an incident's "
            f"{c['incident']['count']}")
    return text, c["within_incident_cost"]


def p6_late_figure(r: dict) -> tuple[str, bool]:
    s = r["late_s"]
    text = f"{spread(s)}; {r['missed']} of {r['check_ins']} missed and opened, {r['early']} early"
    met = (r["not_missed"] == 0 and r["wrong_kind"] == 0 and r["early"] == 0 and s.get("n", 0) > 0
           and s["p99"] <= r["target_late_p99_s"])
    return text, met


def p7_figure(r: dict) -> tuple[str, None]:
    s = r["publish_to_confirmation_s"]
    text = (f"{r['requests_per_ack']['p50']:.0f} AWS requests per ACK ({r['wru_per_ack']:g} WRU); reply to "
            f"confirmation SMS p50 {sec(s.get('p50'))}, p99 {sec(s.get('p99'))}")
    return text, None


def p8_figure(r: dict) -> tuple[str, bool]:
    parts = []
    for entry in r["results"]:
        q = entry["requests"]
        parts.append(f"{entry['incidents']:,}: list {q['list_first']['items_read']} items / "
                     f"{sec(q['list_first']['seconds'], 2)}, metrics {q['metrics']['items_read']:,} / "
                     f"{sec(q['metrics']['seconds'], 2)}, export {q['export']['items_read']:,} / "
                     f"{sec(q['export']['seconds'], 2)}")
    return "; ".join(parts), r["linear"]


def p9_figure(r: dict) -> tuple[str, bool | None]:
    arms = r["arms"]
    if "burst_speedup" not in r:
        return "both arms are needed", None
    after, before = arms["after"], arms["before"]
    text = (f"{after['burst']['presses_per_s_median']:.1f} presses/s, {after['escalations']['cpu_s_per_100_median']:.1f} "
            f"CPU s per 100 escalations with the patches; without: {before['burst']['presses_per_s_median']:.1f} and "
            f"{before['escalations']['cpu_s_per_100_median']:.1f} ({ratio(r['burst_speedup'])} presses/s)")
    return text, r["burst_speedup"] >= r["target_speedup"]


def p10_figure(r: dict) -> tuple[str, bool]:
    services = r["suites"]["services"]
    text = (f"tests/services: {services['tests']} tests in {sec(services['session_s']['p50'], 2)}, median test "
            f"{test_time(services['per_test_s']['p50'])}; the store contract on DynamoDB (moto) "
            f"{ratio(r['contract_dynamodb_over_memory'])} the time on the in-memory twin")
    return text, services["per_test_s"]["p50"] <= r["target_median_test_s"]


def summary_rows(results: dict, sms_part_usd: float) -> list[list]:
    figures = [
        ("P1", "p1", "Intake: POST with Idempotency-Key, cold directory cache / the incident's TransactWriteItems + "
                     "StartExecution sent directly", BEFORE["p1"], p1_figure, "<= 1.5x p50, <= 2x p99"),
        ("P2", "p2", "Cold start: `import app` + the first request's wiring / `import boto3` + a client",
         BEFORE["p2"], p2_figure, "<= 1.5x"),
        ("P3", "p3", "Escalation precision: tier-2 page time - (tier-1 page sent + timeout), unloaded",
         BEFORE["p3_unloaded"], p3_figure("unloaded", 1.5), "0 to +1.5 s p99, never early"),
        ("P3", "p3", "The same under a burst (every incident's pages through one queue)", BEFORE["p3_burst"],
         p3_figure("burst", None), "never early, no tier skipped"),
        ("P4", "p4", "Burst: every press accepted, stored, escalated (its execution) and paged once",
         BEFORE["p4_burst"], p4_figure("burst"), "0 lost"),
    ]
    p4 = results.get("p4") or {}
    for scenario, x in (p4.get("scenarios") or {}).items():
        if scenario.startswith("rate_"):
            figures.append(("P4", "p4", f"Burst on a slow number: SMS at {x['sms_rate_per_s']:g}/s, 2 tiers of "
                                        f"{x['tier_timeouts_s'][0]} s", BEFORE["p4_rate"], p4_figure(scenario),
                            "every tier-1 responder paged; tier 2 never before tier 1 sent + timeout"))
    figures += [
        ("P5", "p5", "Cost per incident (AWS, without SMS)", BEFORE["p5_incident"],
         lambda r: p5_incident_figure(r, sms_part_usd), "< $0.001; pages one SMS part"),
        ("P5", "p5", "Cost per check-in", NOT_KNOWN, p5_check_in_figure, "<= an incident's"),
        ("P6", "p6", "Check-in: AWS requests per create", NOT_KNOWN, p6_create_figure,
         "<= one write + one StartExecution (an incident's)"),
        ("P6", "p6", "Missed check-in: incident opened after `due_at`", NOT_KNOWN, p6_late_figure, "<= 2 s p99"),
        ("P7", "p7", "ACK by SMS: AWS requests, and reply to confirmation", NOT_KNOWN, p7_figure, "reported"),
        ("P8", "p8", "Reviewer reads: DynamoDB items read and time per request, by incidents stored", BEFORE["p8"],
         p8_figure, "linear in what is returned"),
        ("P9", "p9", "Local stack ceiling: burst presses/s and CPU per 100 escalations, local/moto_fixes.py's "
                     "executor patches on (off)", BEFORE["p9"], p9_figure, "about 2x presses/s (>= 1.8x)"),
        ("P10", "p10", "Fast tests: the service tests on the in-memory twins", NOT_KNOWN, p10_figure,
         "most in milliseconds (median <= 0.1 s)"),
    ]
    rows = []
    for label, name, what, before, figure, target in figures:
        result = results.get(name)
        if ok(result):
            try:
                text, met = figure(result)
            except (KeyError, TypeError, ZeroDivisionError, IndexError) as exc:
                text, met = f"incomplete result ({exc!r})", None
        else:
            text, met = f"not measured: {result.get('status') if result else 'did not run'}", None
        rows.append([label, what, before, text, target, verdict(met), reproduce(result)])
    return rows


def missing_figures(results: dict[str, dict]) -> list[str]:
    checks = {
        "p1": lambda r: r["headline"]["p50"] and r["calls"]["post_key_cold"]["sequence"],
        "p2": lambda r: r["ratio_app_first_to_boto3"],
        "p3": lambda r: all(r["phases"][p]["tier2_late_s"]["p99"] is not None for p in ("unloaded", "burst")),
        "p4": lambda r: all(x["accepted_per_s"] is not None for x in r["scenarios"].values()),
        "p5": lambda r: all(s["runs"][0]["aws_usd"] for s in r["scenarios"].values()),
        "p6": lambda r: r["late_s"]["p99"] is not None and r["create"]["check_in"]["requests"],
        "p7": lambda r: r["publish_to_confirmation_s"]["p99"] is not None and r["sequence"],
        "p8": lambda r: r["results"] and all(e["requests"]["export"]["items_read"] for e in r["results"]),
        "p9": lambda r: r["burst_speedup"],
        "p10": lambda r: r["suites"]["services"]["tests"],
    }
    missing = []
    for name, check in checks.items():
        try:
            if not (ok(results.get(name)) and check(results[name])):
                missing.append(name)
        except (KeyError, TypeError, IndexError):
            missing.append(name)
    return missing


# --- sections --------------------------------------------------------------------------------------------------------
def summary_section(results: dict, sms_part_usd: float) -> str:
    return ("## Summary\n\n"
            "Before: the first release's figure where one was measured (BENCHMARKS.md of 2026-11-25, or the issue that "
            "re-measured it). Reproduce: one benchmark alone, with this run's sizes (raw JSON; run from the "
            "repository with `.venv/bin/python`).\n\n"
            + table(["", "Figure", "Before (first release)", "Now", "Target", "", "Reproduce"],
                    summary_rows(results, sms_part_usd)) + "\n")


def machine_section(machine: dict, mode: str, total_s: float, results: dict) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    sizes = []
    for name, result in results.items():
        if result:
            params = ", ".join(f"{k}={v}" for k, v in result.get("sizes", {}).items())
            sizes.append([name.upper(), params, f"{result.get('elapsed_s', 0):.0f} s", result.get("status")])
    return f"""## Machine and run

{table(["", ""], [
        ["Date", machine["date"]],
        ["Commit", machine["commit"]],
        ["CPU", f"{machine['cpu']}, {machine['cores']} cores (shared with other engineers' test runs)"],
        ["Memory", machine["memory"]],
        ["OS / Python", f"{machine['os']} / Python {machine['python']}"],
        ["Packages", packages],
        ["Load average (1/5/15 min)", f"before {machine['loadavg']}, after {machine.get('loadavg_after', 'n/a')}"],
        ["Mode", f"{mode}, {total_s:.0f} s in all"],
        ["moto", "with local/moto_fixes.py, as the local stack applies it (P9 measures its executor patches)"],
    ])}

Sizes of this run (each benchmark runs in its own process):

{table(["Benchmark", "Parameters", "Time", "Status"], sizes)}

## How to reproduce

```
make bench                          # = .venv/bin/python -m bench.run: all of it, writes this file (about an hour)
BENCH_QUICK=1 .venv/bin/python -m bench.run   # the short mode the test suite runs: artifacts/bench-quick/BENCHMARKS.md
BENCH_P4_PRESSES=300 make bench     # any size: BENCH_<BENCHMARK>_<PARAMETER>, see bench/run.py
.venv/bin/python -m bench.p3_escalation --out /tmp/p3.json --incidents 5 --burst 20   # one benchmark alone, raw JSON
.venv/bin/python -m bench.report artifacts/bench/results.json   # this file again from a run's results
```
Raw results, logs and the full profile of the last run are under `artifacts/bench/` (not committed).
`BENCH_SMS_PART_USD` sets the SMS price per part for P5. The machine is shared and noisy: the benchmarks interleave
what they compare, report medians and percentiles, and wait for the process to go idle where that matters.
"""


def p1_section(r: dict) -> str:
    if not ok(r):
        return "## P1 Intake overhead\n\n" + failed_block("P1", r)
    a, cpu, calls = r["arms_ms"], r["arms_thread_cpu_ms"], r["calls"]
    described = {
        "bare": "the incident's TransactWriteItems + StartExecution, sent directly (boto3, the service's clients)",
        "post_key": "POST /v1/incidents with Idempotency-Key, directory cache warm",
        "post_key_cold": "the same, directory cache cleared before each press (the headline)",
    }
    arm_rows = [[f"`{arm}`", text, ms(a[arm]["p50"]), ms(a[arm]["p90"]), ms(a[arm]["p99"]), ms(a[arm]["max"]),
                 ms(cpu[arm]["p50"]), f"{calls[arm]['calls_per_run']['p50']:.0f}"] for arm, text in described.items()]
    ratio_rows = [[k, ratio(v["p50"]), ratio(v["p99"])] for k, v in r["ratios"].items()]

    def sequence_rows(arm: str) -> list[list]:
        return [[i + 1, f"`{s['call']}`", s.get("site") or "", ms(s["median_ms"]), ms(s.get("p99_ms")),
                 f"{s['wru']:g}", f"{s['rru']:g}"] for i, s in enumerate(calls[arm]["sequence"])]

    profile = r["profile"]
    cumulative = "; ".join(f"{label.strip()} {value:.1f}" for label, value in profile["cumulative_ms_per_post"].items()
                           if value >= 0.05)
    top = [[f"`{t['function']}`", f"{t['own_ms_per_post']:.2f}", f"{t['calls_per_post']:.1f}"]
           for t in profile["top_own_time"][:8]]
    tree = [line for line in profile.get("pyinstrument_tree", "").splitlines() if line.strip()][:60]
    cold = calls["post_key_cold"]
    return f"""## P1 Intake overhead

The panic POST as the shopper app sends it (with an Idempotency-Key), each by a new shopper, handled by the API
Lambda's handler in-process (`app.app` called with the API Gateway event, built before the clock starts), its AWS
calls going to the local moto endpoint. The baseline replays the exact TransactWriteItems and StartExecution a real
POST sent (new ids, owner and request token each time) through the service's own clients. The arms run once per
round in a shuffled order, {a['bare']['n']} rounds after {r['warmup_rounds']} warm-up rounds; before each arm the
benchmark waits for the process to go idle (median wait {sec(r['settle_wait_s'].get('p50'), 2)}). The AWS call
recorder and the profilers run only in separate passes after the timed one.

{table(["Arm", "What", "p50", "p90", "p99", "max", "thread CPU p50", "AWS calls"], arm_rows)}

{table(["Ratio to `bare`", "p50", "p99"], ratio_rows)}

Target (issue 18.3): `post_key_cold` / `bare` <= 1.5 at p50 and <= 2 at p99.

### AWS requests per POST, cold directory cache, in order

{table(["#", "Request", "Made by", "median", "p99", "WRU", "RRU"], sequence_rows("post_key_cold"))}

{cold['most_common_sequence_share'] * 100:.0f}% of {cold['runs']} recorded POSTs made exactly this sequence; with a
warm cache the routing plan's GetItem is left out ({calls['post_key']['calls_per_run']['p50']:.0f} requests). WRU/RRU:
DynamoDB on-demand request units computed from item sizes (transactions count double, each global secondary index
holding the item one more write).

### Profile of the cold-cache POST

cProfile, ms per POST, cumulative, main thread (profiling inflates Python-heavy parts): {cumulative}.

Top functions by own time ({profile['posts']} POSTs):

{table(["Function", "own ms / POST", "calls / POST"], top)}

pyinstrument, wall clock, {profile['posts']} POSTs combined (library frames collapsed; full report and the cProfile
listing in `artifacts/bench/profile_intake.txt`):

```
""" + "\n".join(tree) + "\n```\n"


def p2_section(r: dict) -> str:
    if not ok(r):
        return "## P2 Cold start\n\n" + failed_block("P2", r)
    m, parts = r["ms"], r["app_first_parts_ms"]
    labels = {"boto3": "`import boto3; boto3.client(\"dynamodb\")` (baseline)", "app": "`import app`",
              "app_first": "`import app` + the first request's wiring (judged)"}
    rows = [[labels[k], ms(m[k]["p50"]), ms(m[k]["p90"]), ms(m[k]["min"]), ms(m[k]["max"]), m[k]["n"]] for k in labels]
    part_rows = [[name, ms(parts[name]["p50"]), ms(parts[name]["p90"])] for name in ("import", "first", "warm")]
    nopyc = [[labels[k], ms(v.get("p50")), v.get("n", 0)] for k, v in r["nopyc_import_ms"].items() if v.get("n")]

    def importtime(variant: str) -> str:
        imp = r["importtime"][variant]
        by_package = ", ".join(f"{p['package']} {p['ms']:.0f}" for p in imp["self_ms_by_package"][:10])
        top = ", ".join(f"{p['module']} {p['ms']:.0f}" for p in imp["top_level_cumulative"][:6])
        return f"self time by package (ms): {by_package}; imported from the top (cumulative ms): {top}"

    return f"""## P2 Cold start

A new interpreter per sample, cwd = the repository (Lambda imports `app` from /var/task), timing itself with
`perf_counter`; the variants interleaved in a shuffled order, {r['runs']} samples each after a discarded warm-up. The
first request is a panic POST through the handler (`app.app` with the API Gateway event) against a local stack; its
wiring is its time minus a warm POST's (median of 3) in the same process: the AWS round trips cancel out, what only the
first request pays is left.

{table(["Variant", "p50", "p90", "min", "max", "n"], rows)}

Judged: **{ratio(r['ratio_app_first_to_boto3'])}** (target <= 1.5x); `import app` alone {ratio(r['ratio_app_to_boto3'])}.
Inside `app_first`:

{table(["Part", "p50", "p90"], part_rows)}

Without a bytecode cache (`-X pycache_prefix=<empty dir>`: everything compiled from source), {r['nopyc_runs']} samples:

{table(["Variant", "import p50", "n"], nopyc)}

`python -X importtime` (median of {r['importtime']['app']['samples']} runs per module):
- `import app`: {importtime('app')}.
- the first request (what it imports on top): {importtime('app_first')}.
"""


def p3_section(r: dict) -> str:
    if not ok(r):
        return "## P3 Escalation precision\n\n" + failed_block("P3", r)
    names = {"token_s": "token: the Wait began - tier-1 SMS sent", "timer_s": "timer: Wait exited - began - T1",
             "claim_s": "claim: tier 2's page request queued - Wait exited",
             "queue_s": "queue: send_pages started - request queued", "sender_s": "sender: SMS sent - send_pages started"}

    def row(label: str, s: dict) -> list:
        return [label, sec(s.get("min"), sign=True), sec(s.get("p50"), sign=True), sec(s.get("p99"), sign=True),
                sec(s.get("max"), sign=True), s.get("n", 0)]

    parts = []
    for phase, p in r["phases"].items():
        t1, t2 = p["tier_timeouts_s"]
        how = (f"{p['incidents']} incidents opened over the HTTP API one every {p['stagger_s']} s"
               if phase == "unloaded" else f"{p['presses']} presses at once by {p['concurrency']} concurrent shoppers "
                                           f"({p['accepted']} accepted)")
        missing = f" Not measured (a page missing): {p['missing']}." if p["missing"] else ""
        parts.append(f"""### {phase.capitalize()}: {how}

{table(["Page", "min", "p50", "p99", "max", "n"], [
            row(f"tier 2 (due {t1} s after tier 1 was sent)", p["tier2_late_s"]),
            row(f"exhausted (due {t2} s after tier 2 was sent)", p["exhausted_late_s"]),
        ])}

Early pages: **{p['early']}**. Incidents with a tier paged twice: {p['pages_sent_twice']}. From press to the tier-1
page: p50 {sec(p['press_to_tier1_s'].get('p50'))}, p99 {sec(p['press_to_tier1_s'].get('p99'))}.{missing}

{table(["Where tier 2's lateness goes", "p50", "p99", "max"],
       [[names[k], sec(v.get("p50")), sec(v.get("p99")), sec(v.get("max"))] for k, v in p["breakdown_tier2_s"].items()])}
""")
    return """## P3 Escalation precision

Two tiers (T1, T2 s), nobody answers, each incident a different shopper. A tier's timeout counts from when its pages
were sent (the sender answers the state machine's task token after the SMS), so tier 2 is due at the tier-1 SMS's send
time + T1 and the exhausted page at the tier-2 SMS's + T2; the send times are moto's SNS log (milliseconds). "queue"
can be slightly negative: the executor records the task's submission after the message is already visible.

""" + "\n".join(parts) + """
moto's Wait state is a precise local timer; AWS publishes no precision for Wait, so on AWS add its drift to "timer".
Under a burst, "queue" is the page queue's backlog: tier 2's request waits behind other incidents' pages.
"""


def p4_section(r: dict) -> str:
    if not ok(r):
        return "## P4 Burst\n\n" + failed_block("P4", r)

    def rows(x: dict) -> list[list]:
        lat, to_page = x["press_latency_s"], x["press_to_tier1_s"]
        listed = [
            ["Presses / concurrent shoppers", f"{x['presses']} / {x['concurrency']}"],
            ["Accepted (201)", f"{x['accepted']} ({x['retried_presses']} needed a retry; not accepted: "
                               f"{x['not_accepted']}{', statuses ' + ', '.join(x['not_accepted_statuses']) if x['not_accepted_statuses'] else ''})"],
            ["Incidents stored (Scan COUNT) / escalation executions (ListExecutions)",
             f"{x['stored_incidents']} / {x['executions']} ({', '.join(f'{k} {v}' for k, v in x['executions_by_status'].items())})"],
            ["Incidents accepted per second", f"{x['accepted_per_s']:.2f} (all accepted in {sec(x['intake_s'], 1)})"],
            ["Press latency (incl. retries) p50 / p99 / max",
             f"{sec(lat.get('p50'), 2)} / {sec(lat.get('p99'), 2)} / {sec(lat.get('max'), 2)}"],
            ["Paged, by tier (incidents)", " / ".join(str(n) for n in x["paged_by_tier"])],
            ["Not paged, by tier / paged twice, by tier",
             f"{' / '.join(str(n) for n in x['not_paged_by_tier'])}; {' / '.join(str(n) for n in x['paged_twice_by_tier'])}"],
            ["Press to its tier-1 page p50 / p99 / max",
             f"{sec(to_page.get('p50'), 2)} / {sec(to_page.get('p99'), 2)} / {sec(to_page.get('max'), 2)}"],
            ["First press to the last tier-1 page", sec(x["first_press_to_last_tier1_page_s"], 1)],
            ["Tier-1 pages sent per second", f"{x['tier1_pages_per_s']:.2f}" if x.get("tier1_pages_per_s") else "n/a"],
            ["Page queue depth, max sampled", x["max_queue_depth"]],
        ]
        if "tier2_early" in x:
            margin = x["tier2_after_tier1_plus_timeout_s"]
            listed.append([f"Tier 2 sent - (tier 1 sent + {x['tier_timeouts_s'][0]} s): min / p50 / max",
                           f"{sec(margin.get('min'), 2, True)} / {sec(margin.get('p50'), 2, True)} / "
                           f"{sec(margin.get('max'), 2, True)}; early: **{x['tier2_early']}**"])
        listed.append(["Lost (not accepted, not stored, not escalated or tier 1 not paged)", f"**{x['lost']}**"])
        return listed

    parts = []
    for name, x in r["scenarios"].items():
        title = ("one tier, no SMS rate limit" if x["sms_rate_per_s"] is None else
                 f"SMS at {x['sms_rate_per_s']:g}/s, tiers of {', '.join(str(t) for t in x['tier_timeouts_s'])} s")
        parts.append(f"### `{name}`: {title}\n\n{table(['', ''], rows(x))}\n")
    return """## P4 Burst

Each scenario on a fresh stack as `make run` starts it (local/subprocess_stack.py; `SMS_RATE_PER_S` holds the sender to
a number's rate), driven over HTTP only: presses by concurrent shoppers (each press a different shopper, with an
Idempotency-Key, retried with the same key on 429/5xx/connection errors), then the stack's own record: incidents
stored (a DynamoDB Scan), escalation executions (Step Functions ListExecutions), pages (the dev server's SMS log).
One responder per tier; nobody answers.

""" + "\n".join(parts) + """
This is one Python process doing the work of DynamoDB, Step Functions, SQS, SNS, the API and the page sender on two
shared cores: the unlimited rate is this machine's, a lower bound, not AWS's (P9 measures the ceiling). On AWS the
limits that matter are the number's SMS rate (10DLC 1 part/s, toll-free 3/s, short code 100/s), `send_pages`
concurrency and the StartExecution quota; the queue, and timers that start when pages are sent, are what keep a burst
from skipping anyone.
"""


def p5_section(r: dict, sms_part_usd: float) -> str:
    if not ok(r):
        return "## P5 Cost per incident and per check-in\n\n" + failed_block("P5", r)
    parts = []
    for name, scenario in r["scenarios"].items():
        runs = scenario["runs"]
        run = _median_run(runs)
        lines = [[line["item"], f"{line['quantity']:.6g}", usd(line["unit_usd"]), usd(line["usd"])]
                 for line in run["lines"] if line["quantity"]]
        sms = run["sms_out_parts"] * sms_part_usd
        lines.append(["**AWS without SMS**", "", "", f"**{usd(run['aws_usd'])}**"])
        lines.append([f"SMS parts sent ({usd(sms_part_usd)} each, a parameter)", run["sms_out_parts"], usd(sms_part_usd),
                      usd(sms)])
        lines.append(["**Total**", "", "", f"**{usd(run['aws_usd'] + sms)}**"])
        span = f"min {usd(min(scenario['aws_usd']))}, max {usd(max(scenario['aws_usd']))} over {len(runs)} run(s)"
        largest = max(run["lines"], key=lambda line: line["usd"])
        lambdas = "; ".join(f"{k} x{run['lambda_invocations'][k]}, {v} ms billed" for k, v in run["lambda_billed_ms"].items())
        errors = (" Requests that failed (a timer stopping on its conditional claim is one, by design): "
                  + ", ".join(f"`{k}` x{v}" for k, v in run["errors"].items()) + ".") if run["errors"] else ""
        texts = "\n".join(f"- {m['parts']} part(s): `{m['text']}`" for m in run["sms_out"]) or "- none"
        parts.append(f"""### Scenario `{name}`

{table(["Item", "Quantity", "Unit price", "USD"], lines)}

Median run shown ({span}). The largest line is {largest['item']} ({largest['usd'] / run['aws_usd'] * 100:.0f}% of the
AWS cost). Lambda (durations measured in-process, billed per started ms): {lambdas}. {run['request_count']} AWS
requests, {run['executions']} Step Functions execution(s) (+ {run['empty_receives']} empty long polls of the event
source mapping, a monthly not a per-incident cost).{errors}

<details><summary>Every request, by who made it</summary>

{table(["Origin and request", "Count"], [[f"`{k}`", v] for k, v in sorted(run["requests"].items())])}

</details>

<details><summary>The same requests by the service method that made them</summary>

{table(["Origin, request and service method (> adapter method)", "Count"], [[f"`{k}`", v] for k, v in sorted(run["sites"].items())])}

</details>

SMS sent:
{texts}
""")
    prices = r["prices"]
    return f"""## P5 Cost per incident and per check-in

Every AWS request of one incident (or check-in) on the local stack, alone on the stack (one warm-up incident first),
with a fresh roster each run. `acknowledged` is the typical incident: panic POST with Idempotency-Key, tier-1 page, `ACK`
by SMS (confirmation SMS), `RES` by SMS (confirmation SMS), the timer wakes after {r['tier_timeout_s']} s, finds it
resolved and stops. `unacknowledged`: two tiers, nobody answers, exhausted page to both. `failover`: the page fails at
the carrier, the responder is called and emailed, then ACKs and resolves. `check_in_completed`: started, completed, its
timer stopped. `check_in_missed`: its timer fires, its incident is paged, ACKed and resolved. The carrier answers every
SMS with a delivery receipt (SNS delivery status logs, all of them subscribed to `sms_receipts`).

Prices: public us-east-1 list prices: Step Functions Standard $0.025 per 1,000 state transitions (states entered, in
every execution the scenario started), DynamoDB on-demand $0.625 per million WRU and $0.125 per million RRU (units from
item sizes, see bench/awscalls.py), Lambda $0.0000166667 per GB-s at {r['lambda_memory_mb']} MB and $0.20 per million
requests, SQS $0.40, SNS publish $0.50 and API Gateway REST $3.50 per million requests, SES $0.10 per 1,000 emails,
CloudWatch Logs ingestion $0.50 per GB; a voice call is counted as one started minute at {usd(prices['voice_minute'])}
(a parameter, `--voice-minute-usd`: End User Messaging's per-minute price for the destination). Not counted: storage,
point-in-time recovery, the service's own CloudWatch Logs, free tiers, inbound SMS charges.

""" + "\n".join(parts)


def p6_section(r: dict) -> str:
    if not ok(r):
        return "## P6 Check-ins\n\n" + failed_block("P6", r)
    c = r["create"]
    rows = [[kind.replace("_", "-"), "<br>".join(f"`{label}`" for label in c[kind]["requests"]), c[kind]["writes"],
             c[kind]["start_executions"], "yes" if c[kind]["same_every_time"] else "no"] for kind in ("check_in", "incident")]
    b = r["breakdown_s"]
    return f"""## P6 Check-ins

A check-in may cost at most what an incident costs: one write and one StartExecution. AWS requests of the API Lambda
per create, warm, both with an Idempotency-Key:

{table(["Create", "Requests", "Writes", "StartExecution", "Same every time"], rows)}

{r['check_ins']} check-ins due in {r['due_in_s']} s, started over the HTTP API a little apart and never completed:
{r['missed']} became `missed` and opened a `missed_check_in` incident ({r['wrong_kind']} of another kind,
{r['not_missed']} not missed). Lateness = the incident's `created_at` - the check-in's `due_at`: {spread(r['late_s'])},
{r['early']} early (target: within 2 s at p99). The timer's own part (its job queued - `due_at`): {spread(b['timer_s'])}
(moto's Wait may end up to a second early: the jobs worker then holds the job until `due_at`); the rest (jobs queue,
`run_jobs`, the incident's transaction): {spread(b['rest_s'])}.
"""


def p7_section(r: dict) -> str:
    if not ok(r):
        return "## P7 ACK by SMS\n\n" + failed_block("P7", r)
    rows = [[i + 1, f"`{s['call']}`", s.get("site") or "", ms(s["median_ms"]), ms(s["p99_ms"]), f"{s['wru']:g}",
             f"{s['rru']:g}"] for i, s in enumerate(r["sequence"])]
    return f"""## P7 ACK by SMS

{r['acks']} incidents, each paged to a responder of its own, acknowledged one at a time by `ACK <code>` published to
the inbound-sms topic as End User Messaging would. From the publish to the confirmation SMS (moto's SNS log):
{spread(r['publish_to_confirmation_s'], sign=False)}; the `inbound_sms` invocation: {spread(r['inbound_sms_invocation_s'], sign=False)}.

AWS requests of one ACK ({r['recorded']} recorded, {r['most_common_sequence_share'] * 100:.0f}% made exactly these),
{r['wru_per_ack']:g} WRU and {r['rru_per_ack']:g} RRU:

{table(["#", "Request", "Made by", "median", "p99", "WRU", "RRU"], rows)}
"""


def p8_section(r: dict) -> str:
    if not ok(r):
        return "## P8 Reviewer reads\n\n" + failed_block("P8", r)
    labels = {"list_first": f"list, first page (limit {r['page']})", "list_deep": "list, a page further (cursor)",
              "list_filtered": f"list, `kind={r['sparse']['kind']}` (1 in {r['sparse']['one_in']})",
              "metrics": "metrics", "export": "export (CSV)"}
    rows = []
    for entry in r["results"]:
        for name, label in labels.items():
            q = entry["requests"][name]
            page = f" (page {q['page']})" if "page" in q else ""
            per = f"{q['read_per_returned']:.2f}" if q["read_per_returned"] is not None else "n/a"
            rows.append([f"{entry['incidents']:,}", label + page, q["returned"], f"{q['items_read']:,}", per,
                         q["requests"], sec(q["seconds"], 2)])
    targets = r["targets"]
    return f"""## P8 Reviewer reads

Incidents seeded through the service's own intake (`IncidentIntake.open_for`, the transaction a POST writes) up to
each size ({r['seed_s']:.0f} s of seeding in all), then each request made over the HTTP API as a reviewer: once with
the call recorder (items read: what DynamoDB bills, a Query's ScannedCount), once without, timed.

{table(["Incidents", "Request", "Returned", "Items read", "Read / returned", "DynamoDB requests", "Time"], rows)}

Linear in what is returned: {'**yes**' if r['linear'] else '**no**'} (a list page reads at most
{targets['list_read_per_returned']:g}x what it returns at every size; metrics and export read each incident of the
range once, at most {targets['range_read_per_incident']:g}x). A filter on kind or status is applied to what the index
returns, within a budget per request (max(200, 4 x limit) incidents, services/review.py): a sparse one answers a short
page and a `next_cursor` where it stopped reading, so no request reads the whole range; the next page goes on from
there. A rare filter over a long range therefore takes several requests; an index per kind would make it one.
"""


def p9_section(r: dict) -> str:
    if not ok(r):
        return "## P9 The local stack's ceiling\n\n" + failed_block("P9", r)
    rows = []
    for arm, figures in r["arms"].items():
        esc, bur = figures["escalations"], figures.get("burst", {})
        rows.append([f"`{arm}`", f"{esc['cpu_s_per_100_median']:.1f}", sec(esc["wall_s_median"], 1),
                     f"{bur.get('presses_per_s_median', 0):.2f}", sec(bur.get("wall_s_to_last_page_median"), 1),
                     f"{esc['rss_mb_per_incident_median']:.2f}", f"{esc['threads_per_incident_median']:.1f}",
                     "yes" if esc["all_paged"] and bur.get("all_paged", True) else "no"])
    esc_n = next(iter(r["arms"].values()))["escalations"]["n"]
    burst_n = next(iter(r["arms"].values())).get("burst", {}).get("n", 0)
    return f"""## P9 The local stack's ceiling

bench/moto_overhead.py: each run a fresh stack in its own process; `before` = moto's Step Functions executor as it
ships (`LOCAL_MOTO_FIXES_SKIP=executor`; the DynamoDB fix stays on), `after` = every patch of local/moto_fixes.py
(the parsed definition and jsonpath parsers cached, one boto3 client per task service). {esc_n} escalations (until
every first page is sent) and a burst of {burst_n} presses, {r['runs_per_arm']} run(s) per arm, medians.

{table(["Arm", "CPU s per 100 escalations", f"{esc_n} escalations: wall", "burst: presses/s", "burst: to last page",
        "RSS MB / incident", "threads / incident", "all paged"], rows)}

With the patches: {ratio(r.get('burst_speedup'))} the presses per second, {ratio(r.get('cpu_per_escalation_ratio'))} the
CPU per escalation.
"""


def p10_section(r: dict) -> str:
    if not ok(r):
        return "## P10 Fast tests\n\n" + failed_block("P10", r)
    rows = [[f"`{s['command']}`", s["tests"], sec(s["session_s"]["p50"], 2), sec(s["process_s"]["p50"], 2),
             test_time(s["per_test_s"]["p50"]), "; ".join(f"{t['test'].split('::')[-1]} {t['s']:.2f} s" for t in s["slowest"])]
            for s in r["suites"].values()]
    return f"""## P10 Fast tests

Each suite run by pytest in a fresh process, {r['runs']} time(s), medians. Session: pytest's own time; process: with
interpreter start-up.

{table(["Suite", "Tests", "Session", "Process", "Median test", "Slowest"], rows)}

The store contract (the same tests against both stores): DynamoDB on moto takes
{ratio(r['contract_dynamodb_over_memory'])} the time of the in-memory twin. The slowest service tests wait in real
time (retry pauses of the service itself), not on AWS.
"""


def caveats_section() -> str:
    return """## Local stack versus AWS: read the numbers with these in mind

- Everything AWS does here runs in one Python process with the service (moto server, the Step Functions executor,
  the page sender) and shares one interpreter lock on two cores shared with other people's test runs. Latencies of
  single requests (a few ms) are of the same order as DynamoDB's in-region latency, but the local endpoint closes
  every connection (a new TCP connection per request).
- moto runs with local/moto_fixes.py (applied by the local stack only): transactions atomic under concurrency and
  backed up per item, the executor's parsed definition, jsonpath parsers and task clients cached. P9 measures what
  the executor patches change; the service is the same either way.
- P3 measures the service's path after the timer; moto's Wait timer is exact, AWS's precision is not published.
- P4's unlimited rate is a lower bound set by this machine; SMS origination throughput bounds paging on AWS, and the
  rate scenarios emulate it.
- P5's Lambda durations are local wall times (they include the local endpoint's latency).
"""


def render(results: dict, machine: dict, mode: str, total_s: float, sms_part_usd: float) -> str:
    header = f"""# Benchmarks

Written by `make bench` (`python -m bench.run`, bench/) on {machine['date']}. Do not edit by hand: re-run it.
On the embedded local stack (moto server with Step Functions execution, the resources of infra/, the Chalice app):
intake overhead, cold start, escalation precision, bursts, cost per incident and per check-in, check-ins, the ACK
path, reviewer reads, the local stack's ceiling, and how long the fast tests take (P1-P10 below).
"""
    body = [
        header,
        summary_section(results, sms_part_usd),
        machine_section(machine, mode, total_s, results),
        p1_section(results.get("p1")),
        p2_section(results.get("p2")),
        p3_section(results.get("p3")),
        p4_section(results.get("p4")),
        p5_section(results.get("p5"), sms_part_usd),
        p6_section(results.get("p6")),
        p7_section(results.get("p7")),
        p8_section(results.get("p8")),
        p9_section(results.get("p9")),
        p10_section(results.get("p10")),
        caveats_section(),
    ]
    return "\n".join(body).replace(str(ROOT) + "/", "")


def main() -> None:
    """Re-renders a report from a run's results.json (after changing this file, without re-running anything):
    python -m bench.report artifacts/bench/results.json [BENCHMARKS.md]"""
    import json
    import sys

    source = Path(sys.argv[1])
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "BENCHMARKS.md"
    run = json.loads(source.read_text())
    target.write_text(render(run["results"], run["machine"], run["mode"], run["total_s"], run.get("sms_part_usd", 0.00581)))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
