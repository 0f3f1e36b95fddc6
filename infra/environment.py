"""The one mapping from the service's environment variables to the resources that back them.

Each variable names a logical id of infra/resources.yaml and what to take from it: its `Ref` (a table or queue name,
a queue URL, a topic or state machine ARN) or one of its attributes (`("PageQueue", "Arn")`). The local stack
resolves it against what it created (`service_environment(created)`), infra/build_template.py turns it into
CloudFormation intrinsics (`template_environment()`), so both point the Lambdas at the same resources.
"""

from __future__ import annotations

from typing import Any

# Environment variable -> logical id (its Ref) or (logical id, attribute).
RESOURCES: dict[str, str | tuple[str, str]] = {
    "INCIDENTS_TABLE": "IncidentsTable",
    "TIMELINE_TABLE": "TimelineTable",
    "PAGES_TABLE": "PagesTable",
    "DIRECTORY_TABLE": "DirectoryTable",
    "LOOKUPS_TABLE": "LookupsTable",
    "CHECKINS_TABLE": "CheckInsTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "ESCALATION_STATE_MACHINE_ARN": "EscalationStateMachine",
    "TIMER_STATE_MACHINE_ARN": "TimerStateMachine",
    "PAGE_QUEUE_URL": "PageQueue",
    "JOBS_QUEUE_URL": "JobsQueue",
    "INBOUND_SMS_TOPIC_ARN": "InboundSmsTopic",
    "EVIDENCE_BUCKET": "EvidenceBucket",
}


def _target(value: str | tuple[str, str]) -> tuple[str, str]:
    return (value, "Ref") if isinstance(value, str) else value


def service_environment(created: dict[str, dict[str, str]]) -> dict[str, str]:
    """The variables for resources already created: `created[logical id]` holds "Ref" and the attributes."""
    environment = {}
    for name, value in RESOURCES.items():
        logical_id, attribute = _target(value)
        environment[name] = created[logical_id][attribute]
    return environment


def template_environment() -> dict[str, Any]:
    """The same variables as CloudFormation intrinsics, for the deployed functions' Environment."""
    environment: dict[str, Any] = {}
    for name, value in RESOURCES.items():
        logical_id, attribute = _target(value)
        environment[name] = {"Ref": logical_id} if attribute == "Ref" else {"Fn::GetAtt": [logical_id, attribute]}
    return environment
