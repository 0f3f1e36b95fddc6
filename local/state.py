"""Local state that survives a restart of `make run` (PERSIST=0 turns it off): every DynamoDB item and the SMS log
are written to a state file on stop and every few seconds, and loaded back on start. Step Functions executions do
not survive (moto keeps them in memory): on start, the timers of what is still running are started again, so a
triggered incident goes on escalating, an active check-in still fires, an acknowledgement still expires."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("local.state")
TABLES = ("IncidentsTable", "TimelineTable", "PagesTable", "DirectoryTable", "LookupsTable", "CheckInsTable",
          "IdempotencyTable")
ENV_OF_TABLE = {"IncidentsTable": "INCIDENTS_TABLE", "TimelineTable": "TIMELINE_TABLE", "PagesTable": "PAGES_TABLE",
                "DirectoryTable": "DIRECTORY_TABLE", "LookupsTable": "LOOKUPS_TABLE",
                "CheckInsTable": "CHECKINS_TABLE", "IdempotencyTable": "IDEMPOTENCY_TABLE"}


class LocalState:
    def __init__(self, path: Path, stack: Any, every_s: float = 10.0):
        self.path = path
        self._stack = stack
        self._every_s = every_s
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def _dynamodb(self):
        import boto3

        return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=self._stack.aws_url)

    # --- save ------------------------------------------------------------------------------------------------
    def save(self) -> None:
        with self._lock:
            ddb = self._dynamodb()
            tables: dict[str, list] = {}
            for logical in TABLES:
                items, start = [], None
                while True:
                    kwargs = {"TableName": self._stack.env[ENV_OF_TABLE[logical]]}
                    if start:
                        kwargs["ExclusiveStartKey"] = start
                    page = ddb.scan(**kwargs)
                    items += page["Items"]
                    start = page.get("LastEvaluatedKey")
                    if not start:
                        break
                tables[logical] = items
            carrier = self._stack.sms
            with carrier.lock:
                sms = [{"message_id": mid, "to": to, "body": body, "sent_at": carrier.sent_at.get(mid),
                        "status": carrier.status.get(mid, "sent")} for mid, (to, body) in carrier.items()]
            state = {"saved_at": datetime.now(timezone.utc).isoformat(), "tables": tables, "sms": sms}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".tmp")
            partial.write_text(json.dumps(state))
            partial.replace(self.path)  # never a half-written state file

    def keep_saving(self) -> None:
        while not self._stopping.wait(self._every_s):
            try:
                self.save()
            except Exception:  # noqa: BLE001 - the endpoint may be going away at shutdown
                if not self._stopping.is_set():
                    log.exception("could not save the local state")

    def stop(self) -> None:
        self._stopping.set()
        self.save()

    # --- load --------------------------------------------------------------------------------------------------
    def load(self) -> dict | None:
        """Puts the saved items back; returns what was loaded (None when there is no state file)."""
        if not self.path.is_file():
            return None
        state = json.loads(self.path.read_text())
        ddb = self._dynamodb()
        for logical, items in state["tables"].items():
            table = self._stack.env[ENV_OF_TABLE[logical]]
            for start in range(0, len(items), 25):
                batch = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
                ddb.batch_write_item(RequestItems={table: batch})
        carrier = self._stack.sms
        with carrier.lock:
            for message in state.get("sms", []):
                dict.__setitem__(carrier, message["message_id"], (message["to"], message["body"]))
                carrier.sent_at[message["message_id"]] = message["sent_at"]
                carrier.status[message["message_id"]] = message["status"]
        return state

    def rearm(self, services: Any) -> dict[str, int]:
        """Starts again the timers of what was running when the state was saved."""
        from dataclasses import replace

        from chalicelib.domain.checkins import ACTIVE
        from chalicelib.domain.clock import plus_seconds
        from chalicelib.domain.escalation import EscalationPlan
        from chalicelib.domain.incidents import Transition

        from datetime import timedelta

        from chalicelib.adapters.store import ListQuery
        from chalicelib.domain.clock import iso

        store, counts = services.adapters.store, {"escalations": 0, "check_ins": 0, "ack_timers": 0}
        restart = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        now = datetime.now(timezone.utc)
        open_incidents = []
        for status in ("triggered", "acknowledged"):
            query = ListQuery(since=iso(now - timedelta(days=60)), until=iso(now + timedelta(minutes=1)), status=status)
            open_incidents += [store.get(i.incident_id) for i in store.list_incidents(query)]
        for incident in open_incidents:
            if incident.status == "triggered" and incident.escalation and not incident.escalation_exhausted:
                name = f"{incident.incident_id}-restart-{restart}"
                step = max(incident.escalation_step, 0)
                # The new execution takes over the step the old one held (ClaimStep accepts its own claim again).
                store.record(incident.incident_id, lambda i, n=name, s=step: Transition(replace(
                    i, escalation_step=s if i.escalation_step >= 0 else -1, escalation_owner=n)))
                services.escalation.start(store.get(incident.incident_id), start_step=step, name=name)
                counts["escalations"] += 1
            elif incident.status == "acknowledged" and incident.escalation:
                plan = EscalationPlan.from_dict(incident.escalation)
                if plan.ack_timeout_s:
                    services.adapters.workflows.start_timer(
                        f"{incident.incident_id}-ack-{incident.ack_count}-{restart}",
                        plus_seconds(services.adapters.store.now(), plan.ack_timeout_s),
                        {"action": "ack_reminder", "incident_id": incident.incident_id,
                         "ack_count": incident.ack_count})
                    counts["ack_timers"] += 1
        ddb = self._dynamodb()
        rows = ddb.scan(TableName=self._stack.env["CHECKINS_TABLE"], ProjectionExpression="check_in_id")["Items"]
        for row in rows:
            check_in = services.adapters.checkins.get(row["check_in_id"]["S"])
            if check_in is not None and check_in.status == ACTIVE:
                services.adapters.workflows.start_timer(f"{check_in.check_in_id}-{restart}", check_in.due_at,
                                                        {"action": "check_in_due", "check_in_id": check_in.check_in_id})
                counts["check_ins"] += 1
        return counts
