"""The record as a reviewer relies on it: tampering is detected (including removed newest events and rewritten
private rows), and nothing personal is kept outside the rows that expire."""

from __future__ import annotations

import re

import boto3
import requests

from tests.conftest import new_phone, wait_for

PHONE = re.compile(r"\+\d{8,15}")


def _ddb(world):
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=world.stack.aws_url)


def _verification(world, incident_id: str) -> dict:
    return world.reviewer.get(f"/v1/incidents/{incident_id}/timeline", params={"verify": "true"}).json()["verification"]


def test_removing_the_newest_event_is_detected(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [3600]))
    incident = world.open_panic()
    wait_for(lambda: any(e["type"] == "paged" for e in world.timeline(incident["id"])), message="page")
    events = world.timeline(incident["id"])
    last = events[-1]["seq"]
    _ddb(world).delete_item(TableName=world.stack.env["TIMELINE_TABLE"],
                            Key={"incident_id": {"S": incident["id"]}, "seq": {"N": str(last)}})
    verification = _verification(world, incident["id"])
    assert verification["intact"] is False and verification["first_bad_seq"] == last
    assert any(str(last) in problem for problem in verification["problems"])
    report = world.reviewer.get(f"/v1/incidents/{incident['id']}/report").json()["report"]
    assert report["timeline_intact"] is False and report["problems"]


def test_rewriting_a_notes_private_text_is_detected(world):
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [3600]))
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    shopper.post(f"/v1/incidents/{incident['id']}/notes", json={"text": "he has a knife"})
    note = next(e for e in world.timeline(incident["id"]) if e["type"] == "note_added")
    _ddb(world).update_item(TableName=world.stack.env["LOOKUPS_TABLE"],
                            Key={"key": {"S": f"personal#{incident['id']}#{note['seq']}"}},
                            UpdateExpression="SET body = :b", ExpressionAttributeValues={":b": {"S": '{"text": "all fine"}'}})
    verification = _verification(world, incident["id"])
    assert verification["intact"] is False and verification["first_bad_seq"] == note["seq"]
    assert any("private" in problem for problem in verification["problems"])


def test_no_phone_location_or_free_text_is_stored_in_a_timeline_row(world):
    """A scenario that writes most event types (created, location_updated, pressed_again, paged, page_skipped,
    page_delivered, page_failover, sms_received, acknowledged, notice_sent to the shopper, note_added,
    attachment_added, dispatch_requested/updated, rejected_command, resolved, review_added), then every raw timeline
    row of the incident is searched for phone numbers, coordinates and the free text used."""
    first = world.responder()
    skipped = world.responder()
    world.admin.put(f"/v1/responders/{first['id']}", json={"name": first["id"], "phone": first["phone"],
                                                            "voice": True, "email": "oncall@example.com"})
    world.route_all_to(world.policy([[first, skipped]], [3600]))
    world.admin.put(f"/v1/responders/{skipped['id']}", json={"name": "x", "phone": skipped["phone"], "active": False})
    shopper, callback = world.as_("shopper"), new_phone()
    secrets = ["he followed me from the store", "the blue car", "walked her home safely", "dispatch because screams",
               "review: phone tree too slow", "photo-of-plate.jpg"]
    incident = world.open_panic(shopper, callback_phone=callback, description=secrets[0], cancel_pin="1357")
    shopper.post(f"/v1/incidents/{incident['id']}/locations", json={"lat": 37.78123, "lng": -122.41987})
    shopper.post("/v1/incidents", json={"kind": "panic", "location": {"lat": 37.79456, "lng": -122.43789}})
    page = wait_for(lambda: world.sms.to(first["phone"]), message="page")[0]
    requests.post(f"{world.stack.dev_url}/dev/sms/{page['message_id']}/status", json={"status": "failed"}, timeout=10)
    shopper.post(f"/v1/incidents/{incident['id']}/notes", json={"text": secrets[1]})
    shopper.post(f"/v1/incidents/{incident['id']}/attachments",
                 json={"filename": secrets[5], "content_type": "image/jpeg", "size_bytes": 10})
    shopper.post(f"/v1/incidents/{incident['id']}/cancel", json={"pin": "0000"})
    world.sms.reply(new_phone(), f"ACK {incident['code']}")  # rejected: not a responder
    world.sms.reply(first["phone"], f"ACK {incident['code']}")
    wait_for(lambda: world.sms.to(callback), message="the shopper's SMS")
    first["api"].post(f"/v1/incidents/{incident['id']}/dispatch", json={"reason": secrets[3]})
    wait_for(lambda: (world.incident(incident["id"]).get("dispatch") or {}).get("status"), message="dispatch")
    world.sms.reply(first["phone"], f"RES {incident['code']} {secrets[2]}")
    world.reviewer.post(f"/v1/incidents/{incident['id']}/review", json={"findings": secrets[4]})

    types = {e["type"] for e in world.timeline(incident["id"])}
    assert {"created", "location_updated", "pressed_again", "paged", "page_skipped", "page_failed",
            "page_failover", "sms_received", "acknowledged", "notice_sent", "note_added", "attachment_added",
            "cancel_rejected", "dispatch_requested", "rejected_command", "resolved", "review_added"} <= types, types
    rows = _ddb(world).query(TableName=world.stack.env["TIMELINE_TABLE"], KeyConditionExpression="incident_id = :i",
                             ExpressionAttributeValues={":i": {"S": incident["id"]}})["Items"]
    raw = str(rows)
    assert not PHONE.findall(raw), PHONE.findall(raw)
    for coordinate in ("37.77", "-122.41", "37.78123", "-122.41987", "37.79456", "-122.43789"):
        assert coordinate not in raw, coordinate
    for secret in secrets + ["oncall@example.com"]:
        assert secret not in raw, secret
    # ... and all of it is still there for reviewers while retained, from the rows that expire.
    shown = str(world.timeline(incident["id"]))
    assert callback in shown and first["phone"] in shown and secrets[1] in shown and "37.78123" in shown
