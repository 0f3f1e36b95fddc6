"""The local console (local/console/, served by the dev server at /), driven in headless Chromium as a newcomer would
use it after `make run`: press the button, watch the page reach a responder's phone, reply ACK on that phone.

Every wait polls with a deadline (WebDriverWait); screenshots go to artifacts/browser/. With UPDATE_DOCS_SCREENSHOT=1
the scenario test also refreshes docs/console.png, the README's picture of the console.
"""

from __future__ import annotations

import os
import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import browser_errors, save_screenshot
from tests.conftest import ROOT

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


def press(driver, *, shopper: str, kind: str, place: str, pin: str) -> tuple[str, str]:
    """Fills the shopper panel, presses the big button; returns (reference, short code) as the panel shows them."""
    Select(driver.find_element(*by_testid("shopper-select"))).select_by_value(shopper)
    Select(driver.find_element(*by_testid("kind-select"))).select_by_value(kind)
    Select(driver.find_element(*by_testid("location-select"))).select_by_value(place)
    pin_input = driver.find_element(*by_testid("pin-input"))
    pin_input.clear()
    pin_input.send_keys(pin)
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
    path = save_screenshot(browser, "console-08-scenario-done")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(path, ROOT / "docs" / "console.png")

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
