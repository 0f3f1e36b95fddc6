"""The reviewer page, in headless Chromium, on a real incident of the local stack."""

from __future__ import annotations

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import browser_errors, save_screenshot
from tests.conftest import new_phone, unique, wait_for


def _as(dev_stack, role: str, sub: str) -> dict:
    return {"Authorization": f"Bearer {dev_stack.token(role, sub)}"}


def _incident_with_a_story(dev_stack) -> tuple[str, int]:
    """Two tiers (1 s), tier 2 acknowledges by SMS and resolves: created, paged, escalated, paged, ack, resolve."""
    api, admin = dev_stack.api_url, _as(dev_stack, "admin", "browser-admin")
    first, second = (unique("rv"), new_phone()), (unique("rv"), new_phone())
    for responder_id, phone in (first, second):
        requests.put(f"{api}/v1/responders/{responder_id}", json={"name": responder_id, "phone": phone}, headers=admin,
                     timeout=10).raise_for_status()
    policy = {"tiers": [{"targets": [{"responder": first[0]}], "timeout_s": 1},
                        {"targets": [{"responder": second[0]}], "timeout_s": 60}]}
    requests.put(f"{api}/v1/escalation-policies/review-demo", json=policy, headers=admin, timeout=10).raise_for_status()
    requests.put(f"{api}/v1/routing", json={"default": "review-demo", "panic": "review-demo"}, headers=admin,
                 timeout=10).raise_for_status()
    incident = requests.post(f"{api}/v1/incidents", json={"kind": "panic", "location": {"lat": 40.7, "lng": -74}},
                             headers=_as(dev_stack, "shopper", "browser-shopper"), timeout=10).json()["incident"]
    sms = lambda: requests.get(f"{dev_stack.dev_url}/dev/sms", timeout=10).json()["messages"]  # noqa: E731
    wait_for(lambda: any(m["to"] == second[1] for m in sms()), timeout=10, message="tier-2 page")
    requests.post(f"{dev_stack.dev_url}/dev/sms/inbound", json={"from": second[1], "body": f"ACK {incident['code']}"},
                  timeout=30)
    requests.post(f"{api}/v1/incidents/{incident['id']}/resolve", json={"outcome": "assisted"},
                  headers=_as(dev_stack, "responder", second[0]), timeout=10).raise_for_status()
    events = dev_stack.get("reviewer", f"/v1/incidents/{incident['id']}/timeline").json()["events"]
    return incident["id"], len(events)


def test_review_page_draws_a_real_incidents_timeline(dev_stack, browser):
    incident_id, event_count = _incident_with_a_story(dev_stack)
    # The token as a cookie, as a reviewer tool would pass it.
    browser.get(f"{dev_stack.api_url}/v1/health")
    browser.add_cookie({"name": "review_token", "value": dev_stack.token("reviewer", "browser-reviewer")})
    browser.get(f"{dev_stack.api_url}/review/incidents/{incident_id}")

    wait = WebDriverWait(browser, 15)
    dots = wait.until(lambda d: (found := d.find_elements(By.CSS_SELECTOR, "svg[data-testid=timeline-axis] circle.event-dot"))
                      and len(found) == event_count and found)
    types = [dot.get_attribute("data-type") for dot in dots]
    assert types[0] == "created" and "paged" in types and "escalated" in types
    assert types[-2:] == ["acknowledged", "resolved"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg rect.tier-band")) == 2  # tier 1 then tier 2
    xs = [float(dot.get_attribute("cx")) for dot in dots]
    assert xs == sorted(xs) and xs[-1] > xs[0]  # drawn along a time axis, in order
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid=chain-status]"), "intact"))
    cards = browser.find_element(By.ID, "cards").text
    assert "Time to acknowledge" in cards and "1, 2" in cards
    save_screenshot(browser, "review-incident")
    assert browser_errors(browser) == []

    # The list page links to it.
    browser.get(f"{dev_stack.api_url}/review")
    link = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"a[href$='/review/incidents/{incident_id}']")))
    assert link.text.startswith("TS-")
    save_screenshot(browser, "review-list")


def _incident_with_delivery_dispatch_and_duress(dev_stack) -> tuple[str, str, str]:
    """One tier; its page delivered (the carrier's receipt); a dispatch the responder asks for, accepted then 911
    contacted by the provider; then the shopper cancels with her duress PIN. Returns (incident id, responder, page's
    message id)."""
    api, dev, admin = dev_stack.api_url, dev_stack.dev_url, _as(dev_stack, "admin", "browser-admin")
    responder, phone = unique("rv-d"), new_phone()
    requests.put(f"{api}/v1/responders/{responder}", json={"name": "Dana Duress", "phone": phone}, headers=admin,
                 timeout=10).raise_for_status()
    policy = {"tiers": [{"targets": [{"responder": responder}], "timeout_s": 300}]}
    requests.put(f"{api}/v1/escalation-policies/review-duress", json=policy, headers=admin, timeout=10).raise_for_status()
    requests.put(f"{api}/v1/routing", json={"default": "review-duress", "panic": "review-duress"}, headers=admin,
                 timeout=10).raise_for_status()
    shopper = _as(dev_stack, "shopper", unique("browser-shopper"))
    incident = requests.post(f"{api}/v1/incidents", json={"kind": "panic", "location": {"lat": 40.7, "lng": -74},
                                                           "cancel_pin": "1234", "duress_pin": "4321"},
                             headers=shopper, timeout=10).json()["incident"]
    sms = lambda: requests.get(f"{dev}/dev/sms", timeout=10).json()["messages"]  # noqa: E731
    page = wait_for(lambda: next((m for m in sms() if m["to"] == phone), None), timeout=15, message="the page")
    requests.post(f"{dev}/dev/sms/{page['message_id']}/status", json={"status": "delivered"}, timeout=30).raise_for_status()

    as_responder = _as(dev_stack, "responder", responder)
    answer = requests.post(f"{api}/v1/incidents/{incident['id']}/dispatch", json={}, headers=as_responder, timeout=10)
    assert answer.status_code == 202, answer.text
    alarms = lambda: requests.get(f"{dev}/dev/dispatches", timeout=10).json()["dispatches"]  # noqa: E731
    alarm = wait_for(lambda: next((a for a in alarms() if a["reference"] == incident["reference"]), None), timeout=15,
                     message="the alarm at the provider")
    staff = lambda: dev_stack.get("reviewer", f"/v1/incidents/{incident['id']}").json()["incident"]  # noqa: E731
    # The service knows the alarm once its dispatch moved past `requested_at` (a webhook before that is a 404).
    wait_for(lambda: (d := staff()["dispatch"])["updated_at"] != d["requested_at"], timeout=15,
             message="the dispatch placed with the provider")
    for status in ("accepted", "psap_contacted"):
        played = requests.post(f"{dev}/dev/dispatches/{alarm['id']}/status", json={"status": status}, timeout=30).json()
        assert played["webhook_status"] == 200, played
        wait_for(lambda: staff()["dispatch"]["status"] == status, timeout=10, message=f"dispatch {status}")

    cancelled = requests.post(f"{api}/v1/incidents/{incident['id']}/cancel", json={"pin": "4321"}, headers=shopper, timeout=10)
    assert cancelled.status_code == 200 and cancelled.json()["incident"]["status"] == "cancelled"
    assert staff()["duress"] is True
    # The duress notice to the paged responder is sent after the answer: the story ends once it is recorded (a report
    # read while an event is being appended can see a head ahead of the events it read: see this branch's report).
    timeline = lambda: dev_stack.get("reviewer", f"/v1/incidents/{incident['id']}/timeline").json()["events"]  # noqa: E731
    wait_for(lambda: any(e["type"] == "paged" and e["details"].get("purpose") == "duress" for e in timeline()),
             timeout=15, message="the duress notice")
    return incident["id"], responder, page["message_id"]


def test_review_page_shows_a_pages_delivery_the_dispatch_and_a_duress_badge(dev_stack, browser):
    incident_id, responder, _ = _incident_with_delivery_dispatch_and_duress(dev_stack)
    report = dev_stack.get("reviewer", f"/v1/incidents/{incident_id}/report").json()["report"]
    browser.get(f"{dev_stack.api_url}/v1/health")
    browser.add_cookie({"name": "review_token", "value": dev_stack.token("reviewer", "browser-reviewer")})
    browser.get(f"{dev_stack.api_url}/review/incidents/{incident_id}")
    wait = WebDriverWait(browser, 15)

    badge = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=duress-badge]")))
    assert badge.text == "DURESS"
    assert "triggered" in browser.find_element(By.CSS_SELECTOR, "[data-testid=incident-title]").text  # open for staff

    # The tier-1 page: delivered after the seconds the report measured; no failover.
    tier1 = next(p for p in report["paged"] if p["tier"] == 1)
    row = wait.until(lambda d: next((r for r in d.find_elements(By.CSS_SELECTOR, "[data-testid=page-row]")
                                     if r.get_attribute("data-delivery") == "delivered"), False))
    assert row.get_attribute("data-responder") == responder
    delivery = row.find_element(By.CSS_SELECTOR, "[data-testid=page-delivery]").text
    assert delivery.startswith("delivered after ") and delivery.endswith(" s")
    assert abs(float(delivery.removeprefix("delivered after ").removesuffix(" s")) - tier1["delivered_after_s"]) <= 0.051
    assert row.find_element(By.CSS_SELECTOR, "[data-testid=page-failover]").text == "–"
    # The duress notice to the same responder is listed as a notice, not as a tier.
    notices = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "[data-testid=page-row]") if "duress notice" in r.text]
    assert notices, "the duress notice among the pages"
    tier_row = browser.find_element(By.CSS_SELECTOR, "[data-testid=tier-deliveries][data-tier='1']").text.split()
    assert tier_row[:4] == ["1", "1", "1", "0"]  # tier, sent, delivered, failed

    # The dispatch: requested, accepted and 911 contacted, with their times.
    dispatch = report["dispatch"]
    assert browser.find_element(By.CSS_SELECTOR, "[data-testid=dispatch-status]").text == "psap_contacted"
    assert dispatch["requested_at"] in browser.find_element(By.CSS_SELECTOR, "[data-testid=dispatch-requested]").text
    assert dispatch["accepted_at"] in browser.find_element(By.CSS_SELECTOR, "[data-testid=dispatch-accepted]").text
    assert dispatch["psap_contacted_at"] in browser.find_element(By.CSS_SELECTOR, "[data-testid=dispatch-psap-contacted]").text
    assert f"responder:{responder}" in browser.find_element(By.CSS_SELECTOR, "[data-testid=dispatch]").text

    # The report's figures: press to first contact (the dispatch accepted: nobody acknowledged), no tampering found.
    cards = {c.get_attribute("data-label"): c.find_element(By.CSS_SELECTOR, ".value").text
             for c in browser.find_elements(By.CSS_SELECTOR, "#cards .card")}
    assert report["durations"]["press_to_first_contact_s"] is not None
    assert cards["Press to first contact"] not in ("", "–")
    assert cards["Tiers paged"] == "1"
    assert "no tampering found" in browser.find_element(By.CSS_SELECTOR, "[data-testid=chain-status]").text
    assert report["problems"] == [] and not browser.find_element(By.CSS_SELECTOR, "[data-testid=problems]").is_displayed()
    types = [dot.get_attribute("data-type") for dot in browser.find_elements(By.CSS_SELECTOR, "circle.event-dot")]
    assert {"page_delivered", "dispatch_requested", "dispatch_updated", "duress_signalled"} <= set(types)
    browser.set_window_size(1400, max(1000, browser.execute_script("return document.documentElement.scrollHeight") + 140))
    save_screenshot(browser, "review-incident-duress-dispatch")
    assert browser_errors(browser) == []
