'''Patches to moto, for the local stack only (LocalStack calls `apply()`; nothing here runs on AWS or changes what
the service does there). Written against moto 5.2.5: `apply()` checks the version and each patch checks the moto
internals it relies on, skipping itself with a warning (never failing the stack) when they moved.

1. `dynamodb`: keep two guarantees real DynamoDB gives, so local concurrency behaves like AWS.
   Measured here: `transact_write_items` snapshots every table it touches with `copy.deepcopy` and, when any
   condition fails, puts the snapshot back. Under concurrent requests (the moto server is threaded) that restore
   erases writes other threads committed meanwhile: a timeline lost an event mid-sequence (seq 7 missing after 20
   concurrent notes), which real DynamoDB's serializable transactions never do. The whole-table copy also makes every
   transaction slower as the tables grow. The fix: one lock around every DynamoDB backend operation (DynamoDB
   serialises writes to an item; a lock over the whole backend is stricter, and cheap under the GIL), and
   transactions that snapshot and restore only the items they touch instead of whole tables. Third guarantee:
   `TransactWriteItems` honours `ClientRequestToken` as DynamoDB does (a repeat of a successful call with the same
   token within 10 minutes succeeds without writing again). moto ignores the token, so a transaction whose answer
   was lost (a 5xx after the commit) and that botocore retried with its token failed its own conditions locally
   and was decided again: a note stored twice, under load, where AWS stores it once.

The other three make moto's Step Functions executor cheaper without changing what it does (a profile of a burst
had the executor at ~41% of the stack's CPU: the ANTLR parse of the definition on every execution ~22%, jsonpath
parsing ~10%, a new boto3 client per task ~6%):

2. `parse_cache`: `AmazonStateLanguageParser.parse(definition)` (moto/stepfunctions/parser/asl/parse/asl_parser.py)
   lexes, parses (ANTLR) and preprocesses the definition into a program of evaluation components, and
   `ExecutionWorker._get_evaluation_entrypoint` (parser/backend/execution_worker.py) calls it for every execution.
   The result is memoised on the definition text (a failing parse raises as before and is not cached), so every
   execution of a definition shares one program. That is safe because, in moto 5.2.5, the components keep no
   per-execution state: every attribute is set at preprocessing; evaluation state lives in the execution's
   `Environment` (stack, heap, states, variables, event history), and moto already shares one component between
   threads (Parallel branches, Map iterations). The one lazily set attribute is `EvalComponent.heap_key` (the key
   under which Retry's MaxAttempts/BackoffRate keep their counters in the per-execution `env.heap`): it is assigned
   to every component once, before the program is shared, so concurrent executions never race on it. The ANTLR tree
   (also returned, used by the static analysers) is only visited, never changed. The TestState parser (a subclass
   with its own `parse`) is not cached. At most 64 definitions are kept (oldest dropped first). Because its safety
   rests on reading 5.2.5's components, this patch is skipped on any other moto version.
3. `jsonpath_cache`: `extract_json` (parser/asl/utils/json_path.py) builds a new jsonpath_ng parser (PLY tables
   included) for every path it evaluates, and so does `ResultPath` (parser/asl/component/common/path/
   result_path.py). Both parse functions are memoised on the path string (separately: they are different grammars);
   jsonpath_ng expressions are immutable once built (`find`/`update_or_create` only read them), so one expression
   serves every thread. At most 4,096 paths each.
4. `boto_clients`: `boto_client_for` (parser/asl/utils/boto_client.py) creates a boto3 client for every Task state.
   Clients are cached per (service, region, endpoint, credentials) and reused (boto3 clients are thread-safe). The
   client is the one moto builds (its own function makes it, once per key); the endpoint is part of the key exactly
   as moto decides it (localhost:$MOTO_PORT, or none while moto's in-process interception is on), and so are the
   credentials moto gives it (always the fixed "ak"/"sk" in 5.2.5, which ignores the state's `Credentials`). The
   modules that imported `boto_client_for` by name are repointed to the cached one. Side effects, both benign: a
   shared client keeps its connections to the moto server alive (botocore's pool of 10; more concurrent calls open
   extra connections, as every call did before), and clients are no longer created concurrently from boto3's default
   session (which is not thread-safe) but once per key, under a lock.

tests/integration/test_moto_fixes.py runs one definition for 8 different inputs at once, with the patches and with
moto's own functions put back, and compares the histories event for event; it also checks that the shared program
is unchanged by the executions and that there is one client per key. bench/moto_overhead.py measures the effect.

`LOCAL_MOTO_FIXES_SKIP` (comma separated patch names, or `executor` for 2-4) leaves patches out: for measuring
(bench/moto_overhead.py) and for ruling a patch out when something looks wrong. `stats()` reports cache use.
'''

from __future__ import annotations

import copy
import functools
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

MOTO_VERSION = "5.2.5"
PATCHES = ("dynamodb", "parse_cache", "jsonpath_cache", "boto_clients")
EXECUTOR_PATCHES = ("parse_cache", "jsonpath_cache", "boto_clients")
PARSED_DEFINITIONS_KEPT = 64
JSONPATHS_KEPT = 4096

_LOCK = threading.RLock()
_APPLIED = False
applied: dict[str, bool] = {}
# The functions the patches replaced, by patch name (the test compares against them).
originals: dict[str, Any] = {}

_LOCKED_OPERATIONS = (
    "put_item", "get_item", "update_item", "delete_item", "query", "scan", "batch_get_item", "batch_write_item",
    "transact_get_items", "execute_statement", "execute_transaction", "batch_execute_statement",
)


class MotoMoved(Exception):
    """moto's internals are not what a patch was written against: the patch is skipped."""


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise MotoMoved(what)


# --- 1. DynamoDB ------------------------------------------------------------------------------------------------------
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


def _patch_dynamodb() -> None:
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    _require(getattr(dynamodb_models, "copy", None) is copy, "moto.dynamodb.models no longer uses `copy`")
    missing = [name for name in _LOCKED_OPERATIONS + ("transact_write_items",) if not hasattr(DynamoDBBackend, name)]
    _require(not missing, f"DynamoDBBackend lacks {missing}")

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
    _honour_client_request_tokens()


# DynamoDB keeps a transaction's client token for 10 minutes.
CLIENT_TOKEN_TTL_S = 600
_succeeded_tokens: dict[str, tuple[float, str, Any]] = {}


def _honour_client_request_tokens() -> None:
    from moto.dynamodb.responses import DynamoHandler

    _require(hasattr(DynamoHandler, "transact_write_items"), "DynamoHandler lacks transact_write_items")
    original = DynamoHandler.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self):
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        request = json.dumps(self.body.get("TransactItems"), sort_keys=True)
        with _LOCK:
            now = time.monotonic()
            for old in [t for t, (at, _, _) in _succeeded_tokens.items() if now - at > CLIENT_TOKEN_TTL_S]:
                del _succeeded_tokens[old]
            seen = _succeeded_tokens.get(token)
            if seen is not None:
                if seen[1] != request:
                    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

                    raise DynamodbException(ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                                            "the client request token was used for another request")
                return seen[2]
            result = original(self)
            _succeeded_tokens[token] = (now, request, result)
            return result

    DynamoHandler.transact_write_items = transact_write_items


# --- 2. the parsed state machine definition ---------------------------------------------------------------------------
_parsed: dict[str, tuple[Any, Any]] = {}
_parse_lock = threading.Lock()
_counts = {"parse_hits": 0, "parse_misses": 0, "clients_created": 0, "client_reuses": 0}


def _assign_heap_keys(program: Any) -> int:
    """Gives every evaluation component of the program its `heap_key` now, so that executions sharing the program
    never assign it concurrently (it is lazily set on first use in moto). Returns how many components there are."""
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    seen: set[int] = set()
    pending: list[Any] = [program]
    components = 0
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Component):
            if isinstance(value, EvalComponent):
                value.heap_key  # noqa: B018 - assigns it
                components += 1
            pending.extend(vars(value).values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return components


def _patch_parse_cache() -> None:
    import moto
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend import execution_worker

    # Sharing one program between executions was checked against 5.2.5's components only (see the docstring).
    _require(moto.__version__ == MOTO_VERSION, f"the program's components were audited for {MOTO_VERSION} only")
    _require(isinstance(AmazonStateLanguageParser.__dict__.get("parse"), staticmethod),
             "AmazonStateLanguageParser.parse is not a staticmethod")
    _require(isinstance(getattr(EvalComponent, "heap_key", None), property), "EvalComponent.heap_key moved")
    _require(execution_worker.AmazonStateLanguageParser is AmazonStateLanguageParser,
             "the execution worker no longer parses with AmazonStateLanguageParser")
    original = AmazonStateLanguageParser.__dict__["parse"].__func__

    def parse(definition: str) -> tuple[Any, Any]:
        parsed = _parsed.get(definition)
        if parsed is not None:
            _counts["parse_hits"] += 1
            return parsed
        with _parse_lock:  # one parse per definition, even when a burst starts its first executions together
            parsed = _parsed.get(definition)
            if parsed is not None:
                _counts["parse_hits"] += 1
                return parsed
            parsed = original(definition)  # a definition that does not parse raises, every time, as before
            _assign_heap_keys(parsed[0])
            while len(_parsed) >= PARSED_DEFINITIONS_KEPT:
                _parsed.pop(next(iter(_parsed)))
            _parsed[definition] = parsed
            _counts["parse_misses"] += 1
            return parsed

    parse.__doc__ = "AmazonStateLanguageParser.parse, memoised on the definition (local/moto_fixes.py)."
    originals["parse_cache"] = original
    AmazonStateLanguageParser.parse = staticmethod(parse)


# --- 3. jsonpath expressions ------------------------------------------------------------------------------------------
_jsonpath_caches: dict[str, Any] = {}


def _patch_jsonpath_cache() -> None:
    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    _require(getattr(json_path, "parse", None) is jsonpath_ng.ext.parse, "json_path no longer uses jsonpath_ng.ext.parse")
    _require(getattr(result_path, "parse", None) is jsonpath_ng.parse, "result_path no longer uses jsonpath_ng.parse")
    originals["jsonpath_cache"] = {"json_path": json_path.parse, "result_path": result_path.parse}
    _jsonpath_caches["json_path"] = json_path.parse = functools.lru_cache(maxsize=JSONPATHS_KEPT)(jsonpath_ng.ext.parse)
    _jsonpath_caches["result_path"] = result_path.parse = functools.lru_cache(maxsize=JSONPATHS_KEPT)(jsonpath_ng.parse)


# --- 4. boto3 clients of Task states ----------------------------------------------------------------------------------
_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def _patch_boto_clients() -> None:
    import inspect
    import sys

    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    _require(list(inspect.signature(original).parameters) == ["region", "service", "state_credentials"],
             "boto_client_for's signature changed")
    source = inspect.getsource(original)
    _require('aws_access_key_id="ak"' in source and 'aws_secret_access_key="sk"' in source
             and "botocore_stubber.enabled" in source and "moto_server_port()" in source,
             "boto_client_for no longer builds its client from the stubber flag, MOTO_PORT and fixed credentials")

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        intercepting = boto_client.botocore_stubber.enabled
        endpoint = None if intercepting else f"http://localhost:{boto_client.moto_server_port()}"
        key = (service, region, endpoint, ("ak", "sk"))
        client = _clients.get(key)
        if client is not None:
            _counts["client_reuses"] += 1
            return client
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = original(region=region, service=service, state_credentials=state_credentials)
                _clients[key] = client
                _counts["clients_created"] += 1
            return client

    boto_client_for.__doc__ = "moto's boto_client_for, one client per key (local/moto_fixes.py)."
    originals["boto_clients"] = original
    boto_client.boto_client_for = boto_client_for
    # Modules imported before now hold the original by name; those imported later get the cached one.
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for


_PATCH_FUNCTIONS: dict[str, Callable[[], None]] = {
    "dynamodb": _patch_dynamodb,
    "parse_cache": _patch_parse_cache,
    "jsonpath_cache": _patch_jsonpath_cache,
    "boto_clients": _patch_boto_clients,
}


def _skipped() -> set[str]:
    names = {n.strip() for n in os.environ.get("LOCAL_MOTO_FIXES_SKIP", "").split(",") if n.strip()}
    if "executor" in names:
        names |= set(EXECUTOR_PATCHES)
    return names


def apply() -> None:
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        import moto

        if moto.__version__ != MOTO_VERSION:
            warnings.warn(f"local/moto_fixes.py was written against moto {MOTO_VERSION}, found {moto.__version__}: "
                          "each patch checks the internals it needs and is skipped if they moved", stacklevel=2)
        skipped = _skipped()
        for name in PATCHES:
            if name in skipped:
                applied[name] = False
                continue
            try:
                _PATCH_FUNCTIONS[name]()
                applied[name] = True
            except Exception as exc:  # noqa: BLE001 - any surprise in moto: run without this patch, say so
                applied[name] = False
                warnings.warn(f"local/moto_fixes.py: patch {name!r} skipped, moto {moto.__version__}'s internals "
                              f"moved: {exc}", stacklevel=2)
        _APPLIED = True


def stats() -> dict[str, Any]:
    """Which patches are on, and how much their caches were used."""
    figures: dict[str, Any] = {"applied": dict(applied), **_counts, "definitions_cached": len(_parsed),
                               "clients_cached": len(_clients)}
    for name, cached in _jsonpath_caches.items():
        figures[f"jsonpath_{name}"] = cached.cache_info()._asdict()
    return figures
