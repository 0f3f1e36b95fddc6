"""The package is tested as it ships: deployment.zip, unpacked alone into an empty virtual environment and run with
`python -I -S` (no site-packages, no PYTHONPATH, not even the dev venv), imports every handler the template names and
every module the code imports, verifies an RS256 token against a local JWKS endpoint, and serves a panic through the
packaged API handler against a local AWS (a moto server of its own, resources from infra/), then sends its page with
the packaged send_pages, records the carrier's receipt for it with the packaged sms_receipts, and lets a check-in
lapse so that its timer's job, run by the packaged run_jobs, opens the missed_check_in incident. Dev-only packages
must not be in the zip."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
import venv
import zipfile

import boto3
import pytest
import requests

from tests.conftest import ROOT, free_port, new_phone
from tests.support.jwks import AUDIENCE, ISSUER, JwksServer, mint, new_key

# Top-level names that must never be in the Lambda zip (dev, test and tooling dependencies).
DEV_ONLY = ["moto", "pytest", "_pytest", "hypothesis", "selenium", "schemathesis", "cfnlint", "samtranslator",
            "werkzeug", "flask", "requests", "yaml", "pyinstrument", "trio", "docker", "responses", "jsonschema",
            "openapi_spec_validator", "local", "tests", "infra", "tools", "bench"]
# Imported by libraries only on some paths (so not found by reading our imports), and needed on Lambda.
LAZY_RUNTIME_IMPORTS = ["cryptography.hazmat.primitives.asymmetric.rsa", "cryptography.hazmat.primitives.asymmetric.ec",
                        "aws_xray_sdk.core", "aws_lambda_powertools.tracing", "zoneinfo", "tzdata"]


def imported_modules() -> list[str]:
    """Every module app.py and chalicelib import (deferred imports inside functions included), bar our own."""
    found: set[str] = set()
    for path in [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return sorted(m for m in found if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__")


def template_handlers(template: dict) -> list[str]:
    return sorted(r["Properties"]["Handler"] for r in template["Resources"].values()
                  if r["Type"] == "AWS::Serverless::Function")


def test_no_dev_only_package_is_in_the_zip(package_dir):
    names = zipfile.ZipFile(package_dir / "deployment.zip").namelist()
    top_level = {name.split("/")[0].removesuffix(".py") for name in names}
    assert not top_level & set(DEV_ONLY), sorted(top_level & set(DEV_ONLY))
    assert not [n for n in names if n.startswith("chalice/cli/")], "the Chalice CLI is not a runtime dependency"
    assert "chalice/app.py" in names and "app.py" in names


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory):
    """A moto server in a process of its own (the session's local stack shares moto's backends in-process) with
    Step Functions execution on, and the resources of infra/resources.yaml."""
    from local.resources import LocalStackBuilder, service_environment

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    env = {**os.environ, "MOTO_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.post(f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                              timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
        created = LocalStackBuilder(session, url, stack_name="pkg").create_all()
        yield {"url": url, "created": created, "env": service_environment(created), "session": session}
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_the_unpacked_zip_alone_serves_a_panic_pages_records_a_receipt_and_runs_a_job(package_dir, template, local_aws,
                                                                                     tmp_path):
    unpacked = tmp_path / "task"  # like /var/task
    with zipfile.ZipFile(package_dir / "deployment.zip") as package:
        package.extractall(unpacked)
    empty = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(empty)
    python = empty / "bin" / "python"

    idp = JwksServer(keys=[new_key("RS256")]).start()
    key = idp.keys[0]
    responder, phone = "r-pkg", new_phone()
    tokens = {"shopper": mint(key, "shopper", "pkg-shopper"), "admin": mint(key, "admin", "pkg-admin")}
    created = local_aws["created"]
    queue_arn = created["PageQueue"]["Arn"]
    spec = {
        "dev_only": DEV_ONLY,
        "modules": imported_modules() + LAZY_RUNTIME_IMPORTS,
        "handlers": template_handlers(template),
        "tokens": tokens,
        "page_queue_url": local_aws["env"]["PAGE_QUEUE_URL"],
        "page_queue_arn": queue_arn,
        "jobs_queue_url": local_aws["env"]["JOBS_QUEUE_URL"],
        "jobs_queue_arn": created["JobsQueue"]["Arn"],
        # Not completed in time: the timer's job goes through the packaged run_jobs (due_in_s: the contract's minimum).
        "check_in": {"body": {"due_in_s": 5, "location": {"lat": 37.78, "lng": -122.42, "accuracy_m": 20}},
                     "headers": {"Idempotency-Key": "pkg-check-in-1"}, "wait_s": 40},
        "requests": [
            {"as": "admin", "method": "PUT", "resource": "/v1/responders/{responder_id}",
             "path_parameters": {"responder_id": responder}, "body": {"name": "Packaged", "phone": phone}},
            {"as": "admin", "method": "PUT", "resource": "/v1/escalation-policies/{policy_id}",
             "path_parameters": {"policy_id": "p-pkg"},
             "body": {"tiers": [{"targets": [{"responder": responder}], "timeout_s": 60}]}},
            {"as": "admin", "method": "PUT", "resource": "/v1/routing", "body": {"default": "p-pkg", "panic": "p-pkg"}},
            {"as": "shopper", "method": "POST", "resource": "/v1/incidents", "headers": {"Idempotency-Key": "pkg-1"},
             "body": {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}},
        ],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "TZ": "UTC",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_ENDPOINT_URL": local_aws["url"],
        "TOKEN_JWKS_URL": idp.url, "TOKEN_ISSUER": ISSUER, "TOKEN_AUDIENCE": AUDIENCE,
        "POWERTOOLS_SERVICE_NAME": "trust-safety-alerts", "POWERTOOLS_METRICS_NAMESPACE": "TrustSafetyAlerts",
        "LOG_LEVEL": "WARNING", **local_aws["env"],
    }
    try:
        run = subprocess.run([str(python), "-I", "-S", str(ROOT / "tests" / "infra" / "packaged_probe.py"),
                              str(unpacked), str(tmp_path / "spec.json")], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
    finally:
        idp.stop()
    assert run.returncode == 0, run.stderr[-6000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])

    assert report["sys_path"][0] == str(unpacked) and not [p for p in report["sys_path"] if "site-packages" in p]
    assert report["visible_dev_packages"] == []
    assert report["import_errors"] == {}, report["import_errors"]
    assert report["loaded_from_outside"] == [], report["loaded_from_outside"]
    assert report["handlers"] == {h: True for h in template_handlers(template)}
    assert report["verified"] == {"role": "shopper", "sub": "pkg-shopper"}

    statuses = [r["status"] for r in report["responses"]]
    assert statuses == [201, 201, 200, 201], report["responses"]
    incident = report["responses"][-1]["body"]["incident"]
    assert incident["status"] == "triggered" and incident["reference"].startswith("TS-")

    sfn = local_aws["session"].client("stepfunctions", endpoint_url=local_aws["url"])
    executions = sfn.list_executions(stateMachineArn=local_aws["env"]["ESCALATION_STATE_MACHINE_ARN"])["executions"]
    assert [e["name"] for e in executions if e["name"].startswith(incident["id"])], executions
    # ... and the page its first step requested went out through the packaged sender,
    assert report["page_request"] and incident["id"] in report["page_request"]
    assert "paged" in report["timeline"], report["timeline"]
    # ... and the carrier's receipt for it, from a delivery status log subscription, through the packaged sms_receipts.
    assert report["receipt"] == {"recorded": 1}, report.get("receipt")
    assert "page_delivered" in report["timeline_after_receipt"], report["timeline_after_receipt"]

    # A check-in not completed: its timer's job, run by the packaged run_jobs, opens the missed_check_in incident.
    check_in = report["check_in"]
    assert check_in["created_status"] == 201, check_in
    assert check_in["job"] and check_in["job"]["action"] == "check_in_due", check_in
    assert check_in["check_in"]["status"] == "missed", check_in
    assert check_in["incident"]["kind"] == "missed_check_in" and check_in["incident"]["status"] == "triggered", check_in
    missed_executions = sfn.list_executions(
        stateMachineArn=local_aws["env"]["ESCALATION_STATE_MACHINE_ARN"])["executions"]
    assert [e for e in missed_executions if e["name"].startswith(check_in["incident"]["id"])], missed_executions
