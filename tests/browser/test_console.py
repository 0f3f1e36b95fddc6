"""The local console (local/console/, served by the dev server at /), driven in headless Chromium as a newcomer would
use it after `make run`: press the button, watch the page reach a responder's phone, reply ACK on that phone; then
the second release's controls: what the shopper is told, pressing again, the duress PIN, check-ins, emergency
dispatch with the provider played from the console, delivery receipts and failover.

Every wait polls with a deadline (WebDriverWait); screenshots go to artifacts/browser/. With UPDATE_DOCS_SCREENSHOT=1
the dispatch test also refreshes docs/console.png, the README's picture of the console (the whole page).

Routing is global to the module's stack: a test that changes it puts it back. A second life-safety press by one
shopper joins her open incident (contract 4.2), so each new test presses as a new shopper ("+ New").
"""

from __future__ import annotations

import os
import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import browser_errors, save_screenshot
from tests.conftest import ROOT, new_phone, unique, wait_for

pytestmark = pytest.mark.browser

PHONES = '[data-testid^="phone-"][data-responder]'
DEMO_RESPONDERS = {"r-alice", "r-bob", "r-carol", "r-sec"}


def by_testid(name: str) -> tuple[str, str]:
    return By.CSS_SELECTOR, f'[data-testid="{name}"]'


def wait(driver, timeout: float = 20):
    return WebDriverWait(driver, timeout, poll_frequency=0.1)


def open_console(driver, dev_stack) -> None:
    driver.get(f"{dev_stack.dev_url}/")
    wait(driver).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    wait(driver).until(lambda d: {p.get_attribute("data-responder") for p in d.find_elements(By.CSS_SELECTOR, PHONES)}
                       >= DEMO_RESPONDERS, message="a phone card per seeded responder")
    wait(driver).until(lambda d: d.find_element(*by_testid("api-health")).get_attribute("data-state") == "ok")


def status_of(driver, testid: str = "incident-status") -> str:
    return driver.find_element(*by_testid(testid)).get_attribute("data-status")


def wait_status(driver, status: str, timeout: float = 20) -> None:
    wait(driver, timeout).until(lambda d: status_of(d) == status, message=f"the shopper panel to show {status}")


def new_shopper(driver) -> str:
    """A shopper with no open incident ("+ New" in the shopper panel); returns her id."""
    driver.find_element(*by_testid("new-shopper-button")).click()
    return Select(driver.find_element(*by_testid("shopper-select"))).first_selected_option.get_attribute("value")


def type_into(driver, testid: str, text: str) -> None:
    box = driver.find_element(*by_testid(testid))
    box.clear()
    box.send_keys(text)


def press(driver, *, shopper: str | None, kind: str, place: str, pin: str, duress_pin: str = "") -> tuple[str, str]:
    """Fills the shopper panel (shopper None: a new one), presses the big button; returns (reference, short code) as
    the panel shows them."""
    if shopper is None:
        new_shopper(driver)
    else:
        Select(driver.find_element(*by_testid("shopper-select"))).select_by_value(shopper)
    Select(driver.find_element(*by_testid("kind-select"))).select_by_value(kind)
    Select(driver.find_element(*by_testid("location-select"))).select_by_value(place)
    type_into(driver, "pin-input", pin)
    type_into(driver, "duress-pin-input", duress_pin)
    driver.find_element(*by_testid("panic-button")).click()
    reference = wait(driver).until(
        lambda d: (text := d.find_element(*by_testid("incident-reference")).text).startswith("TS-") and text,
        message="the reference number")
    code = driver.find_element(*by_testid("incident-code")).text
    assert len(code) == 4, code
    return reference, code


def phone_with_page(driver, reference: str, timeout: float = 20) -> WebElement:
    """The responder card whose SMS list shows the page for `reference`."""

    def find(d) -> WebElement | bool:
        for card in d.find_elements(By.CSS_SELECTOR, PHONES):
            for bubble in card.find_elements(By.CSS_SELECTOR, '[data-testid="sms-message"][data-direction="in"]'):
                if bubble.text.startswith(f"EMERGENCY {reference}"):
                    return card
        return False

    return wait(driver, timeout).until(find, message=f"the page for {reference} on a responder's phone")


def bubbles(card: WebElement, direction: str = "in") -> list[str]:
    return [b.text for b in card.find_elements(By.CSS_SELECTOR, f'[data-testid="sms-message"][data-direction="{direction}"]')]


def reply_on(card: WebElement, text: str) -> None:
    box = card.find_element(*by_testid("reply-input"))
    box.clear()
    box.send_keys(text)
    card.find_element(*by_testid("reply-send")).click()


def timeline_types(driver) -> list[str]:
    return [e.get_attribute("data-type") for e in driver.find_elements(*by_testid("timeline-event"))]


def incident_by_reference(dev_stack, reference: str) -> dict:
    response = dev_stack.get("reviewer", f"/v1/incidents/{reference}")
    assert response.status_code == 200, response.text
    return response.json()["incident"]


def api_timeline(dev_stack, incident_id: str) -> list[dict]:
    response = dev_stack.get("reviewer", f"/v1/incidents/{incident_id}/timeline")
    assert response.status_code == 200, response.text
    return response.json()["events"]


# --- tests -----------------------------------------------------------------------------------------------------------
def test_press_then_acknowledge_from_the_paged_phone(browser, dev_stack):
    open_console(browser, dev_stack)
    save_screenshot(browser, "console-01-opened")

    reference, code = press(browser, shopper="s-maya", kind="panic", place="ferry", pin="1234")
    assert status_of(browser) == "triggered"
    wait(browser).until(lambda d: d.find_element(*by_testid("timeline-reference")).text == reference)
    countdown = by_testid("tier-countdown")
    wait(browser).until(lambda d: d.find_element(*countdown).get_attribute("data-state") == "running"
                        and "escalates to tier 2 in" in d.find_element(*countdown).text, message="the tier-1 countdown")
    assert browser.find_element(*countdown).text.startswith("Tier 1 of 2 · round 1 of 2 · safety-default")  # repeat 1
    save_screenshot(browser, "console-02-pressed")

    # The tier-1 page, sent by the local AWS, shows up on the on-call responder's phone card.
    card = phone_with_page(browser, reference)
    incident = incident_by_reference(dev_stack, reference)
    tier1 = {e["details"]["to"] for e in api_timeline(dev_stack, incident["id"]) if e["type"] == "paged" and e["details"]["tier"] == 1}
    assert card.get_attribute("data-phone") in tier1
    assert f"Reply ACK {code}" in next(b for b in bubbles(card) if b.startswith(f"EMERGENCY {reference}"))
    wait(browser).until(lambda d: "paged" in card.find_element(*by_testid("phone-role")).text)
    save_screenshot(browser, "console-03-tier1-sms")

    # Acknowledging looks like it does on a phone: type ACK <code>, send, the service answers by SMS.
    reply_on(card, f"ACK {code}")
    wait_status(browser, "acknowledged")
    wait(browser).until(lambda d: any(b.startswith(f"You acknowledged {reference}") for b in bubbles(card)),
                        message="the confirmation SMS on the phone")
    assert f"ACK {code}" in [b.splitlines()[0] for b in bubbles(card, "out")]
    wait(browser).until(lambda d: "acknowledged" in timeline_types(d), message="the acknowledged event on the timeline")
    wait(browser).until(lambda d: d.find_element(*countdown).get_attribute("data-state") == "stopped")
    name = card.find_element(By.CSS_SELECTOR, ".who strong").text
    assert name in browser.find_element(*by_testid("incident-responder")).text
    save_screenshot(browser, "console-04-acknowledged")

    incident = incident_by_reference(dev_stack, reference)
    assert incident["status"] == "acknowledged"
    assert incident["acknowledged_by"] == card.get_attribute("data-responder")
    assert browser_errors(browser) == []


def test_cancel_with_the_pin_tells_the_paged_responder(browser, dev_stack):
    open_console(browser, dev_stack)
    Select(browser.find_element(*by_testid("location-select"))).select_by_value("custom")
    for field, value in (("lat-input", "37.7793"), ("lng-input", "-122.4192")):
        box = browser.find_element(*by_testid(field))
        box.clear()
        box.send_keys(value)
    reference, _ = press(browser, shopper="s-jonas", kind="threat", place="custom", pin="4321")
    card = phone_with_page(browser, reference)
    assert "37.7793,-122.4192" in next(b for b in bubbles(card) if b.startswith(f"EMERGENCY {reference}"))

    pin = browser.find_element(*by_testid("cancel-pin-input"))
    pin.send_keys("0000")
    browser.find_element(*by_testid("cancel-button")).click()
    wait(browser).until(lambda d: "PIN" in d.find_element(*by_testid("cancel-error")).text, message="the wrong-PIN error")
    assert status_of(browser) == "triggered"

    pin.clear()
    pin.send_keys("4321")
    browser.find_element(*by_testid("cancel-button")).click()
    wait_status(browser, "cancelled")
    wait(browser).until(lambda d: any(b.startswith(f"{reference} was cancelled") for b in bubbles(card)),
                        message="the cancellation SMS on the paged phone")
    wait(browser).until(lambda d: {"cancel_rejected", "cancelled"} <= set(timeline_types(d)))
    save_screenshot(browser, "console-05-cancelled")
    assert browser_errors(browser) == []


def test_scenario_plays_the_whole_flow_hands_off(browser, dev_stack):
    routing_before = dev_stack.get("admin", "/v1/routing").json()["routing"]
    open_console(browser, dev_stack)
    browser.find_element(*by_testid("scenario-button")).click()
    panel = browser.find_element(*by_testid("scenario-status"))

    def step_done(step: str):
        def check(d) -> bool:
            if panel.get_attribute("data-state") == "failed":
                pytest.fail(f"scenario failed: {d.find_element(*by_testid('scenario-result')).text}")
            return d.find_element(By.CSS_SELECTOR, f'[data-step="{step}"]').get_attribute("data-state") == "done"
        return check

    wait(browser, 30).until(step_done("tier2"), message="the escalation to tier 2")
    save_screenshot(browser, "console-06-scenario-tier2")
    wait(browser, 30).until(step_done("ack"), message="the tier-2 acknowledgement")
    save_screenshot(browser, "console-07-scenario-acknowledged")
    wait(browser, 30).until(step_done("resolve"), message="the resolution")
    assert panel.get_attribute("data-state") == "done"
    wait_status(browser, "resolved")
    wait(browser).until(lambda d: "resolved" in timeline_types(d))
    wait(browser, 5).until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".phone.ringing"), message="phones at rest")
    save_screenshot(browser, "console-08-scenario-done")

    reference = browser.find_element(*by_testid("incident-reference")).text
    incident = incident_by_reference(dev_stack, reference)
    assert incident["status"] == "resolved"
    assert incident["escalation"]["policy"] == "console-demo"
    events = api_timeline(dev_stack, incident["id"])
    types = [e["type"] for e in events]
    for expected in ("created", "paged", "escalated", "acknowledged", "resolved"):
        assert expected in types, types
    tier2 = {e["details"]["responder"] for e in events if e["type"] == "paged" and e["details"].get("tier") == 2}
    assert incident["acknowledged_by"] in tier2
    # The demo routing was only in place for the press.
    assert dev_stack.get("admin", "/v1/routing").json()["routing"] == routing_before
    assert browser_errors(browser) == []


# --- the second release's controls ------------------------------------------------------------------------------------
def text_of(driver, testid: str) -> str:
    return driver.find_element(*by_testid(testid)).text


def wait_text(driver, testid: str, expected: str, timeout: float = 20) -> str:
    """Waits until the element's text contains `expected`; returns the text."""
    return wait(driver, timeout).until(lambda d: expected in (text := text_of(d, testid)) and text,
                                       message=f"{testid} to say {expected!r}")


def as_shopper(dev_stack, shopper: str, reference: str) -> dict:
    response = dev_stack.call("GET", "shopper", f"/v1/incidents/{reference}", sub=shopper)
    assert response.status_code == 200, response.text
    return response.json()["incident"]


def selected_shopper(driver) -> str:
    return Select(driver.find_element(*by_testid("shopper-select"))).first_selected_option.get_attribute("value")


def page_bubble(card: WebElement, reference: str) -> WebElement:
    return next(b for b in card.find_elements(By.CSS_SELECTOR, '[data-testid="sms-message"][data-direction="in"]')
                if b.text.startswith(f"EMERGENCY {reference}"))


def wait_placed(dev_stack, reference: str) -> None:
    """Until the service recorded the provider's alarm for the incident's dispatch (its `updated_at` moves past
    `requested_at` then): a webhook before that is answered 404 (see the report of this branch)."""

    def placed() -> bool:
        dispatch = incident_by_reference(dev_stack, reference).get("dispatch") or {}
        return bool(dispatch) and dispatch["updated_at"] != dispatch["requested_at"]

    wait_for(placed, timeout=20, interval=0.2, message=f"the dispatch of {reference} to be placed with the provider")


def full_page_screenshot(driver, name: str):
    """The whole page, not only the window: the window grows to the page's height for the shot."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    page_height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height, page_height + 140))
    try:
        return save_screenshot(driver, name)
    finally:
        driver.set_window_size(width, height)


def test_shopper_panel_shows_the_shopper_message_changing_through_acknowledged(browser, dev_stack):
    open_console(browser, dev_stack)
    reference, code = press(browser, shopper=None, kind="panic", place="dolores", pin="2468")
    shopper = selected_shopper(browser)
    first = wait_text(browser, "shopper-message", "We are alerting our safety team now")
    assert "call 911" in first
    assert not browser.find_element(*by_testid("press-joined")).is_displayed()
    save_screenshot(browser, "console-10-shopper-message-triggered")

    # Pressing again joins her open alert (200, no new incident) and escalates at once: more responders.
    browser.find_element(*by_testid("panic-button")).click()
    joined = wait(browser).until(lambda d: (el := d.find_element(*by_testid("press-joined"))).is_displayed() and el.text,
                                 message="the note that the press joined her open alert")
    assert reference in joined and "no new alert" in joined
    assert text_of(browser, "incident-reference") == reference
    wait_text(browser, "shopper-message", "alerting more responders now")
    wait(browser).until(lambda d: "pressed_again" in timeline_types(d), message="pressed_again on the timeline")

    card = phone_with_page(browser, reference)
    name = card.find_element(By.CSS_SELECTOR, ".who strong").text
    reply_on(card, f"ACK {code}")
    wait_status(browser, "acknowledged")
    acknowledged = wait_text(browser, "shopper-message", f"{name} from our safety team is on it")
    save_screenshot(browser, "console-11-shopper-message-acknowledged")

    # The panel shows exactly what the API tells her.
    incident = as_shopper(dev_stack, shopper, reference)
    assert incident["status"] == "acknowledged"
    assert incident["shopper_message"] == acknowledged
    assert incident["pressed_again"] == 1
    assert browser_errors(browser) == []


def test_cancelling_with_the_duress_pin_shows_cancelled_to_the_shopper_and_duress_to_staff(browser, dev_stack):
    open_console(browser, dev_stack)
    reference, _ = press(browser, shopper=None, kind="threat", place="merritt", pin="1357", duress_pin="9753")
    shopper = selected_shopper(browser)
    card = phone_with_page(browser, reference)

    type_into(browser, "cancel-pin-input", "9753")
    browser.find_element(*by_testid("cancel-button")).click()
    wait_status(browser, "cancelled")
    assert "You cancelled this alert" in text_of(browser, "shopper-message")
    assert text_of(browser, "cancel-error") == ""

    # Staff see the truth: still open, DURESS, and the responder already paged is told so.
    wait(browser).until(lambda d: d.find_element(*by_testid("timeline-duress")).is_displayed(), message="the DURESS badge")
    wait(browser).until(lambda d: "duress_signalled" in timeline_types(d))
    assert status_of(browser, "timeline-status") in ("triggered", "acknowledged")
    assert "cancelled" not in timeline_types(browser)
    wait(browser).until(lambda d: any(b.startswith(f"DURESS: {reference}") for b in bubbles(card)),
                        message="the DURESS notice on the paged phone")
    save_screenshot(browser, "console-12-duress")

    mine = as_shopper(dev_stack, shopper, reference)
    assert mine["status"] == "cancelled" and "duress" not in mine
    staff = incident_by_reference(dev_stack, reference)
    assert staff["duress"] is True and staff["severity"] == "sev1" and staff["status"] in ("triggered", "acknowledged")
    assert browser_errors(browser) == []


def test_check_in_completes_or_goes_missed_and_the_console_links_the_incident_it_opened(browser, dev_stack):
    open_console(browser, dev_stack)
    shopper = new_shopper(browser)
    Select(browser.find_element(*by_testid("location-select"))).select_by_value("merritt")
    badge = by_testid("check-in-badge")

    # One she completes in time...
    type_into(browser, "check-in-due-input", "300")
    browser.find_element(*by_testid("check-in-start")).click()
    wait(browser).until(lambda d: d.find_element(*badge).get_attribute("data-status") == "active")
    browser.find_element(*by_testid("check-in-complete")).click()
    wait(browser).until(lambda d: d.find_element(*badge).get_attribute("data-status") == "completed")
    completed_id = browser.find_element(*badge).get_attribute("data-id")

    # ...and one she does not: due in 5 s, it is missed and opens an incident.
    type_into(browser, "check-in-due-input", "5")
    type_into(browser, "check-in-note-input", "walking to the car")
    browser.find_element(*by_testid("check-in-start")).click()
    wait(browser).until(lambda d: d.find_element(*badge).get_attribute("data-status") == "active"
                        and d.find_element(*badge).get_attribute("data-id") != completed_id)
    check_in_id = browser.find_element(*badge).get_attribute("data-id")
    assert "due in" in text_of(browser, "check-in-due")
    wait(browser, 30).until(lambda d: d.find_element(*badge).get_attribute("data-status") == "missed",
                            message="the check-in to be missed")
    link = wait(browser).until(lambda d: (el := d.find_element(*by_testid("check-in-incident-link"))).text.startswith("TS-") and el,
                               message="the link to the incident the missed check-in opened")
    reference = link.text
    link.click()
    wait(browser).until(lambda d: d.find_element(*by_testid("timeline-reference")).text == reference)
    wait(browser).until(lambda d: text_of(d, "incident-reference") == reference)
    created = wait(browser).until(lambda d: next((e for e in d.find_elements(*by_testid("timeline-event"))
                                                  if e.get_attribute("data-type") == "created"), False))
    assert "Missed check-in" in created.text
    full_page_screenshot(browser, "console-13-check-in-missed")

    check_ins = {c: dev_stack.get("reviewer", f"/v1/check-ins/{c}").json()["check_in"] for c in (completed_id, check_in_id)}
    assert check_ins[completed_id]["status"] == "completed"
    assert check_ins[check_in_id]["status"] == "missed" and check_ins[check_in_id]["note"] == "walking to the car"
    incident = incident_by_reference(dev_stack, reference)
    assert incident["id"] == check_ins[check_in_id]["incident_id"]
    assert incident["kind"] == "missed_check_in" and incident["check_in_id"] == check_in_id
    assert incident["location"]["lat"] == 37.8044
    assert as_shopper(dev_stack, shopper, reference)["id"] == incident["id"]  # hers
    assert browser_errors(browser) == []


def test_dispatch_requested_from_the_console_reaches_the_provider_and_psap_contacted_updates_the_incident(browser, dev_stack):
    open_console(browser, dev_stack)
    reference, _ = press(browser, shopper=None, kind="medical", place="ferry", pin="1111")
    shopper = selected_shopper(browser)
    button = by_testid("dispatch-button")
    card = by_testid("dispatch-card")
    wait(browser).until(lambda d: d.find_element(*card).get_attribute("data-reference") == reference
                        and d.find_element(*button).is_enabled() and d.find_element(*button).get_attribute("data-responder"),
                        message="a covering responder to request the dispatch as")
    responder = browser.find_element(*button).get_attribute("data-responder")
    browser.find_element(*button).click()
    wait(browser).until(lambda d: status_of(d, "dispatch-status") in ("requested", "accepted"), message="the dispatch")
    assert text_of(browser, "dispatch-error") == ""

    # The provider panel lists the alarm, with the location trail the service sent.
    alarm_css = f'[data-testid="provider-alarm"][data-reference="{reference}"]'
    alarm = wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, alarm_css) and d.find_element(By.CSS_SELECTOR, alarm_css),
                                message="the alarm in the provider panel")
    assert "37.7955, -122.3937" in alarm.find_element(*by_testid("alarm-trail")).text
    save_screenshot(browser, "console-14-dispatch-requested")
    wait_placed(dev_stack, reference)

    alarm.find_element(*by_testid("play-psap_contacted")).click()
    wait(browser).until(lambda d: status_of(d, "dispatch-status") == "psap_contacted", message="the incident's dispatch status")
    message = wait_text(browser, "shopper-message", "911 has been contacted")
    wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, alarm_css).get_attribute("data-status") == "psap_contacted")
    assert "webhook → 200" in browser.find_element(By.CSS_SELECTOR, f"{alarm_css} [data-testid=alarm-webhook]").text
    assert "911 contacted" in text_of(browser, "dispatch-facts")
    wait(browser).until(lambda d: {"dispatch_requested", "dispatch_updated"} <= set(timeline_types(d)))
    assert text_of(browser, "provider-error") == ""
    path = full_page_screenshot(browser, "console-15-dispatch-psap-contacted")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(path, ROOT / "docs" / "console.png")

    # Asking again while it is active: the API's 409, in its words.
    browser.find_element(*button).click()
    wait_text(browser, "dispatch-error", "is already psap_contacted")
    save_screenshot(browser, "console-16-dispatch-conflict")

    incident = incident_by_reference(dev_stack, reference)
    assert incident["dispatch"]["status"] == "psap_contacted" and incident["dispatch"]["psap_contacted_at"]
    report = dev_stack.get("reviewer", f"/v1/incidents/{incident['id']}/report").json()["report"]
    assert report["dispatch"]["requested_by"] == f"responder:{responder}"
    assert as_shopper(dev_stack, shopper, reference)["shopper_message"] == message
    assert browser_errors(browser) == []


def test_marking_a_page_failed_shows_the_failover_call_and_email(browser, dev_stack):
    responder, phone, email = unique("r-fo"), new_phone(), f"{unique('fay')}@example.com"
    policy = unique("failover-demo")
    admin = lambda method, path, body=None: dev_stack.call(method, "admin", path, body)  # noqa: E731
    assert admin("PUT", f"/v1/responders/{responder}", {"name": "Fay Over", "phone": phone, "voice": True,
                                                         "email": email}).status_code in (200, 201)
    assert admin("PUT", f"/v1/escalation-policies/{policy}",
                 {"tiers": [{"targets": [{"responder": responder}], "timeout_s": 300}]}).status_code in (200, 201)
    routing = admin("GET", "/v1/routing").json()["routing"]
    assert admin("PUT", "/v1/routing", {**routing, "accident": policy}).status_code == 200
    try:
        open_console(browser, dev_stack)
        wait(browser).until(lambda d: d.find_elements(*by_testid(f"phone-{responder}")), message="Fay's phone card")
        reference, _ = press(browser, shopper=None, kind="accident", place="ggpark", pin="4444")
    finally:  # the policy is frozen onto the incident when it opens: the routing can go back at once
        assert admin("PUT", "/v1/routing", routing).status_code == 200

    card = phone_with_page(browser, reference)
    assert card.get_attribute("data-responder") == responder
    bubble = page_bubble(card, reference)
    assert bubble.get_attribute("data-status") == "sent"
    assert not card.find_elements(*by_testid("failover-call"))
    bubble.find_element(*by_testid("mark-failed")).click()
    wait(browser).until(lambda d: page_bubble(card, reference).get_attribute("data-status") == "failed")
    assert "not delivered" in page_bubble(card, reference).find_element(*by_testid("sms-delivery")).text

    call = wait(browser).until(lambda d: (found := card.find_elements(*by_testid("failover-call"))) and found[0],
                               message="the failover call under Fay's phone")
    assert reference in call.get_attribute("title")
    mail = wait(browser).until(lambda d: (found := card.find_elements(*by_testid("failover-email"))) and found[0],
                               message="the failover email under Fay's phone")
    assert email in mail.text and reference in mail.text
    wait(browser).until(lambda d: timeline_types(d).count("page_failover") == 2 and "page_failed" in timeline_types(d))
    save_screenshot(browser, "console-17-failover")

    events = api_timeline(dev_stack, incident_by_reference(dev_stack, reference)["id"])
    assert {e["details"]["channel"] for e in events if e["type"] == "page_failover"} == {"voice", "email"}
    calls = dev_stack.dev("GET", "/dev/calls").json()["calls"]
    assert any(c["to"] == phone and reference in c["text"] for c in calls)
    emails = dev_stack.dev("GET", "/dev/email").json()["emails"]
    assert any(email in e["to"] and reference in e["subject"] for e in emails)
    assert browser_errors(browser) == []
