"""Bounded load on loopback: LOAD_PRESSES panic presses (default 100; the full run uses 1000) from
LOAD_CONCURRENCY client threads (default 8) as fast as the local stack accepts them, each by another shopper. Then: N incidents, N executions,
every tier-1 page sent exactly once, and no 5xx. Prints throughput and p50/p99 latency.

    LOAD_PRESSES=1000 .venv/bin/python -m pytest tests/reliability/test_load.py -q -s
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.conftest import unique, wait_for
from tests.reliability.conftest import PANIC, emergency_pages, executions

PRESSES = int(os.environ.get("LOAD_PRESSES", "100"))
CONCURRENCY = int(os.environ.get("LOAD_CONCURRENCY", "8"))
# One shopper per press: a second panic by the same shopper joins her open incident (contract 4.2).
SHOPPERS = PRESSES


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def test_panic_presses_under_load(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [3600]))  # tier 1 only, nothing escalates during the test
    tokens = [world.stack.mint_token("shopper", unique("load")) for _ in range(SHOPPERS)]
    url = f"{world.stack.api_url}/v1/incidents"
    local = threading.local()

    def press(i: int) -> tuple[int, float, str | None]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        headers = {"Authorization": f"Bearer {tokens[i % SHOPPERS]}", "Idempotency-Key": f"load-{i}-{unique('k')}"}
        started = time.perf_counter()
        try:
            response = session.post(url, json=PANIC, headers=headers, timeout=60)
        except requests.RequestException as exc:
            return 0, time.perf_counter() - started, repr(exc)
        elapsed = time.perf_counter() - started
        incident_id = response.json()["incident"]["id"] if response.status_code == 201 else response.text[:200]
        return response.status_code, elapsed, incident_id

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(press, range(PRESSES)))
    wall = time.perf_counter() - started

    statuses = Counter(status for status, _, _ in results)
    latencies = [elapsed for _, elapsed, _ in results]
    summary = (f"LOAD presses={PRESSES} concurrency={CONCURRENCY} wall={wall:.2f}s throughput={PRESSES / wall:.1f}/s "
               f"p50={_percentile(latencies, 0.50) * 1000:.0f}ms p99={_percentile(latencies, 0.99) * 1000:.0f}ms "
               f"max={max(latencies) * 1000:.0f}ms mean={statistics.mean(latencies) * 1000:.0f}ms statuses={dict(statuses)}")
    print("\n" + summary)
    assert not [r for r in results if r[0] == 0 or r[0] >= 500], [r for r in results if r[0] == 0 or r[0] >= 500][:5]
    assert statuses == {201: PRESSES}, summary
    ids = {incident_id for _, _, incident_id in results}
    assert len(ids) == PRESSES

    # Every press is an incident with one escalation, and tier 1 gets exactly one page for each.
    drain_started = time.perf_counter()
    wait_for(lambda: len(emergency_pages(world.sms.to(responder["phone"]))) >= PRESSES, timeout=60 + PRESSES * 0.2,
             interval=0.5, message=f"{PRESSES} tier-1 pages")
    drained = time.perf_counter() - drain_started
    pages = emergency_pages(world.sms.to(responder["phone"]))
    paged_references = Counter(m["body"].split()[1] for m in pages)
    assert len(pages) == PRESSES and all(n == 1 for n in paged_references.values()), paged_references.most_common(3)
    started_executions = {e["name"] for e in executions(world, "inc_")} & ids
    assert started_executions == ids, f"{len(ids - started_executions)} incidents without an execution"
    print(f"LOAD pages: all {PRESSES} tier-1 pages sent once, the last {drained:.1f}s after the last press answered")
