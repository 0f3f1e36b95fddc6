"""Races around the end of escalation. (50 concurrent ACKs and 20 concurrent duplicate submissions are covered by
tests/integration; not repeated here.)

GoAlert-style: each test owns its responders' phone numbers, collects every SMS sent to them and fails on anything it
did not expect, in particular any page that left after the acknowledgement (or cancellation) was committed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import wait_for
from tests.reliability.conftest import assert_timeline_sound, emergency_pages, types


def _first(events: list[dict], event_type: str) -> dict | None:
    return next((e for e in events if e["type"] == event_type), None)


def test_ack_racing_the_tier_timeout_never_pages_after_the_ack(world, faults):
    """Tier 1 times out after 1 s; tier 1 acknowledges around that moment (from well before to well after, across
    several incidents), while SMS to tier 2 are slowed so the sender holds its paging lease longer. Whatever the
    interleaving, tier 2 is paged only if its page was committed before the acknowledgement, never after."""
    first, second = world.responder(), world.responder()
    world.route_all_to(world.policy([[first], [second]], [1, 60]))
    faults.add("sns", "Publish", "delay", delay_s=0.4, match=lambda params: params.get("PhoneNumber") == second["phone"])
    # Seconds after the 1 s tier timeout; the last ones surely reach tier 2, so the race is really exercised.
    offsets = [-0.4, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.4, 3.0, 4.0]
    incidents, acks, threads = [], {}, []

    def ack_at(incident: dict, due: float) -> None:
        time.sleep(max(0.0, due - time.monotonic()))
        acks[incident["id"]] = first["api"].post(f"/v1/incidents/{incident['id']}/acknowledge").status_code

    for offset in offsets:
        opened = time.monotonic()
        incident = world.open_panic()
        incidents.append(incident)
        thread = threading.Thread(target=ack_at, args=(incident, opened + 1.0 + offset))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=30)
    assert acks == {i["id"]: 200 for i in incidents}
    time.sleep(2.5)  # anything still in flight would have been sent by now

    counted = {first["id"]: 0, second["id"]: 0}
    for incident in incidents:
        events = assert_timeline_sound(world, incident["id"])
        ack = _first(events, "acknowledged")
        assert ack is not None and types(events).count("acknowledged") == 1
        late = [e for e in events if e["type"] in ("paged", "escalated", "page_failed") and e["seq"] > ack["seq"]]
        assert late == [], f"{incident['reference']}: {late} after the ack"
        for responder in (first, second):
            paged = [e for e in events if e["type"] == "paged" and e["details"]["to"] == responder["phone"]]
            sms = emergency_pages(world.sms.to(responder["phone"]), incident["reference"])
            # An ACK may even beat the tier-1 page (the API accepts it from a covered responder): then nothing is sent.
            assert len(sms) == len(paged) <= 1, (incident["reference"], responder["phone"], sms, events)
            counted[responder["id"]] += len(paged)
        assert world.incident(incident["id"])["status"] == "acknowledged"
    # Every SMS the two phones got is one of the pages accounted for above: nothing unexpected, nothing late.
    assert len(world.sms.to(first["phone"])) == counted[first["id"]]
    assert len(world.sms.to(second["phone"])) == counted[second["id"]]
    print(f"\nof {len(incidents)} incidents, {counted[first['id']]} paged tier 1 and {counted[second['id']]} reached "
          "tier 2 before their ack")
    assert counted[second["id"]] >= 1, "no incident reached tier 2: the race with the tier timeout never happened"


def test_ack_during_a_slow_page_send_waits_for_the_lease_and_nothing_follows_it(world, faults):
    """The sender holds the paging lease while a slow SMS goes out; an ACK arriving during that publish waits for
    the lease, commits after the page is recorded, and nothing is sent after it. (The lease is taken per SMS: an ACK
    landing between two SMS of a tier commits at once and the rest of the tier is not sent; that is the other half
    of the guarantee, covered in tests/services.)"""
    fast, slow, tier2 = world.responder(), world.responder(), world.responder()
    world.route_all_to(world.policy([[fast, slow], [tier2]], [60, 60]))
    rule = faults.add("sns", "Publish", "delay", delay_s=2.0,
                      match=lambda params: params.get("PhoneNumber") == slow["phone"])
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(fast["phone"]), message="the fast page")
    wait_for(lambda: rule.count >= 1, message="the slow publish under way (its lease taken)")

    started = time.monotonic()
    response = fast["api"].post(f"/v1/incidents/{incident['id']}/acknowledge")
    waited = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert len(emergency_pages(world.sms.to(slow["phone"]), incident["reference"])) == 1, "sent under the lease"
    assert waited > 0.5, f"the ack did not wait for the lease ({waited:.2f}s)"
    time.sleep(1)
    events = assert_timeline_sound(world, incident["id"])
    ack = _first(events, "acknowledged")
    assert sorted(e["details"]["to"] for e in events if e["type"] == "paged") == sorted([fast["phone"], slow["phone"]])
    assert all(e["seq"] < ack["seq"] for e in events if e["type"] == "paged")
    assert world.sms.to(tier2["phone"]) == []
    assert len(world.sms.to(fast["phone"])) == 1 and len(world.sms.to(slow["phone"])) == 1


def test_cancel_racing_ack_has_a_consistent_outcome(world):
    """The shopper cancels while the paged responder acknowledges (over the API and by SMS). Either order is allowed
    (an acknowledged incident may still be cancelled), but the outcome is consistent: cancel always wins the final
    status, the ACK succeeded exactly when the record shows it before the cancellation, the responder is told once,
    and no page follows."""
    responder, tier2 = world.responder(), world.responder()
    world.route_all_to(world.policy([[responder], [tier2]], [60, 60]))
    shopper = world.as_("shopper")
    outcomes = []
    for round_ in range(6):
        incident = world.open_panic(shopper)
        wait_for(lambda: emergency_pages(world.sms.to(responder["phone"]), incident["reference"]), message="page")
        by_sms = round_ % 2 == 1
        path = f"/v1/incidents/{incident['id']}"
        barrier = threading.Barrier(2, timeout=10)

        def cancel():
            barrier.wait()
            time.sleep((0.0, 0.0, 0.06, 0.06, 0.15, 0.15)[round_])  # so both orders happen, whichever path is faster
            return shopper.post(f"{path}/cancel", json={"reason": "race"}).status_code

        def ack():
            barrier.wait()
            if by_sms:
                return world.sms.reply(responder["phone"], f"ACK {incident['code']}").status_code
            return responder["api"].post(f"{path}/acknowledge").status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            cancel_future, ack_future = pool.submit(cancel), pool.submit(ack)
            cancelled, acked = cancel_future.result(timeout=30), ack_future.result(timeout=30)
        assert cancelled == 200
        assert acked in ((202,) if by_sms else (200, 409))
        assert world.incident(incident["id"])["status"] == "cancelled"

        notice = wait_for(lambda: [m for m in world.sms.to(responder["phone"])
                                   if m["body"].startswith(f"{incident['reference']} was cancelled")],
                          message="the cancellation notice")
        events = assert_timeline_sound(world, incident["id"])
        cancelled_event, ack_event = _first(events, "cancelled"), _first(events, "acknowledged")
        assert types(events).count("cancelled") == 1 and types(events).count("acknowledged") <= 1
        if ack_event is not None:
            assert ack_event["seq"] < cancelled_event["seq"]
            assert cancelled_event["details"]["previous_status"] == "acknowledged"
        if not by_sms:
            assert (acked == 200) == (ack_event is not None), (acked, types(events))
        assert not [e for e in events if e["type"] in ("paged", "escalated") and e["seq"] > cancelled_event["seq"]]
        time.sleep(0.3)
        mine = [m for m in world.sms.to(responder["phone"]) if incident["code"] in m["body"]]
        expected = 2 + (1 if by_sms else 0)  # the page, the cancellation notice, the answer to an SMS ACK
        assert len(mine) == expected and len(notice) == 1, [m["body"] for m in mine]
        if by_sms:
            reply = next(m["body"] for m in mine if m not in notice and not m["body"].startswith("EMERGENCY"))
            assert reply.startswith("You acknowledged") == (ack_event is not None), reply
        outcomes.append("ack-first" if ack_event else "cancel-first")
    assert world.sms.to(tier2["phone"]) == []
    print(f"\noutcomes: {outcomes}")
