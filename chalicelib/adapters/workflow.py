"""Timers on Step Functions: the escalation of each incident (infra/escalation.asl.json) and one-shot timers
(infra/timer.asl.json: wait until a time, then put a job on the jobs queue) for check-ins and acknowledgement
timeouts. Executions are named after what they time, so a retried start starts nothing new."""

from __future__ import annotations

import json
import logging
import threading
from typing import Protocol

from chalicelib.adapters.clients import aws_client
from chalicelib.config import settings

log = logging.getLogger(__name__)


class Workflows(Protocol):
    def start_escalation(self, name: str, payload: dict) -> None: ...

    def start_timer(self, name: str, at: str, job: dict) -> None: ...

    def stop_timer(self, name: str) -> None: ...

    def complete_task(self, token: str, output: dict) -> None: ...


def whole_second_after(at: str) -> str:
    """A Wait state's timestamp counts in whole seconds (a fraction is dropped): round up, so a timer never fires
    before its time."""
    from datetime import timedelta

    from chalicelib.domain.clock import parse_iso

    moment = parse_iso(at)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class StepFunctionsWorkflows:
    def _start(self, arn: str, name: str, payload: dict) -> None:
        client = aws_client("stepfunctions")
        try:
            client.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
        except client.exceptions.ExecutionAlreadyExists:
            # Same name: a retried request. AWS answers the same input with the running execution and another input
            # with this error; either way one execution exists.
            pass

    def start_escalation(self, name: str, payload: dict) -> None:
        self._start(settings().escalation_state_machine_arn, name, payload)

    def start_timer(self, name: str, at: str, job: dict) -> None:
        # The job carries its own time too: a Wait may end up to a second early (the local emulator truncates), and
        # the jobs worker holds a job that arrives early until its time.
        self._start(settings().timer_state_machine_arn, name,
                    {"at": whole_second_after(at), "job": {**job, "not_before": at}})

    def stop_timer(self, name: str) -> None:
        arn = settings().timer_state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name
        try:
            aws_client("stepfunctions").stop_execution(executionArn=arn, cause="no longer needed")
        except Exception:  # noqa: BLE001 - a timer that fires anyway finds nothing to do
            log.info("timer not stopped", extra={"timer": name})

    def complete_task(self, token: str, output: dict) -> None:
        client = aws_client("stepfunctions")
        try:
            client.send_task_success(taskToken=token, output=json.dumps(output))
        except (client.exceptions.TaskDoesNotExist, client.exceptions.TaskTimedOut, client.exceptions.InvalidToken):
            # The execution moved on (its wait for this page timed out) or ended: nothing waits for this answer.
            log.info("escalation task already gone")


class MemoryWorkflows:
    """For service tests: records starts, timers and completed tasks."""

    def __init__(self) -> None:
        self.escalations: dict[str, dict] = {}
        self.timers: dict[str, dict] = {}
        self.stopped: list[str] = []
        self.completed: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def start_escalation(self, name: str, payload: dict) -> None:
        with self._lock:
            self.escalations.setdefault(name, payload)

    def start_timer(self, name: str, at: str, job: dict) -> None:
        with self._lock:
            self.timers.setdefault(name, {"at": at, "job": job})

    def stop_timer(self, name: str) -> None:
        self.stopped.append(name)

    def complete_task(self, token: str, output: dict) -> None:
        self.completed.append((token, output))
