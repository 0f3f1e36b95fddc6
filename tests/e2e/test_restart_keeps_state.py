"""Stopping `make run` mid-escalation and starting it again keeps every incident and admin change (a state file),
and the escalation goes on: its timer is started again on restart."""

from __future__ import annotations

from local.subprocess_stack import StackProcess
from tests.conftest import Api, Sms, new_phone, unique, wait_for


def test_state_survives_a_restart_and_escalation_goes_on(tmp_path):
    state_file = tmp_path / "state.json"
    environment = {"SEED": "0", "PERSIST": "1", "LOCAL_STATE_FILE": str(state_file)}
    phones = {"t1": new_phone(), "t2": new_phone()}
    ids = {name: unique(name) for name in phones}
    with StackProcess(tmp_path / "first.log", **environment) as stack:
        admin = Api(stack.api, stack.dev, "admin", "restart-admin")
        for name, phone in phones.items():
            assert admin.put(f"/v1/responders/{ids[name]}", json={"name": name, "phone": phone}).status_code == 201
        policy = {"tiers": [{"targets": [{"responder": ids["t1"]}], "timeout_s": 6},
                            {"targets": [{"responder": ids["t2"]}], "timeout_s": 3600}]}
        assert admin.put("/v1/escalation-policies/restart", json=policy).status_code == 201
        assert admin.put("/v1/routing", json={"default": "restart"}).status_code == 200
        shopper = Api(stack.api, stack.dev, "shopper", "restart-shopper")
        incident = shopper.post("/v1/incidents", json={"kind": "panic", "location": {"lat": 1.0, "lng": 2.0}}).json()["incident"]
        wait_for(lambda: Sms(stack.dev).to(phones["t1"]), message="the tier-1 page before the restart")
    assert state_file.is_file()

    with StackProcess(tmp_path / "second.log", **environment) as stack:
        reviewer = Api(stack.api, stack.dev, "reviewer", "restart-reviewer")
        shown = reviewer.get(f"/v1/incidents/{incident['id']}")
        assert shown.status_code == 200 and shown.json()["incident"]["reference"] == incident["reference"]
        admin = Api(stack.api, stack.dev, "admin", "restart-admin")
        assert admin.get(f"/v1/responders/{ids['t2']}").status_code == 200
        assert Sms(stack.dev).to(phones["t1"]), "the SMS log is kept too"
        wait_for(lambda: Sms(stack.dev).to(phones["t2"]), timeout=60, message="tier 2 after the restart")
        events = [e["type"] for e in reviewer.get(f"/v1/incidents/{incident['id']}/timeline").json()["events"]]
        assert events.count("paged") == 2 and "escalated" in events
        assert len(Sms(stack.dev).to(phones["t1"])) == 1  # tier 1 was not paged again
