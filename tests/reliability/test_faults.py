"""Fault injection: DynamoDB throttling and 5xx on the write, SNS publish failures, StartExecution failures, slow
dependencies. For each, the shopper either gets a success whose incident is fully escalated, or a retryable 5xx with
nothing half-done that a retry with the same Idempotency-Key completes; pages that fail are recorded (`page_failed`)
and retried, never silently dropped.

Faults are botocore `before-send` hooks on the service's own clients (see faults.py): no production code is touched,
and botocore's retry policy (standard mode: 4 attempts for PynamoDB, 5 for the boto3 clients, exponential backoff with
jitter) sees them as it would see AWS's errors."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import unique, wait_for
from tests.reliability.conftest import PANIC, assert_timeline_sound, emergency_pages, executions, types


def _mentions(text: str):
    """A rule matcher: the request's parameters mention `text` (an owner id, a phone number, a note)."""
    return lambda params: text in json.dumps(params)


@pytest.fixture()
def tier1(world):
    """Two tier-1 responders on a policy of its own; tier 1 waits 60 s, so only tier 1 is paged during a test."""
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first, second]], [60]))
    return first, second


def _open(shopper, key: str | None):
    headers = {"Idempotency-Key": key} if key else {}
    return shopper.post("/v1/incidents", json=PANIC, headers=headers)


def _assert_fully_escalated(world, incident: dict, responders) -> list[dict]:
    """One execution named after the incident, each tier-1 responder paged exactly once, and the record says so."""
    phones = [r["phone"] for r in responders]
    wait_for(lambda: all(emergency_pages(world.sms.to(p), incident["reference"]) for p in phones), timeout=20,
             message="every tier-1 page")
    # The `paged` event is appended just after its SMS is accepted: wait for the record too.
    wait_for(lambda: {e["details"]["to"] for e in world.timeline(incident["id"]) if e["type"] == "paged"} >= set(phones),
             timeout=10, message="a paged event per page")
    assert len(executions(world, incident["id"])) == 1
    for phone in phones:
        assert len(emergency_pages(world.sms.to(phone), incident["reference"])) == 1, phone
    events = assert_timeline_sound(world, incident["id"])
    assert types(events).count("created") == 1
    paged = sorted(e["details"]["to"] for e in events if e["type"] == "paged")
    assert paged == sorted(phones)
    return events


def _shoppers_incidents(shopper) -> list[dict]:
    response = shopper.get("/v1/incidents")
    assert response.status_code == 200, response.text
    return response.json()["incidents"]


# --- DynamoDB: throttling and 5xx on the incident write --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["throttle", "5xx"])
def test_transient_dynamodb_faults_on_the_create_are_retried_and_the_incident_is_escalated(world, faults, tier1, kind):
    shopper = world.as_("shopper")
    rule = faults.add("dynamodb", "TransactWriteItems", kind, times=2, match=_mentions(shopper.sub))

    response = _open(shopper, unique("key"))

    assert response.status_code == 201, response.text
    assert rule.count == 2, "both injected faults were hit and retried by botocore"
    _assert_fully_escalated(world, response.json()["incident"], tier1)


def _write(world, which: str, shopper):
    """The two writes of an open: the idempotency record (boto3, PowerTools) and the incident transaction (PynamoDB)."""
    if which == "incident":
        return "TransactWriteItems", _mentions(shopper.sub)
    table = world.stack.env["IDEMPOTENCY_TABLE"]
    return "PutItem", lambda params: params.get("TableName") == table


@pytest.mark.parametrize("which, kind", [("incident", "throttle"), ("incident", "5xx")])
def test_dynamodb_outage_on_the_create_fails_cleanly_and_the_same_key_completes_later(world, faults, tier1, kind, which):
    shopper = world.as_("shopper")
    key = unique("key")
    before = len(executions(world))
    operation, match = _write(world, which, shopper)
    rule = faults.add("dynamodb", operation, kind, match=match)

    failed = _open(shopper, key)

    faults.remove(rule)
    assert failed.status_code >= 500, failed.text
    assert set(failed.json()["error"]) >= {"code", "message"}
    if which == "incident":  # the contract's retryable answer
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "unavailable", failed.text
    assert rule.count >= 2, "botocore retried (standard mode) before giving up"
    # Nothing half-done: no incident, no execution, nobody paged.
    assert _shoppers_incidents(shopper) == []
    assert len(executions(world)) == before
    time.sleep(1)
    assert world.sms.to(*[r["phone"] for r in tier1]) == []

    retried = _open(shopper, key)

    assert retried.status_code == 201, retried.text
    incident = retried.json()["incident"]
    assert [i["id"] for i in _shoppers_incidents(shopper)] == [incident["id"]]
    _assert_fully_escalated(world, incident, tier1)


def test_create_that_commits_but_answers_5xx_is_not_duplicated(world, faults, tier1):
    """The ambiguous failure: DynamoDB applied the transaction but the answer was lost. botocore retries it; the
    retry finds the incident already stored and carries on with it."""
    shopper = world.as_("shopper")
    rule = faults.add("dynamodb", "TransactWriteItems", "commit_then_5xx", times=1, match=_mentions(shopper.sub))

    response = _open(shopper, unique("key"))

    assert rule.count == 1
    assert response.status_code == 201, response.text
    assert len(_shoppers_incidents(shopper)) == 1
    _assert_fully_escalated(world, response.json()["incident"], tier1)


def test_event_write_that_commits_but_answers_5xx_is_recorded_once(world, faults, tier1):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    text = unique("note")
    rule = faults.add("dynamodb", "TransactWriteItems", "commit_then_5xx", times=1, match=_mentions(text))

    response = shopper.post(f"/v1/incidents/{incident['id']}/notes", json={"text": text})

    assert rule.count == 1
    assert response.status_code == 201, response.text
    notes = [e for e in assert_timeline_sound(world, incident["id"]) if e["type"] == "note_added"]
    assert [n["details"]["text"] for n in notes] == [text]


# --- Step Functions: StartExecution failures -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["throttle", "5xx"])
def test_transient_start_execution_failures_are_retried(world, faults, tier1, kind):
    shopper = world.as_("shopper")
    rule = faults.add("sfn", "StartExecution", kind, times=2)

    response = _open(shopper, unique("key"))

    assert response.status_code == 201, response.text
    assert rule.count == 2
    _assert_fully_escalated(world, response.json()["incident"], tier1)


def test_start_execution_outage_is_deferred_to_the_queue_and_a_same_key_retry_changes_nothing(world, faults, tier1):
    """Step Functions down: the press is still accepted (201, reference number) and the start waits on the jobs queue
    until Step Functions answers; a retry with the same key returns the same incident, and one execution runs."""
    shopper = world.as_("shopper")
    key = unique("key")
    rule = faults.add("sfn", "StartExecution", "5xx")

    accepted = _open(shopper, key)

    assert accepted.status_code == 201, accepted.text
    assert rule.count >= 2, "botocore retried before deferring"
    faults.remove(rule)

    retried = _open(shopper, key)

    assert retried.status_code == 201
    assert (retried.json()["incident"]["id"], retried.json()["incident"]["reference"]) == (
        accepted.json()["incident"]["id"], accepted.json()["incident"]["reference"])
    incident = retried.json()["incident"]
    assert len(_shoppers_incidents(shopper)) == 1
    _assert_fully_escalated(world, incident, tier1)


def test_start_execution_outage_leaves_nothing_half_done(world, faults, tier1):
    shopper = world.as_("shopper")
    rule = faults.add("sfn", "StartExecution", "5xx")
    failed = _open(shopper, unique("key"))
    faults.remove(rule)

    # Either nothing was stored, or what was stored is escalated without any retry from the client (a shopper whose
    # phone died after pressing the button never retries).
    stored = _shoppers_incidents(shopper)
    if stored:
        (incident,) = stored
        wait_for(lambda: emergency_pages(world.sms.to(tier1[0]["phone"]), incident["reference"]), timeout=15,
                 message=f"the stored {incident['status']} incident to be paged without a client retry")
    # The answer is truthful: 201 when the incident was accepted (its escalation then starts from the page queue, as
    # checked above), or the contract's retryable 503 when nothing was stored; never a 500 "internal error".
    if stored:
        assert failed.status_code == 201, failed.text
    else:
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "unavailable", failed.text


# --- SNS: publish failures -------------------------------------------------------------------------------------------
def test_failed_pages_are_recorded_never_retried_by_botocore_and_delivered_once(world, faults, tier1):
    """A publish answered with a 5xx may or may not have left: botocore must not retry it (a silent retry is a
    second SMS with one `paged` on the record). Each failure is recorded (`sent: unknown`), the page request is
    delivered again after a backoff, and the page goes out once SNS answers."""
    failing, healthy = tier1
    rule = faults.add("sns", "Publish", "5xx", match=lambda params: params.get("PhoneNumber") == failing["phone"])
    incident = world.open_panic()

    def failures():
        return [e for e in world.timeline(incident["id"]) if e["type"] == "page_failed"]

    wait_for(lambda: len(failures()) >= 2, timeout=30, message="two recorded page failures")
    faults.remove(rule)
    events = _assert_fully_escalated(world, incident, tier1)

    failed = [e for e in events if e["type"] == "page_failed"]
    assert {e["details"]["to"] for e in failed} == {failing["phone"]}
    assert all(e["details"]["tier"] == 1 and e["details"]["responder"] == failing["id"] for e in failed)
    assert all(e["details"]["sent"] == "unknown" for e in failed)
    page_seq = next(e["seq"] for e in events if e["type"] == "paged" and e["details"]["to"] == failing["phone"])
    assert all(e["seq"] < page_seq for e in failed)
    assert rule.count == len(failed), "one publish per recorded failure: botocore never retried one"
    # Backoff, not a hot loop: the page request is made visible again after a delay, growing with each delivery.
    times = [_seconds(e["at"]) for e in failed]
    assert all(later - earlier >= 0.9 for earlier, later in zip(times, times[1:])), times
    # The healthy responder of the same tier was paged once, not again on each redelivery.
    assert len(world.sms.to(healthy["phone"])) == 1


def test_a_publish_that_lands_but_answers_5xx_is_recorded_and_its_retry_is_on_the_record(world, faults, tier1):
    """SNS accepts the SMS and the answer is lost: the responder has it, the service cannot know. Without botocore's
    retry the service records `page_failed` (sent: unknown) and its own retry sends it again: two SMS, two entries on
    the record (page_failed, then paged), never a second SMS the timeline does not show."""
    failing, _healthy = tier1
    rule = faults.add("sns", "Publish", "commit_then_5xx", times=1,
                      match=lambda params: params.get("PhoneNumber") == failing["phone"])
    incident = world.open_panic()
    wait_for(lambda: any(e["type"] == "paged" and e["details"]["to"] == failing["phone"]
                         for e in world.timeline(incident["id"])), timeout=30, message="the retried page")
    events = assert_timeline_sound(world, incident["id"])
    mine = [e for e in events if e["details"].get("to") == failing["phone"] and e["type"] in ("paged", "page_failed")]
    assert [e["type"] for e in mine] == ["page_failed", "paged"] and mine[0]["details"]["sent"] == "unknown"
    assert rule.count == 1
    assert len(emergency_pages(world.sms.to(failing["phone"]), incident["reference"])) == 2


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- slow dependencies -----------------------------------------------------------------------------------------------
def test_slow_dependencies_still_answer_and_escalate(world, faults, tier1):
    shopper = world.as_("shopper")
    faults.add("dynamodb", None, "delay", delay_s=0.1)
    faults.add("sfn", "StartExecution", "delay", delay_s=1.0)
    faults.add("sns", "Publish", "delay", delay_s=1.0)

    started = time.monotonic()
    response = _open(shopper, unique("key"))
    elapsed = time.monotonic() - started

    assert response.status_code == 201, response.text
    assert elapsed < 10, f"open took {elapsed:.1f}s with slow dependencies"
    _assert_fully_escalated(world, response.json()["incident"], tier1)


# --- SQS: the page outbox --------------------------------------------------------------------------------------------
def test_cancellation_notices_survive_a_page_queue_failure(world, faults, tier1):
    shopper = world.as_("shopper")
    incident = world.open_panic(shopper)
    wait_for(lambda: all(world.sms.to(r["phone"]) for r in tier1), message="tier-1 pages")
    rule = faults.add("sqs", "SendMessage", "5xx")
    first = shopper.post(f"/v1/incidents/{incident['id']}/cancel", json={"reason": "mistap"})
    faults.remove(rule)
    if first.status_code >= 500:  # what a client does with a 5xx: retry
        retry = shopper.post(f"/v1/incidents/{incident['id']}/cancel", json={"reason": "mistap"})
        assert retry.status_code in (200, 409), retry.text
    assert world.incident(incident["id"])["status"] == "cancelled"
    wait_for(lambda: all(any("cancel" in m["body"].lower() for m in world.sms.to(r["phone"])) for r in tier1),
             timeout=10, message="cancellation notices to the responders already paged")


def test_a_page_that_keeps_failing_is_given_up_after_three_deliveries_and_escalation_goes_on(world, faults):
    """SNS refuses one responder's page every time (a non-retryable error): each delivery of the page request records
    `page_failed`; after three the sender gives up on that number (one bad phone must not hold the tier's timer
    forever). Nobody in tier 1 was reached, so its hour-long timeout is not waited out: tier 2 is paged at once."""
    refused, tier2 = world.responder(), world.responder()
    world.route_all_to(world.policy([[refused], [tier2]], [3600, 3600]))
    rule = faults.add("sns", "Publish", "reject", match=lambda params: params.get("PhoneNumber") == refused["phone"])
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(tier2["phone"]), timeout=60, interval=0.5, message="tier 2 after tier 1 gave up")
    faults.remove(rule)
    events = assert_timeline_sound(world, incident["id"])
    failed = [e for e in events if e["type"] == "page_failed"]
    assert len(failed) == 3 == rule.count, (len(failed), rule.count)
    assert all(e["details"]["error"] and e["details"]["to"] == refused["phone"] for e in failed)
    assert world.sms.to(refused["phone"]) == []
    escalated = next(e for e in events if e["type"] == "escalated")
    assert escalated["details"]["tier"] == 2 and escalated["seq"] > failed[-1]["seq"]
