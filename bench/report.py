"""BENCHMARKS.md from the benchmarks' JSON results. Every sentence with a number in it is computed here from the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import ROOT

TARGETS = {
    "p1": 1.3,  # POST / bare calls, p50 and p99
    "p2": 1.5,  # import app / import boto3 + client
    "p3": (0.0, 1.5),  # tier-2 page lateness p99, seconds; never early
    "p5": 0.001,  # USD per incident, everything but SMS
}


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


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


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


# --- figures and targets ---------------------------------------------------------------------------------------------
def p1_figure(r: dict) -> tuple[str, bool]:
    ratios, a = r["ratios"], r["arms_ms"]
    plain, like, key = ratios["post/bare"], ratios["post_key/bare_key"], ratios["post_key/bare"]
    text = (f"no key: p50 {ratio(plain['p50'])}, p99 {ratio(plain['p99'])} ({ms(a['post']['p50'])} vs "
            f"{ms(a['bare']['p50'])}); with Idempotency-Key vs bare + the same 2 idempotency writes: p50 "
            f"{ratio(like['p50'])}, p99 {ratio(like['p99'])}; with key vs bare: p50 {ratio(key['p50'])}")
    met = max(plain["p50"], plain["p99"], like["p50"], like["p99"]) <= TARGETS["p1"]
    return text, met


def p2_figure(r: dict) -> tuple[str, bool]:
    i = r["import_ms"]
    text = (f"{ratio(r['ratio_app_to_boto3'])} ({ms(i['app']['p50'])} vs {ms(i['boto3']['p50'])}, medians of "
            f"{i['app']['n']}); with the first request's wiring {ratio(r['ratio_app_wired_to_boto3'])}")
    return text, r["ratio_app_to_boto3"] <= TARGETS["p2"]


def p3_figure(r: dict) -> tuple[str, bool]:
    s = r["tier2_late_s"]
    lo, hi = TARGETS["p3"]
    text = (f"tier-2 page p50 {sec(s.get('p50'), sign=True)}, p99 {sec(s.get('p99'), sign=True)}, "
            f"max {sec(s.get('max'), sign=True)}, early {r['early']} of {r['measured']}")
    met = (s.get("n", 0) == r["incidents"] and r["early"] == 0 and s["min"] >= lo and s["p99"] <= hi)
    return text, met


def p4_figure(r: dict) -> tuple[str, bool]:
    text = (f"{r['presses']} presses: {r['accepted_per_s']:.1f} incidents/s accepted, every tier-1 page sent "
            f"{sec(r['first_press_to_last_page_s'], 1)} after the first press, {r['lost']} lost, "
            f"{r['duplicate_pages']} paged twice")
    return text, r["lost"] == 0 and r["duplicate_pages"] == 0


def _median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda run: run["aws_usd"])
    return ordered[(len(ordered) - 1) // 2]


def p5_figure(r: dict, sms_part_usd: float) -> tuple[str, bool]:
    typical = _median_run(r["scenarios"]["acknowledged"]["runs"])
    pages = [m for s in r["scenarios"].values() for run in s["runs"] for m in run["sms_out"]
             if m["text"].startswith(("EMERGENCY", "EXHAUSTED"))]
    one_part = all(m["parts"] == 1 for m in pages) and bool(pages)
    text = (f"{usd(typical['aws_usd'])} per typical incident without SMS (+ {typical['sms_out_parts']} SMS parts = "
            f"{usd(typical['sms_out_parts'] * sms_part_usd)} at {usd(sms_part_usd)}/part); pages "
            f"{'all one part' if one_part else 'NOT all one part'}")
    return text, typical["aws_usd"] < TARGETS["p5"] and one_part


def missing_figures(results: dict[str, dict]) -> list[str]:
    missing = []
    checks = {
        "p1": lambda r: r["ratios"]["post_key/bare"]["p50"] and r["calls"]["post_key"]["sequence"],
        "p2": lambda r: r["ratio_app_to_boto3"],
        "p3": lambda r: r["tier2_late_s"]["p99"] is not None,
        "p4": lambda r: r["accepted_per_s"] is not None and r["lost"] is not None,
        "p5": lambda r: r["scenarios"]["acknowledged"]["runs"][0]["aws_usd"] is not None,
    }
    for name, check in checks.items():
        try:
            if not (ok(results.get(name)) and check(results[name])):
                missing.append(name)
        except (KeyError, TypeError, IndexError):
            missing.append(name)
    return missing


# --- sections --------------------------------------------------------------------------------------------------------
def summary_section(results: dict, sms_part_usd: float) -> str:
    rows = []
    figures = [
        ("P1", "Intake overhead: panic POST in-process / bare PutItem + StartExecution", p1_figure,
         "<= 1.3x (p50 and p99; like for like)"),
        ("P2", "Cold start: `import app` / `import boto3; boto3.client(\"dynamodb\")`, fresh process", p2_figure, "<= 1.5x"),
        ("P3", "Escalation precision: tier-2 page time minus scheduled", p3_figure, "+0 to +1.5 s p99, never early"),
        ("P4", "Burst of panic presses", p4_figure, "0 lost"),
        ("P5", "Cost per incident", lambda r: p5_figure(r, sms_part_usd), "< $0.001 without SMS; pages one SMS part"),
    ]
    for label, what, figure, target in figures:
        result = results.get(label.lower())
        if ok(result):
            try:
                text, met = figure(result)
            except (KeyError, TypeError, ZeroDivisionError) as exc:
                text, met = f"incomplete result ({exc!r})", None
        else:
            text, met = f"not measured: {result.get('status') if result else 'did not run'}", None
        rows.append([label, what, text, target, verdict(met)])
    return "## Summary\n\n" + table(["", "Figure", "Measured", "Target", ""], rows) + "\n"


def machine_section(machine: dict, mode: str, total_s: float, results: dict) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    sizes = []
    for name, result in results.items():
        if result:
            params = ", ".join(f"{k}={v}" for k, v in result.get("sizes", {}).items())
            sizes.append([name.upper().replace("_", " "), params, f"{result.get('elapsed_s', 0):.0f} s", result.get("status")])
    from bench.moto_patch import mode as moto_mode

    moto_patched = moto_mode()
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
        ["moto TransactWriteItems fix", moto_patched],
    ])}

Sizes of this run (each benchmark runs in its own process):

{table(["Benchmark", "Parameters", "Time", "Status"], sizes)}

## How to reproduce

```
make bench                          # = .venv/bin/python -m bench.run: all of it, writes this file (~10 min)
BENCH_QUICK=1 .venv/bin/python -m bench.run   # the short CI mode, writes artifacts/bench-quick/BENCHMARKS.md
BENCH_P4_PRESSES=300 make bench     # any size: BENCH_<BENCHMARK>_<PARAMETER>, see bench/run.py
.venv/bin/python -m bench.p3_escalation --out /tmp/p3.json --incidents 5   # one benchmark alone, raw JSON
```
Raw results, logs and the full profile of the last run are under `artifacts/bench/` (not committed).
`BENCH_SMS_PART_USD` sets the SMS price per part for P5. The machine is shared and noisy: the benchmarks interleave
what they compare, report medians and percentiles, and wait for the process to go idle where that matters.
"""


def p1_section(r: dict) -> str:
    if not ok(r):
        return "## P1 Intake overhead\n\n" + failed_block("P1", r)
    a, cpu = r["arms_ms"], r.get("arms_thread_cpu_ms", {})
    calls = r["calls"]
    arm_rows = []
    described = {
        "bare": "PutItem(incident item) + StartExecution: the issue's baseline",
        "bare_key": "`bare` + the idempotency record's PutItem and UpdateItem, in the service's order",
        "floor": f"the service's TransactWriteItems ({calls['floor']['sequence'][0]['call'].count('Put ') + calls['floor']['sequence'][0]['call'].count('Update ')} items) + StartExecution",
        "post": "POST /v1/incidents, no Idempotency-Key",
        "post_key": "POST /v1/incidents with Idempotency-Key (what the app sends)",
    }
    for arm in ("bare", "bare_key", "floor", "post", "post_key"):
        s = a[arm]
        arm_rows.append([f"`{arm}`", described[arm], ms(s["p50"]), ms(s["p90"]), ms(s["p99"]), ms(s["max"]),
                         ms(cpu.get(arm, {}).get("p50")), f"{calls[arm]['calls_per_run']['p50']:.0f}"])
    ratio_rows = [[k, ratio(v["p50"]), ratio(v["p99"])] for k, v in r["ratios"].items()]

    def sequence_rows(arm: str) -> list[list]:
        return [[i + 1, f"`{s['call']}`", s.get("site") or "", ms(s["median_ms"]), ms(s.get("p99_ms")),
                 f"{s['wru']:g}", f"{s['rru']:g}"] for i, s in enumerate(calls[arm]["sequence"])]

    key = calls["post_key"]
    base_calls = "; ".join(f"`{s['call']}` {ms(s['median_ms'])} ({arm})" for arm in ("bare", "bare_key", "floor")
                           for s in calls[arm]["sequence"])
    seq = key["sequence"]
    directory_reads = [s for s in seq if "(directory" in s["call"]]
    idem = [s for s in seq if "(idempotency)" in s["call"]]
    slowest = max(seq, key=lambda s: s["median_ms"])
    profile = r.get("profile", {})
    cumulative = profile.get("cumulative_ms_per_post", {})
    findings = [
        f"A POST with Idempotency-Key makes **{len(seq)} AWS requests in sequence** (without the key "
        f"{len(calls['post']['sequence'])}), against 2 for the bare intake: the time is in the requests, "
        f"{key['aws_share_median'] * 100:.0f}% of the POST's wall time (median) is spent inside botocore calls.",
        f"{len(directory_reads)} of them read the directory (routing, the policy, every responder, every schedule): "
        f"{ms(sum(s['median_ms'] for s in directory_reads))} of medians per POST, the same answer for every incident.",
        f"The idempotency record costs {len(idem)} requests ({ms(sum(s['median_ms'] for s in idem))} of medians) and "
        f"{sum(s['wru'] for s in idem):g} WRU per POST.",
        f"The slowest request is `{slowest['call']}` ({ms(slowest['median_ms'])} median). The baselines' requests: "
        f"{base_calls}.",
        f"CPU used by the handler's own thread (service code + botocore client side) is {ms(cpu['post_key']['p50'])} "
        f"per POST (median) against {ms(cpu['bare']['p50'])} for the two bare calls; the rest of the wall time is "
        f"waiting for the endpoint.",
        f"The first POST in a fresh process (services wired, clients created, lazy imports) took "
        f"{ms(r['first_post_ms'])}; every measured POST ran after {r['warmup_rounds']} warm-up rounds.",
    ]
    probe = calls["bare_key"]["sequence"]
    starts = [i for i, step in enumerate(probe) if step["call"].startswith("stepfunctions.StartExecution")]
    if starts and starts[0] + 1 < len(probe):
        after, first = probe[starts[0] + 1], probe[0]
        findings.insert(4, (
            f"A request made right after StartExecution is slow locally in every arm that makes one: in `bare_key` "
            f"`{after['call']}` takes {ms(after['median_ms'])} (median) against {ms(first['median_ms'])} for "
            f"`{first['call']}` before it. moto starts the execution in this same process at that moment (a thread, "
            f"the definition parsed, a boto3 client for the first task) and the handler waits for the interpreter "
            f"lock: a local artifact; on AWS the idempotency UpdateItem costs what the PutItem costs."))
    if cumulative:
        findings.append("cProfile (ms per POST, cumulative, main thread; profiling inflates Python-heavy parts): " + "; ".join(
            f"{label.strip()} {value:.1f}" for label, value in cumulative.items() if value >= 0.05))
    top = profile.get("top_own_time", [])[:8]
    tree = profile.get("pyinstrument_tree", "")
    tree_lines = [line for line in tree.splitlines() if line.strip()][:70]

    return f"""## P1 Intake overhead

The panic POST is handled in-process by the Chalice test client (`app.app`, prod stage settings), its AWS calls going
to the local moto endpoint; the baselines replay the exact parameters the service sent for a real incident (new ids
each time) through clients from the service's own `aws_client` factory. The five arms run once per round in a
shuffled order, {r['rounds']} rounds after {r['warmup_rounds']} warm-up rounds; before each arm the benchmark waits
for the process to go idle (the escalation each arm starts, and its page, run in the background of this one process;
median wait {sec(r['settle_wait_s'].get('p50'), 2)}).

{table(["Arm", "What", "p50", "p90", "p99", "max", "thread CPU p50", "AWS calls"], arm_rows)}

{table(["Ratio", "p50", "p99"], ratio_rows)}

Target: POST / bare <= 1.3 at p50 and p99, checked like for like: `post` / `bare`, and `post_key` / `bare_key`.

### AWS requests per POST (with Idempotency-Key), in order

{table(["#", "Request", "Made by", "median", "p99", "WRU", "RRU"], sequence_rows("post_key"))}

Without the key the sequence is the same minus the two idempotency requests. {key['most_common_sequence_share'] * 100:.0f}%
of the POSTs made exactly this sequence. WRU/RRU: DynamoDB on-demand request units computed from item sizes
(transactions count double, each global secondary index holding the item one more write).

### What the profile of the hot path shows

""" + "\n".join(f"- {f}" for f in findings) + f"""

Top functions by own time (cProfile, {profile.get('posts', 0)} POSTs):

{table(["Function", "own ms / POST", "calls / POST"], [[f"`{t['function']}`", f"{t['own_ms_per_post']:.2f}", f"{t['calls_per_post']:.1f}"] for t in top])}

pyinstrument, wall clock, {profile.get('posts', 0)} POSTs combined (library frames collapsed; full report and the
cProfile listing in `artifacts/bench/profile_intake.txt`):

```
""" + "\n".join(tree_lines) + "\n```\n"


def p2_section(r: dict) -> str:
    if not ok(r):
        return "## P2 Cold start\n\n" + failed_block("P2", r)
    i, w = r["import_ms"], r["process_wall_ms"]
    labels = {"app": "`import app`", "boto3": "`import boto3; boto3.client(\"dynamodb\")`",
              "app_wired": "`import app` + `get_services()` (what the first request adds)"}
    rows = [[labels[k], ms(i[k]["p50"]), ms(i[k]["p90"]), ms(i[k]["min"]), ms(i[k]["max"]), ms(w[k]["p50"])] for k in labels]
    nopyc = r.get("nopyc_import_ms", {})
    nopyc_rows = [[labels[k], ms(v.get("p50")), v.get("n", 0)] for k, v in nopyc.items() if v.get("n")]
    imp = r.get("importtime_app", {})
    by_package = ", ".join(f"{p['package']} {p['ms']:.0f}" for p in imp.get("self_ms_by_package", [])[:10])
    second = ", ".join(f"{p['module']} {p['ms']:.0f}" for p in imp.get("second_level_cumulative", [])[:8])
    wired = r.get("importtime_app_wired", {})
    wired_top = ", ".join(f"{p['module']} {p['ms']:.0f}" for p in wired.get("top_level_cumulative", [])[:4])
    return f"""## P2 Cold start

A new interpreter per sample, cwd = the repository (Lambda imports `app` from /var/task), timing its own import with
`perf_counter`; the variants interleaved in a shuffled order, {r['runs']} samples each after a discarded warm-up.

{table(["Variant", "import p50", "p90", "min", "max", "whole process p50"], rows)}

Ratio `import app` / boto3 + client: **{ratio(r['ratio_app_to_boto3'])}** (target <= 1.5x); with the first request's
wiring {ratio(r['ratio_app_wired_to_boto3'])}.

Without a bytecode cache (`-X pycache_prefix=<empty dir>`: everything compiled from source, as on Lambda when the
package has no `__pycache__` and /var/task is read-only), {r.get('nopyc_runs')} samples:

{table(["Variant", "import p50", "n"], nopyc_rows)}

`python -X importtime -c "import app"` (median of {imp.get('samples', 1)} runs per module; {imp.get('total_ms', 0):.0f} ms under
importtime): self time by package, ms:
{by_package}. What `app` imports, cumulative ms: {second}.
The first request adds (cumulative ms): {wired_top}.
"""


def p3_section(r: dict) -> str:
    if not ok(r):
        return "## P3 Escalation precision\n\n" + failed_block("P3", r)
    t1, t2 = r["tier_timeouts_s"]

    def row(label: str, s: dict) -> list:
        return [label, sec(s.get("min"), sign=True), sec(s.get("p50"), sign=True), sec(s.get("p99"), sign=True),
                sec(s.get("max"), sign=True), s.get("n", 0)]

    breakdown = r["breakdown_tier2_s"]
    names = {"timer_s": "timer: Wait exited - due", "claim_s": "claim + enqueue: RequestPages done - Wait exited",
             "queue_s": "queue: send_pages started - enqueued", "sender_s": "sender: SMS sent - send_pages started"}
    missing = f" Missing: {r['missing']}." if r["missing"] else ""
    return f"""## P3 Escalation precision

{r['incidents']} incidents on a 2-tier policy (tier 1 waits {t1} s, tier 2 waits {t2} s, nobody answers), opened over
the HTTP API one every {r['stagger_s']} s after one unmeasured warm-up incident. Scheduled time = the Wait state's
entered time in the execution history + its seconds; actual = when the SMS was published (moto's SNS, recorded with
millisecond precision).{missing}

{table(["Page", "min", "p50", "p99", "max", "n"], [
        row(f"tier 2 (due {t1} s after tier 1's Wait began)", r["tier2_late_s"]),
        row(f"exhausted (due {t2} s after tier 2's Wait began)", r["exhausted_late_s"]),
    ])}

Early pages: **{r['early']}**. Tier-2 pages sent twice: {r['duplicate_tier2_pages']}. From press to the tier-1 page:
p50 {sec(r['press_to_tier1_s'].get('p50'))}, p99 {sec(r['press_to_tier1_s'].get('p99'))}.

Where the tier-2 lateness goes (medians; "queue" can be slightly negative: the executor records the task's end
after the message is already visible):

{table(["Part", "p50", "p99", "max"], [[names[k], sec(v.get("p50")), sec(v.get("p99")), sec(v.get("max"))] for k, v in breakdown.items()])}

moto's Wait state is a precise local timer; AWS publishes no precision for Wait, so on AWS add its drift to the
"timer" line. The rest (claim, queue, sender) is the service's own path and is what this figure checks.
"""


def p4_section(r: dict, unpatched: dict | None) -> str:
    if not ok(r):
        return "## P4 Burst\n\n" + failed_block("P4", r)

    def rows(x: dict) -> list[list]:
        return [
            ["Presses / concurrent shoppers", f"{x['presses']} / {x['concurrency']}"],
            ["Accepted (201)", f"{x['accepted']} ({x['retried_presses']} needed a retry; not accepted: {x['not_accepted']}"
             + (f", last statuses {', '.join(x['not_accepted_statuses'])}" if x['not_accepted_statuses'] else "") + ")"],
            ["Incidents accepted per second", f"{x['accepted_per_s']:.2f} (all accepted in {sec(x['intake_s'], 1)})"],
            ["Press latency (incl. retries) p50 / p99 / max", f"{sec(x['press_latency_s'].get('p50'), 2)} / {sec(x['press_latency_s'].get('p99'), 2)} / {sec(x['press_latency_s'].get('max'), 2)}"],
            ["First press to every tier-1 page sent", sec(x["first_press_to_last_page_s"], 1)],
            ["Tier-1 pages sent per second (first to last page)", f"{x['pages_per_s']:.2f}" if x.get("pages_per_s") else "n/a"],
            ["Press to its tier-1 page p50 / p99 / max", f"{sec(x['press_to_page_s'].get('p50'), 2)} / {sec(x['press_to_page_s'].get('p99'), 2)} / {sec(x['press_to_page_s'].get('max'), 2)}"],
            ["Lost (never accepted, or accepted and never paged)", f"**{x['lost']}** (accepted, not paged: {x['accepted_not_paged']})"],
            ["Incidents paged twice", x["duplicate_pages"]],
            ["Incidents stored in DynamoDB", x["stored_incidents"]],
            ["Page queue depth, max sampled", x["max_queue_depth"]],
        ]

    text = f"""## P4 Burst

{r['presses']} panic presses sent by {r['concurrency']} concurrent shoppers from a separate process over HTTP (each
with an Idempotency-Key, retried with the same key on 429/5xx/connection errors), against the local stack's API.
One tier, one responder, long timeout: every SMS in the window is a tier-1 page.

{table(["", ""], rows(r))}
"""
    if unpatched is not None:
        if ok(unpatched):
            text += f"""
The same benchmark, {unpatched['presses']} presses, on moto as it ships (no TransactWriteItems fix), for comparison:
{unpatched['accepted_per_s']:.2f} incidents/s, every tier-1 page {sec(unpatched['first_press_to_last_page_s'], 1)}
after the first press, press to page p99 {sec(unpatched['press_to_page_s'].get('p99'), 2)}, {unpatched['lost']} lost,
{unpatched['retried_presses']} presses retried.
"""
        else:
            text += "\n" + failed_block("P4 cross-check on unpatched moto", unpatched)
    text += """
Where the time goes locally: a one-off `py-spy record --gil` of a 300-press run (2026-11-25, not repeated by
`make bench`) put about half of the process's CPU in moto's Step Functions executor (parsing the definition with
ANTLR for each execution 22%, building jsonpath-ng parsers per path 14%, its requests 7%, a new boto3 client per task
4%), 31% in moto's request handling and 13% in the service's handlers (nearly all of it botocore/PynamoDB).

This is one Python process doing the work of DynamoDB, Step Functions, SQS, SNS, the API and the page sender on two
shared cores: the rate is this machine's, a lower bound, not AWS's. On AWS the limits that matter are others, none
emulated here: SMS origination throughput (10DLC 1 part/s, toll-free 3/s, short code 100/s: 1,000 pages take
1,000 s, 333 s or 10 s), `send_pages` reserved concurrency (20 in prod), Lambda and Step Functions StartExecution
quotas. The queue is what keeps a burst from being lost at any of these.
"""
    return text


def p5_section(r: dict, sms_part_usd: float) -> str:
    if not ok(r):
        return "## P5 Cost per incident\n\n" + failed_block("P5", r)
    parts = []
    for name, scenario in r["scenarios"].items():
        runs = scenario["runs"]
        run = _median_run(runs)
        lines = [[line["item"], f"{line['quantity']:g}", usd(line["unit_usd"]), usd(line["usd"])] for line in run["lines"]]
        sms = run["sms_out_parts"] * sms_part_usd
        lines.append(["**AWS without SMS**", "", "", f"**{usd(run['aws_usd'])}**"])
        lines.append([f"SMS parts sent ({usd(sms_part_usd)} each, a parameter)", run["sms_out_parts"], usd(sms_part_usd), usd(sms)])
        lines.append(["**Total**", "", "", f"**{usd(run['aws_usd'] + sms)}**"])
        spread = f"min {usd(min(scenario['aws_usd']))}, max {usd(max(scenario['aws_usd']))} over {len(runs)} runs"
        share = max(run["lines"], key=lambda line: line["usd"])
        lambda_ms = "; ".join(f"{k} {', '.join(f'{v:.0f}' for v in vals)} ms" for k, vals in run["lambda_ms"].items())
        requests = sorted(run["requests"].items(), key=lambda kv: kv[0])
        texts = "\n".join(f"- {m['parts']} part(s): `{m['text']}`" for m in run["sms_out"])
        errors = (" Requests that failed (a timer stopping on its conditional claim is one, by design): " +
                  ", ".join(f"`{k}` x{v}" for k, v in run["errors"].items()) + ".") if run["errors"] else ""
        parts.append(f"""### Scenario `{name}`

{table(["Item", "Quantity", "Unit price", "USD"], lines)}

Median run shown ({spread}). The largest line is {share['item']} ({share['usd'] / run['aws_usd'] * 100:.0f}% of the AWS
cost). Lambda durations (measured in-process, billed per started ms): {lambda_ms}. {run['request_count']} AWS requests
(+ {run['empty_receives']} empty long polls of the event source mapping, a monthly not a per-incident cost).{errors}

<details><summary>Every request of this incident, by who made it</summary>

{table(["Origin and request", "Count"], [[f"`{k}`", v] for k, v in requests])}

</details>

<details><summary>The same requests by the service method that made them</summary>

{table(["Origin, request and service method (> adapter method)", "Count"], [[f"`{k}`", v] for k, v in sorted(run.get("sites", {}).items())])}

</details>

SMS sent:
{texts}
""")
    return f"""## P5 Cost per incident

Every AWS request of one incident on the local stack, the incident alone on the stack (one warm-up incident first),
{r['repeats']} run(s) per scenario. `acknowledged` is the typical incident: panic POST with Idempotency-Key, tier-1
page, `ACK` by SMS (confirmation SMS), `RES` by SMS (confirmation SMS), the timer wakes after {r['tier_timeout_s']} s,
finds it acknowledged and stops. `unacknowledged`: two tiers, nobody answers, exhausted page to both.

Prices: public us-east-1 list prices: Step Functions Standard $0.025 per 1,000 state transitions (counted as states
entered in the execution history), DynamoDB on-demand $0.625 per million WRU and $0.125 per million RRU (units from
item sizes, see bench/awscalls.py), Lambda $0.0000166667 per GB-s at {r['lambda_memory_mb']} MB and $0.20 per million
requests; also SQS $0.40, SNS publish $0.50 and API Gateway REST $3.50 per million requests. Not counted: storage,
point-in-time recovery, CloudWatch Logs, free tiers, inbound SMS charges.

""" + "\n".join(parts)


def caveats_section() -> str:
    return """## Local stack versus AWS: read the numbers with these in mind

- Everything AWS does here runs in one Python process with the service (moto server, the Step Functions executor,
  the page sender) and shares one interpreter lock on two cores shared with other people's test runs. Latencies of
  single requests (a few ms) are of the same order as DynamoDB's in-region latency, but the local endpoint closes
  every connection (a new TCP connection per request) and moto's executor creates a new boto3 client per task.
- moto 5.2.5's TransactWriteItems copies whole tables (time grows with the tables) and its rollback puts whole
  tables back; the runs use a per-item backup instead (local/moto_fixes.py where the stack has it, else
  bench/moto_patch.py; `BENCH_MOTO_PATCH=0` turns both off). The service is unchanged.
- P3 measures the service's path after the timer; moto's Wait timer is exact, AWS's precision is not published.
- P4's rate is a lower bound set by this machine; SMS origination throughput bounds paging on AWS.
- P5's Lambda durations are local wall times (they include the local endpoint's latency); the bill is dominated by
  state transitions either way.
"""


def render(results: dict, machine: dict, mode: str, total_s: float, sms_part_usd: float, out_dir: Path) -> str:
    header = f"""# Benchmarks

Written by `make bench` (`python -m bench.run`, bench/) on {machine['date']}. Do not edit by hand: re-run it.
The issue: intake overhead, cold start, escalation precision, burst, cost per incident (P1-P5 below), on the embedded
local stack (moto server with Step Functions execution, the resources of infra/, the Chalice app in-process).
"""
    body = [
        header,
        summary_section(results, sms_part_usd),
        machine_section(machine, mode, total_s, results),
        p1_section(results.get("p1")),
        p2_section(results.get("p2")),
        p3_section(results.get("p3")),
        p4_section(results.get("p4"), results.get("p4_unpatched")),
        p5_section(results.get("p5"), sms_part_usd),
        caveats_section(),
    ]
    text = "\n".join(body)
    return text.replace(str(ROOT) + "/", "")



def main() -> None:
    """Re-renders a report from a run's results.json (after changing this file, without re-running anything):
    python -m bench.report artifacts/bench/results.json [BENCHMARKS.md]"""
    import json
    import sys

    source = Path(sys.argv[1])
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "BENCHMARKS.md"
    run = json.loads(source.read_text())
    sms_part_usd = float(run.get("sms_part_usd", 0.00581))
    target.write_text(render(run["results"], run["machine"], run["mode"], run["total_s"], sms_part_usd, source.parent))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
