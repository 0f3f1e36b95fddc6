"""Request bodies of the public API and the inbound two-way SMS message, as pydantic models.

Validation errors become the contract's 422 with one `details` entry per bad field (see `validation_details`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.domain.incidents import KIND_RULES, KINDS, OUTCOMES

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
IDENTIFIER = r"^[A-Za-z0-9_.-]{1,64}$"

Kind = Literal[KINDS]  # type: ignore[valid-type]
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


def _e164(value: str | None) -> str | None:
    if value is not None and not E164.match(value):
        raise ValueError("must be an E.164 phone number like +14155550100")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Location(Strict):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)


class IncidentCreate(Strict):
    kind: Kind
    location: Location | None = None
    order_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    cancel_pin: Annotated[str, Field(pattern=r"^\d{4,6}$")] | None = None
    callback_phone: str | None = None

    _phone = field_validator("callback_phone")(_e164)

    @model_validator(mode="after")
    def _location_for_life_safety(self) -> IncidentCreate:
        if KIND_RULES[self.kind].location_required and self.location is None:
            raise ValueError("location: is required for this kind")
        return self


ATTACHMENT_TYPES = ("image/jpeg", "image/png", "image/heic", "image/webp", "application/pdf", "text/plain")
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class AttachmentRequest(Strict):
    filename: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")]
    content_type: Literal[ATTACHMENT_TYPES]  # type: ignore[valid-type]
    size_bytes: int = Field(ge=1, le=MAX_ATTACHMENT_BYTES)


class CancelRequest(Strict):
    pin: str | None = Field(default=None, max_length=16)
    reason: Annotated[str, Field(max_length=500)] | None = None


class NoteRequest(Strict):
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class ResolveRequest(Strict):
    outcome: Outcome
    note: Annotated[str, Field(max_length=2000)] | None = None


class ReviewRequest(Strict):
    findings: Annotated[str, Field(min_length=1, max_length=5000)]
    follow_up_actions: Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]], Field(max_length=50)] = []


class ResponderPut(Strict):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    phone: str
    active: bool = True

    _phone = field_validator("phone")(_e164)


class TargetRef(Strict):
    responder: Annotated[str, Field(pattern=IDENTIFIER)] | None = None
    schedule: Annotated[str, Field(pattern=IDENTIFIER)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetRef:
        if (self.responder is None) == (self.schedule is None):
            raise ValueError("a target names exactly one of responder or schedule")
        return self


class TierPut(Strict):
    targets: Annotated[list[TargetRef], Field(min_length=1, max_length=100)]
    timeout_s: int = Field(ge=1, le=86_400)


class PolicyPut(Strict):
    tiers: Annotated[list[TierPut], Field(min_length=1, max_length=10)]
    repeat: int = Field(default=0, ge=0, le=10)


class RotationPut(Strict):
    responders: Annotated[list[Annotated[str, Field(pattern=IDENTIFIER)]], Field(min_length=1, max_length=100)]
    shift_hours: int = Field(ge=1, le=24 * 28)
    handoff: str


class OverridePut(Strict):
    responder: Annotated[str, Field(pattern=IDENTIFIER)]
    start: str
    end: str


class SchedulePut(Strict):
    time_zone: Annotated[str, Field(min_length=1, max_length=64)]
    rotation: RotationPut
    overrides: Annotated[list[OverridePut], Field(max_length=200)] = []


class RoutingPut(BaseModel):
    """kind -> policy id, plus "default". Unknown keys are named in the error."""

    model_config = ConfigDict(extra="allow")
    default: Annotated[str, Field(pattern=IDENTIFIER)] | None = None

    @model_validator(mode="after")
    def _known_kinds(self) -> RoutingPut:
        for key, value in (self.model_extra or {}).items():
            if key not in KIND_RULES:
                raise ValueError(f"{key}: is not a known kind")
            if not isinstance(value, str) or not re.match(IDENTIFIER, value):
                raise ValueError(f"{key}: must be a policy id")
        return self

    def routes(self) -> dict[str, str]:
        routes = dict(self.model_extra or {})
        if self.default:
            routes["default"] = self.default
        return routes


class InboundSms(BaseModel):
    """AWS End User Messaging two-way SMS, as published to the inbound SNS topic."""

    model_config = ConfigDict(extra="ignore")
    originationNumber: str
    destinationNumber: str | None = None
    messageKeyword: str | None = None
    messageBody: str = Field(max_length=1600)
    inboundMessageId: Annotated[str, Field(min_length=1, max_length=200)]
    previousPublishedMessageId: str | None = None


def validation_details(error: ValidationError) -> list[dict]:
    details = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        # Model-level rules prefix their message with the field they concern ("location: is required").
        if ": " in message and not field:
            field, message = message.split(": ", 1)
        details.append({"field": field or "body", "problem": message})
    return details
