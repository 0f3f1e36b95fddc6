"""tools/smoke.py (`make smoke`, the last step of a deploy) against the local stack, with the reply path through the
inbound-sms topic as on AWS. The `test` incident kind is being added to the service; until it exists the script
stops after health and the test responder, cleans up, and exits 3: then this test checks that much and is skipped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from tests.conftest import ROOT, new_phone, unique

SCRIPT = ROOT / "tools" / "smoke.py"


def smoke_env(stack, responder_id: str, phone: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("API_URL", "INBOUND_SMS_TOPIC_ARN")}
    env.update({
        "API_URL": f"{stack.api_url}/",
        "SMOKE_ADMIN_TOKEN": stack.mint_token("admin", "smoke-admin"),
        "SMOKE_PHONE": phone,
        "SMOKE_RESPONDER_ID": responder_id,
        "SMOKE_TIMEOUT_S": "30",
        "AWS_ENDPOINT_URL": stack.aws_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    })
    return env


def test_smoke_pages_one_test_responder_acks_by_sms_and_cleans_up(stack):
    responder_id, phone = unique("smoke"), new_phone()
    env = smoke_env(stack, responder_id, phone, INBOUND_SMS_TOPIC_ARN=stack.env["INBOUND_SMS_TOPIC_ARN"])
    run = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    out = run.stdout + run.stderr
    assert "ok    health" in out and f"ok    test responder {responder_id} (created)" in out, out
    admin = {"Authorization": f"Bearer {env['SMOKE_ADMIN_TOKEN']}"}
    # Cleaned up either way: the responder it created is gone.
    assert requests.get(f"{stack.api_url}/v1/responders/{responder_id}", headers=admin, timeout=10).status_code == 404
    if run.returncode == 3:
        pytest.skip("the service has no `test` incident kind yet (the lead is adding it: sev4, admin only, paged only "
                    "to `test_responder`); health, test responder and clean-up were checked")
    assert run.returncode == 0, out
    assert "ok    paged" in out and "ok    acknowledged (SMS reply published to the inbound-sms topic)" in out
    assert "ok    test incident resolved" in out
    pages = [m for m in stack.sms.listing() if m["to"] == phone]
    assert pages, "the test responder's phone got no SMS"


def test_smoke_refuses_to_run_without_what_it_needs():
    run = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items()
                              if k not in ("API_URL", "SMOKE_ADMIN_TOKEN", "SMOKE_PHONE")})
    assert run.returncode == 2 and "API_URL, SMOKE_ADMIN_TOKEN, SMOKE_PHONE required" in run.stderr


def test_a_failing_health_check_fails_the_smoke(stack):
    env = smoke_env(stack, unique("smoke"), new_phone(), API_URL=f"{stack.dev_url}/nowhere/")
    run = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "FAIL" in run.stdout and "health" in run.stdout
