"""The outbox between deciders (the escalation workflow, cancel, acknowledge) and the SMS sender."""

from __future__ import annotations

import json

from chalicelib.adapters.clients import aws_client
from chalicelib.config import settings


class PageQueue:
    def enqueue(self, request: dict) -> None:
        aws_client("sqs").send_message(QueueUrl=settings().page_queue_url, MessageBody=json.dumps(request))
