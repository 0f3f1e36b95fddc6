"""Reviewers: timeline integrity, listing, metrics, report, export, findings."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from tests.conftest import wait_for


@pytest.fixture()
def routed(world):
    responder = world.responder(name="Rita Review")
    world.route_all_to(world.policy([[responder]], [60]))
    return responder


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def test_timeline_seq_is_gapless_under_concurrent_writers(world, routed):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(
            lambda n: shopper.post(f"/v1/incidents/{incident['id']}/notes", json={"text": f"note {n}"}).status_code,
            range(20)))
    assert statuses == [201] * 20
    events = world.timeline(incident["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert sorted(e["details"]["text"] for e in events if e["type"] == "note_added") == sorted(f"note {n}" for n in range(20))
    verified = world.reviewer.get(f"/v1/incidents/{incident['id']}/timeline?verify=true").json()["verification"]
    # The tier-1 page may be recorded between the two reads: at least the events read before.
    assert verified["intact"] is True and verified["events"] >= len(events), verified


def test_a_tampered_event_is_detected(world, routed):
    incident = world.open_panic()
    routed["api"].post(f"/v1/incidents/{incident['id']}/acknowledge")
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=world.stack.aws_url)
    events = world.timeline(incident["id"])
    target = next(e for e in events if e["type"] == "acknowledged")
    # Someone with table access rewrites who acknowledged: the chain no longer matches from that event on.
    ddb.update_item(
        TableName=world.stack.env["TIMELINE_TABLE"], Key={"incident_id": {"S": incident["id"]}, "seq": {"N": str(target["seq"])}},
        UpdateExpression="SET actor = :a", ExpressionAttributeValues={":a": {"S": "responder:someone-else"}},
    )
    verification = world.reviewer.get(f"/v1/incidents/{incident['id']}/timeline?verify=true").json()["verification"]
    assert {k: verification[k] for k in ("intact", "first_bad_seq", "events")} == {
        "intact": False, "first_bad_seq": target["seq"], "events": len(events)}
    report = world.reviewer.get(f"/v1/incidents/{incident['id']}/report").json()["report"]
    assert report["timeline_intact"] is False


def test_listing_pages_newest_first_without_gaps_or_repeats(world, routed):
    shopper = world.as_("shopper")
    # Harassment reports: a second panic by the same shopper would join her open one (contract 4.2).
    opened = [shopper.post("/v1/incidents", json={"kind": "harassment"}).json()["incident"]["id"] for _ in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = shopper.get("/v1/incidents", params=params).json()
        seen += [i["id"] for i in page["incidents"]]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == list(reversed(opened)) and pages == 3
    assert shopper.get("/v1/incidents", params={"cursor": "garbage"}).status_code == 422
    assert shopper.get("/v1/incidents", params={"limit": "0"}).status_code == 422


def test_listing_filters_by_status_and_kind_for_reviewers(world, routed):
    since = _now()
    panic = world.open_panic()
    fraud = world.as_("shopper").post("/v1/incidents", json={"kind": "fraud"}).json()["incident"]
    routed["api"].post(f"/v1/incidents/{panic['id']}/acknowledge")
    listed = world.reviewer.get("/v1/incidents", params={"since": since, "status": "acknowledged"}).json()["incidents"]
    assert [i["id"] for i in listed] == [panic["id"]]
    listed = world.reviewer.get("/v1/incidents", params={"since": since, "kind": "fraud"}).json()["incidents"]
    assert [i["id"] for i in listed] == [fraud["id"]]
    assert world.as_("responder").get("/v1/review/metrics").status_code == 403


def test_metrics_count_a_known_set_of_incidents(world, routed):
    since = _now()
    a, b, c = world.open_panic(), world.open_panic(), world.open_panic()
    world.as_("shopper").post("/v1/incidents", json={"kind": "delivery_issue"})
    routed["api"].post(f"/v1/incidents/{a['id']}/acknowledge")
    routed["api"].post(f"/v1/incidents/{a['id']}/resolve", json={"outcome": "assisted"})
    routed["api"].post(f"/v1/incidents/{b['id']}/resolve", json={"outcome": "false_alarm"})
    wait_for(lambda: world.incident(c["id"])["escalation"]["tier"] == 1, message="c paged")
    until = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    metrics = world.reviewer.get("/v1/review/metrics", params={"since": since, "until": until}).json()["metrics"]
    assert metrics["incidents"] == 4
    assert metrics["by_kind"] == {"delivery_issue": 1, "panic": 3}
    assert metrics["by_status"] == {"resolved": 2, "routed": 1, "triggered": 1}
    assert metrics["by_outcome"] == {"assisted": 1, "false_alarm": 1}
    assert metrics["time_to_acknowledge_s"]["count"] == 2 and metrics["time_to_resolve_s"]["count"] == 2
    assert 0 <= metrics["time_to_acknowledge_s"]["p50"] <= metrics["time_to_acknowledge_s"]["max"] < 30
    assert metrics["acknowledgements_by_responder"] == {routed["id"]: 2}


def test_report_export_and_findings(world, routed):
    since = _now()
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(routed["phone"]), message="page")
    world.sms.reply(routed["phone"], f"ACK {incident['code']}")
    path = f"/v1/incidents/{incident['id']}"
    assert world.reviewer.post(f"{path}/review", json={"findings": "early"}).status_code == 409  # still open
    routed["api"].post(f"{path}/notes", json={"text": "spoke to shopper"})
    routed["api"].post(f"{path}/resolve", json={"outcome": "assisted"})

    report = world.reviewer.get(f"{path}/report").json()["report"]
    assert report["outcome"] == "assisted" and report["acknowledged_by"] == routed["id"]
    assert report["tiers_paged"] == [1] and report["paged"][0]["to"] == routed["phone"]
    assert report["durations"]["time_to_first_page_s"] <= report["durations"]["time_to_acknowledge_s"]
    assert report["notes"][0]["text"] == "spoke to shopper" and report["timeline_intact"] is True

    review = world.reviewer.post(f"{path}/review", json={"findings": "fast ack", "follow_up_actions": ["none"]})
    assert review.status_code == 201
    assert world.timeline(incident["id"])[-1]["type"] == "review_added"
    assert world.as_("responder").post(f"{path}/review", json={"findings": "x"}).status_code == 403

    exported = world.reviewer.get("/v1/review/export", params={"since": since})
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    row = next(r for r in rows if r["id"] == incident["id"])
    assert row["reference"] == incident["reference"] and row["outcome"] == "assisted"
    assert float(row["time_to_acknowledge_s"]) <= float(row["time_to_resolve_s"])


def test_review_page_is_served(world):
    import requests

    page = requests.get(f"{world.stack.api_url}/review", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'data-testid="timeline-axis"' in page.text


def test_personal_data_expires_by_ttl_while_the_skeleton_and_chain_stay(world, routed):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper, description="man following me", callback_phone="+15550001111")
    shopper.post(f"/v1/incidents/{incident['id']}/locations", json={"lat": 37.8, "lng": -122.5})
    shopper.post(f"/v1/incidents/{incident['id']}/notes", json={"text": "near the gate"})
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=world.stack.aws_url)
    table = world.stack.env["LOOKUPS_TABLE"]
    rows = [r for r in ddb.scan(TableName=table)["Items"] if r["key"]["S"].startswith(f"personal#{incident['id']}")]
    # The incident's own, the location update's, the note's, and each page's number.
    assert len(rows) >= 3
    for row in rows:
        expires = datetime.fromtimestamp(int(row["expires_at"]["N"]), timezone.utc)
        assert abs((expires - datetime.now(timezone.utc)) - timedelta(days=180)) < timedelta(minutes=5)
    # Nothing personal in the timeline items themselves.
    stored = ddb.query(TableName=world.stack.env["TIMELINE_TABLE"], KeyConditionExpression="incident_id = :i",
                       ExpressionAttributeValues={":i": {"S": incident["id"]}})["Items"]
    assert "near the gate" not in str(stored) and "-122.5" not in str(stored)
    # Found by type, not position: a page of the incident may be recorded after the note.
    note = next(e for e in world.timeline(incident["id"]) if e["type"] == "note_added")
    assert note["details"]["text"] == "near the gate"

    # What DynamoDB's TTL does after 180 days (moto does not run TTL): the rows go.
    for row in rows:
        ddb.delete_item(TableName=table, Key={"key": row["key"]})
    events = world.timeline(incident["id"])
    assert [e["type"] for e in events][:1] == ["created"] and len(events) >= 3
    location_event = next(e for e in events if e["type"] == "location_updated")
    assert location_event["details"] == {"expired": True} and location_event["actor"] == f"shopper:{shopper.sub}"
    shown = world.reviewer.get(f"/v1/incidents/{incident['id']}").json()["incident"]
    assert "location" not in shown and "description" not in shown and shown["reference"] == incident["reference"]
    assert world.reviewer.get(f"/v1/incidents/{incident['id']}/timeline?verify=true").json()["verification"]["intact"]


def test_reviewer_reads_are_linear_in_what_they_return(world, routed):
    """A list page reads about what it returns (plus one small page per index shard), whatever the range holds; a
    60-day range costs a bounded number of queries."""
    from tests.reliability.faults import service_clients

    since = _now()
    shopper = world.as_("shopper")
    for _ in range(30):
        shopper.post("/v1/incidents", json={"kind": "fraud"})
    reads = {"queries": 0, "items": 0}

    def count(parsed, **_):
        reads["queries"] += 1
        reads["items"] += int(parsed.get("Count", 0) or 0)

    clients = service_clients("dynamodb")
    for client in clients:
        client.meta.events.register("after-call.dynamodb.Query", count, unique_id="linear-reads")
    try:
        page = world.reviewer.get("/v1/incidents", params={"since": since, "limit": 5}).json()
        assert len(page["incidents"]) == 5 and page["next_cursor"]
        assert reads["items"] <= 5 + 4 * 5, reads  # the page, plus at most one small page per shard
        first = dict(reads)
        reads.update(queries=0, items=0)
        world.reviewer.get("/v1/incidents", params={"limit": 5, "cursor": page["next_cursor"], "since": since})
        assert reads["items"] <= first["items"] + 5, reads
        reads.update(queries=0, items=0)
        wide = world.reviewer.get("/v1/incidents", params={"since": (datetime.now(timezone.utc) - timedelta(days=59)).isoformat()})
        assert wide.status_code == 200 and reads["queries"] <= 3 * 4 + 4, reads  # months x shards, a few pages
    finally:
        for client in clients:
            client.meta.events.unregister("after-call.dynamodb.Query", unique_id="linear-reads")
