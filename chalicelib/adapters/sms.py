"""SMS out through SNS, at the origination number's rate, never twice by retry.

botocore does not retry a publish (adapters/clients.py): a publish whose answer was lost may have been delivered,
and a silent retry would page the responder twice while the timeline shows one page. Throttling is different: SNS
refused the message, nothing was sent, so it is retried here with backoff. Any other failure raises SmsNotSent
(nothing was sent) or SmsOutcomeUnknown (it may have been); the caller records it and the request is retried from
its queue, where a second SMS is an honest, recorded retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from chalicelib.adapters.clients import SMS_PUBLISH_MAX_S, aws_client
from chalicelib.config import settings

log = logging.getLogger(__name__)
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException"})
NOT_SENT_CODES = THROTTLING_CODES | {"InvalidParameter", "InvalidParameterException", "OptedOut",
                                     "AuthorizationError", "KMSThrottling", "EndpointDisabled"}


class SmsNotSent(Exception):
    """SNS refused the SMS: nothing was sent."""


class SmsOutcomeUnknown(Exception):
    """The publish failed in a way that does not tell whether the SMS left (a timeout, a lost answer, a 5xx)."""


class SmsSender(Protocol):
    def send(self, phone: str, text: str, finish_by: float | None = None) -> str: ...


class RateLimiter:
    """A token bucket for this process: SMS_RATE_PER_S is the origination number's rate (10DLC 1 part/s,
    toll-free 3/s, short code 100/s) divided by the sender's maximum concurrency (infra)."""

    def __init__(self, rate_per_s: float | None):
        self._interval = 1.0 / rate_per_s if rate_per_s else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


_limiter: RateLimiter | None = None


def rate_limiter() -> RateLimiter:
    global _limiter
    if _limiter is None:
        _limiter = RateLimiter(settings().sms_rate_per_s)
    return _limiter


class SnsSmsSender:
    def send(self, phone: str, text: str, finish_by: float | None = None) -> str:
        """Publishes one transactional SMS and returns its message id. `finish_by` (monotonic): do not start a
        publish that could still be running then (the caller's paging lease ends there)."""
        from botocore.exceptions import ClientError

        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        origination = settings().sms_origination_number
        if origination:
            # Pages must come from the two-way number, or replies land on a number nobody listens to.
            attributes["AWS.MM.SMS.OriginationNumber"] = {"DataType": "String", "StringValue": origination}
        for attempt in range(6):
            rate_limiter().wait()
            if finish_by is not None and time.monotonic() + SMS_PUBLISH_MAX_S > finish_by:
                raise SmsNotSent("no time left in the paging lease for another publish")
            try:
                response = aws_client("sns", "sms").publish(PhoneNumber=phone, Message=text,
                                                           MessageAttributes=attributes)
                return response["MessageId"]
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code in THROTTLING_CODES:
                    time.sleep(random.uniform(0, min(2.0, 0.1 * 2 ** attempt)))
                    continue
                if code in NOT_SENT_CODES or 400 <= status < 500:
                    raise SmsNotSent(code or str(status)) from exc
                raise SmsOutcomeUnknown(code or str(status)) from exc
            except Exception as exc:  # noqa: BLE001 - timeouts, connection resets: maybe sent
                raise SmsOutcomeUnknown(type(exc).__name__) from exc
        raise SmsNotSent("throttled")

    def opt_in(self, phone: str) -> None:
        """START: take the number off AWS's own opt-out list too (possible once every 30 days per number)."""
        try:
            aws_client("sns").opt_in_phone_number(phoneNumber=phone)
        except Exception:  # noqa: BLE001 - the service's own flag is what gates pages; AWS's list is best effort
            log.warning("could not opt the number back in at AWS")


class RecordingSmsSender:
    """For service tests without AWS: keeps what would have been sent; can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.fail_next: list[Exception] = []
        self.opted_in: list[str] = []
        self._lock = threading.Lock()

    def send(self, phone: str, text: str, finish_by: float | None = None) -> str:
        with self._lock:
            if self.fail_next:
                raise self.fail_next.pop(0)
            message_id = f"msg-{len(self.sent) + 1}"
            self.sent.append({"to": phone, "body": text, "message_id": message_id})
            return message_id

    def opt_in(self, phone: str) -> None:
        self.opted_in.append(phone)

    def to(self, *phones: str) -> list[dict]:
        return [m for m in self.sent if m["to"] in phones]
