"""The shoppers of a burst: N panic presses over HTTP by C concurrent clients, each press by a shopper of its own (a
second press by the same shopper within 30 minutes joins her open incident: contract 4.2). Each press carries an
Idempotency-Key and is retried with the same key on a connection error, 429 or 5xx (as the app would), up to 6
attempts.

`press_all()` for a benchmark whose stack runs in another process (local/subprocess_stack.py); as a program
(`python -m bench.burst_driver --url ... --presses N --concurrency C --tokens tokens.json --out presses.json`) for
one whose stack runs in its own process, so that the load generator does not share the stack's interpreter lock.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

BODY = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_ATTEMPTS = 6


def dev_tokens(dev_url: str, role: str, subs: list[str], concurrency: int = 8) -> list[str]:
    """Tokens from the dev server (POST /dev/tokens), for a stack whose token secret this process does not hold."""
    def mint(sub: str) -> str:
        response = requests.post(f"{dev_url}/dev/tokens", json={"role": role, "sub": sub}, timeout=30)
        response.raise_for_status()
        return response.json()["token"]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(mint, subs))


def press_all(url: str, tokens: list[str], concurrency: int) -> dict:
    """One press per token (each token a different shopper). Returns {"started", "ended", "presses": [...]}, each
    press with when it was sent and answered (epoch s), its last status, attempts, and the incident's id and
    reference when accepted (201)."""
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def press(i: int) -> dict:
        headers = {"Authorization": f"Bearer {tokens[i]}", "Idempotency-Key": uuid.uuid4().hex}
        sent = time.time()
        status, attempts, incident, error = None, 0, None, None
        while attempts < MAX_ATTEMPTS:
            attempts += 1
            try:
                response = session().post(f"{url}/v1/incidents", json=BODY, headers=headers, timeout=60)
                status = response.status_code
                if status == 201:
                    incident = response.json()["incident"]
                    break
                if status not in RETRY_STATUSES:
                    error = response.text[:300]
                    break
            except requests.RequestException as exc:
                status, error = None, type(exc).__name__
            time.sleep(min(2.0, 0.1 * 2 ** attempts))
        return {"i": i, "sent": sent, "done": time.time(), "status": status, "attempts": attempts, "error": error,
                "id": incident and incident["id"], "reference": incident and incident["reference"]}

    started = time.time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        presses = list(pool.map(press, range(len(tokens))))
    return {"started": started, "ended": time.time(), "presses": presses}


def run_in_subprocess(url: str, tokens: list[str], concurrency: int, workdir: Path) -> dict:
    """press_all() in a separate process (for benchmarks whose stack runs in their own process)."""
    import subprocess

    tokens_file, out_file = workdir / "tokens.json", workdir / "presses.json"
    tokens_file.write_text(json.dumps(tokens))
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "bench.burst_driver", "--url", url, "--concurrency", str(concurrency),
                           "--tokens", str(tokens_file), "--out", str(out_file)],
                          cwd=root, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"burst driver failed: {done.stderr[-3000:]}")
    return json.loads(out_file.read_text())


def main() -> None:
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    tokens = json.loads(Path(args["--tokens"]).read_text())
    run = press_all(args["--url"], tokens, int(args["--concurrency"]))
    Path(args["--out"]).write_text(json.dumps(run))


if __name__ == "__main__":
    main()
