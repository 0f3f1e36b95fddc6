"""Check-ins, in DynamoDB or in memory (one contract test suite for both). A change is written only if the
check-in's `version` is the one read, like an incident's."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, replace
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.checkins import CheckIn


class CheckInConflict(Exception):
    """Created already (same id), or changed since it was read."""


class CheckInStore(ABC):
    @abstractmethod
    def get(self, check_in_id: str) -> CheckIn | None: ...

    @abstractmethod
    def create(self, check_in: CheckIn) -> CheckIn:
        """Raises CheckInConflict when the id exists (a retried request: ids derive from the idempotency key)."""

    @abstractmethod
    def replace(self, before: CheckIn, after: CheckIn) -> CheckIn:
        """Raises CheckInConflict if it changed since `before` was read."""


class MemoryCheckInStore(CheckInStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: dict[str, CheckIn] = {}

    def get(self, check_in_id: str) -> CheckIn | None:
        return self.items.get(check_in_id)

    def create(self, check_in: CheckIn) -> CheckIn:
        with self._lock:
            if check_in.check_in_id in self.items:
                raise CheckInConflict(check_in.check_in_id)
            self.items[check_in.check_in_id] = replace(check_in, version=1)
            return self.items[check_in.check_in_id]

    def replace(self, before: CheckIn, after: CheckIn) -> CheckIn:
        with self._lock:
            current = self.items.get(before.check_in_id)
            if current is None or current.version != before.version:
                raise CheckInConflict(before.check_in_id)
            self.items[before.check_in_id] = replace(after, version=before.version + 1)
            return self.items[before.check_in_id]


class DynamoDBCheckInStore(CheckInStore):
    def __init__(self, retention: timedelta) -> None:
        self._retention = retention

    @staticmethod
    def _model():
        from chalicelib.adapters.models import CheckInModel

        return CheckInModel

    def get(self, check_in_id: str) -> CheckIn | None:
        try:
            item = self._model().get(check_in_id, consistent_read=True)
        except DoesNotExist:
            return None
        values = {name: getattr(item, name) for name in asdict(_EMPTY)}
        values["version"] = int(values["version"] or 0)
        return CheckIn(**values)

    def _save(self, check_in: CheckIn, condition) -> CheckIn:
        model = self._model()
        item = model(check_in.check_in_id, expires_at=self._retention,
                     **{k: v for k, v in asdict(check_in).items() if k != "check_in_id"})
        try:
            item.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise CheckInConflict(check_in.check_in_id) from exc
            raise
        return check_in

    def create(self, check_in: CheckIn) -> CheckIn:
        return self._save(replace(check_in, version=1), self._model().check_in_id.does_not_exist())

    def replace(self, before: CheckIn, after: CheckIn) -> CheckIn:
        return self._save(replace(after, version=before.version + 1), self._model().version == before.version)


_EMPTY = CheckIn("", "", "", "", "")
