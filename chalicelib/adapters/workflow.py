"""Starts escalation executions on Step Functions."""

from __future__ import annotations

import json

from chalicelib.adapters.clients import aws_client
from chalicelib.config import settings


class StepFunctionsEscalation:
    def start(self, execution_name: str, payload: dict) -> str:
        """Starts the escalation; a second start with the same name is a no-op (a retried request must not run two
        timers). AWS returns the running execution for the same name and input and ExecutionAlreadyExists
        otherwise; either way one execution exists."""
        client = aws_client("stepfunctions")
        arn = settings().escalation_state_machine_arn
        try:
            return client.start_execution(stateMachineArn=arn, name=execution_name, input=json.dumps(payload))[
                "executionArn"
            ]
        except client.exceptions.ExecutionAlreadyExists:
            return arn.replace(":stateMachine:", ":execution:") + ":" + execution_name
