"""Fixtures and helpers of the reliability suite. The session `stack` and `world` come from tests/conftest.py."""

from __future__ import annotations

import boto3

from tests.reliability.faults import faults  # noqa: F401 - the fixture, shared with tests/fuzz

PANIC = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}


def sfn(world):
    return boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=world.stack.aws_url)


def executions(world, name_prefix: str = "") -> list[dict]:
    """Every execution of the escalation state machine whose name starts with `name_prefix` (all pages)."""
    client, found, token = sfn(world), [], None
    while True:
        kwargs = {"stateMachineArn": world.stack.env["ESCALATION_STATE_MACHINE_ARN"], "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = client.list_executions(**kwargs)
        found += [e for e in page["executions"] if e["name"].startswith(name_prefix)]
        token = page.get("nextToken")
        if not token:
            return found


def emergency_pages(messages: list[dict], reference: str | None = None) -> list[dict]:
    """Page SMS (tier pages), optionally only those naming `reference`."""
    return [m for m in messages if m["body"].startswith("EMERGENCY") and (reference is None or reference in m["body"])]


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def assert_timeline_sound(world, incident_id: str) -> list[dict]:
    """seq gapless from 1 and the hash chain verifies: whatever raced, the audit trail is intact."""
    response = world.reviewer.get(f"/v1/incidents/{incident_id}/timeline", params={"verify": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    events = body["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), types(events)
    assert body["verification"]["intact"] is True, body["verification"]
    return events
