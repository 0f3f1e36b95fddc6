"""The deployable template, built as `make package STAGE=prod` builds it: cfn-lint clean, least privilege, and the
same tables, queues, topic, bucket and state machine as the local stack creates from infra/resources.yaml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "infra" / "build_template.py"
STACK_NAME = "local"  # what the local stack calls itself; the template's ${AWS::StackName} is resolved to it

# "*" as a resource only where AWS offers nothing narrower. Every other Allow names its resources.
STAR_RESOURCE_ALLOWED = {
    "sns:Publish": "SMS are published to phone numbers, which have no ARN: IAM only accepts Resource '*'",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
}

# Everything each role may do beyond DynamoDB (checked table by table below). A change here is a change of the
# service's privileges: make it on purpose, together with .chalice/policy-*.json or infra/resources.yaml.
ROLE_ACTIONS = {
    "ApiHandlerRole": {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                       "states:StartExecution", "sqs:SendMessage", "s3:PutObject"},
    "InboundSmsRole": {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                       "states:StartExecution", "sqs:SendMessage", "sns:Publish"},
    "SendPagesRole": {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sns:Publish"},
    "EscalationStateMachineRole": {"sqs:SendMessage", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                                   "xray:GetSamplingRules", "xray:GetSamplingTargets"},
}
# Wildcards inside an ARN that stay within one of the stack's own resources.
SCOPED_WILDCARDS = {
    r"\$\{\w+Table\.Arn\}/index/\*": "a table's own indexes",
    r"\$\{EvidenceBucket\.Arn\}/incidents/\*": "evidence objects (the API signs upload POSTs with its role)",
}
LOG_GROUPS = {"ApiHandlerRole": "APIHandlerLogGroup", "InboundSmsRole": "InboundSmsLogGroup",
              "SendPagesRole": "SendPagesLogGroup"}


# --- building -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def package_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "prod"
    subprocess.run([sys.executable, str(BUILD_SCRIPT), "--stage", "prod", "--out", str(out)], cwd=ROOT, check=True)
    return out


@pytest.fixture(scope="session")
def template(package_dir) -> dict[str, Any]:
    return json.loads((package_dir / "sam.json").read_text())


@pytest.fixture(scope="session")
def resources(template) -> dict[str, Any]:
    return template["Resources"]


def of_type(resources: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == resource_type}


def test_package_holds_the_code_and_a_template(package_dir):
    assert (package_dir / "deployment.zip").stat().st_size > 0
    assert (package_dir / "sam.json").exists()


def test_package_ships_bytecode_for_a_fast_cold_start(package_dir):
    import zipfile

    names = set(zipfile.ZipFile(package_dir / "deployment.zip").namelist())
    assert "app.py" in names and "__pycache__/app.cpython-311.pyc" in names
    assert "chalicelib/services/__pycache__/incidents.cpython-311.pyc" in names


def cfn_lint(template_path: Path) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).with_name("cfn-lint")
    command = [str(executable) if executable.exists() else shutil.which("cfn-lint") or "cfn-lint", str(template_path)]
    return subprocess.run(command, capture_output=True, text=True)


def test_cfn_lint_finds_nothing(package_dir):
    result = cfn_lint(package_dir / "sam.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dev_stage_packages_and_lints_too(tmp_path):
    subprocess.run([sys.executable, str(BUILD_SCRIPT), "--stage", "dev", "--out", str(tmp_path)], cwd=ROOT, check=True)
    result = cfn_lint(tmp_path / "sam.json")
    assert result.returncode == 0, result.stdout + result.stderr
    send_pages = json.loads((tmp_path / "sam.json").read_text())["Resources"]["SendPages"]["Properties"]
    assert send_pages["Environment"]["Variables"]["LOG_LEVEL"] == "DEBUG"


# --- what the issue asks the template to contain --------------------------------------------------------------------
def test_every_function_is_pinned_traced_and_wired(resources):
    functions = of_type(resources, "AWS::Serverless::Function")
    assert set(functions) == {"APIHandler", "InboundSms", "SendPages"}
    required_env = set(re.findall(r'_required\("(\w+)"\)', (ROOT / "chalicelib" / "config.py").read_text()))
    assert required_env, "chalicelib/config.py no longer reads its settings with _required()"
    for logical_id, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.11", logical_id
        assert props["Tracing"] == "Active", logical_id
        assert "Policies" not in props, f"{logical_id}: SAM-managed policies would bypass .chalice/policy-*.json"
        env = props["Environment"]["Variables"]
        assert required_env <= set(env), f"{logical_id} lacks {sorted(required_env - set(env))}"
        assert "TOKEN_SECRET" not in env and env["TOKEN_JWKS_URL"] == {"Ref": "TokenJwksUrl"}
        for name in required_env:
            assert isinstance(env[name], dict) and set(env[name]) <= {"Ref", "Fn::GetAtt"}, f"{logical_id}.{name}"
    assert resources["InboundSms"]["Properties"]["Events"]["InboundSmsSnsSubscription"]["Properties"]["Topic"] == {
        "Fn::Sub": "${InboundSmsTopic}"}
    queue_event = resources["SendPages"]["Properties"]["Events"]["SendPagesSqsEventSource"]
    assert queue_event["Properties"]["Queue"] == {"Fn::Sub": "${PageQueue.Arn}"}
    assert queue_event["Properties"]["BatchSize"] == 1
    # Lambda refuses an SQS event source whose visibility timeout is shorter than the function's timeout.
    assert resources["PageQueue"]["Properties"]["VisibilityTimeout"] >= resources["SendPages"]["Properties"]["Timeout"]
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True


def test_tables_are_on_demand_recoverable_and_retained(resources):
    tables = of_type(resources, "AWS::DynamoDB::Table")
    assert len(tables) == 6
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        assert props["SSESpecification"] == {"SSEEnabled": True}, logical_id
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", logical_id
    with_ttl = {k for k, t in tables.items() if t["Properties"].get("TimeToLiveSpecification", {}).get("Enabled")}
    assert with_ttl == {"PagesTable", "LookupsTable", "IdempotencyTable"}


def test_evidence_bucket_is_private_encrypted_and_expires(resources):
    bucket = resources["EvidenceBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert any(rule["Status"] == "Enabled" and rule.get("ExpirationInDays")
               for rule in bucket["LifecycleConfiguration"]["Rules"])
    policy = resources["EvidenceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_state_machine_is_the_infra_file_with_substitutions_and_traced(resources):
    machine = resources["EscalationStateMachine"]["Properties"]
    assert machine["Definition"] == json.loads((ROOT / "infra" / "escalation.asl.json").read_text())
    assert machine["DefinitionSubstitutions"] == {"IncidentsTable": {"Ref": "IncidentsTable"},
                                                  "PageQueueUrl": {"Ref": "PageQueue"}}
    assert machine["TracingConfiguration"] == {"Enabled": True}
    states = machine["Definition"]["States"]
    targets = [machine["Definition"]["StartAt"]]
    for state in states.values():
        targets += [state[key] for key in ("Next", "Default") if key in state]
        targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    assert set(targets) <= set(states), f"transitions to missing states: {set(targets) - set(states)}"


def test_alarms_cover_escalation_sms_queues_and_api(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()}
    assert {
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("TrustSafetyAlerts", "EscalationExhausted"),
        ("TrustSafetyAlerts", "SmsPublishFailed"),
        ("AWS/SNS", "NumberOfNotificationsFailed"),
        ("AWS/SNS", "SMSMonthToDateSpentUSD"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5XXError"),
    } <= watched
    dead_letter_queues = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms.values() if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert dead_letter_queues == {"PageQueueDeadLetters", "InboundSmsDeadLetters"}
    api_alarm = next(a["Properties"] for a in alarms.values() if a["Properties"]["MetricName"] == "5XXError")
    dimensions = {d["Name"]: d["Value"] for d in api_alarm["Dimensions"]}
    assert dimensions["Stage"] == resources["RestAPI"]["Properties"]["StageName"]
    assert dimensions["ApiName"] == resources["RestAPI"]["Properties"]["Name"]
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
    # The app's EMF metrics carry the Powertools service name as a dimension; the alarms must name the same one.
    services = {d["Value"] for a in alarms.values() if a["Properties"]["Namespace"] == "TrustSafetyAlerts"
                for d in a["Properties"].get("Dimensions", []) if d["Name"] == "service"}
    for function in of_type(resources, "AWS::Serverless::Function").values():
        assert {function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]} == services
    filters = of_type(resources, "AWS::Logs::MetricFilter")
    assert {f["Properties"]["MetricTransformations"][0]["MetricName"] for f in filters.values()} == {"SmsPublishFailed"}


# --- least privilege ------------------------------------------------------------------------------------------------
def policy_documents(resources: dict[str, Any]):
    """(where, document) for every identity and resource policy in the template."""
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{logical_id}/{policy['PolicyName']}", policy["PolicyDocument"]
            assert not props.get("ManagedPolicyArns"), f"{logical_id}: managed policies are not least privilege"
        elif "PolicyDocument" in props:
            yield logical_id, props["PolicyDocument"]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions_or_resources_where_a_specific_one_exists(resources):
    from cfnlint.data import AdditionalSpecs
    from cfnlint.helpers import load_resource

    known = load_resource(AdditionalSpecs, "Policies.json")  # cfn-lint's list of IAM actions (W3037 skips SAM)
    problems = []
    for where, document in policy_documents(resources):
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                problems.append(f"{where}: NotAction/NotResource in an Allow")
            actions = as_list(statement["Action"])
            for action in actions:
                service, _, name = action.partition(":")
                if "*" in action:
                    problems.append(f"{where}: wildcard action {action}")
                elif name.lower() not in known.get(service, {}).get("Actions", {}):
                    problems.append(f"{where}: {action} is not an IAM action")
            for resource in as_list(statement.get("Resource", [])):
                if resource == "*":
                    unjustified = [a for a in actions if a not in STAR_RESOURCE_ALLOWED]
                    if unjustified:
                        problems.append(f"{where}: Resource '*' for {unjustified}")
                elif isinstance(resource, str) and "*" in resource:
                    problems.append(f"{where}: wildcard in literal resource {resource}")
                elif isinstance(resource, dict) and "Fn::Sub" in resource:
                    text = resource["Fn::Sub"] if isinstance(resource["Fn::Sub"], str) else resource["Fn::Sub"][0]
                    if "*" in text and not any(re.fullmatch(pattern, text) for pattern in SCOPED_WILDCARDS):
                        problems.append(f"{where}: wildcard in {text} (allowed: {list(SCOPED_WILDCARDS.values())})")
    assert not problems, "\n".join(problems)


def role_statements(resources: dict[str, Any], role: str) -> list[dict]:
    return [s for p in resources[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def referenced(resource: Any) -> str | None:
    """The logical id a policy resource points at, if any."""
    if isinstance(resource, dict):
        if "Ref" in resource:
            return resource["Ref"]
        if "Fn::GetAtt" in resource:
            return resource["Fn::GetAtt"][0]
        if "Fn::Sub" in resource:
            match = re.match(r"\$\{(\w+)", resource["Fn::Sub"])
            return match.group(1) if match else None
    return None


def test_each_role_may_do_only_what_its_code_does(resources):
    function_roles = {f["Properties"]["Role"]["Fn::GetAtt"][0]
                      for f in of_type(resources, "AWS::Serverless::Function").values()}
    machine_role = resources["EscalationStateMachine"]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert function_roles | {machine_role} == set(ROLE_ACTIONS) == set(of_type(resources, "AWS::IAM::Role"))
    for role, expected in ROLE_ACTIONS.items():
        actions = {a for s in role_statements(resources, role) for a in as_list(s["Action"])}
        assert actions - {a for a in actions if a.startswith("dynamodb:")} == expected, role
    # What each non-"*" grant points at: the stack's own queue, state machine and log group only.
    targets = {
        "states:StartExecution": {"EscalationStateMachine"},
        "sqs:ReceiveMessage": {"PageQueue"},
        "sqs:SendMessage": {"PageQueue", "InboundSmsDeadLetters"},
        "s3:PutObject": {"EvidenceBucket"},
    }
    for role in ROLE_ACTIONS:
        for statement in role_statements(resources, role):
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    if action in targets:
                        assert referenced(resource) in targets[action], f"{role}: {action} on {resource}"
                    if action.startswith("logs:"):
                        assert referenced(resource) == LOG_GROUPS[role], f"{role}: {action} on {resource}"
    machine_dynamodb = [s for s in role_statements(resources, "EscalationStateMachineRole")
                        if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    grants = [(s["Action"], referenced(s["Resource"])) for s in machine_dynamodb]
    assert grants == [("dynamodb:UpdateItem", "IncidentsTable")]


def test_no_lambda_may_delete_an_incident_or_rewrite_the_timeline(resources):
    """The timeline is append-only and hash-chained; IAM makes that hold even against a bug."""
    for role in ("ApiHandlerRole", "InboundSmsRole", "SendPagesRole", "EscalationStateMachineRole"):
        for statement in role_statements(resources, role):
            tables = {referenced(r) for r in as_list(statement["Resource"])}
            actions = set(as_list(statement["Action"]))
            if "TimelineTable" in tables:
                assert not actions & {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}, role
            if "IncidentsTable" in tables:
                assert "dynamodb:DeleteItem" not in actions, role
    # The page sender only escalates and sends: it never sees the directory, lookups or idempotency records.
    all_tables = set(of_type(resources, "AWS::DynamoDB::Table"))
    tables = {"ApiHandlerRole": all_tables, "InboundSmsRole": all_tables,
              "SendPagesRole": {"IncidentsTable", "TimelineTable", "PagesTable"}}
    for role, expected in tables.items():
        granted = {referenced(r) for s in role_statements(resources, role) if "dynamodb:GetItem" in as_list(s["Action"])
                   for r in as_list(s["Resource"])}
        assert granted == expected, role


# --- no drift between the template and the local stack --------------------------------------------------------------
def resolve_names(value: Any) -> Any:
    """A TableName/QueueName/... as the local stack resolves it (only ${AWS::...} pseudo parameters in names)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        pseudo = {"AWS::StackName": STACK_NAME, "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1"}
        return re.sub(r"\$\{([\w:]+)\}", lambda m: pseudo[m.group(1)], value["Fn::Sub"])
    return value


@pytest.fixture(scope="module")
def local() -> dict[str, Any]:
    """What local/resources.py creates, from a process of its own (see tests/infra/local_snapshot.py)."""
    result = subprocess.run([sys.executable, "-m", "tests.infra.local_snapshot"], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout)


def test_every_shared_resource_is_in_the_template_unchanged(resources):
    shared = yaml.safe_load((ROOT / "infra" / "resources.yaml").read_text())["Resources"]
    for logical_id, resource in shared.items():
        packaged = resources[logical_id]
        assert packaged["Type"] == resource["Type"], logical_id
        props = dict(packaged["Properties"])
        props.pop("Definition", None)  # the state machine's definition file, inlined
        assert props == resource["Properties"], f"{logical_id} differs from infra/resources.yaml"


def test_local_tables_match_the_template(local, resources):
    tables = of_type(resources, "AWS::DynamoDB::Table")
    assert set(local["tables"]) == {resolve_names(t["Properties"]["TableName"]) for t in tables.values()}
    for logical_id, table in tables.items():
        props = table["Properties"]
        created = local["tables"][resolve_names(props["TableName"])]
        assert created["KeySchema"] == props["KeySchema"], logical_id
        attributes = {(a["AttributeName"], a["AttributeType"]) for a in created["AttributeDefinitions"]}
        declared = {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]}
        assert attributes == declared, logical_id
        created_indexes = {i["IndexName"]: (i["KeySchema"], i["Projection"])
                           for i in created.get("GlobalSecondaryIndexes", [])}
        template_indexes = {i["IndexName"]: (i["KeySchema"], i["Projection"])
                            for i in props.get("GlobalSecondaryIndexes", [])}
        assert created_indexes == template_indexes, logical_id
        assert created["BillingModeSummary"]["BillingMode"] == props["BillingMode"], logical_id
        expected_ttl = props.get("TimeToLiveSpecification", {}).get("AttributeName")
        assert created["TimeToLive"].get("AttributeName") == expected_ttl, logical_id


def test_local_queues_topic_bucket_and_state_machine_match_the_template(local, resources):
    shared = yaml.safe_load((ROOT / "infra" / "resources.yaml").read_text())["Resources"]
    assert set(local["created"]) == set(shared)
    created_names = {"AWS::SQS::Queue": ("QueueName", local["queues"]),
                     "AWS::SNS::Topic": ("TopicName", local["topics"]),
                     "AWS::S3::Bucket": ("BucketName", local["buckets"]),
                     "AWS::StepFunctions::StateMachine": ("StateMachineName", list(local["state_machines"]))}
    for resource_type, (prop, names) in created_names.items():
        expected = {resolve_names(r["Properties"][prop]) for k, r in resources.items()
                    if r["Type"] == resource_type and k in shared}
        assert expected and expected == set(names), resource_type

    # The state machine runs the same definition locally as the template deploys, placeholders filled alike.
    machine = resources["EscalationStateMachine"]["Properties"]
    values = {"IncidentsTable": local["created"]["IncidentsTable"]["Ref"],
              "PageQueueUrl": local["created"]["PageQueue"]["Ref"]}
    deployed = json.dumps(machine["Definition"])
    for placeholder in machine["DefinitionSubstitutions"]:
        deployed = deployed.replace("${%s}" % placeholder, values[placeholder])
    local_definition = local["state_machines"][resolve_names(machine["StateMachineName"])]
    assert json.loads(local_definition) == json.loads(deployed)
