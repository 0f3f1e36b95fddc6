"""Incident lifecycle: kinds, severities, references and the allowed status changes. Pure: no AWS, no clock."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum

from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.sms_commands import CODE_ALPHABET


class Status(str, Enum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    ROUTED = "routed"


OPEN_STATUSES = frozenset({Status.TRIGGERED, Status.ACKNOWLEDGED})
OUTCOMES = ("assisted", "police_dispatched", "medical_dispatched", "false_alarm", "no_contact", "other")


@dataclass(frozen=True)
class KindRule:
    severity: str
    paged: bool
    location_required: bool


# The contract's kinds. sev1 kinds are life-safety: paged at once and need a location to send help to.
KIND_RULES: dict[str, KindRule] = {
    "panic": KindRule("sev1", True, True),
    "medical": KindRule("sev1", True, True),
    "threat": KindRule("sev1", True, True),
    "accident": KindRule("sev1", True, True),
    "harassment": KindRule("sev2", True, False),
    "conduct": KindRule("sev2", True, False),
    "fraud": KindRule("sev3", True, False),
    "account_breach": KindRule("sev3", True, False),
    "privacy": KindRule("sev3", True, False),
    "delivery_issue": KindRule("sev4", False, False),
}
KINDS = tuple(KIND_RULES)

REFERENCE_PREFIX = "TS-"
REFERENCE_LENGTH = 6


def new_reference() -> str:
    """TS- and six characters of an alphabet without look-alikes (0/O, 1/I/L), so it can be read over the phone."""
    return REFERENCE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def looks_like_reference(value: str) -> bool:
    body = value.upper().removeprefix(REFERENCE_PREFIX)
    return (
        value.upper().startswith(REFERENCE_PREFIX)
        and len(body) == REFERENCE_LENGTH
        and all(c in CODE_ALPHABET for c in body)
    )


def initial_status(kind: str) -> Status:
    return Status.TRIGGERED if KIND_RULES[kind].paged else Status.ROUTED


def check_can_acknowledge(status: str) -> None:
    if status != Status.TRIGGERED:
        raise InvalidTransition(f"incident is {status}, it cannot be acknowledged")


def check_can_resolve(status: str) -> None:
    # Resolving implies acknowledging: a responder who fixes it straight away need not ACK first.
    if status not in (Status.TRIGGERED, Status.ACKNOWLEDGED):
        raise InvalidTransition(f"incident is {status}, it cannot be resolved")


def check_can_cancel(status: str) -> None:
    if status not in (Status.TRIGGERED, Status.ACKNOWLEDGED, Status.ROUTED):
        raise InvalidTransition(f"incident is {status}, it cannot be cancelled")


def hash_pin(pin: str, salt: str) -> str:
    """PINs are 4-6 digits: a slow salted hash keeps a leaked table from giving them away in microseconds."""
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), 50_000).hex()


def pin_matches(pin: str, salt: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_pin(pin, salt), expected_hash)
