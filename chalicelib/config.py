"""Settings from the environment, read lazily and once.

Nothing here runs at import time: Lambda cold starts and tests both set the environment before the first call to
`settings()`; tests that change it call `settings.cache_clear()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    region: str
    # Set only locally (moto server); None on AWS so boto3 and PynamoDB use the real endpoints.
    aws_endpoint_url: str | None
    incidents_table: str
    timeline_table: str
    pages_table: str
    directory_table: str
    lookups_table: str
    checkins_table: str
    idempotency_table: str
    escalation_state_machine_arn: str
    timer_state_machine_arn: str
    page_queue_url: str
    jobs_queue_url: str
    evidence_bucket: str | None
    sms_origination_number: str | None
    # SMS per second this process may publish: the origination number's rate over the sender's concurrency.
    sms_rate_per_s: float | None
    # Tokens: HS256 with a shared secret locally; RS256 via the identity provider's JWKS in production.
    token_secret: str | None
    token_jwks_url: str | None
    token_issuer: str
    token_audience: str
    # How long a sender may hold the paging lease for one publish (seconds); leaving `triggered` waits for it.
    paging_lease_s: int
    cancel_pin_max_attempts: int
    sms_replies_per_window: int
    sms_reply_window_s: int
    retention_days: int
    # Emergency dispatch provider (adapters/dispatch.py); unset URL: dispatch is unavailable (503).
    dispatch_api_url: str | None
    dispatch_api_token: str | None
    dispatch_webhook_secret: str | None
    # Failover channels: voice through End User Messaging ("eum") or the local dev server ("dev"); email through SES.
    voice_provider: str
    voice_dev_url: str | None
    voice_origination_number: str | None
    email_from: str


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _required(name: str) -> str:
    value = _env(name)
    if value is None:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


@lru_cache(maxsize=1)
def settings() -> Settings:
    rate = _env("SMS_RATE_PER_S")
    return Settings(
        region=_env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1")),
        aws_endpoint_url=_env("AWS_ENDPOINT_URL"),
        incidents_table=_required("INCIDENTS_TABLE"),
        timeline_table=_required("TIMELINE_TABLE"),
        pages_table=_required("PAGES_TABLE"),
        directory_table=_required("DIRECTORY_TABLE"),
        lookups_table=_required("LOOKUPS_TABLE"),
        checkins_table=_required("CHECKINS_TABLE"),
        idempotency_table=_required("IDEMPOTENCY_TABLE"),
        escalation_state_machine_arn=_required("ESCALATION_STATE_MACHINE_ARN"),
        timer_state_machine_arn=_required("TIMER_STATE_MACHINE_ARN"),
        page_queue_url=_required("PAGE_QUEUE_URL"),
        jobs_queue_url=_required("JOBS_QUEUE_URL"),
        evidence_bucket=_env("EVIDENCE_BUCKET"),
        sms_origination_number=_env("SMS_ORIGINATION_NUMBER"),
        sms_rate_per_s=float(rate) if rate else None,
        token_secret=_env("TOKEN_SECRET"),
        token_jwks_url=_env("TOKEN_JWKS_URL"),
        token_issuer=_env("TOKEN_ISSUER", "trust-safety-local"),
        token_audience=_env("TOKEN_AUDIENCE", "trust-safety-api"),
        paging_lease_s=int(_env("PAGING_LEASE_S", "30")),
        cancel_pin_max_attempts=int(_env("CANCEL_PIN_MAX_ATTEMPTS", "5")),
        sms_replies_per_window=int(_env("SMS_REPLIES_PER_WINDOW", "5")),
        sms_reply_window_s=int(_env("SMS_REPLY_WINDOW_S", "600")),
        retention_days=int(_env("RETENTION_DAYS", "180")),
        dispatch_api_url=_env("DISPATCH_API_URL"),
        dispatch_api_token=_env("DISPATCH_API_TOKEN"),
        dispatch_webhook_secret=_env("DISPATCH_WEBHOOK_SECRET"),
        voice_provider=_env("VOICE_PROVIDER", "eum"),
        voice_dev_url=_env("VOICE_DEV_URL"),
        voice_origination_number=_env("VOICE_ORIGINATION_NUMBER"),
        email_from=_env("EMAIL_FROM", "alerts@example.com"),
    )
