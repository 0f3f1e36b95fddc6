"""P2 cold start: what a new Lambda instance spends before its first answer, against importing boto3 and creating a
client: `import app` plus the wiring the first request does (services built, clients created, lazy imports).

Each sample is a new interpreter (`python -c ...`, cwd = the repository, as Lambda imports `app` from /var/task)
that times itself with perf_counter. Variants, interleaved in a shuffled order per round after one discarded
warm-up round (it writes .pyc files):
- `boto3`          import boto3; boto3.client("dynamodb")                         (the baseline)
- `app`            import app                                                     (Lambda's init phase)
- `app_first`      import app, then the first panic POST through the handler (the API Gateway event the Lambda
                   receives, built after the import clock stopped), then warm POSTs. The first request's wiring is
                   the first POST's time minus a warm POST's (median of 3): the AWS round trips of the two are the
                   same, what is left is what only the first request pays. Judged: import + wiring.
The POSTs go to a local stack in this process (each a different shopper; the policy's responder is inactive, so the
escalations they start end at once). Without a bytecode cache (`-X pycache_prefix=<empty dir>`: every module
compiled from source) `app` and `boto3` are sampled a few times too, and `python -X importtime` gives the modules that
cost the most, for the import and for the first request.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.common import (
    PANIC_BODY,
    ROOT,
    api_event,
    cli_args,
    inactive_responder,
    median,
    start_stack,
    summary,
    world,
    write_result,
)

TARGET = 1.5  # (import app + first request's wiring) / (import boto3 + client), issue 18.4
WARM_POSTS = 3
IMPORT_TIMER = """import time as _t
_s = _t.perf_counter()
{stmt}
print("BENCH_IMPORT_S", _t.perf_counter() - _s, flush=True)
"""
# After the import is timed: the events come from a file, the handler is called with them one by one.
FIRST_REQUEST = """
import json, os, statistics
from tests.infra.packaged_probe import Context
_events = json.loads(open(os.environ["BENCH_EVENTS"]).read())
_times = []
for _event in _events:
    _s = _t.perf_counter()
    _response = app.app(_event, Context())
    _times.append(_t.perf_counter() - _s)
    assert _response["statusCode"] == 201, _response
print("BENCH_FIRST_S", _times[0])
print("BENCH_WARM_S", statistics.median(_times[1:]))
"""
VARIANTS = {
    "boto3": IMPORT_TIMER.format(stmt="import boto3; boto3.client('dynamodb')"),
    "app": IMPORT_TIMER.format(stmt="import app"),
    "app_first": IMPORT_TIMER.format(stmt="import app") + FIRST_REQUEST,
}
# What Lambda's environment holds besides the service's own variables.
LAMBDA_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
              "AWS_SECRET_ACCESS_KEY": "local", "LOG_LEVEL": "INFO", "POWERTOOLS_SERVICE_NAME": "trust-safety-alerts",
              "POWERTOOLS_METRICS_NAMESPACE": "TrustSafetyAlerts", "PAGING_LEASE_S": "30", "RETENTION_DAYS": "180"}


class Sampler:
    def __init__(self, stack, workdir: Path):
        self.stack = stack
        self.workdir = workdir
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        # The deployed function's variables, pointing at the local stack (the local-only token secret included).
        self.env = {**keep, **LAMBDA_ENV, **stack.env, "AWS_ENDPOINT_URL": stack.aws_url, "LOCAL_STACK": "1",
                    "TOKEN_SECRET": os.environ["TOKEN_SECRET"]}

    def _events_file(self) -> Path:
        """The first and warm POSTs of one sample, each by a different shopper."""
        events = [api_event("POST", "/v1/incidents", self.stack.mint_token("shopper", f"p2-{uuid.uuid4().hex[:12]}"),
                            PANIC_BODY, headers={"Idempotency-Key": uuid.uuid4().hex})
                  for _ in range(1 + WARM_POSTS)]
        path = self.workdir / f"events-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(events))
        return path

    def run(self, variant: str, extra_args: tuple[str, ...] = ()) -> tuple[dict[str, float], str]:
        """The child's own timings (seconds) by name, and its stderr (for -X importtime)."""
        env = dict(self.env)
        if variant == "app_first":
            env["BENCH_EVENTS"] = str(self._events_file())
        done = subprocess.run([sys.executable, *extra_args, "-c", VARIANTS[variant]], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{variant} failed: {done.stderr[-2000:]}")
        timings = {}
        for line in done.stdout.splitlines():
            if line.startswith("BENCH_"):
                name, value = line.split()
                timings[name.removeprefix("BENCH_").removesuffix("_S").lower()] = float(value)
        return timings, done.stderr

    def sample(self, variant: str) -> tuple[float, dict[str, float]]:
        """Milliseconds judged (the import alone, or for app_first the import plus the first request's wiring), and
        the child's timings."""
        timings, _ = self.run(variant)
        if variant == "app_first":
            return (timings["import"] + timings["first"] - timings["warm"]) * 1000, timings
        return timings["import"] * 1000, timings


def _importtime_rows(stderr: str) -> list[tuple[str, int, float, float]]:
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        name = name[1:] if name.startswith(" ") else name
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((name.strip(), depth, int(self_us) / 1000, int(cumulative_us) / 1000))
    return rows


def import_breakdown(sampler: Sampler, variant: str, top: int = 12, samples: int = 3) -> dict:
    """`-X importtime`, the median of `samples` runs per module: self time summed per top-level package (adds up to
    the whole), and the cumulative time of the modules imported from the top (depth 0) and one level down."""
    runs = [_importtime_rows(sampler.run(variant, ("-X", "importtime"))[1]) for _ in range(samples)]
    by_module = [{m: (s_ms, c_ms) for m, _d, s_ms, c_ms in run} for run in runs]
    rows = []
    for module, depth, _s, _c in runs[0]:
        values = [r[module] for r in by_module if module in r]
        rows.append((module, depth, median(v[0] for v in values), median(v[1] for v in values)))
    by_package: dict[str, float] = {}
    for module, _depth, self_ms, _cum in rows:
        by_package[module.split(".")[0]] = by_package.get(module.split(".")[0], 0.0) + self_ms
    # Interpreter start-up imports are not what the variant adds.
    startup = {"encodings", "site", "codecs", "io", "abc", "os", "stat", "_collections_abc", "posixpath", "genericpath",
               "_sitebuiltins", "_distutils_hack", "_virtualenv", "zipimport", "_frozen_importlib_external", "_io",
               "marshal", "posix", "time", "_codecs", "_signal", "__future__"}
    direct = [(m, cum) for m, depth, _s, cum in rows if depth == 0 and m.split(".")[0] not in startup]
    second = [(m, cum) for m, depth, _s, cum in rows if depth == 1]

    def ranked(pairs):
        return [{"module": m, "ms": c} for m, c in sorted(pairs, key=lambda r: r[1], reverse=True)[:top]]

    return {
        "samples": samples,
        "total_ms": sum(r[2] for r in rows),
        "self_ms_by_package": sorted(({"package": k, "ms": v} for k, v in by_package.items()), key=lambda r: r["ms"],
                                     reverse=True)[:top],
        "top_level_cumulative": ranked(direct),
        "second_level_cumulative": ranked(second),
    }


def main() -> None:
    args = cli_args()
    runs, nopyc_runs = int(args.get("runs", 20)), int(args.get("nopyc-runs", 3))
    importtime_runs = int(args.get("importtime-runs", 3))
    rng = random.Random(2)

    stack = start_stack()
    people = world(stack.api_url, stack.dev_url)
    people.route_all_to(people.policy([[inactive_responder(people)]], [60]))
    with tempfile.TemporaryDirectory(prefix="bench-p2-") as tmp:
        sampler = Sampler(stack, Path(tmp))
        for variant in VARIANTS:  # warm-up: bytecode caches written, files in the page cache
            sampler.sample(variant)
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        parts: dict[str, list[float]] = {"import": [], "first": [], "warm": []}
        order = list(VARIANTS)
        for _ in range(runs):
            rng.shuffle(order)
            for variant in order:
                judged, timings = sampler.sample(variant)
                samples[variant].append(judged)
                if variant == "app_first":
                    for name in parts:
                        parts[name].append(timings[name] * 1000)

        nopyc: dict[str, list[float]] = {"app": [], "boto3": []}
        for _ in range(nopyc_runs):
            for variant in rng.sample(list(nopyc), 2):
                with tempfile.TemporaryDirectory(prefix="bench-pyc-") as prefix:
                    timings, _ = sampler.run(variant, ("-X", f"pycache_prefix={prefix}"))
                    nopyc[variant].append(timings["import"] * 1000)

        importtime = {variant: import_breakdown(sampler, variant, samples=importtime_runs)
                      for variant in ("app", "app_first")}

    result = {
        "benchmark": "p2_coldstart",
        "runs": runs,
        "nopyc_runs": nopyc_runs,
        "ms": {variant: summary(values) for variant, values in samples.items()},
        "app_first_parts_ms": {name: summary(values) for name, values in parts.items()},
        "nopyc_import_ms": {variant: summary(values) for variant, values in nopyc.items()},
        "importtime": importtime,
        "target": TARGET,
    }
    p50 = {variant: result["ms"][variant]["p50"] for variant in VARIANTS}
    result["ratio_app_first_to_boto3"] = p50["app_first"] / p50["boto3"]
    result["ratio_app_to_boto3"] = p50["app"] / p50["boto3"]
    if nopyc["app"] and nopyc["boto3"]:
        result["ratio_nopyc_app_to_boto3"] = result["nopyc_import_ms"]["app"]["p50"] / result["nopyc_import_ms"]["boto3"]["p50"]
    write_result(args["out"], result)
    stack.stop()


if __name__ == "__main__":
    main()
