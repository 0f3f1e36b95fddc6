"""Use cases, wired once per process on first use (`get_services()`), never at import.

`build_services()` takes the adapters, so tests wire the same services to the in-memory twins (tests/services/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from chalicelib.services.access import Access
from chalicelib.services.admin import AdminService
from chalicelib.services.checkins import CheckIns
from chalicelib.services.delivery import Deliveries
from chalicelib.services.dispatching import Dispatching
from chalicelib.services.escalation import Dependencies, EscalationStarter, PageSender
from chalicelib.services.intake import IncidentIntake
from chalicelib.services.jobs import Jobs
from chalicelib.services.responding import Responding
from chalicelib.services.review import Review
from chalicelib.services.sms_inbox import SmsInbox


@dataclass
class Adapters:
    store: Any
    directory: Any
    checkins: Any
    outbox: Any
    workflows: Any
    sms: Any
    voice: Any
    mailer: Any
    reply_limiter: Any
    evidence: Any = None
    dispatch_provider: Any = None  # a callable returning the provider, or None when dispatch is not configured
    once: Any = None               # powertools' idempotent wrapper for account-level SMS commands


@dataclass(frozen=True)
class Tunables:
    lease_s: float = 30
    pin_max_checks: int = 5
    webhook_secret: str | None = None
    directory_cache_s: float = 5.0


@dataclass
class Services:
    adapters: Adapters
    admin: AdminService
    access: Access
    intake: IncidentIntake
    escalation: EscalationStarter
    sender: PageSender
    responding: Responding
    inbox: SmsInbox
    dispatching: Dispatching
    deliveries: Deliveries
    checkins: CheckIns
    jobs: Jobs
    review: Review


def build_services(adapters: Adapters, tunables: Tunables = Tunables()) -> Services:
    store = adapters.store
    now = store.now
    admin = AdminService(adapters.directory, now, tunables.directory_cache_s, adapters.outbox)
    access = Access(admin.contact)
    dispatching = Dispatching(store, adapters.outbox, adapters.dispatch_provider or (lambda: None),
                              tunables.webhook_secret)
    deliveries = Deliveries(store, admin.contacts, adapters.voice, adapters.mailer)
    deps = Dependencies(store, admin.contacts, adapters.outbox, adapters.workflows, adapters.sms, tunables.lease_s,
                        failover=deliveries.failover)
    escalation = EscalationStarter(deps)
    sender = PageSender(deps, dispatching.request_on_exhaustion)
    intake = IncidentIntake(store, admin, escalation, adapters.outbox, access, tunables.lease_s,
                            tunables.pin_max_checks, adapters.evidence, dispatching)
    responding = Responding(store, access, escalation, adapters.outbox, adapters.workflows, tunables.lease_s,
                            dispatching)
    inbox = SmsInbox(store, admin, responding, dispatching, adapters.sms, adapters.reply_limiter, tunables.lease_s,
                     adapters.once)
    checkins = CheckIns(adapters.checkins, intake, adapters.workflows, now)
    jobs = Jobs(store, escalation, adapters.outbox, adapters.workflows, dispatching, deliveries, checkins)
    review = Review(store, access, now)
    return Services(adapters, admin, access, intake, escalation, sender, responding, inbox, dispatching, deliveries,
                    checkins, jobs, review)


@lru_cache(maxsize=1)
def get_services() -> Services:
    """The AWS wiring. Clients and connections are created here once per process, on the first request."""
    from pynamodb.connection import Connection

    from chalicelib.adapters.checkin_store import DynamoDBCheckInStore
    from chalicelib.adapters.directory import DynamoDBDirectory
    from chalicelib.adapters.dynamodb_store import DynamoDBIncidentStore
    from chalicelib.adapters.evidence import EvidenceBucket
    from chalicelib.adapters.failover import DevServerVoice, EndUserMessagingVoice, SesMailer
    from chalicelib.adapters.models import bind_models
    from chalicelib.adapters.outbox import SqsOutbox
    from chalicelib.adapters.reply_limits import DynamoDBReplyLimiter
    from chalicelib.adapters.sms import SnsSmsSender
    from chalicelib.adapters.workflow import StepFunctionsWorkflows
    from chalicelib.config import settings

    cfg = settings()
    bind_models(cfg)
    retention = timedelta(days=cfg.retention_days)
    connection = Connection(region=cfg.region, host=cfg.aws_endpoint_url)
    adapters = Adapters(
        store=DynamoDBIncidentStore(connection, retention=retention),
        directory=DynamoDBDirectory(connection),
        checkins=DynamoDBCheckInStore(retention),
        outbox=SqsOutbox(),
        workflows=StepFunctionsWorkflows(),
        sms=SnsSmsSender(),
        voice=DevServerVoice() if cfg.voice_provider == "dev" else EndUserMessagingVoice(),
        mailer=SesMailer(),
        reply_limiter=DynamoDBReplyLimiter(cfg.sms_replies_per_window, cfg.sms_reply_window_s),
        evidence=EvidenceBucket(),
        dispatch_provider=_dispatch_provider(cfg),
        once=_idempotent_once(cfg),
    )
    return build_services(adapters, Tunables(cfg.paging_lease_s, cfg.cancel_pin_max_attempts,
                                             cfg.dispatch_webhook_secret))


def _dispatch_provider(cfg):
    provider = None

    def get():
        nonlocal provider
        if provider is None and cfg.dispatch_api_url and cfg.dispatch_api_token:
            from chalicelib.adapters.dispatch import HttpAlarmProvider

            provider = HttpAlarmProvider(cfg.dispatch_api_url, cfg.dispatch_api_token)
        return provider

    return get


_lambda_context: list[Any] = []


def register_lambda_context(context: Any) -> None:
    """Idempotency records of a request in progress expire with the invocation's remaining time; without the context
    a Lambda that timed out would block its own retry until the record's TTL."""
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        _lambda_context[:] = [context]


def _idempotent_once(cfg):
    """SMS commands that touch no incident (STOP, START, OK, HELP) are processed once per inboundMessageId."""
    wrapped = None

    def once(function, message):
        nonlocal wrapped
        if wrapped is None:
            from aws_lambda_powertools.utilities.idempotency import (
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            from chalicelib.adapters.clients import aws_client

            config = IdempotencyConfig(event_key_jmespath="inboundMessageId", raise_on_no_idempotency_key=True,
                                       expires_after_seconds=7 * 24 * 3600)
            persistence = DynamoDBPersistenceLayer(table_name=cfg.idempotency_table,
                                                   boto3_client=aws_client("dynamodb"))

            @idempotent_function(data_keyword_argument="message", config=config, persistence_store=persistence)
            def process(message: dict, run) -> dict:
                return {"outcome": run()}

            wrapped = (process, config)
        process, config = wrapped
        if _lambda_context:
            config.register_lambda_context(_lambda_context[0])
        return process(message=message.model_dump(), run=lambda: function(message))["outcome"]

    return once

