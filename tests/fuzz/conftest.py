"""Fixtures of the fuzz suite (tests/fuzz: every test that throws generated input at the service).

The session `stack` and `world` come from tests/conftest.py. Here:
- `scene`: a responder covered by every incident opened through it (routing sends every kind to a policy naming
  her), a shopper with an open incident and an active check-in, so fuzzed calls reach past the 403/404 layer;
- `faults`: fault injection on the service's AWS clients (tests/reliability/faults.py);
- the `retry_tool_crash` marker: a test so marked is run once more if the fuzzing *tool* (hypothesis, schemathesis)
  crashes with CPython 3.11's spurious `SystemError: AST constructor recursion depth mismatch` (cpython#106905: the
  `ast` module's recursion counter is interpreter-wide, and the in-process stack's threads format tracebacks, which
  parses source with `ast`, while hypothesis does the same). Only that error is retried, only once, and the retry
  must pass on its own: no assertion about the service is relaxed.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest

from tests.reliability.faults import faults  # noqa: F401 - the fixture, shared with tests/reliability

TOOL_CRASH = "AST constructor recursion depth mismatch"
LIFE_SAFETY_LOCATION = {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}


class Scene:
    """A covered responder, her policy routing every kind, and a shopper's incident and check-in."""

    def __init__(self, world):
        self.world = world
        self.responder = world.responder()
        self.policy = world.policy([[self.responder]], [3600])
        self.shopper = world.as_("shopper")
        self.incident = self.fresh_incident(self.shopper)
        response = self.shopper.post("/v1/check-ins", json={"due_in_s": 86_400, "location": LIFE_SAFETY_LOCATION})
        assert response.status_code == 201, response.text
        self.check_in = response.json()["check_in"]

    @property
    def apis(self) -> dict:
        return {"shopper": self.shopper, "responder": self.responder["api"], "reviewer": self.world.reviewer,
                "admin": self.world.admin}

    def route_here(self) -> None:
        """Routing is global and other tests (and fuzzed PUT /v1/routing) change it: route to our policy again."""
        self.world.route_all_to(self.policy)

    def fresh_incident(self, shopper=None, **extra) -> dict:
        """A new triggered panic whose frozen plan names our responder (a new shopper each time: a second press by
        the same shopper would join her open incident instead)."""
        self.route_here()
        incident = self.world.open_panic(shopper or self.world.as_("shopper"), **extra)
        covered = self.responder["api"].get(f"/v1/incidents/{incident['id']}")
        assert covered.status_code == 200, f"the scene's responder must be covered: {covered.text}"
        return incident

    def sign(self, body: bytes) -> str:
        from chalicelib.adapters.dispatch import sign_webhook

        return sign_webhook(body, os.environ["DISPATCH_WEBHOOK_SECRET"], int(time.time()))


@pytest.fixture(scope="module")
def scene(world) -> Scene:
    return Scene(world)


# --- the fuzzing tool's own crash ---------------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line("markers", "retry_tool_crash: run once more if hypothesis/schemathesis itself crashes "
                                       f"with SystemError({TOOL_CRASH!r}) (cpython#106905)")


def is_tool_crash(error: BaseException | None, seen: set | None = None) -> bool:
    """The spurious SystemError, anywhere in the exception, its group members, causes or contexts."""
    seen = seen if seen is not None else set()
    if error is None or id(error) in seen:
        return False
    seen.add(id(error))
    if isinstance(error, SystemError) and TOOL_CRASH in str(error):
        return True
    members = getattr(error, "exceptions", None) or ()
    return any(is_tool_crash(e, seen) for e in members) or is_tool_crash(error.__cause__, seen) \
        or is_tool_crash(error.__context__, seen)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if pyfuncitem.get_closest_marker("retry_tool_crash") is None:
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    try:
        pyfuncitem.obj(**arguments)
    except BaseException as error:  # noqa: BLE001 - anything but the tool's own crash is re-raised as it is
        if not is_tool_crash(error):
            raise
        warnings.warn(f"{pyfuncitem.nodeid}: the fuzzing tool crashed ({TOOL_CRASH}, cpython#106905); running it "
                      "once more", stacklevel=1)
        pyfuncitem.obj(**arguments)
    return True
