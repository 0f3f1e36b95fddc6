"""The two queues between deciders and workers: page requests (SMS, at the origination number's rate) and jobs
(everything else: deferred starts, timers firing, dispatch calls, delivery checks), so a burst of pages never delays
a check-in or a dispatch."""

from __future__ import annotations

import json
import threading
from typing import Protocol

from chalicelib.adapters.clients import aws_client
from chalicelib.config import settings

MAX_SQS_DELAY_S = 900


class Outbox(Protocol):
    def page(self, request: dict) -> None: ...

    def job(self, request: dict, delay_s: int = 0) -> None: ...


class SqsOutbox:
    def page(self, request: dict) -> None:
        aws_client("sqs").send_message(QueueUrl=settings().page_queue_url, MessageBody=json.dumps(request))

    def job(self, request: dict, delay_s: int = 0) -> None:
        aws_client("sqs").send_message(QueueUrl=settings().jobs_queue_url, MessageBody=json.dumps(request),
                                       DelaySeconds=max(0, min(int(delay_s), MAX_SQS_DELAY_S)))


class MemoryOutbox:
    """For service tests: what was queued, to be run by the test (tests/services/harness.py)."""

    def __init__(self) -> None:
        self.pages: list[dict] = []
        self.jobs: list[tuple[dict, int]] = []
        self._lock = threading.Lock()

    def page(self, request: dict) -> None:
        with self._lock:
            self.pages.append(request)

    def job(self, request: dict, delay_s: int = 0) -> None:
        with self._lock:
            self.jobs.append((request, delay_s))
