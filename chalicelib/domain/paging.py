"""Page records: one SMS (or call, or email) to one person for one step of one incident. Pure.

A page record is claimed before the SMS is published and marked sent after, so a redelivered page request skips
what was sent; the claim of a sender that died mid-publish goes stale after the paging lease and may be taken again
(at least once beats never for an emergency page).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Purpose(str, Enum):
    PAGE = "page"              # a tier's page
    EXHAUSTED = "exhausted"    # every tier paged, nobody acknowledged: everyone again
    DURESS = "duress"          # the shopper used her duress PIN
    CANCELLED = "cancelled"    # the shopper cancelled: responders already paged are told
    REMINDER = "reminder"      # acknowledged and not resolved in time
    PRESSED = "pressed"        # the shopper pressed again on an acknowledged incident
    SHOPPER = "shopper"        # status SMS to the shopper's callback phone
    DISPATCH = "dispatch"      # a dispatch the service could not place: the requester is told
    TEST = "test"              # an admin's test page; the reply OK verifies the number


# What each purpose records on the timeline once sent.
PAGING_PURPOSES = frozenset({Purpose.PAGE, Purpose.EXHAUSTED, Purpose.DURESS})


class PageState(str, Enum):
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # not sent (or not known to be): the next delivery of the request may claim it again


class Delivery(str, Enum):
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Page:
    incident_id: str
    page_key: str
    responder_id: str
    phone: str
    code: str
    purpose: str
    tier: int
    step: int
    state: str
    sent_at: str
    message_id: str | None = None
    channel: str = "sms"
    delivery: str | None = None
    delivered_at: str | None = None
    failover: tuple[str, ...] = ()

    def sent(self, message_id: str, at: str) -> Page:
        return replace(self, state=PageState.SENT.value, message_id=message_id, sent_at=at)


@dataclass(frozen=True)
class PageWrite:
    """A page record written together with an incident transition.

    expect: None writes unconditionally; "claim" requires that the page does not exist, failed, or is a claim that
    went stale (state sending, sent_at before `stale_before`); "sending" / "sent" require that state; "undelivered"
    requires state sent and no delivery status yet (receipts are final: the first one wins)."""

    page: Page
    expect: str | None = None
    stale_before: str | None = None


def page_key(purpose: str, step: int, responder_id: str) -> str:
    return f"{purpose}#{step:04d}#{responder_id}"


def steps_due(sent_step: int, up_to_step: int) -> range:
    """The steps whose pages go out with a request for `up_to_step`: every step not sent yet, in order. A tier
    overtaken before its pages went out (a manual ESC, a second press) is sent with the next one, never dropped."""
    return range(sent_step + 1, up_to_step + 1)
