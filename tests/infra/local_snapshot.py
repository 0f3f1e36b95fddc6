"""What the local stack creates, as JSON: `python -m tests.infra.local_snapshot` runs local/resources.py's
LocalStackBuilder against an in-memory moto and prints the tables, queues, topics, buckets and state machines.

It runs in a process of its own because moto's in-memory backends are process-wide: a mock_aws() inside the test
process would reset the backends of a local stack that other tests run in that same process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "local"


def snapshot() -> dict:
    import boto3
    from moto import mock_aws

    from local.resources import LocalStackBuilder

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        created = LocalStackBuilder(session, endpoint_url=None, stack_name=STACK_NAME).create_all()
        ddb, sfn = session.client("dynamodb"), session.client("stepfunctions")
        tables = {}
        for name in ddb.list_tables()["TableNames"]:
            table = ddb.describe_table(TableName=name)["Table"]
            table["TimeToLive"] = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            tables[name] = table
        machines = {
            m["name"]: sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])["definition"]
            for m in sfn.list_state_machines()["stateMachines"]
        }
        return {
            "created": created,
            "tables": tables,
            "queues": [url.rsplit("/", 1)[1] for url in session.client("sqs").list_queues().get("QueueUrls", [])],
            "topics": [t["TopicArn"].rsplit(":", 1)[1] for t in session.client("sns").list_topics()["Topics"]],
            "buckets": [b["Name"] for b in session.client("s3").list_buckets()["Buckets"]],
            "state_machines": machines,
        }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    print(json.dumps(snapshot(), default=str))
