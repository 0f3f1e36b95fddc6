"""The people a test (or a benchmark) plays against a running stack, over HTTP only: shoppers, responders, reviewers
and admins (`Api`), the SMS log and replies (`Sms`), and `World`, which holds them for one stack. Used by
tests/conftest.py's fixtures and by bench/."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

import pytest
import requests


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll until `predicate()` is truthy; returns its value. Fails the test with `message` at the deadline."""
    from local.polling import poll_until

    value = poll_until(predicate, timeout, interval)
    if not value:
        pytest.fail(f"timed out after {timeout}s waiting for {message}")
    return value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_phone() -> str:
    return "+1555" + "".join(random.choice("0123456789") for _ in range(7))


class Api:
    """Thin HTTP client for the contract: one per role/subject."""

    def __init__(self, base_url: str, dev_url: str, role: str, sub: str):
        self.base_url = base_url
        self.dev_url = dev_url
        self.sub = sub
        token = requests.post(f"{dev_url}/dev/tokens", json={"role": role, "sub": sub}, timeout=10).json()["token"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, f"{self.base_url}{path}", **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


class Sms:
    """The dev server's view of every SMS the local AWS sent."""

    def __init__(self, dev_url: str):
        self.dev_url = dev_url

    def all(self) -> list[dict]:
        return requests.get(f"{self.dev_url}/dev/sms", timeout=10).json()["messages"]

    def to(self, *phones: str) -> list[dict]:
        wanted = set(phones)
        return [m for m in self.all() if m["to"] in wanted]

    def reply(self, phone: str, body: str) -> requests.Response:
        return requests.post(f"{self.dev_url}/dev/sms/inbound", json={"from": phone, "body": body}, timeout=30)


class World:
    """Everything a test needs to act on the stack as its users would."""

    def __init__(self, stack):
        self.stack = stack
        self.sms = Sms(stack.dev_url)
        self.admin = Api(stack.api_url, stack.dev_url, "admin", "test-admin")
        self.reviewer = Api(stack.api_url, stack.dev_url, "reviewer", "test-reviewer")
        self.fuzz_shopper = Api(stack.api_url, stack.dev_url, "shopper", "fuzz-shopper")
        self.fuzz_responder = Api(stack.api_url, stack.dev_url, "responder", "fuzz-responder")

    def as_(self, role: str, sub: str | None = None) -> Api:
        return Api(self.stack.api_url, self.stack.dev_url, role, sub or unique(role))

    def responder(self, name: str | None = None) -> dict:
        responder_id, phone = unique("r"), new_phone()
        response = self.admin.put(f"/v1/responders/{responder_id}", json={"name": name or responder_id, "phone": phone})
        assert response.status_code == 201, response.text
        return {"id": responder_id, "phone": phone, "api": self.as_("responder", responder_id)}

    def policy(self, tiers: list[list[dict]], timeouts: list[int], repeat: int = 0) -> str:
        policy_id = unique("p")
        body = {
            "tiers": [
                {"targets": [{"responder": r["id"]} for r in tier], "timeout_s": timeout}
                for tier, timeout in zip(tiers, timeouts)
            ],
            "repeat": repeat,
        }
        response = self.admin.put(f"/v1/escalation-policies/{policy_id}", json=body)
        assert response.status_code == 201, response.text
        return policy_id

    def route_all_to(self, policy_id: str) -> None:
        """Routing is global: tests that need their own policy route every kind to it and open incidents at once.
        Tests using this run serially (pytest runs one test at a time here)."""
        kinds = ["panic", "medical", "threat", "accident", "harassment", "conduct", "fraud", "account_breach", "privacy"]
        response = self.admin.put("/v1/routing", json={"default": policy_id, **{k: policy_id for k in kinds}})
        assert response.status_code == 200, response.text

    def open_panic(self, shopper: Api | None = None, **extra) -> dict:
        shopper = shopper or self.as_("shopper")
        body = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}, **extra}
        response = shopper.post("/v1/incidents", json=body)
        assert response.status_code == 201, response.text
        return response.json()["incident"]

    def incident(self, incident_id: str) -> dict:
        return self.reviewer.get(f"/v1/incidents/{incident_id}").json()["incident"]

    def timeline(self, incident_id: str) -> list[dict]:
        return self.reviewer.get(f"/v1/incidents/{incident_id}/timeline").json()["events"]
