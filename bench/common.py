"""Shared helpers of the benchmarks: statistics, result files, the machine, the local stack and how to call it.

Every benchmark runs in its own process (bench/run.py starts them one after another): the service caches its
settings and AWS clients per process, and a fresh process per figure keeps one benchmark's leftovers (threads of
waiting Step Functions executions, queued pages) out of the next one's numbers.

What already has a home elsewhere is used from there, not copied: ports and the stack in a subprocess
(local/subprocess_stack.py), polling (local/polling.py), the admin/shopper/reviewer HTTP clients and the SMS log
(tests/support/people.py: `World`, `Api`, `Sms`), the API Gateway event and Lambda context a handler receives
(tests/infra/packaged_probe.py), ISO times (chalicelib/domain/clock.py).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local.stack import ACCOUNT_ID, REGION  # noqa: E402,F401 - re-exported for the benchmarks

PANIC_BODY = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}
# The prod stage's log level (.chalice/config.json): log lines are part of what a request costs.
os.environ.setdefault("LOG_LEVEL", "INFO")
os.environ.setdefault("POWERTOOLS_DEV", "false")


# --- statistics ------------------------------------------------------------------------------------------------------
def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default). q in [0, 100]."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: Iterable[float]) -> dict[str, Any]:
    data = sorted(values)
    if not data:
        return {"n": 0}
    return {
        "n": len(data),
        "min": data[0],
        "p50": percentile(data, 50),
        "p90": percentile(data, 90),
        "p99": percentile(data, 99),
        "max": data[-1],
        "mean": sum(data) / len(data),
    }


def median(values: Iterable[float]) -> float | None:
    return percentile(values, 50)


# --- arguments and results -------------------------------------------------------------------------------------------
def cli_args(argv: list[str] | None = None) -> dict[str, str]:
    """`--name value` pairs (the runner passes --out and the sizes); tiny on purpose, no argparse help needed."""
    argv = sys.argv[1:] if argv is None else argv
    args: dict[str, str] = {}
    it = iter(argv)
    for token in it:
        if token.startswith("--"):
            args[token[2:]] = next(it, "")
    return args


def int_list(text: str) -> list[int]:
    """"250,1000" -> [250, 1000] (list-valued sizes travel as comma-separated text)."""
    return [int(part) for part in text.split(",") if part.strip()]


def write_result(path: str | Path, result: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2, default=str))


def at(value: str) -> float:
    """Epoch seconds of an ISO 8601 time (the SMS log's `sent_at`, an incident's `created_at`)."""
    from chalicelib.domain.clock import parse_iso

    return parse_iso(value).timestamp()


# --- machine description ---------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip() or "unknown"
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                                    timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", False
    try:
        mem_kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "packages": {d: _version(d) for d in ("moto", "boto3", "botocore", "chalice", "pynamodb",
                                              "aws-lambda-powertools", "pydantic", "pyinstrument")},
    }


# --- the local stack, in this process --------------------------------------------------------------------------------
def start_stack():
    """The stack the integration tests use (local/stack.py, local/moto_fixes.py applied), on free ports, no demo
    roster. In this process, so a benchmark can read moto's SMS log and the execution histories, and wrap handlers."""
    from local.stack import LocalStack
    from local.subprocess_stack import free_port

    return LocalStack(aws_port=free_port(), api_port=free_port(), dev_port=free_port(), seed=False).start()


def world(api_url: str, dev_url: str):
    """Admin, reviewer and shoppers over HTTP, as the integration tests act (tests/support/people.py's World)."""
    from types import SimpleNamespace

    from tests.support.people import World

    return World(SimpleNamespace(api_url=api_url, dev_url=dev_url))


def inactive_responder(world_) -> dict:
    """A responder nobody can page: an escalation on a policy of only such responders ends at once (a tier with
    nobody pageable is not waited out), so thousands of incidents leave no executions waiting in the process."""
    from tests.support.people import new_phone, unique

    responder = {"id": unique("r-off"), "phone": new_phone()}
    response = world_.admin.put(f"/v1/responders/{responder['id']}",
                                json={"name": responder["id"], "phone": responder["phone"], "active": False})
    assert response.status_code == 201, response.text
    return responder


def api_event(method: str, resource: str, token: str, body: dict | None = None,
              path_parameters: dict | None = None, headers: dict | None = None) -> dict:
    """The API Gateway proxy event the API Lambda receives (tests/infra/packaged_probe.py builds it)."""
    from tests.infra.packaged_probe import api_event as build

    return build(method, resource, path_parameters, token, body, headers)


def invoke_api(app, event: dict) -> tuple[int, Any]:
    """One API Lambda invocation, as Lambda makes it: the Chalice app called with the event and a context.
    (status, parsed JSON body or the raw text)."""
    from tests.infra.packaged_probe import Context

    response = app(event, Context())
    body = response.get("body") or ""
    try:
        return response["statusCode"], json.loads(body)
    except ValueError:
        return response["statusCode"], body


def settle(window: float = 0.03, busy: float = 0.1, timeout: float = 3.0) -> float:
    """Waits until this process uses less than `busy` of one core over `window` seconds; returns the time waited.
    What an incident sets off in the background of the local stack (the executor's claim, the page sender) runs in
    this process and would land on whatever is timed next; a Lambda invocation on AWS runs alone."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        cpu = time.process_time()
        time.sleep(window)
        if time.process_time() - cpu < busy * window:
            break
    return time.perf_counter() - started


# --- Step Functions ----------------------------------------------------------------------------------------------------
def sfn_client(aws_url: str):
    import boto3

    return boto3.client("stepfunctions", region_name=REGION, endpoint_url=aws_url)


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name


def execution_history(client, arn: str) -> list[dict]:
    events, token = [], None
    while True:
        kwargs = {"executionArn": arn, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = client.get_execution_history(**kwargs)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def state_transitions(history: list[dict]) -> int:
    """What Step Functions Standard bills: one transition per state entered."""
    return sum(1 for event in history if event["type"].endswith("StateEntered"))
