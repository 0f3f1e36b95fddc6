"""Make moto's DynamoDB keep two guarantees real DynamoDB gives, so local concurrency behaves like AWS.

Measured here (moto 5.2.5): `transact_write_items` snapshots every table it touches with `copy.deepcopy` and, when
any condition fails, puts the snapshot back. Under concurrent requests (the moto server is threaded) that restore
erases writes other threads committed meanwhile: a timeline lost an event mid-sequence (seq 7 missing after 20
concurrent notes), which real DynamoDB's serializable transactions never do. The whole-table copy also makes every
transaction slower as the tables grow.

The fix, for the local stack only: one lock around every DynamoDB backend operation (DynamoDB serialises writes to
an item; a lock over the whole backend is stricter, and cheap under the GIL), and transactions that snapshot and
restore only the items they touch instead of whole tables.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_APPLIED = False

_LOCKED_OPERATIONS = (
    "put_item", "get_item", "update_item", "delete_item", "query", "scan", "batch_get_item", "batch_write_item",
    "transact_get_items", "execute_statement", "execute_transaction", "batch_execute_statement",
)


class _TableCopyIsIdentity:
    """Stands in for the `copy` module inside moto's DynamoDB models: copying a Table returns the table itself (the
    item-level snapshot below replaces the table-level one); every other deepcopy is the real one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _key_of(backend: Any, op_type: str, op: dict) -> dict:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    dynamodb_models.copy = _TableCopyIsIdentity()  # type: ignore[attr-defined]

    for name in _LOCKED_OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, _original=original, **kwargs):
            with _LOCK:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)

    original_transact = DynamoDBBackend.transact_write_items

    @functools.wraps(original_transact)
    def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            snapshot = []
            try:
                for entry in transact_items:
                    op_type, op = next(iter(entry.items()))
                    key = _key_of(self, op_type, op)
                    current = self.get_item(op["TableName"], key)
                    snapshot.append((op["TableName"], key, copy.deepcopy(current)))
            except Exception:  # noqa: BLE001 - malformed request: let moto raise its own validation error
                snapshot = []
            try:
                return original_transact(self, transact_items)
            except Exception:
                # All or nothing: put back exactly the items this transaction touched.
                for table_name, key, before in reversed(snapshot):
                    table = self.get_table(table_name)
                    if before is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    elif before.range_key is not None:
                        table.items[before.hash_key][before.range_key] = before
                    else:
                        table.items[before.hash_key] = before
                raise

    DynamoDBBackend.transact_write_items = transact_write_items
    _APPLIED = True
