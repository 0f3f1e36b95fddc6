"""Demo roster and policies for `make run`, created through the same admin use cases (and validation) the admin API
uses, before the API starts listening: once /v1/health answers, the roster is there."""

from __future__ import annotations

from chalicelib.schemas import PolicyPut, ResponderPut, RoutingPut, SchedulePut
from chalicelib.services import get_services

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


def seed_demo() -> None:
    admin = get_services().admin
    for responder_id, body in DEMO_RESPONDERS.items():
        admin.put_responder(responder_id, ResponderPut(**body))
    for schedule_id, body in DEMO_SCHEDULES.items():
        admin.put_schedule(schedule_id, SchedulePut(**body))
    for policy_id, body in DEMO_POLICIES.items():
        admin.put_policy(policy_id, PolicyPut(**body))
    admin.put_routing(RoutingPut(**DEMO_ROUTING))
