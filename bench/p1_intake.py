"""P1 intake overhead: the panic POST handled in-process (Chalice test client, AWS calls to the local endpoint) versus
the bare boto3 calls an intake must make, interleaved in one run; plus the AWS calls each POST makes and a profile.

Arms, run once each per round in a shuffled order (so drift and background load fall on all of them alike):
- `bare`       PutItem of the same incident item + StartExecution with the same input (the brief's baseline)
- `bare_key`   `bare` plus the idempotency record's two writes, in the service's order: PutItem(idempotency record),
               PutItem(incident), StartExecution, UpdateItem(idempotency record): the like-for-like baseline of a POST
               with Idempotency-Key (and a probe of what a request right after StartExecution costs locally)
- `floor`      the service's own TransactWriteItems (incident, reference claim, first timeline event, short-code hint)
               + StartExecution: what this design needs at minimum
- `post`       POST /v1/incidents without Idempotency-Key
- `post_key`   POST /v1/incidents with Idempotency-Key (what the shopper app sends)
The baselines replay the exact request parameters the service sent for a real incident (new ids each time), through
clients made by the service's own `aws_client` factory, so payload sizes and client settings are the same.

Every arm starts a real escalation (the baselines' cloned incident items are claimable like real ones), and the
background work it sets off in this one process (the executor's claim and enqueue, the page sender) would land on
whichever arm runs next. So before each arm the benchmark waits for the process to go quiet (CPU use below 10% over
a 30 ms window, at most 3 s): every arm is timed on an idle process, the way one Lambda invocation runs alone.
(Turning moto's state machine execution off instead is not possible: moto then serves Step Functions from another
backend, which does not know the state machine.)
"""

from __future__ import annotations

import copy
import cProfile
import io
import json
import pstats
import random
import secrets
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict

from bench.awscalls import AwsCallRecorder
from bench.common import (
    Directory,
    chalice_client,
    cli_args,
    median,
    percentile,
    post_panic,
    start_stack,
    summary,
    write_result,
)

ARMS = ("bare", "bare_key", "floor", "post", "post_key")


def _replace_ids(params: dict, old_id: str, old_ref: str, old_key: str | None = None) -> dict:
    new_id = f"inc_{secrets.token_hex(10)}"
    new_ref = "TS-" + secrets.token_hex(3).upper()
    text = json.dumps(params).replace(old_id, new_id).replace(old_ref, new_ref)
    if old_key:
        text = text.replace(old_key, secrets.token_hex(16))
    text = text.replace(f"code#{old_ref[3:7]}", f"code#{new_ref[3:7]}")
    return json.loads(text)


def _profile_findings(stats: pstats.Stats, posts: int) -> dict:
    """Per-POST milliseconds in the parts that matter, from cProfile's cumulative times (main thread only)."""
    interesting = {
        "AWS calls (botocore _make_api_call, incl. waiting)": ("botocore/client.py", "_make_api_call"),
        "  of which waiting on the socket (server side)": ("~", "<method 'recv_into' of '_socket.socket' objects>"),
        "  of which SigV4 signing": ("botocore/auth.py", "add_auth"),
        "  of which parsing responses": ("botocore/parsers.py", "parse"),
        "  of which opening TCP connections (the local endpoint closes each one)": ("urllib3/connection.py", "connect"),
        "PynamoDB TransactWrite (create)": ("pynamodb/transactions.py", "__exit__"),
        "PynamoDB Model.get": ("pynamodb/models.py", "get"),
        "powertools idempotency handler": ("aws_lambda_powertools/utilities/idempotency/base.py", "handle"),
        "StartExecution (workflow.start)": ("chalicelib/adapters/workflow.py", "start"),
        "directory reads (routing, policy, contacts, schedules)": None,
        "request body validation (pydantic)": ("app.py", "_body"),
        "token verification (PyJWT)": ("chalicelib/auth.py", "verify_token"),
        "Chalice local gateway (test client) total": ("chalice/local.py", "handle_request"),
        "service open() total": ("chalicelib/services/incidents.py", "open"),
    }
    by_key: dict[tuple[str, str], float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_key[(filename, name)] += ct
    findings = {}
    for label, spec in interesting.items():
        if spec is None:
            total = sum(ct for (f, n), ct in by_key.items()
                        if f.endswith("chalicelib/services/admin.py") and n in ("policy_id_for_kind", "policy", "contacts", "schedules"))
        else:
            suffix, name = spec
            total = sum(ct for (f, n), ct in by_key.items() if n == name and (suffix == "~" or f.endswith(suffix)))
        findings[label] = total * 1000 / posts
    top = []
    for (filename, line, name), (cc, nc, tt, ct, _callers) in sorted(
        stats.stats.items(), key=lambda kv: kv[1][2], reverse=True  # type: ignore[attr-defined]
    )[:15]:
        short = filename.split("site-packages/")[-1].replace(str(sys.prefix), "")
        top.append({"function": f"{short}:{line}({name})", "own_ms_per_post": tt * 1000 / posts, "calls_per_post": nc / posts})
    return {"cumulative_ms_per_post": findings, "top_own_time": top}


def settle(window: float = 0.03, busy: float = 0.1, timeout: float = 3.0) -> float:
    """Waits until this process uses less than `busy` of one core over `window` seconds; returns the time waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        cpu = time.process_time()
        time.sleep(window)
        if time.process_time() - cpu < busy * window:
            break
    return time.perf_counter() - started


def main() -> None:
    args = cli_args()
    rounds, warmup = int(args.get("rounds", 200)), int(args.get("warmup", 10))
    profile_posts = int(args.get("profile-posts", 40))
    profile_out = args.get("profile-out")

    stack = start_stack()
    recorder = AwsCallRecorder(ddb_units=True).install()
    directory = Directory(stack)
    first, second = directory.responder(), directory.responder()
    directory.route_all_to(directory.policy([[first], [second]], [60, 60]))

    client = chalice_client()
    token = stack.mint_token("shopper", "bench-shopper")

    # The first POST of a fresh process wires the services (imports, clients, connections): reported, not timed.
    t0 = time.perf_counter()
    response = post_panic(client, token, uuid.uuid4().hex)
    first_post_ms = (time.perf_counter() - t0) * 1000
    assert response.status_code == 201, response.body

    # Capture what a real POST (with Idempotency-Key) sends, to replay as the baselines.
    captured: list[tuple[str, str, dict]] = []
    recorder.capture = lambda origin, service, op, params, _r: (
        captured.append((service, op, copy.deepcopy(params))) if origin.startswith("api:") else None
    )
    response = post_panic(client, token, uuid.uuid4().hex)
    recorder.capture = None
    assert response.status_code == 201, response.body
    incident = json.loads(response.body)["incident"]
    idempotency_table = stack.env["IDEMPOTENCY_TABLE"]
    tx_params = next(p for s, op, p in captured if op == "TransactWriteItems")
    start_params = next(p for s, op, p in captured if op == "StartExecution")
    idem_put = next(p for s, op, p in captured if op == "PutItem" and p["TableName"] == idempotency_table)
    idem_update = next(p for s, op, p in captured if op == "UpdateItem" and p["TableName"] == idempotency_table)
    idem_key = idem_put["Item"]["id"]["S"].rsplit("#", 1)[-1]  # "<function>#<hash of the key>"
    incident_put = next(e["Put"] for e in tx_params["TransactItems"] if "Put" in e and e["Put"]["TableName"] == stack.env["INCIDENTS_TABLE"])
    put_params = {"TableName": incident_put["TableName"], "Item": incident_put["Item"]}

    from chalicelib.adapters.clients import aws_client

    ddb, sfn = aws_client("dynamodb"), aws_client("stepfunctions")

    def bare() -> None:
        p = _replace_ids({"put": put_params, "start": start_params}, incident["id"], incident["reference"])
        ddb.put_item(**p["put"])
        sfn.start_execution(**p["start"])

    def bare_key() -> None:
        p = _replace_ids({"idem_put": idem_put, "put": put_params, "start": start_params, "idem_update": idem_update},
                         incident["id"], incident["reference"], idem_key)
        ddb.put_item(**p["idem_put"])
        ddb.put_item(**p["put"])
        sfn.start_execution(**p["start"])
        ddb.update_item(**p["idem_update"])

    def floor() -> None:
        p = _replace_ids({"tx": tx_params, "start": start_params}, incident["id"], incident["reference"])
        ddb.transact_write_items(**p["tx"])
        sfn.start_execution(**p["start"])

    def post() -> None:
        r = post_panic(client, token, None)
        assert r.status_code == 201, r.body

    def post_key() -> None:
        r = post_panic(client, token, uuid.uuid4().hex)
        assert r.status_code == 201, r.body

    arms = {"bare": bare, "bare_key": bare_key, "floor": floor, "post": post, "post_key": post_key}
    times: dict[str, list[float]] = {name: [] for name in ARMS}
    cpu: dict[str, list[float]] = {name: [] for name in ARMS}
    per_arm_calls: dict[str, list[list]] = {name: [] for name in ARMS}
    main_thread = threading.current_thread().name
    rng = random.Random(9)
    order = list(ARMS)
    settle_waits: list[float] = []
    for i in range(warmup + rounds):
        rng.shuffle(order)
        for name in order:
            settle_waits.append(settle())
            mark = recorder.mark()
            c0 = time.thread_time()
            t0 = time.perf_counter()
            arms[name]()
            elapsed = time.perf_counter() - t0
            used = time.thread_time() - c0
            if i >= warmup:
                times[name].append(elapsed * 1000)
                cpu[name].append(used * 1000)
                calls = recorder.since(mark, thread=main_thread)
                per_arm_calls[name].append([(c.label, c.duration * 1000, c.wru, c.rru, elapsed * 1000, c.site)
                                            for c in calls])

    arm_summary = {name: summary(values) for name, values in times.items()}
    cpu_summary = {name: summary(values) for name, values in cpu.items()}
    ratios = {}
    for post_arm, base in (("post", "bare"), ("post", "floor"), ("post_key", "bare_key"), ("post_key", "bare"),
                           ("post_key", "floor")):
        ratios[f"{post_arm}/{base}"] = {q: arm_summary[post_arm][q] / arm_summary[base][q] for q in ("p50", "p99")}

    call_lists = {}
    for arm, runs in per_arm_calls.items():
        sequences = Counter(tuple(label for label, *_ in calls) for calls in runs)
        common, seen = sequences.most_common(1)[0]
        matching = [calls for calls in runs if tuple(label for label, *_ in calls) == common]
        steps = []
        for position, label in enumerate(common):
            steps.append({
                "call": label,
                "site": matching[0][position][5],
                "median_ms": median(calls[position][1] for calls in matching),
                "p99_ms": percentile([calls[position][1] for calls in matching], 99),
                "wru": matching[0][position][2],
                "rru": matching[0][position][3],
            })
        aws_ms = [sum(c[1] for c in calls) for calls in runs]
        totals = [calls[0][4] if calls else 0 for calls in runs]
        call_lists[arm] = {
            "calls_per_run": summary(len(calls) for calls in runs),
            "most_common_sequence_share": seen / len(runs),
            "other_sequences": [list(seq) for seq, _n in sequences.most_common()[1:4]],
            "sequence": steps,
            "aws_ms_per_run": summary(aws_ms),
            "aws_share_median": median(a / t for a, t in zip(aws_ms, totals) if t),
            "wru_per_run": sum(s["wru"] for s in steps),
            "rru_per_run": sum(s["rru"] for s in steps),
        }

    # --- profile of the hot path (typical: with Idempotency-Key) -------------------------------------------------
    profile: dict = {"posts": profile_posts}
    profiler = cProfile.Profile()
    for _ in range(profile_posts):
        settle()
        profiler.enable()
        post_key()
        profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    profile.update(_profile_findings(stats, profile_posts))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
    try:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0005)
        for _ in range(profile_posts):
            settle()
            sampler.start()  # start/stop again combines the sessions: the settle waits stay out of the profile
            post_key()
            sampler.stop()
        tree = sampler.output_text(unicode=False, color=False, show_all=False)
        profile["pyinstrument"] = True
    except ImportError:
        tree = "(pyinstrument is not installed: only the cProfile report is available)\n"
        profile["pyinstrument"] = False
    if profile_out:
        from pathlib import Path

        Path(profile_out).parent.mkdir(parents=True, exist_ok=True)
        Path(profile_out).write_text(
            f"# P1 hot path profile: {profile_posts} warm POST /v1/incidents with Idempotency-Key, in-process\n\n"
            f"## pyinstrument (wall clock, main thread)\n\n{tree}\n\n## cProfile (cumulative, main thread)\n\n{text.getvalue()}"
        )
        profile["file"] = profile_out
    profile["pyinstrument_tree"] = tree

    write_result(args["out"], {
        "benchmark": "p1_intake",
        "rounds": rounds,
        "warmup_rounds": warmup,
        "settle_wait_s": summary(settle_waits),
        "first_post_ms": first_post_ms,
        "arms_ms": arm_summary,
        "arms_thread_cpu_ms": cpu_summary,
        "ratios": ratios,
        "calls": call_lists,
        "profile": profile,
    })
    stack.stop()


if __name__ == "__main__":
    main()
