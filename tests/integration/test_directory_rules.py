"""Admin rules that keep a policy from paging nobody or the wrong person (contract 4.1)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import new_phone, unique


def test_six_concurrent_responders_with_one_phone_one_wins(world):
    phone = new_phone()
    ids = [unique("r") for _ in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda rid: world.admin.put(f"/v1/responders/{rid}",
                                                             json={"name": rid, "phone": phone}).status_code, ids))
    assert sorted(statuses) == [201] + [409] * 5, statuses
    holders = [r for r in world.admin.get("/v1/responders").json()["responders"] if r["phone"] == phone]
    assert len(holders) == 1


def test_routing_must_name_a_default_and_existing_policies(world):
    assert world.admin.put("/v1/routing", json={}).status_code == 422
    missing = world.admin.put("/v1/routing", json={"default": "no-such-policy"})
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "default"


def test_a_policy_naming_an_unknown_responder_or_schedule_is_422(world):
    for target, field in (({"responder": "nobody-here"}, "tiers.targets.responder"),
                          ({"schedule": "no-such-schedule"}, "tiers.targets.schedule")):
        answer = world.admin.put(f"/v1/escalation-policies/{unique('p')}",
                                 json={"tiers": [{"targets": [target], "timeout_s": 60}]})
        assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == field


def test_a_schedule_handoff_with_an_offset_is_refused_not_silently_shifted(world):
    responder = world.responder()
    body = {"time_zone": "America/New_York",
            "rotation": {"responders": [responder["id"]], "shift_hours": 24, "handoff": "2026-01-05T09:00:00+02:00"}}
    answer = world.admin.put(f"/v1/schedules/{unique('s')}", json=body)
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == "rotation.handoff"
    body["rotation"]["handoff"] = "2026-01-05T09:00:00"
    created = world.admin.put(f"/v1/schedules/{unique('s')}", json=body)
    assert created.status_code == 201 and created.json()["schedule"]["on_call_now"]["responder"] == responder["id"]
