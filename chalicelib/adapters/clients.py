"""boto3 clients, created once per process on first use (never at import: it costs cold-start time)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.config import settings


@lru_cache(maxsize=None)
def aws_client(service: str) -> Any:
    import boto3  # deferred: importing boto3 is the largest part of a cold start
    from botocore.config import Config

    cfg = settings()
    # Short timeouts: a caller in danger waits on these. botocore's standard retry mode backs off on throttling.
    config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 4})
    return boto3.client(service, region_name=cfg.region, endpoint_url=cfg.aws_endpoint_url, config=config)
