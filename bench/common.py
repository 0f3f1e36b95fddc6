"""Shared helpers of the benchmarks: statistics, the local stack, directory setup over the API, result files.

Every benchmark runs in its own process (bench/run.py starts them one after another): the service caches its
settings and AWS clients per process, and a fresh process per figure keeps one benchmark's leftovers (threads of
waiting Step Functions executions, queued pages) out of the next one's numbers.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
KINDS = ["panic", "medical", "threat", "accident", "harassment", "conduct", "fraud", "account_breach", "privacy"]
PANIC_BODY = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}

# Production-like: INFO logging as the prod stage (log lines are part of the cost); no EMF metric lines.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "false")
os.environ.setdefault("LOG_LEVEL", "INFO")


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


# --- small utilities -------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Polls until `predicate()` is truthy and returns it; returns None at the deadline (the caller reports it)."""
    from local.polling import poll_until

    return poll_until(predicate, timeout, interval)


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def new_phone() -> str:
    return "+1555" + "".join(random.choice("0123456789") for _ in range(7))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_result(path: str | Path, result: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2, default=str))


def cli_args(argv: list[str] | None = None) -> dict[str, str]:
    """`--name value` pairs (the runner passes --out and the sizes); tiny on purpose, no argparse help needed."""
    argv = sys.argv[1:] if argv is None else argv
    args: dict[str, str] = {}
    it = iter(argv)
    for token in it:
        if token.startswith("--"):
            args[token[2:]] = next(it, "")
    return args


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


# --- the local stack -------------------------------------------------------------------------------------------------
def start_stack():
    """The same embedded stack tests use, on free ports, without the demo roster."""
    from bench import moto_patch
    from local.stack import LocalStack

    moto_patch.install()
    return LocalStack(aws_port=free_port(), api_port=free_port(), dev_port=free_port(), seed=False).start()


def set_state_machine_execution(stack, on: bool) -> None:
    import requests

    requests.post(f"{stack.aws_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": on}}, timeout=5)


def sfn_client(stack):
    import boto3

    return boto3.client("stepfunctions", region_name=REGION, endpoint_url=stack.aws_url)


def execution_arn(stack, name: str) -> str:
    return stack.env["ESCALATION_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + name


def execution_history(stack, name: str, client=None) -> list[dict]:
    client = client or sfn_client(stack)
    events, token = [], None
    while True:
        kwargs = {"executionArn": execution_arn(stack, name), "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = client.get_execution_history(**kwargs)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def wait_deadlines(history: list[dict]) -> list[datetime]:
    """When each Wait state was due to end: its entered time plus its seconds (as tests/integration do)."""
    due = []
    for event in history:
        if event["type"] == "WaitStateEntered":
            state_input = json.loads(event["stateEnteredEventDetails"]["input"])
            due.append(event["timestamp"] + timedelta(seconds=state_input["timeout_s"]))
    return due


class Directory:
    """Admin setup over the HTTP API, as an operator would do it."""

    def __init__(self, stack):
        import requests

        self.stack = stack
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {stack.mint_token('admin', 'bench-admin')}"

    def _put(self, path: str, body: dict) -> dict:
        response = self.session.put(f"{self.stack.api_url}{path}", json=body, timeout=30)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"PUT {path}: {response.status_code} {response.text}")
        return response.json()

    def responder(self) -> dict:
        responder_id, phone = unique("r"), new_phone()
        self._put(f"/v1/responders/{responder_id}", {"name": responder_id, "phone": phone})
        return {"id": responder_id, "phone": phone}

    def policy(self, tiers: list[list[dict]], timeouts: list[int], repeat: int = 0) -> str:
        policy_id = unique("p")
        self._put(f"/v1/escalation-policies/{policy_id}", {
            "tiers": [{"targets": [{"responder": r["id"]} for r in tier], "timeout_s": t} for tier, t in zip(tiers, timeouts)],
            "repeat": repeat,
        })
        return policy_id

    def route_all_to(self, policy_id: str) -> None:
        self._put("/v1/routing", {"default": policy_id, **{k: policy_id for k in KINDS}})


def chalice_client():
    """The Chalice test client on the Lambda entry module, with the prod stage's environment variables (INFO logs)."""
    import app as lambda_entry
    from chalice.test import Client

    return Client(lambda_entry.app, stage_name="prod", project_dir=str(ROOT))


def post_panic(client, token: str, idempotency_key: str | None = None, body: dict | None = None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return client.http.post("/v1/incidents", headers=headers, body=json.dumps(body or PANIC_BODY).encode())
