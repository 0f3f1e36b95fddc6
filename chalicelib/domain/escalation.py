"""Escalation policy snapshots and the step plan the state machine runs. Pure.

The policy is frozen onto the incident when it opens (as Grafana OnCall does): schedules are resolved to the
responders on call at that moment, so editing a policy or a rotation later cannot change a running escalation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from chalicelib.domain.schedules import Schedule, on_call


@dataclass(frozen=True)
class Target:
    responder_id: str
    name: str
    phone: str


@dataclass(frozen=True)
class TierSnapshot:
    timeout_s: int
    targets: tuple[Target, ...]
    # Schedule targets with nobody on call: kept so reviewers see why a tier paged fewer people.
    unresolved: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class EscalationSnapshot:
    policy_id: str
    tiers: tuple[TierSnapshot, ...]
    repeat: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EscalationSnapshot:
        return cls(
            policy_id=data["policy_id"],
            repeat=int(data["repeat"]),
            tiers=tuple(
                TierSnapshot(
                    timeout_s=int(t["timeout_s"]),
                    targets=tuple(Target(**target) for target in t["targets"]),
                    unresolved=tuple(t.get("unresolved", ())),
                )
                for t in data["tiers"]
            ),
        )

    def all_targets(self) -> tuple[Target, ...]:
        seen: dict[str, Target] = {}
        for tier in self.tiers:
            for target in tier.targets:
                seen.setdefault(target.responder_id, target)
        return tuple(seen.values())


@dataclass(frozen=True)
class PolicyTier:
    timeout_s: int
    targets: tuple[dict, ...]  # {"responder": id} or {"schedule": id}


@dataclass(frozen=True)
class Policy:
    id: str
    tiers: tuple[PolicyTier, ...]
    repeat: int = 0


@dataclass(frozen=True)
class ResponderContact:
    id: str
    name: str
    phone: str
    active: bool = True
    opted_out: bool = False

    @property
    def pageable(self) -> bool:
        return self.active and not self.opted_out


def responders_needed(policy: Policy, schedules: dict[str, Schedule], at: datetime) -> set[str]:
    """The responders a snapshot at `at` can name: direct targets and whoever each schedule has on call."""
    needed: set[str] = set()
    for tier in policy.tiers:
        for target in tier.targets:
            if "schedule" in target:
                schedule = schedules.get(target["schedule"])
                responder_id = on_call(schedule, at) if schedule else None
                if responder_id is not None:
                    needed.add(responder_id)
            else:
                needed.add(target["responder"])
    return needed


def schedules_named(policy: Policy) -> set[str]:
    return {target["schedule"] for tier in policy.tiers for target in tier.targets if "schedule" in target}


def build_snapshot(
    policy: Policy,
    responders: dict[str, ResponderContact],
    schedules: dict[str, Schedule],
    at: datetime,
) -> EscalationSnapshot:
    tiers = []
    for tier in policy.tiers:
        targets: dict[str, Target] = {}
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
            contact = responders.get(responder_id)
            if contact is None or not contact.pageable:
                unresolved.append(f"responder:{responder_id}")
                continue
            targets.setdefault(contact.id, Target(contact.id, contact.name, contact.phone))
        tiers.append(TierSnapshot(tier.timeout_s, tuple(targets.values()), tuple(unresolved)))
    return EscalationSnapshot(policy.id, tuple(tiers), policy.repeat)


def step_plan(snapshot: EscalationSnapshot) -> tuple[list[int], list[int]]:
    """Unroll tiers x (repeat + 1) into per-step timeouts and 1-based tier numbers: the state machine walks a flat
    list because ASL has no modulo."""
    timeouts: list[int] = []
    tiers: list[int] = []
    for _ in range(snapshot.repeat + 1):
        for number, tier in enumerate(snapshot.tiers, start=1):
            timeouts.append(tier.timeout_s)
            tiers.append(number)
    return timeouts, tiers


def tier_for_step(snapshot: EscalationSnapshot, step: int) -> int:
    return step % len(snapshot.tiers) + 1
