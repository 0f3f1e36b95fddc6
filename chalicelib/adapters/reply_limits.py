"""A cap on automatic SMS answers per number (HELP, unknown commands, refusals): two automated systems must not text
each other forever. Confirmations of actions are never capped (contract 4.1)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.domain.errors import Unavailable


class DynamoDBReplyLimiter:
    def __init__(self, per_window: int, window_s: int):
        self._per_window = per_window
        self._window_s = window_s

    def allow(self, phone: str) -> bool:
        from chalicelib.adapters.models import LookupModel

        window = int(time.time()) // self._window_s
        item = LookupModel(f"smsreply#{phone}#{window}")
        try:
            item.update(actions=[LookupModel.count.add(1),
                                 LookupModel.expires_at.set(timedelta(seconds=2 * self._window_s))])
        except UpdateError as exc:
            raise Unavailable("reply limiter unavailable") from exc
        return int(item.count) <= self._per_window


class MemoryReplyLimiter:
    def __init__(self, per_window: int, window_s: int):
        self._per_window = per_window
        self._window_s = window_s
        self._counts: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def allow(self, phone: str) -> bool:
        with self._lock:
            key = (phone, int(time.time()) // self._window_s)
            self._counts[key] += 1
            return self._counts[key] <= self._per_window
