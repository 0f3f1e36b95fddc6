"""Responders, schedules, escalation policies and routing in the directory table."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.models import DirectoryModel

RESPONDER, SCHEDULE, POLICY, ROUTING = "responder", "schedule", "policy", "routing"
ROUTING_ID = "kinds"


class DirectoryStore:
    def get(self, entity: str, item_id: str) -> DirectoryModel | None:
        try:
            return DirectoryModel.get(entity, item_id, consistent_read=True)
        except DoesNotExist:
            return None

    def put(self, item: DirectoryModel) -> None:
        item.save()

    def delete(self, entity: str, item_id: str) -> bool:
        item = self.get(entity, item_id)
        if item is None:
            return False
        item.delete()
        return True

    def get_many(self, entity: str, item_ids: set[str]) -> list[DirectoryModel]:
        if not item_ids:
            return []
        return list(DirectoryModel.batch_get([(entity, item_id) for item_id in sorted(item_ids)], consistent_read=True))

    def list(self, entity: str) -> list[DirectoryModel]:
        return list(DirectoryModel.query(entity, consistent_read=True))

    def responder_by_phone(self, phone: str) -> DirectoryModel | None:
        # Phone numbers are unique among responders (enforced on PUT), so the sparse index has at most one hit.
        for item in DirectoryModel.by_phone.query(phone):
            if item.entity == RESPONDER:
                return item
        return None
