"""Escalation policies, the plan frozen onto an incident when it opens, and who is paged when a step is sent. Pure.

The plan is frozen at trigger time (as Grafana OnCall does): schedules are resolved to whoever is on call then, so
editing a policy or a rotation later cannot change a running escalation. The plan names responders, not phone
numbers: whether a responder is paged (exists, active, not opted out) and at which number is decided when the SMS
is sent, so deactivating someone or a STOP takes effect at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from chalicelib.domain.schedules import Schedule, on_call

DEFAULT_DELIVERY_TIMEOUT_S = 30


@dataclass(frozen=True)
class PolicyTier:
    timeout_s: int
    targets: tuple[dict, ...]  # {"responder": id} or {"schedule": id}


@dataclass(frozen=True)
class Policy:
    id: str
    tiers: tuple[PolicyTier, ...]
    repeat: int = 0
    ack_timeout_s: int | None = None
    dispatch_on_exhaustion: bool = False
    delivery_timeout_s: int = DEFAULT_DELIVERY_TIMEOUT_S
    require_verified: bool = False

    @classmethod
    def from_document(cls, policy_id: str, body: dict) -> Policy:
        return cls(
            id=policy_id,
            tiers=tuple(PolicyTier(int(t["timeout_s"]), tuple(t["targets"])) for t in body["tiers"]),
            repeat=int(body.get("repeat", 0)),
            ack_timeout_s=body.get("ack_timeout_s"),
            dispatch_on_exhaustion=bool(body.get("dispatch_on_exhaustion", False)),
            delivery_timeout_s=int(body.get("delivery_timeout_s") or DEFAULT_DELIVERY_TIMEOUT_S),
            require_verified=bool(body.get("require_verified", False)),
        )

    def responders_named(self) -> set[str]:
        return {t["responder"] for tier in self.tiers for t in tier.targets if "responder" in t}

    def schedules_named(self) -> set[str]:
        return {t["schedule"] for tier in self.tiers for t in tier.targets if "schedule" in t}


@dataclass(frozen=True)
class ResponderContact:
    """A responder as the directory holds it when a page is sent."""

    id: str
    name: str
    phone: str
    active: bool = True
    opted_out: bool = False
    voice: bool = False
    email: str | None = None
    verified_at: str | None = None
    updated_at: str | None = None

    @property
    def pageable(self) -> bool:
        return self.active and not self.opted_out


@dataclass(frozen=True)
class TierPlan:
    timeout_s: int
    responders: tuple[str, ...]
    # Schedule targets with nobody on call: kept so reviewers see why a tier paged fewer people.
    unresolved: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalationPlan:
    policy_id: str
    tiers: tuple[TierPlan, ...]
    repeat: int = 0
    ack_timeout_s: int | None = None
    dispatch_on_exhaustion: bool = False
    delivery_timeout_s: int = DEFAULT_DELIVERY_TIMEOUT_S

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EscalationPlan:
        return cls(
            policy_id=data["policy_id"],
            tiers=tuple(TierPlan(int(t["timeout_s"]), tuple(t["responders"]), tuple(t.get("unresolved", ())))
                        for t in data["tiers"]),
            repeat=int(data.get("repeat", 0)),
            ack_timeout_s=data.get("ack_timeout_s"),
            dispatch_on_exhaustion=bool(data.get("dispatch_on_exhaustion", False)),
            delivery_timeout_s=int(data.get("delivery_timeout_s") or DEFAULT_DELIVERY_TIMEOUT_S),
        )

    @property
    def total_steps(self) -> int:
        return len(self.tiers) * (self.repeat + 1)

    def everyone(self) -> tuple[str, ...]:
        """Every responder the plan names, in tier order, each once."""
        return tuple(dict.fromkeys(r for tier in self.tiers for r in tier.responders))

    def tier_of_step(self, step: int) -> int:
        """1-based tier number of a step (steps unroll tiers x (repeat + 1))."""
        return step % len(self.tiers) + 1

    def responders_of_step(self, step: int) -> tuple[str, ...]:
        return self.tiers[self.tier_of_step(step) - 1].responders

    def step_plan(self) -> tuple[list[int], list[int]]:
        """Per-step timeouts and tier numbers, unrolled over the repeats: the state machine walks a flat list because
        ASL has no modulo."""
        steps = range(self.total_steps)
        return [self.tiers[self.tier_of_step(s) - 1].timeout_s for s in steps], [self.tier_of_step(s) for s in steps]

    def first_tier_of(self, responder_id: str) -> int | None:
        for number, tier in enumerate(self.tiers, start=1):
            if responder_id in tier.responders:
                return number
        return None

    def resume_step(self, current_step: int, acknowledger_tier: int | None) -> int:
        """Where escalation resumes when an acknowledgement expires: the tier after the acknowledger's, in the
        round the escalation was in (past the last tier: the next round, or exhaustion when no round is left)."""
        tiers = len(self.tiers)
        round_start = max(current_step, 0) // tiers * tiers
        after = acknowledger_tier if acknowledger_tier is not None else self.tier_of_step(max(current_step, 0))
        return min(round_start + after, self.total_steps)


def freeze_plan(policy: Policy, schedules: dict[str, Schedule], at: datetime,
                only_responder: str | None = None) -> EscalationPlan:
    """The plan for an incident opening at `at`: schedules resolved to whoever is on call then. `only_responder`
    (the smoke test's incident) replaces every tier with that one responder."""
    tiers = []
    for tier in policy.tiers:
        responders: dict[str, None] = {}
        unresolved: list[str] = []
        for target in tier.targets:
            if "schedule" in target:
                schedule = schedules.get(target["schedule"])
                responder_id = on_call(schedule, at) if schedule else None
                if responder_id is None:
                    unresolved.append(f"schedule:{target['schedule']}")
                    continue
            else:
                responder_id = target["responder"]
            responders.setdefault(responder_id)
        tiers.append(TierPlan(tier.timeout_s, tuple(responders), tuple(unresolved)))
    if only_responder is not None:
        tiers = [TierPlan(tiers[0].timeout_s if tiers else 60, (only_responder,))]
    return EscalationPlan(policy.id, tuple(tiers), 0 if only_responder else policy.repeat, policy.ack_timeout_s,
                          policy.dispatch_on_exhaustion and only_responder is None, policy.delivery_timeout_s)


@dataclass(frozen=True)
class Recipients:
    """Who a send reaches: pageable contacts in order, and who was skipped with the reason (contract 4.1)."""

    pageable: tuple[ResponderContact, ...] = ()
    skipped: tuple[tuple[str, str], ...] = field(default=())


def who_to_page(responder_ids: tuple[str, ...] | list[str], directory: dict[str, ResponderContact | None]) -> Recipients:
    pageable: list[ResponderContact] = []
    skipped: list[tuple[str, str]] = []
    for responder_id in dict.fromkeys(responder_ids):
        contact = directory.get(responder_id)
        if contact is None:
            skipped.append((responder_id, "deleted"))
        elif not contact.active:
            skipped.append((responder_id, "inactive"))
        elif contact.opted_out:
            skipped.append((responder_id, "opted_out"))
        else:
            pageable.append(contact)
    return Recipients(tuple(pageable), tuple(skipped))
