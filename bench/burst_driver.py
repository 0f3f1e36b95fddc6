"""The shoppers of P4: a separate process (so the load generator does not share the stack's interpreter lock) that
presses the panic button N times over HTTP with C concurrent clients. Each press carries an Idempotency-Key and is
retried with the same key on a connection error, 429 or 5xx (as the app would), up to 6 attempts."""

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


def main() -> None:
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    url, presses, concurrency = args["--url"], int(args["--presses"]), int(args["--concurrency"])
    tokens = json.loads(Path(args["--tokens"]).read_text())
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def press(i: int) -> dict:
        key = uuid.uuid4().hex
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Idempotency-Key": key}
        sent = time.time()
        status, attempts, incident, error = None, 0, None, None
        while attempts < 6:
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
        results = list(pool.map(press, range(presses)))
    Path(args["--out"]).write_text(json.dumps({"started": started, "ended": time.time(), "presses": results}))


if __name__ == "__main__":
    main()
