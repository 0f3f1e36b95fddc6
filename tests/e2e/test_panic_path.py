"""End to end: start the real local stack as `make run` does (a separate process, free ports), drive it over HTTP
only, shut it down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest
import requests

from tests.conftest import ROOT, Api, Sms, free_port, new_phone, unique, wait_for


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    ports = {"LOCAL_AWS_PORT": free_port(), "PORT": free_port(), "DEV_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_TABLE") and k not in ("AWS_ENDPOINT_URL", "MOTO_PORT")}
    env.update({k: str(v) for k, v in ports.items()})
    env["SEED"] = "1"
    # Output to a file, not a pipe: an unread pipe fills up and blocks the stack mid-test.
    log_path = tmp_path_factory.mktemp("stack") / "stack.log"
    log_file = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=log_file,
                               stderr=subprocess.STDOUT)
    api_url, dev_url = f"http://127.0.0.1:{ports['PORT']}", f"http://127.0.0.1:{ports['DEV_PORT']}"
    started = time.monotonic()

    def healthy():
        if process.poll() is not None:
            pytest.fail(f"local stack exited early:\n{log_path.read_text()}")
        try:
            return requests.get(f"{api_url}/v1/health", timeout=1).json() == {"status": "ok"}
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=60, interval=0.2, message="the local stack to answer /v1/health")
    startup_s = time.monotonic() - started
    yield {"api": api_url, "dev": dev_url, "startup_s": startup_s, "log": log_path}
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log_file.close()
    # Shown by pytest only when a test failed: the stack's own log lines, without the per-request access log.
    print("\n".join(line for line in log_path.read_text().splitlines() if not line.startswith("127.0.0.1 - -"))[-8000:])


def test_panic_is_paged_escalated_and_acknowledged_by_sms(running_stack):
    api, dev = running_stack["api"], running_stack["dev"]
    assert running_stack["startup_s"] < 60
    admin = Api(api, dev, "admin", "e2e-admin")
    sms = Sms(dev)

    # The demo roster was seeded.
    seeded = {r["id"] for r in admin.get("/v1/responders").json()["responders"]}
    assert {"r-alice", "r-bob", "r-carol"} <= seeded

    first, second = (unique("e2e"), new_phone()), (unique("e2e"), new_phone())
    for responder_id, phone in (first, second):
        assert admin.put(f"/v1/responders/{responder_id}", json={"name": responder_id, "phone": phone}).status_code == 201
    policy = {"tiers": [{"targets": [{"responder": first[0]}], "timeout_s": 2},
                        {"targets": [{"responder": second[0]}], "timeout_s": 2}]}
    assert admin.put("/v1/escalation-policies/e2e", json=policy).status_code == 201
    assert admin.put("/v1/routing", json={"default": "e2e", "panic": "e2e"}).status_code == 200

    shopper = Api(api, dev, "shopper", "e2e-shopper")
    created = shopper.post("/v1/incidents", json={"kind": "panic", "location": {"lat": 40.7, "lng": -74.0}},
                           headers={"Idempotency-Key": unique("press")})
    assert created.status_code == 201, created.text
    incident = created.json()["incident"]
    assert incident["reference"].startswith("TS-") and incident["status"] == "triggered"

    tier1 = wait_for(lambda: sms.to(first[1]), message="tier-1 page")
    assert incident["reference"] in tier1[0]["body"] and "maps.google.com/?q=40.7,-74" in tier1[0]["body"]
    tier2 = wait_for(lambda: sms.to(second[1]), timeout=8, message="tier-2 page")
    # Tier 1's timer starts after the incident is created: tier 2 can never come sooner than 2 s after creation, and
    # must come within 1.5 s after its timeout (plus the moment between creation and the workflow's first claim).
    # tests/integration/test_escalation.py measures the same against the Wait state's own start.
    gap = datetime.fromisoformat(tier2[0]["sent_at"][:-1]) - datetime.fromisoformat(incident["created_at"][:-1])
    assert 2.0 <= gap.total_seconds() <= 3.5 + 0.5, gap

    reply = requests.post(f"{dev}/dev/sms/inbound", json={"from": second[1], "body": f"  Ack {incident['code']} "})
    assert reply.status_code == 202

    reviewer = Api(api, dev, "reviewer", "e2e-reviewer")
    acknowledged = wait_for(
        lambda: (i := reviewer.get(f"/v1/incidents/{incident['id']}").json()["incident"])["status"] == "acknowledged" and i,
        message="acknowledged status",
    )
    assert acknowledged["acknowledged_by"] == second[0]
    # Lookup by reference works too, for the owner.
    assert shopper.get(f"/v1/incidents/{incident['reference']}").json()["incident"]["id"] == incident["id"]

    events = reviewer.get(f"/v1/incidents/{incident['id']}/timeline").json()["events"]
    assert [e["type"] for e in events] == ["created", "paged", "escalated", "paged", "sms_received", "acknowledged"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)

    confirmation = wait_for(lambda: len(sms.to(second[1])) == 2 and sms.to(second[1])[1], message="ACK confirmation")
    assert confirmation["body"].startswith("You acknowledged")
    time.sleep(2.5)  # past where a third step would have paged: nothing more may arrive
    assert len(sms.to(first[1])) == 1 and len(sms.to(second[1])) == 2
