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
