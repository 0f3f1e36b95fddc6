"""Request bodies of the public API and the inbound two-way SMS message, as pydantic models.

Validation errors become the contract's 422 with one `details` entry per bad field (see `validation_details`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.domain.checkins import MAX_DUE_IN_S, MIN_DUE_IN_S
from chalicelib.domain.incidents import KIND_RULES, KINDS, OUTCOMES

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
IDENTIFIER = r"^[A-Za-z0-9_.-]{1,64}$"
# ASCII digits only: \d would also take Arabic-Indic and other Unicode digits, which no keypad the shopper uses sends.
PIN = r"^[0-9]{4,6}$"
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")

Kind = Literal[KINDS]  # type: ignore[valid-type]
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


def _a_number(value):
    """JSON true/false and strings are not coordinates (pydantic would take true as 1.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return value


Number = Annotated[float, BeforeValidator(_a_number)]


def _whole_number(value):
    """JSON has one number type: 300 and 300.0 are the same integer; true, "300" and 300.5 are not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def _e164(value: str | None) -> str | None:
    if value is not None and not E164.match(value):
        raise ValueError("must be an E.164 phone number like +14155550100")
    return value


class Strict(BaseModel):
    # defer_build: a model's validator is built when it first validates, not at import. A Lambda's first request
    # then builds the one or two models it uses instead of all twenty (P2: `import app` spent ~60 ms here).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Location(Strict):
    lat: Number = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: Number = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: Number | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)


class IncidentCreate(Strict):
    kind: Kind
    location: Location | None = None
    order_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    cancel_pin: Annotated[str, Field(pattern=PIN)] | None = None
    # Cancels like the cancel PIN for whoever holds the phone; tells responders she is under duress (contract 4.2).
    duress_pin: Annotated[str, Field(pattern=PIN)] | None = None
    callback_phone: str | None = None
    # Kind "test" only (the post-deploy smoke test, admins): the one responder it pages.
    test_responder: Annotated[str, Field(pattern=IDENTIFIER)] | None = None

    _phone = field_validator("callback_phone")(_e164)

    @model_validator(mode="after")
    def _rules(self) -> IncidentCreate:
        if KIND_RULES[self.kind].location_required and self.location is None:
            raise ValueError("location: is required for this kind")
        if self.duress_pin is not None and self.duress_pin == self.cancel_pin:
            raise ValueError("duress_pin: must differ from cancel_pin")
        if (self.kind == "test") != (self.test_responder is not None):
            raise ValueError("test_responder: is required for kind test, and only for it")
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


class DispatchRequest(Strict):
    reason: Annotated[str, Field(max_length=500)] | None = None


class CheckInCreate(Strict):
    due_in_s: WholeNumber = Field(ge=MIN_DUE_IN_S, le=MAX_DUE_IN_S)
    location: Location | None = None
    order_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    note: Annotated[str, Field(max_length=500)] | None = None


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
    # Failover channels (contract 4.3): a voice call reading the page, and/or an email.
    voice: bool = False
    email: Annotated[str, Field(max_length=254)] | None = None

    _phone = field_validator("phone")(_e164)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError("must be an email address like oncall@example.com")
        return value


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
    # Acknowledged and not resolved within this: a reminder, then back to the team (contract 4.2).
    ack_timeout_s: int | None = Field(default=None, ge=1, le=86_400)
    dispatch_on_exhaustion: bool = False
    # A page not delivered within this fails over to the responder's voice and email (contract 4.3).
    delivery_timeout_s: int | None = Field(default=None, ge=5, le=900)
    require_verified: bool = False


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

    model_config = ConfigDict(extra="allow", defer_build=True)
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

    model_config = ConfigDict(extra="ignore", defer_build=True)
    originationNumber: str
    destinationNumber: str | None = None
    messageKeyword: str | None = None
    # Any length is answered (a long message gets the help text); the parser reads a bounded prefix.
    messageBody: str
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
