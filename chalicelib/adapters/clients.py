"""boto3 clients, created once per process on first use (never at import: it costs cold-start time)."""

from __future__ import annotations

import functools
import threading
from functools import lru_cache
from typing import Any

from chalicelib.config import settings

# A publish that is retried after its answer was lost may send the SMS twice: SMS clients never retry in botocore
# (the sender retries throttling itself, when nothing was sent). These bound how long one publish can take, which
# the paging lease must outlast (services/sender.py).
SMS_CONNECT_TIMEOUT_S = 2
SMS_READ_TIMEOUT_S = 4
SMS_PUBLISH_MAX_S = SMS_CONNECT_TIMEOUT_S + SMS_READ_TIMEOUT_S


@lru_cache(maxsize=1)
def botocore_session() -> Any:
    """One botocore session for every client of the process, boto3's and PynamoDB's (adapters/models.py).

    Each session loads botocore's endpoint and service models again (~0.1 s on a cold start); a shared one loads
    them once and each further client costs a few milliseconds. Clients are thread-safe, creating them from one
    session may not be: creation is serialised."""
    from botocore.session import get_session

    session = get_session()
    lock = threading.Lock()
    create_client = session.create_client

    @functools.wraps(create_client)
    def create_client_one_at_a_time(*args, **kwargs):
        with lock:
            return create_client(*args, **kwargs)

    session.create_client = create_client_one_at_a_time
    return session


@lru_cache(maxsize=None)
def aws_client(service: str, purpose: str = "default") -> Any:
    from botocore.config import Config

    cfg = settings()
    if purpose == "sms":
        config = Config(connect_timeout=SMS_CONNECT_TIMEOUT_S, read_timeout=SMS_READ_TIMEOUT_S,
                        retries={"mode": "standard", "total_max_attempts": 1})
    else:
        # Short timeouts: a caller in danger waits on these. botocore's standard retry mode backs off on throttling.
        config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 4})
    return boto3_session().client(service, region_name=cfg.region, endpoint_url=cfg.aws_endpoint_url, config=config)


@lru_cache(maxsize=1)
def boto3_session() -> Any:
    """One boto3 session over the shared botocore session: each boto3 session registers its own handlers on the
    botocore session it wraps (S3's upload methods among them), so two would register them twice."""
    import boto3

    return boto3.session.Session(botocore_session=botocore_session())
