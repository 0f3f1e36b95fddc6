"""P1 intake overhead: the panic POST as the shopper app sends it (with an Idempotency-Key), handled by the API
Lambda's handler in-process, against the bare AWS calls an intake must make; plus the AWS calls each POST makes and
a profile.

Arms, run once each per round in a shuffled order (so drift and background load fall on all of them alike):
- `bare`           the incident's own TransactWriteItems + StartExecution, sent directly with boto3 (the floor: what
                   opening an incident must write). They replay the exact parameters the service sent for a real
                   incident (new ids, owner and client request token each time) through clients made by the
                   service's own `aws_client` factory, so payloads and client settings are the same.
- `post_key`       POST /v1/incidents with Idempotency-Key, the directory cache warm (presses less than 5 s apart)
- `post_key_cold`  the same with the directory cache cleared before each press: presses are usually seconds or
                   minutes apart, so a warm Lambda usually finds its cached routing plan expired. The headline.
Each POST is a different shopper (a second press by one shopper joins her open incident: another path).

The Lambda handler (`app.app`) is called with the API Gateway event it receives on AWS, built before the clock
starts: API Gateway's work is not the Lambda's. Before each arm the benchmark waits for the process to go quiet (the
escalation each arm starts runs in the background of this one process), so every arm is timed on an idle process,
the way one Lambda invocation runs alone. The policy's only responder is inactive, so each escalation ends at once
(nobody pageable) and thousands of presses leave no executions waiting in the process; intake does the same work
whoever is on the policy (it reads the routing plan only).

The AWS call recorder (bench/awscalls.py) wraps every botocore call; it is installed only for a separate, untimed
pass that records the call sequence of each arm, and the profiler only for the profile pass after it.
"""

from __future__ import annotations

import copy
import cProfile
import io
import json
import pstats
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from bench.awscalls import APP_FILE, AwsCallRecorder
from bench.common import (
    PANIC_BODY,
    api_event,
    cli_args,
    inactive_responder,
    invoke_api,
    median,
    percentile,
    settle,
    start_stack,
    summary,
    world,
    write_result,
)

ARMS = ("bare", "post_key", "post_key_cold")
HEADLINE = ("post_key_cold", "bare")
TARGETS = {"p50": 1.5, "p99": 2.0}  # issue 18.3: with key, cold cache, over the bare write + StartExecution


def clear_directory_cache(services) -> None:
    """Forget the routing plan the warm process cached (chalicelib/services/admin.py), as a press seconds after the
    previous one finds it. Fails loudly if the cache moved, rather than measure a warm cache as a cold one."""
    if not hasattr(services.admin, "_plan"):
        raise RuntimeError("AdminService no longer caches the routing plan in `_plan`: update clear_directory_cache")
    services.admin._plan = None


class Replay:
    """The bare arm: a real POST's TransactWriteItems and StartExecution, sent again with new identities."""

    def __init__(self, transaction: dict, start: dict, incident: dict, owner: str):
        self.transaction, self.start = transaction, start
        self.incident_id, self.reference, self.owner = incident["id"], incident["reference"], owner

    def prepared(self) -> Callable[[], None]:
        """A call with fresh ids (outside the timing): the replayed incident is a real incident, opened by a new
        shopper, which its execution claims and escalates like any other."""
        from chalicelib.adapters.clients import aws_client
        from chalicelib.domain.incidents import new_reference

        new_id, new_reference_ = f"inc_{uuid.uuid4().hex[:20]}", new_reference()
        text = json.dumps({"transaction": self.transaction, "start": self.start})
        for old, new in ((self.incident_id, new_id), (self.reference, new_reference_),
                         (f"code#{self.reference[3:7]}", f"code#{new_reference_[3:7]}"),
                         (self.owner, f"p1-bare-{uuid.uuid4().hex[:12]}")):
            text = text.replace(old, new)
        params = json.loads(text)
        params["transaction"]["ClientRequestToken"] = uuid.uuid4().hex
        ddb, sfn = aws_client("dynamodb"), aws_client("stepfunctions")

        def bare() -> None:
            ddb.transact_write_items(**params["transaction"])
            sfn.start_execution(**params["start"])

        return bare


def _profile_findings(stats: pstats.Stats, posts: int) -> dict:
    """Per-POST milliseconds in the parts that matter, from cProfile's cumulative times (main thread only)."""
    interesting = {
        "the route, as the API Lambda runs it (app.py's view)": (APP_FILE, "view"),
        "AWS calls (botocore _make_api_call, incl. waiting)": ("botocore/client.py", "_make_api_call"),
        "  of which waiting on the socket (server side)": ("~", "<method 'recv_into' of '_socket.socket' objects>"),
        "  of which SigV4 signing": ("botocore/auth.py", "add_auth"),
        "  of which parsing responses": ("botocore/parsers.py", "parse"),
        "  of which opening TCP connections (the local endpoint closes each one)": ("urllib3/connection.py", "connect"),
        "routing plan read (directory, cold cache)": ("chalicelib/services/admin.py", "_routing_plan"),
        "the incident's transaction (PynamoDB TransactWrite)": ("pynamodb/transactions.py", "__exit__"),
        "StartExecution": ("chalicelib/adapters/workflow.py", "_start"),
        "request body validation (pydantic)": (APP_FILE, "_body"),
        "token verification (PyJWT)": ("chalicelib/auth.py", "verify_token"),
        "intake use case total": ("chalicelib/services/intake.py", "open"),
    }
    by_key: dict[tuple[str, str], float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_key[(filename, name)] += ct
    findings = {}
    for label, (suffix, name) in interesting.items():
        total = sum(ct for (f, n), ct in by_key.items() if n == name and (suffix == "~" or f.endswith(suffix)))
        findings[label] = total * 1000 / posts
    top = []
    for (filename, line, name), (_cc, nc, tt, _ct, _callers) in sorted(
        stats.stats.items(), key=lambda kv: kv[1][2], reverse=True  # type: ignore[attr-defined]
    )[:15]:
        short = filename.split("site-packages/")[-1].replace(str(sys.prefix), "")
        top.append({"function": f"{short}:{line}({name})", "own_ms_per_post": tt * 1000 / posts, "calls_per_post": nc / posts})
    return {"cumulative_ms_per_post": findings, "top_own_time": top}


def _call_sequences(runs: list[list]) -> dict:
    """The most common sequence of AWS requests of an arm, with each step's median duration and request units."""
    sequences = Counter(tuple(c.label for c in calls) for calls in runs)
    common, seen = sequences.most_common(1)[0]
    matching = [calls for calls in runs if tuple(c.label for c in calls) == common]
    steps = [{
        "call": label,
        "site": matching[0][position].site,
        "median_ms": median(calls[position].duration * 1000 for calls in matching),
        "p99_ms": percentile([calls[position].duration * 1000 for calls in matching], 99),
        "wru": matching[0][position].wru,
        "rru": matching[0][position].rru,
    } for position, label in enumerate(common)]
    return {
        "runs": len(runs),
        "calls_per_run": summary(len(calls) for calls in runs),
        "most_common_sequence_share": seen / len(runs),
        "other_sequences": [list(seq) for seq, _n in sequences.most_common()[1:4]],
        "sequence": steps,
        "wru_per_run": sum(s["wru"] for s in steps),
        "rru_per_run": sum(s["rru"] for s in steps),
    }


def main() -> None:
    args = cli_args()
    rounds, warmup = int(args.get("rounds", 1000)), int(args.get("warmup", 20))
    record_posts, profile_posts = int(args.get("record-posts", 20)), int(args.get("profile-posts", 40))
    profile_out = args.get("profile-out")

    stack = start_stack()
    people = world(stack.api_url, stack.dev_url)
    people.route_all_to(people.policy([[inactive_responder(people)]], [60]))
    from chalicelib.services import get_services

    services = get_services()
    handler = stack.app

    def press_event(shopper: str | None = None) -> dict:
        token = stack.mint_token("shopper", shopper or f"p1-{uuid.uuid4().hex[:12]}")
        return api_event("POST", "/v1/incidents", token, PANIC_BODY, headers={"Idempotency-Key": uuid.uuid4().hex})

    def post(event: dict) -> dict:
        status, body = invoke_api(handler, event)
        assert status == 201, body
        return body["incident"]

    # What a real (warm) POST sends, to replay as the bare arm.
    recorder = AwsCallRecorder(ddb_units=True)
    captured: list[tuple[str, dict]] = []
    recorder.capture = lambda origin, _service, op, params, _r: (
        captured.append((op, copy.deepcopy(params))) if origin.startswith("api:") else None)
    shopper = f"p1-{uuid.uuid4().hex[:12]}"
    event = press_event(shopper)
    recorder.install()
    incident = post(event)
    recorder.uninstall()
    recorder.capture = None
    replay = Replay(next(p for op, p in captured if op == "TransactWriteItems"),
                    next(p for op, p in captured if op == "StartExecution"), incident, shopper)

    def prepare(arm: str) -> Callable[[], None]:
        """The arm's call, ready to run: its event or replayed parameters are built before the clock starts."""
        if arm == "bare":
            return replay.prepared()
        event = press_event()
        return lambda: post(event)

    # --- timed: no recorder, no profiler --------------------------------------------------------------------------
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    settle_waits: list[float] = []
    rng = random.Random(9)
    order = list(ARMS)
    for i in range(warmup + rounds):
        rng.shuffle(order)
        for arm in order:
            run = prepare(arm)
            settle_waits.append(settle())
            if arm == "post_key_cold":
                clear_directory_cache(services)
            c0, t0 = time.thread_time(), time.perf_counter()
            run()
            elapsed, used = time.perf_counter() - t0, time.thread_time() - c0
            if i >= warmup:
                times[arm].append(elapsed * 1000)
                cpu[arm].append(used * 1000)

    arms_ms = {arm: summary(values) for arm, values in times.items()}
    ratios = {f"{arm}/bare": {q: arms_ms[arm][q] / arms_ms["bare"][q] for q in ("p50", "p99")}
              for arm in ARMS if arm != "bare"}

    # --- untimed: the AWS requests each arm makes, in order -------------------------------------------------------
    main_thread = threading.current_thread().name
    recorded: dict[str, list[list]] = {arm: [] for arm in ARMS}
    recorder.install()
    for _ in range(record_posts):
        for arm in ARMS:
            run = prepare(arm)
            settle()
            if arm == "post_key_cold":
                clear_directory_cache(services)
            mark = recorder.mark()
            run()
            recorded[arm].append(recorder.since(mark, thread=main_thread))
    recorder.uninstall()
    calls = {arm: _call_sequences(runs) for arm, runs in recorded.items()}

    # --- profile of the headline arm ------------------------------------------------------------------------------
    profile: dict = {"posts": profile_posts, "arm": "post_key_cold"}
    profiler = cProfile.Profile()
    for _ in range(profile_posts):
        event = press_event()
        settle()
        clear_directory_cache(services)
        profiler.enable()
        post(event)
        profiler.disable()
    profile.update(_profile_findings(pstats.Stats(profiler, stream=io.StringIO()), profile_posts))
    listing = io.StringIO()
    pstats.Stats(profiler, stream=listing).sort_stats("cumulative").print_stats(60)
    try:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0005)
        for _ in range(profile_posts):
            event = press_event()
            settle()
            clear_directory_cache(services)
            sampler.start()  # start/stop again combines the sessions: the settle waits stay out of the profile
            post(event)
            sampler.stop()
        tree = sampler.output_text(unicode=False, color=False, show_all=False)
    except ImportError:
        tree = "(pyinstrument is not installed: only the cProfile report is available)\n"
    if profile_out:
        Path(profile_out).parent.mkdir(parents=True, exist_ok=True)
        Path(profile_out).write_text(
            f"# P1 hot path profile: {profile_posts} POST /v1/incidents with Idempotency-Key, cold directory cache\n\n"
            f"## pyinstrument (wall clock, main thread)\n\n{tree}\n\n## cProfile (cumulative, main thread)\n\n"
            f"{listing.getvalue()}")
        profile["file"] = profile_out
    profile["pyinstrument_tree"] = tree

    write_result(args["out"], {
        "benchmark": "p1_intake",
        "rounds": rounds,
        "warmup_rounds": warmup,
        "settle_wait_s": summary(settle_waits),
        "arms_ms": arms_ms,
        "arms_thread_cpu_ms": {arm: summary(values) for arm, values in cpu.items()},
        "ratios": ratios,
        "headline": {"ratio": "/".join(HEADLINE), **ratios["/".join(HEADLINE)], "targets": TARGETS},
        "calls": calls,
        "profile": profile,
    })
    stack.stop()


if __name__ == "__main__":
    main()
