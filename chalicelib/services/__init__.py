"""Use cases, wired once per process on first use (`get_services()`), never at import."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from chalicelib.services.admin import AdminService
from chalicelib.services.escalation import EscalationService
from chalicelib.services.incidents import IncidentService
from chalicelib.services.responses import ResponseService
from chalicelib.services.review import ReviewService


@dataclass(frozen=True)
class Services:
    admin: AdminService
    incidents: IncidentService
    escalation: EscalationService
    responses: ResponseService
    review: ReviewService
    idempotency_configs: tuple[Any, ...]

    def register_lambda_context(self, context: Any) -> None:
        """Idempotency records of a request in progress expire with the invocation's remaining time; without the
        context a Lambda that timed out would block its own retry until the record's TTL."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            for config in self.idempotency_configs:
                config.register_lambda_context(context)


@lru_cache(maxsize=1)
def get_services() -> Services:
    from pynamodb.connection import Connection

    from chalicelib.adapters.clients import aws_client
    from chalicelib.adapters.directory_store import DirectoryStore
    from chalicelib.adapters.incident_store import IncidentStore
    from chalicelib.adapters.models import bind_models
    from chalicelib.adapters.page_queue import PageQueue
    from chalicelib.adapters.page_store import PageStore
    from chalicelib.adapters.sms import SnsSmsSender
    from chalicelib.adapters.workflow import StepFunctionsEscalation
    from chalicelib.config import settings
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    cfg = settings()
    bind_models(cfg)
    store = IncidentStore(Connection(region=cfg.region, host=cfg.aws_endpoint_url), timedelta(days=cfg.retention_days))
    pages = PageStore()
    sender = SnsSmsSender()

    def idempotency_store() -> DynamoDBPersistenceLayer:
        # One per idempotent function: a persistence layer keeps the config (key path) of the function it serves.
        return DynamoDBPersistenceLayer(table_name=cfg.idempotency_table, boto3_client=aws_client("dynamodb"))

    # Same key + body within 24 h returns the same incident; another body under the same key is refused.
    open_config = IdempotencyConfig(event_key_jmespath="[owner, key]", payload_validation_jmespath="body",
                                    raise_on_no_idempotency_key=True, expires_after_seconds=24 * 3600)
    # SNS delivers at least once: the same inbound SMS id is processed once for a week.
    inbound_config = IdempotencyConfig(event_key_jmespath="inboundMessageId", raise_on_no_idempotency_key=True,
                                       expires_after_seconds=7 * 24 * 3600)
    admin = AdminService(DirectoryStore())
    escalation = EscalationService(store, pages, sender, StepFunctionsEscalation(), PageQueue(), cfg.paging_lease_s)
    return Services(
        admin=admin,
        incidents=IncidentService(store, admin, escalation, idempotency_store(), open_config, cfg.paging_lease_s,
                                  cfg.cancel_pin_max_attempts),
        escalation=escalation,
        responses=ResponseService(
            store, pages, admin, escalation, sender, idempotency_store(), inbound_config, cfg.paging_lease_s, cfg.sms_replies_per_window,
            cfg.sms_reply_window_s,
        ),
        review=ReviewService(store),
        idempotency_configs=(open_config, inbound_config),
    )
