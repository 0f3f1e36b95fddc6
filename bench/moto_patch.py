"""A benchmark-only fix for moto 5.2.5's DynamoDB TransactWriteItems (never used by the service or the tests).

moto backs up a transaction by `copy.deepcopy` of *every table the transaction touches*, all items included, and
rolls a failed transaction back by putting those copies in place of the tables. Two consequences for benchmarks:
- each TransactWriteItems costs time proportional to the size of the tables (incidents, lookups and timeline grow
  with every incident), so intake slows down as a run goes on: a benchmark would measure moto, not the service;
- under concurrency the deep copy iterates dicts that other threads are changing ("dictionary changed size during
  iteration" answered as a 500), and a rollback puts back whole tables, undoing other requests' writes made
  meanwhile.

`install()` keeps moto's transaction code and changes only the backup: while a transaction runs (one at a time,
under a lock), the "deep copy" of a table is a snapshot of just the items the transaction names, and a rollback
restores just those items. All-or-nothing, conditions and cancellation reasons are moto's own.

When the local stack brings its own fix (local/moto_fixes.py, applied by LocalStack), that one is used and this one
stays out of the way. `BENCH_MOTO_PATCH=0` runs on moto as it ships: neither fix is applied (the stack's is turned
into a no-op in the benchmark's process).
"""

from __future__ import annotations

import copy
import os
import threading
import types

_lock = threading.RLock()
_active = threading.local()
_installed = False


class _TableSnapshot:
    """What moto gets instead of a deep copy of a whole table: the table and copies of the named items."""

    def __init__(self, table, keys: list[dict]):
        from moto.dynamodb.models.dynamo_type import DynamoType

        self.table = table
        self.saved = []
        for key in keys:
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            current = table.get_item(hash_key, range_key)
            self.saved.append((hash_key, range_key, copy.deepcopy(current)))

    def __getattr__(self, name):  # another thread reaching the table during the rollback gets the real one
        return getattr(self.table, name)

    def restore(self) -> None:
        for hash_key, range_key, item in self.saved:
            if item is None:
                self.table.delete_item(hash_key, range_key)
            elif range_key is not None:
                self.table.items[hash_key][range_key] = item
            else:
                self.table.items[hash_key] = item


def _keys_by_table(backend, transact_items: list[dict]) -> dict[str, list[dict]]:
    keys: dict[str, list[dict]] = {}
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        name = op.get("TableName")
        if not name or name not in backend.tables:
            continue
        table = backend.tables[name]
        if "Item" in op:
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
            if table.range_key_attr:
                key[table.range_key_attr] = attrs.get(table.range_key_attr)
        else:
            key = op.get("Key") or {}
        if all(v is not None for v in key.values()) and key:
            keys.setdefault(name, []).append(key)
    return keys


def stack_fix():
    """The local stack's own moto fix module, if this checkout has one."""
    try:
        from local import moto_fixes
    except ImportError:
        return None
    return moto_fixes if hasattr(moto_fixes, "apply") else None


def mode() -> str:
    if os.environ.get("BENCH_MOTO_PATCH", "1") == "0":
        return "off: moto 5.2.5 as it ships (BENCH_MOTO_PATCH=0)"
    if stack_fix() is not None:
        return "the local stack's own fix (local/moto_fixes.py)"
    return "bench/moto_patch.py (the local stack has no fix of its own)"


def install() -> bool:
    """Patches moto in this process unless the stack fixes it itself. Returns whether a fix is in place."""
    global _installed
    fix = stack_fix()
    if os.environ.get("BENCH_MOTO_PATCH", "1") == "0":
        if fix is not None:
            fix.apply = lambda: None  # LocalStack calls moto_fixes.apply(): make it do nothing in this process
        return False
    if fix is not None or _installed:
        return True
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    real_copy = models.copy

    def deepcopy(obj, memo=None):
        pending = getattr(_active, "keys", None)
        if pending is not None and isinstance(obj, Table):
            return _TableSnapshot(obj, pending.get(obj.name, []))
        return real_copy.deepcopy(obj, memo)

    models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=real_copy.copy)
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        with _lock:
            _active.keys = _keys_by_table(self, transact_items)
            try:
                return original(self, transact_items)
            finally:
                _active.keys = None
                for name, table in list(self.tables.items()):
                    if isinstance(table, _TableSnapshot):  # moto rolled back: put the table back, restore the items
                        self.tables[name] = table.table
                        table.restore()

    models.DynamoDBBackend.transact_write_items = transact_write_items
    _installed = True
    return True
