"""One exception class per failure the API reports; app.py maps each to its status code and error code."""

from __future__ import annotations


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: list[dict] | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.extra = extra or {}


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class Unauthenticated(ServiceError):
    status, code = 401, "unauthenticated"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class AlreadyAcknowledged(Conflict):
    code = "already_acknowledged"


class InvalidTransition(Conflict):
    code = "invalid_state"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class ValidationFailed(ServiceError):
    status, code = 422, "validation_error"


class RateLimited(ServiceError):
    status, code = 429, "rate_limited"


class Unavailable(ServiceError):
    """A dependency failed; nothing half-done was kept, so the same request (same Idempotency-Key) may be retried."""

    status, code = 503, "unavailable"
