"""P2 cold start: fresh-process import time of the Lambda entry module versus `import boto3; boto3.client("dynamodb")`.

Each sample is a new interpreter (`python -c ...`, cwd = the repository, as Lambda imports `app` from /var/task) that
times its own import with perf_counter; the process's whole wall time (interpreter start included) is kept too.
The variants run interleaved in a shuffled order per round. One warm-up round is discarded (it writes .pyc files).

Variants:
- `app`          import app                                  (the Lambda init phase: the figure against the target)
- `boto3`        import boto3; boto3.client("dynamodb")      (the reference)
- `app_wired`    import app + get_services()                 (what the first request adds: the lazy imports, clients)
Without a bytecode cache (`-X pycache_prefix=<empty dir>`: every module compiled from source, as on Lambda when the
deployment package carries no __pycache__ and /var/task is read-only) `app` and `boto3` are sampled a few times too.
`python -X importtime -c "import app"` gives the modules that cost the most.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time

from bench.common import ROOT, cli_args, median, summary, write_result

TIMER = "import time as _t; _s = _t.perf_counter()\n{stmt}\nprint('BENCH_IMPORT_S', _t.perf_counter() - _s)"
VARIANTS = {
    "app": "import app",
    "boto3": "import boto3; boto3.client('dynamodb')",
    "app_wired": "import app\nfrom chalicelib.services import get_services\nget_services()",
}
FAKE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "INCIDENTS_TABLE": "t-incidents",
    "TIMELINE_TABLE": "t-timeline",
    "PAGES_TABLE": "t-pages",
    "DIRECTORY_TABLE": "t-directory",
    "LOOKUPS_TABLE": "t-lookups",
    "IDEMPOTENCY_TABLE": "t-idempotency",
    "ESCALATION_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
    "PAGE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/x",
    "TOKEN_SECRET": "x",
    "POWERTOOLS_SERVICE_NAME": "trust-safety-alerts",
    "LOG_LEVEL": "INFO",
}


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, **FAKE_ENV}


def sample(stmt: str, extra_args: tuple[str, ...] = ()) -> tuple[float, float]:
    """(import seconds measured inside the child, whole process wall seconds)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *extra_args, "-c", TIMER.format(stmt=stmt)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{stmt!r} failed: {done.stderr[-2000:]}")
    line = next(l for l in done.stdout.splitlines() if l.startswith("BENCH_IMPORT_S"))
    return float(line.split()[1]), wall


def _importtime_rows(stmt: str) -> list[tuple[str, int, float, float]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", stmt], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        name = name[1:] if name.startswith(" ") else name
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((name.strip(), depth, int(self_us) / 1000, int(cumulative_us) / 1000))
    return rows


def import_breakdown(stmt: str = "import app", top: int = 12, samples: int = 3) -> dict:
    """`-X importtime`, the median of `samples` runs per module: self time summed per top-level package (adds up to
    the whole), and the cumulative time of what the statement imports."""
    runs = [_importtime_rows(stmt) for _ in range(samples)]
    first = runs[0]
    by_module = [{m: (s_ms, c_ms) for m, _d, s_ms, c_ms in run} for run in runs]
    rows = []
    for module, depth, _s, _c in first:
        values = [r[module] for r in by_module if module in r]
        rows.append((module, depth, median(v[0] for v in values), median(v[1] for v in values)))
    by_package: dict[str, float] = {}
    for module, _depth, self_ms, _cum in rows:
        package = module.split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + self_ms
    # Children of the statement's own top-level imports (depth 0 entries that are not interpreter start-up).
    startup = {"encodings", "site", "codecs", "io", "abc", "os", "stat", "_collections_abc", "posixpath", "genericpath",
               "_sitebuiltins", "_distutils_hack", "_virtualenv", "zipimport", "_frozen_importlib_external", "_io",
               "marshal", "posix", "time", "_codecs", "encodings.aliases", "encodings.utf_8", "_signal", "__future__"}
    direct = [(m, cum) for m, depth, _s, cum in rows if depth == 0 and m.split(".")[0] not in startup]
    second = [(m, cum) for m, depth, _s, cum in rows if depth == 1]
    return {
        "samples": samples,
        "total_ms": sum(r[2] for r in rows),
        "self_ms_by_package": sorted(({"package": k, "ms": v} for k, v in by_package.items()), key=lambda r: r["ms"],
                                     reverse=True)[:top],
        "top_level_cumulative": [{"module": m, "ms": c} for m, c in sorted(direct, key=lambda r: r[1], reverse=True)[:top]],
        "second_level_cumulative": [{"module": m, "ms": c} for m, c in sorted(second, key=lambda r: r[1], reverse=True)[:top]],
    }


def main() -> None:
    args = cli_args()
    runs, cold_runs = int(args.get("runs", 10)), int(args.get("nopyc-runs", 3))
    importtime_runs = int(args.get("importtime-runs", 3))
    rng = random.Random(2)

    for stmt in VARIANTS.values():  # warm-up: bytecode caches written, files in the page cache
        sample(stmt)
    inside: dict[str, list[float]] = {k: [] for k in VARIANTS}
    wall: dict[str, list[float]] = {k: [] for k in VARIANTS}
    order = list(VARIANTS)
    for _ in range(runs):
        rng.shuffle(order)
        for name in order:
            t_in, t_wall = sample(VARIANTS[name])
            inside[name].append(t_in * 1000)
            wall[name].append(t_wall * 1000)

    nopyc: dict[str, list[float]] = {"app": [], "boto3": []}
    for _ in range(cold_runs):
        for name in rng.sample(list(nopyc), 2):
            with tempfile.TemporaryDirectory(prefix="bench-pyc-") as prefix:
                nopyc[name].append(sample(VARIANTS[name], ("-X", f"pycache_prefix={prefix}"))[0] * 1000)

    result = {
        "benchmark": "p2_coldstart",
        "runs": runs,
        "nopyc_runs": cold_runs,
        "import_ms": {k: summary(v) for k, v in inside.items()},
        "process_wall_ms": {k: summary(v) for k, v in wall.items()},
        "nopyc_import_ms": {k: summary(v) for k, v in nopyc.items()},
        "importtime_app": import_breakdown("import app", samples=importtime_runs),
        "importtime_app_wired": import_breakdown(VARIANTS["app_wired"].replace("\n", "; "), samples=importtime_runs),
    }
    med = {k: v["p50"] for k, v in result["import_ms"].items()}
    result["ratio_app_to_boto3"] = med["app"] / med["boto3"]
    result["ratio_app_wired_to_boto3"] = med["app_wired"] / med["boto3"]
    if nopyc["app"] and nopyc["boto3"]:
        result["ratio_nopyc_app_to_boto3"] = result["nopyc_import_ms"]["app"]["p50"] / result["nopyc_import_ms"]["boto3"]["p50"]
    write_result(args["out"], result)


if __name__ == "__main__":
    main()
