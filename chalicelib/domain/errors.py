"""One exception class per failure a use case can report. Pure: app.py decides what each means over HTTP (its
status code), the SMS inbox what each means as a reply."""

from __future__ import annotations


class ServiceError(Exception):
    code = "internal_error"

    def __init__(self, message: str, details: list[dict] | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.extra = extra or {}


class BadRequest(ServiceError):
    code = "bad_request"


class Unauthenticated(ServiceError):
    code = "unauthenticated"


class Forbidden(ServiceError):
    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class AlreadyAcknowledged(Conflict):
    code = "already_acknowledged"


class InvalidTransition(Conflict):
    code = "invalid_state"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class DispatchActive(Conflict):
    code = "dispatch_active"


class ValidationFailed(ServiceError):
    code = "validation_error"

    @classmethod
    def field(cls, field: str, problem: str, message: str | None = None) -> ValidationFailed:
        return cls(message or f"{field} {problem}", [{"field": field, "problem": problem}])


class RateLimited(ServiceError):
    code = "rate_limited"


class Unavailable(ServiceError):
    """A dependency failed; nothing half-done was kept, so the same request (same Idempotency-Key) may be retried."""

    code = "unavailable"


class Busy(Exception):
    """A decision that must wait: a pager holds the paging lease. The store retries the decision shortly."""


class DuplicateMessage(Exception):
    """A unique claim (an inbound SMS id, a webhook event id) was already taken: the message was processed before."""
