"""Demo roster and policies for `make run`, created through the public admin API like any client would."""

from __future__ import annotations

import requests

DEMO_RESPONDERS = {
    "r-alice": {"name": "Alice Ng", "phone": "+15555550101", "active": True},
    "r-bob": {"name": "Bob Diaz", "phone": "+15555550102", "active": True},
    "r-carol": {"name": "Carol Ito", "phone": "+15555550103", "active": True},
    "r-sec": {"name": "Sam Security", "phone": "+15555550104", "active": True},
}
DEMO_SCHEDULES = {
    "safety-oncall": {
        "time_zone": "America/New_York",
        "rotation": {"responders": ["r-alice", "r-bob"], "shift_hours": 24, "handoff": "2026-01-05T09:00:00"},
        "overrides": [],
    },
}
DEMO_POLICIES = {
    "safety-default": {"tiers": [{"targets": [{"schedule": "safety-oncall"}], "timeout_s": 60},
                                 {"targets": [{"responder": "r-carol"}, {"responder": "r-bob"}], "timeout_s": 60}],
                       "repeat": 1},
    "security-team": {"tiers": [{"targets": [{"responder": "r-sec"}], "timeout_s": 300},
                                {"targets": [{"responder": "r-carol"}], "timeout_s": 300}], "repeat": 0},
}
DEMO_ROUTING = {"default": "safety-default", "fraud": "security-team", "account_breach": "security-team",
                "privacy": "security-team"}


def seed_demo(api_url: str, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with requests.Session() as http:
        for path, items in (("responders", DEMO_RESPONDERS), ("schedules", DEMO_SCHEDULES),
                            ("escalation-policies", DEMO_POLICIES)):
            for item_id, body in items.items():
                http.put(f"{api_url}/v1/{path}/{item_id}", json=body, headers=headers, timeout=10).raise_for_status()
        http.put(f"{api_url}/v1/routing", json=DEMO_ROUTING, headers=headers, timeout=10).raise_for_status()
