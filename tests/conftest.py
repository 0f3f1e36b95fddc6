"""Shared fixtures. Integration tests run against one in-process local stack (moto server + the resources of
infra/ + the Chalice API + the dev server) on free ports; each test makes its own responders, phone numbers and
policies, so tests never see each other's SMS."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "false")


from local.subprocess_stack import free_port  # noqa: E402,F401 - one home for it (bench/ uses it too)


# --- least privilege: every AWS call a Lambda makes during the session is recorded (local/iam_recorder.py) -----------
def pytest_configure(config):
    """One calls file per session, in the environment so that local stacks started in other processes (the e2e test)
    record into it too. tests/infra/test_least_privilege.py judges it, last (see pytest_collection_modifyitems)."""
    config.addinivalue_line("markers", "runs_last: run after every other test of the session")
    from local.iam_recorder import CALLS_FILE_ENV

    if not os.environ.get(CALLS_FILE_ENV):
        handle, path = tempfile.mkstemp(prefix="iam-calls-", suffix=".jsonl")
        os.close(handle)
        os.environ[CALLS_FILE_ENV] = path
        config._iam_calls_file = path


def pytest_unconfigure(config):
    path = getattr(config, "_iam_calls_file", None)
    if path and os.path.exists(path):
        os.unlink(path)


def pytest_collection_modifyitems(session, config, items):
    """Tests marked runs_last (the least-privilege verdict over every recorded call) go after all the others."""
    last = [item for item in items if item.get_closest_marker("runs_last")]
    items[:] = [item for item in items if not item.get_closest_marker("runs_last")] + last


# The helpers live in tests/support/people.py (bench/ uses them too); most tests import them from here.
from tests.support.people import Api, Sms, World, new_phone, unique, wait_for  # noqa: E402,F401


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory) -> Path:
    """`make package STAGE=prod` once per session: sam.json, deployment.zip (tests/infra, the least-privilege check)."""
    import subprocess

    out = tmp_path_factory.mktemp("package") / "prod"
    subprocess.run([sys.executable, str(ROOT / "infra" / "build_template.py"), "--stage", "prod", "--out", str(out)],
                   cwd=ROOT, check=True)
    return out


@pytest.fixture(scope="session")
def template(package_dir) -> dict:
    import json

    return json.loads((package_dir / "sam.json").read_text())


@pytest.fixture(scope="session")
def stack():
    from local.stack import LocalStack

    local = LocalStack(aws_port=free_port(), api_port=free_port(), dev_port=free_port(), seed=False).start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def world(stack) -> World:
    return World(stack)
