"""The services wired to the in-memory twins of every adapter: the same use cases as on AWS, in milliseconds.

`Harness.run_escalation` plays infra/escalation.asl.json step by step (claim the step as ClaimStep does, send the
page request, answer the token, wait the timeout unless nobody was paged), on a fake clock, so escalation rules
are tested here and the state machine file itself under moto (tests/integration)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from chalicelib.adapters.checkin_store import MemoryCheckInStore
from chalicelib.adapters.directory import MemoryDirectory
from chalicelib.adapters.failover import RecordingMailer, RecordingVoice
from chalicelib.adapters.memory_store import MemoryIncidentStore
from chalicelib.adapters.outbox import MemoryOutbox
from chalicelib.adapters.reply_limits import MemoryReplyLimiter
from chalicelib.adapters.sms import RecordingSmsSender
from chalicelib.adapters.workflow import MemoryWorkflows
from chalicelib.domain.clock import iso
from chalicelib.domain.escalation import EscalationPlan
from chalicelib.domain.incidents import Transition
from chalicelib.schemas import IncidentCreate, PolicyPut, ResponderPut, RoutingPut
from chalicelib.services import Adapters, Tunables, build_services
from chalicelib.services.access import Principal

START = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
PANIC = {"kind": "panic", "location": {"lat": 37.77, "lng": -122.41, "accuracy_m": 12}}
WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789abcdef"


class FakeClock:
    def __init__(self, start: datetime = START):
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class FakeProvider:
    """An alarm-dispatch provider in memory (the HTTP adapter is tested against local/fake_dispatch.py)."""

    name = "alarm-api"

    def __init__(self) -> None:
        self.alarms: dict[str, dict] = {}
        self.failures: list[Exception] = []

    def create_alarm(self, request) -> str:
        if self.failures:
            raise self.failures.pop(0)
        alarm_id = f"alarm-{request.idempotency_key}"
        self.alarms.setdefault(alarm_id, {"request": request, "locations": [], "status": "requested"})
        return alarm_id

    def add_location(self, alarm_id, lat, lng, accuracy_m) -> None:
        self.alarms[alarm_id]["locations"].append((lat, lng))

    def cancel(self, alarm_id, reason) -> None:
        self.alarms[alarm_id]["status"] = "cancelled"


class Harness:
    def __init__(self, lease_s: float = 30, pin_max_checks: int = 5):
        self.clock = FakeClock()
        self.store = MemoryIncidentStore(clock=self.clock)
        self.directory = MemoryDirectory()
        self.outbox = MemoryOutbox()
        self.workflows = MemoryWorkflows()
        self.sms = RecordingSmsSender()
        self.voice = RecordingVoice()
        self.mailer = RecordingMailer()
        self.provider = FakeProvider()
        self.checkin_store = MemoryCheckInStore()
        self.adapters = Adapters(store=self.store, directory=self.directory, checkins=self.checkin_store,
                                 outbox=self.outbox, workflows=self.workflows, sms=self.sms, voice=self.voice,
                                 mailer=self.mailer, reply_limiter=MemoryReplyLimiter(5, 600),
                                 dispatch_provider=lambda: self.provider)
        self.services = build_services(self.adapters, Tunables(lease_s, pin_max_checks, WEBHOOK_SECRET, 0))
        self._phones = 0

    # --- people and policies ---------------------------------------------------------------------------------
    def responder(self, responder_id: str, name: str | None = None, **extra) -> dict:
        self._phones += 1
        phone = f"+1555000{self._phones:04d}"
        body = ResponderPut(name=name or responder_id, phone=phone, **extra)
        self.services.admin.put_responder(responder_id, body)
        return {"id": responder_id, "phone": phone, "principal": Principal("responder", responder_id)}

    def policy(self, tiers: list[list[str]], timeouts: list[int], policy_id: str = "p", **extra) -> str:
        body = PolicyPut(tiers=[{"targets": [{"responder": r} for r in tier], "timeout_s": t}
                                for tier, t in zip(tiers, timeouts, strict=True)], **extra)
        self.services.admin.put_policy(policy_id, body)
        self.services.admin.put_routing(RoutingPut(default=policy_id))
        return policy_id

    @staticmethod
    def shopper(sub: str = "shopper-1") -> Principal:
        return Principal("shopper", sub)

    def open(self, shopper: Principal | None = None, key: str | None = None, **body) -> tuple[dict, int]:
        request = IncidentCreate(**{**PANIC, **body})
        return self.services.intake.open(shopper or self.shopper(), request, key)

    def incident(self, incident_id: str):
        return self.store.get(incident_id)

    def events(self, incident_id: str) -> list[str]:
        return [e.type for e in self.store.timeline(incident_id)]

    # --- the escalation state machine, played ----------------------------------------------------------------
    def claim_step(self, incident_id: str, step: int, execution: str) -> bool:
        """ClaimStep / ClaimExhausted: conditional on triggered and the previous step (or this execution's own)."""
        def decide(incident):
            if incident.status != "triggered":
                return None
            if not (incident.escalation_step == step - 1 or
                    (incident.escalation_step == step and incident.escalation_owner == execution)):
                return None
            plan = EscalationPlan.from_dict(incident.escalation)
            if step >= plan.total_steps:
                return Transition(replace(incident, escalation_exhausted=True, escalation_step=step,
                                          escalation_owner=execution, escalated_at=iso(self.clock())), result=True)
            return Transition(replace(incident, escalation_step=step, escalation_tier=plan.tier_of_step(step),
                                      escalation_owner=execution, escalated_at=iso(self.clock())), result=True)

        return bool(self.store.record(incident_id, decide)[1])

    def run_escalation(self, incident_id: str, start_step: int = 0, execution: str | None = None,
                       on_wait=None) -> list[int]:
        """Plays one execution to its end; returns the steps it paged. `on_wait(step)` runs during each wait (a
        test acknowledges there)."""
        execution = execution or incident_id
        incident = self.incident(incident_id)
        plan = EscalationPlan.from_dict(incident.escalation)
        steps = []
        for step in range(start_step, plan.total_steps):
            if not self.claim_step(incident_id, step, execution):
                return steps
            token = f"{execution}:{step}"
            paged = self.services.sender.send_step(incident_id, step, token)
            steps.append(step)
            if paged:
                if on_wait:
                    on_wait(step)
                self.clock.advance(plan.tiers[plan.tier_of_step(step) - 1].timeout_s)
        if self.claim_step(incident_id, plan.total_steps, execution):
            self.services.sender.send_exhausted(incident_id, plan.total_steps)
        return steps

    def drain(self, rounds: int = 20) -> None:
        """Runs every queued page request and job (and what they queue) until nothing is left."""
        for _ in range(rounds):
            pages, self.outbox.pages[:] = list(self.outbox.pages), []
            jobs, self.outbox.jobs[:] = list(self.outbox.jobs), []
            if not pages and not jobs:
                return
            for request in pages:
                self.services.sender.handle(request)
            for job, _delay in jobs:
                self.services.jobs.handle(job)

    def fire_timer(self, name: str) -> None:
        timer = self.workflows.timers.pop(name)
        self.services.jobs.handle(timer["job"])
