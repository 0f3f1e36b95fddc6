"""Acknowledging and resolving, by SMS reply and over the API: one winner, no spoofing, each delivery once."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3

from tests.conftest import new_phone, wait_for


def _setup(world, responders: int = 2, timeouts=(60,)):
    people = [world.responder(name=f"Resp {i}") for i in range(responders)]
    world.route_all_to(world.policy([people], list(timeouts)))
    return people


def _publish_inbound(world, phone: str, body: str, inbound_id: str | None = None, previous: str | None = None) -> str:
    """Publishes to the inbound-sms topic exactly as AWS End User Messaging would (not through the dev server)."""
    inbound_id = inbound_id or str(uuid.uuid4())
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=world.stack.aws_url)
    sns.publish(TopicArn=world.stack.env["INBOUND_SMS_TOPIC_ARN"], Message=json.dumps({
        "originationNumber": phone, "destinationNumber": "+18005550100", "messageKeyword": body.split()[0].upper(),
        "messageBody": body, "inboundMessageId": inbound_id, "previousPublishedMessageId": previous or "",
    }))
    return inbound_id


def test_fifty_concurrent_sms_acks_have_exactly_one_winner(world):
    people = _setup(world, responders=50)
    incident = world.open_panic()
    wait_for(lambda: len(world.sms.to(*[p["phone"] for p in people])) == 50, timeout=20, message="50 tier-1 pages")

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(lambda p: world.sms.reply(p["phone"], f"ACK {incident['code']}").status_code, people))
    assert statuses == [202] * 50

    current = world.incident(incident["id"])
    assert current["status"] == "acknowledged"
    winner = current["acknowledged_by"]
    events = world.timeline(incident["id"])
    acks = [e for e in events if e["type"] == "acknowledged"]
    assert len(acks) == 1 and acks[0]["actor"] == f"responder:{winner}"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    replies = {p["id"]: world.sms.to(p["phone"])[-1]["body"] for p in people}
    assert replies.pop(winner).startswith("You acknowledged")
    winner_name = current["acknowledged_by_name"]
    assert all(f"already acknowledged by {winner_name}" in body for body in replies.values()), replies


def test_api_ack_after_sms_ack_is_409_naming_the_winner(world):
    first, second = _setup(world)
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(first["phone"]), message="page")
    world.sms.reply(first["phone"], f"ACK {incident['code']}")

    response = second["api"].post(f"/v1/incidents/{incident['id']}/acknowledge")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "already_acknowledged" and error["acknowledged_by"] == first["id"]
    # The winner acknowledging again is harmless.
    assert first["api"].post(f"/v1/incidents/{incident['id']}/acknowledge").status_code == 200


def test_api_and_sms_acks_racing_have_one_winner(world):
    first, second = _setup(world)
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(first["phone"]), message="page")
    with ThreadPoolExecutor(max_workers=2) as pool:
        api_ack = pool.submit(second["api"].post, f"/v1/incidents/{incident['id']}/acknowledge")
        sms_ack = pool.submit(world.sms.reply, first["phone"], f"ACK {incident['code']}")
        api_status, _ = api_ack.result().status_code, sms_ack.result()
    current = world.incident(incident["id"])
    assert [e["type"] for e in world.timeline(incident["id"])].count("acknowledged") == 1
    assert (api_status == 200) == (current["acknowledged_by"] == second["id"])
    assert api_status in (200, 409)


def test_spoofed_number_changes_nothing_and_is_recorded(world):
    (responder,) = _setup(world, responders=1)
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(responder["phone"]), message="page")
    stranger = new_phone()

    world.sms.reply(stranger, f"ACK {incident['code']}")
    assert world.incident(incident["id"])["status"] == "triggered"
    rejected = [e for e in world.timeline(incident["id"]) if e["type"] == "rejected_command"]
    assert len(rejected) == 1
    assert rejected[0]["details"]["from"] != stranger and rejected[0]["details"]["from"].endswith(stranger[-2:])
    assert world.sms.to(stranger) == []  # strangers get no answer


def test_inactive_responder_cannot_act_and_is_paged_no_more(world):
    """Deactivated after the first page: their ACK changes nothing, the API refuses them, and the next round of the
    policy (repeat) and the EXHAUSTED page skip them, on the record."""
    responder, other = world.responder(), world.responder()
    world.route_all_to(world.policy([[responder], [other]], [1, 1], repeat=1))
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(responder["phone"]), message="page")
    assert world.admin.put(f"/v1/responders/{responder['id']}",
                           json={"name": "gone", "phone": responder["phone"], "active": False}).status_code == 200
    world.sms.reply(responder["phone"], f"ACK {incident['code']}")
    assert world.incident(incident["id"])["status"] == "triggered"
    assert responder["api"].post(f"/v1/incidents/{incident['id']}/acknowledge").status_code == 403
    wait_for(lambda: world.incident(incident["id"])["escalation"]["exhausted"], timeout=30, message="exhaustion")
    wait_for(lambda: any(m["body"].startswith("EXHAUSTED") for m in world.sms.to(other["phone"])), message="EXHAUSTED")
    assert len(world.sms.to(responder["phone"])) == 1  # the one page before the deactivation, nothing since
    skipped = [e["details"] for e in world.timeline(incident["id"]) if e["type"] == "page_skipped"]
    assert {(s["responder"], s["reason"]) for s in skipped} == {(responder["id"], "inactive")}
    assert len(skipped) == 2  # round 2's tier 1, and the EXHAUSTED page


def test_duplicate_inbound_delivery_is_processed_once(world):
    (responder,) = _setup(world, responders=1)
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(responder["phone"]), message="page")
    inbound_id = str(uuid.uuid4())
    for _ in range(3):
        _publish_inbound(world, responder["phone"], f"RES {incident['code']} all good", inbound_id=inbound_id)
    events = world.timeline(incident["id"])
    assert [e["type"] for e in events].count("sms_received") == 1
    assert [e["type"] for e in events].count("resolved") == 1
    assert len(world.sms.to(responder["phone"])) == 2  # the page and one confirmation


def test_reply_without_code_uses_the_page_it_answers_or_the_only_open_incident(world):
    (responder,) = _setup(world, responders=1)
    older = world.open_panic()
    newer = world.open_panic()
    pages = wait_for(lambda: len(world.sms.to(responder["phone"])) == 2 and world.sms.to(responder["phone"]),
                     message="two pages")
    # Two open incidents, bare ACK: the service asks which one.
    world.sms.reply(responder["phone"], "ACK")
    assert "Several open" in world.sms.to(responder["phone"])[-1]["body"]
    # A reply that carries previousPublishedMessageId answers that page.
    page_for_older = next(m for m in pages if older["reference"] in m["body"])
    _publish_inbound(world, responder["phone"], "A", previous=page_for_older["message_id"])
    assert world.incident(older["id"])["status"] == "acknowledged"
    assert world.incident(newer["id"])["status"] == "triggered"
    # Now only one is waiting for an ACK: a bare ACK means it.
    world.sms.reply(responder["phone"], "ack")
    assert world.incident(newer["id"])["status"] == "acknowledged"


def test_out_of_order_delivery_resolve_before_ack(world):
    (responder,) = _setup(world, responders=1)
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(responder["phone"]), message="page")
    _publish_inbound(world, responder["phone"], f"RES {incident['code']} handled on site")
    _publish_inbound(world, responder["phone"], f"ACK {incident['code']}")  # sent first, delivered last
    current = world.incident(incident["id"])
    assert current["status"] == "resolved" and current["outcome"] == "other"
    types = [e["type"] for e in world.timeline(incident["id"])]
    assert types.count("acknowledged") == 1 and types.index("acknowledged") < types.index("resolved")
    assert "resolved" in world.sms.to(responder["phone"])[-1]["body"].lower()


def test_resolve_over_api_with_outcome(world):
    (responder,) = _setup(world, responders=1)
    incident = world.open_panic()
    response = responder["api"].post(f"/v1/incidents/{incident['id']}/resolve",
                                     json={"outcome": "police_dispatched", "note": "unit 12"})
    assert response.status_code == 200, response.text
    resolved = response.json()["incident"]
    assert resolved["status"] == "resolved" and resolved["outcome"] == "police_dispatched"
    assert resolved["acknowledged_by"] == responder["id"]
    bad = responder["api"].post(f"/v1/incidents/{incident['id']}/resolve", json={"outcome": "vanished"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "outcome"
    again = responder["api"].post(f"/v1/incidents/{incident['id']}/resolve", json={"outcome": "assisted"})
    assert again.status_code == 409


def test_help_and_unknown_text_get_the_command_list(world):
    (responder,) = _setup(world, responders=1)
    world.sms.reply(responder["phone"], "what is this?")
    assert world.sms.to(responder["phone"])[-1]["body"].startswith("Commands:")


def test_stop_opts_the_responder_out_flags_open_incidents_and_pages_stop(world):
    responder, other = world.responder(), world.responder()
    world.route_all_to(world.policy([[responder], [other]], [1, 1]))
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(responder["phone"]), message="page")
    world.sms.reply(responder["phone"], "STOP")
    assert world.admin.get(f"/v1/responders/{responder['id']}").json()["responder"]["opted_out"] is True
    assert "responder_opted_out" in [e["type"] for e in world.timeline(incident["id"])]
    wait_for(lambda: world.incident(incident["id"])["escalation"]["exhausted"], timeout=30, message="exhaustion")
    wait_for(lambda: any(m["body"].startswith("EXHAUSTED") for m in world.sms.to(other["phone"])), message="EXHAUSTED")
    # The page, then the STOP confirmation: no EXHAUSTED page (nor anything else) after the STOP.
    bodies = [m["body"] for m in world.sms.to(responder["phone"])]
    assert len(bodies) == 2 and bodies[0].startswith("EMERGENCY") and bodies[1].startswith("You are unsubscribed")
    skipped = [e["details"] for e in world.timeline(incident["id"]) if e["type"] == "page_skipped"]
    assert [(s["responder"], s["reason"]) for s in skipped] == [(responder["id"], "opted_out")]
    world.sms.reply(responder["phone"], "START")
    assert world.admin.get(f"/v1/responders/{responder['id']}").json()["responder"]["opted_out"] is False


def test_reply_cap_stops_help_loops_but_never_swallows_a_confirmation(world):
    """Two automated systems texting each other must stop (HELP, unknown text and refusals: 5 answers per 10
    minutes), but an action is always confirmed: six commands on three incidents get six confirmations even after
    the cap is reached."""
    (responder,) = _setup(world, responders=1)
    for _ in range(8):
        world.sms.reply(responder["phone"], "HELP")
    assert len(world.sms.to(responder["phone"])) == 5  # default cap: 5 answers per 10 minutes
    incidents = [world.open_panic() for _ in range(3)]
    wait_for(lambda: len(world.sms.to(responder["phone"])) == 8, message="three pages")
    for incident in incidents:
        world.sms.reply(responder["phone"], f"ACK {incident['code']}")
        world.sms.reply(responder["phone"], f"RES {incident['code']} fine")
    # Pages travel through the queue, apart from the answers: one may land between them (seen on a loaded run).
    answers = [m["body"] for m in world.sms.to(responder["phone"])[5:] if not m["body"].startswith("EMERGENCY")]
    assert [a.split()[0] for a in answers] == ["You", "Resolved"] * 3, answers


def test_shopper_is_told_help_is_coming(world):
    (responder,) = _setup(world, responders=1)
    shopper_phone = new_phone()
    incident = world.open_panic(callback_phone=shopper_phone)
    wait_for(lambda: world.sms.to(responder["phone"]), message="page")
    world.sms.reply(responder["phone"], f"ACK {incident['code']}")
    notice = wait_for(lambda: world.sms.to(shopper_phone), message="shopper notice")
    assert notice[0]["body"].startswith("Help is coming") and incident["reference"] in notice[0]["body"]
    time.sleep(0.5)
    assert len(world.sms.to(shopper_phone)) == 1


def test_malformed_inbound_messages_are_dropped_without_breaking_later_ones(world):
    (responder,) = _setup(world, responders=1)
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(responder["phone"]), message="page")
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=world.stack.aws_url)
    topic = world.stack.env["INBOUND_SMS_TOPIC_ARN"]
    for junk in ("not json", json.dumps({"originationNumber": responder["phone"]}), json.dumps([1, 2]), "{}"):
        sns.publish(TopicArn=topic, Message=junk)
    assert world.incident(incident["id"])["status"] == "triggered"
    _publish_inbound(world, responder["phone"], f"ACK {incident['code']}")
    assert world.incident(incident["id"])["status"] == "acknowledged"
