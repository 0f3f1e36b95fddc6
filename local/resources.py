"""Create the resources of infra/resources.yaml on a local AWS endpoint.

A small CloudFormation interpreter for exactly the resource types and intrinsics that file uses, so the local
stack runs the same tables, topic, queues and state machine definition a deployment gets. An unknown type or
intrinsic is an error, not a silent skip: adding one to the template means teaching it here too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from infra.environment import service_environment  # noqa: F401 - re-exported: the one env var -> resource mapping
from infra.state_machines import INFRA_DIR, filled_definition

TEMPLATE_PATH = INFRA_DIR / "resources.yaml"
ACCOUNT_ID = "123456789012"


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


class LocalStackBuilder:
    """Creates each resource once, on demand, so references between resources resolve in any order."""

    def __init__(self, session: Any, endpoint_url: str, stack_name: str = "local", region: str = "us-east-1"):
        self._session = session
        self._endpoint_url = endpoint_url
        self._stack_name = stack_name
        self._region = region
        self._template = load_template()
        self._resources: dict[str, dict[str, Any]] = self._template["Resources"]
        self._created: dict[str, dict[str, str]] = {}  # logical id -> {"Ref": ..., "Arn": ...}
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, endpoint_url=self._endpoint_url, region_name=self._region
            )
        return self._clients[service]

    def create_all(self) -> dict[str, dict[str, str]]:
        for logical_id in self._resources:
            self._ensure(logical_id)
        return dict(self._created)

    # --- intrinsics -------------------------------------------------------------------------------------------
    def _pseudo(self, name: str) -> str | None:
        return {"AWS::StackName": self._stack_name, "AWS::Region": self._region, "AWS::AccountId": ACCOUNT_ID}.get(name)

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._pseudo(arg) or self._ensure(arg)["Ref"]
            if key == "Fn::GetAtt":
                logical_id, attribute = arg
                return self._ensure(logical_id)[attribute]
            if key == "Fn::Sub":
                return re.sub(r"\$\{([\w:]+)\}", lambda m: self._pseudo(m.group(1)) or self._ensure(m.group(1))["Ref"], arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"intrinsic {key} is not supported by the local stack")
        return {k: self._resolve(v) for k, v in value.items()}

    # --- resources --------------------------------------------------------------------------------------------
    def _ensure(self, logical_id: str) -> dict[str, str]:
        if logical_id in self._created:
            return self._created[logical_id]
        resource = self._resources[logical_id]
        creator = {
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::IAM::Role": self._create_role,
            "AWS::StepFunctions::StateMachine": self._create_state_machine,
            "AWS::S3::Bucket": self._create_bucket,
        }.get(resource["Type"])
        if creator is None:
            raise NotImplementedError(f"{logical_id}: resource type {resource['Type']} is not supported locally")
        self._created[logical_id] = creator(logical_id, resource, self._resolve(resource.get("Properties", {})))
        return self._created[logical_id]

    def _create_table(self, logical_id: str, resource: dict, props: dict) -> dict[str, str]:
        ddb = self._client("dynamodb")
        kwargs = {k: props[k] for k in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode") if k in props}
        if "GlobalSecondaryIndexes" in props:
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "SSESpecification" in props:
            kwargs["SSESpecification"] = {"Enabled": props["SSESpecification"]["SSEEnabled"]}
        arn = ddb.create_table(**kwargs)["TableDescription"]["TableArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)
        return {"Ref": props["TableName"], "Arn": arn}

    def _create_topic(self, logical_id: str, resource: dict, props: dict) -> dict[str, str]:
        arn = self._client("sns").create_topic(Name=props["TopicName"])["TopicArn"]
        return {"Ref": arn, "TopicArn": arn, "TopicName": props["TopicName"]}

    def _create_queue(self, logical_id: str, resource: dict, props: dict) -> dict[str, str]:
        sqs = self._client("sqs")
        attributes = {}
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
        if "MessageRetentionPeriod" in props:
            attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Ref": url, "Arn": arn, "QueueName": props["QueueName"]}

    def _create_role(self, logical_id: str, resource: dict, props: dict) -> dict[str, str]:
        name = f"{self._stack_name}-{logical_id}"
        role = self._client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
        )["Role"]
        for policy in props.get("Policies", []):
            self._client("iam").put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        return {"Ref": name, "Arn": role["Arn"]}

    def _create_state_machine(self, logical_id: str, resource: dict, props: dict) -> dict[str, str]:
        definition = filled_definition(resource, props.get("DefinitionSubstitutions", {}))
        arn = self._client("stepfunctions").create_state_machine(
            name=props["StateMachineName"],
            definition=definition,
            roleArn=props["RoleArn"],
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        return {"Ref": arn, "Arn": arn, "Name": props["StateMachineName"]}

    def _create_bucket(self, logical_id: str, resource: dict, props: dict) -> dict[str, str]:
        name = props["BucketName"]
        self._client("s3").create_bucket(Bucket=name)
        return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
