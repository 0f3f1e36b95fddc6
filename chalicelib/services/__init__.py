"""Use cases, wired once per process on first use (`get_services()`), never at import."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

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
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    cfg = settings()
    bind_models(cfg)
    store = IncidentStore(Connection(region=cfg.region, host=cfg.aws_endpoint_url))
    pages = PageStore()
    sender = SnsSmsSender()
    idempotency = DynamoDBPersistenceLayer(table_name=cfg.idempotency_table, boto3_client=aws_client("dynamodb"))
    admin = AdminService(DirectoryStore())
    escalation = EscalationService(store, pages, sender, StepFunctionsEscalation(), PageQueue(), cfg.paging_lease_s)
    return Services(
        admin=admin,
        incidents=IncidentService(store, admin, escalation, idempotency, cfg.paging_lease_s, cfg.cancel_pin_max_attempts),
        escalation=escalation,
        responses=ResponseService(
            store, pages, admin, escalation, sender, idempotency, cfg.paging_lease_s, cfg.sms_replies_per_window,
            cfg.sms_reply_window_s,
        ),
        review=ReviewService(store),
    )
