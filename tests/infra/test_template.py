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

# "*" as a resource only where AWS offers nothing narrower: SMS to phone numbers (no ARN), and actions the Service
# Authorization Reference lists without resource types (X-Ray, task tokens: checked with cfn-lint's copy of it below).
STAR_RESOURCE_ALLOWED = {
    "sns:Publish": "SMS are published to phone numbers, which have no ARN: IAM only accepts Resource '*'",
}

# Everything each role may do beyond DynamoDB (checked table by table below). A change here is a change of the
# service's privileges: make it on purpose, together with .chalice/policy-*.json or infra/*.yaml. What each function
# needs is what tests/infra/test_least_privilege.py saw it call over the whole suite (it fails on a call denied AND on
# a grant never used), plus what the Lambda service does with the role (logs, X-Ray, polling an SQS event source,
# parking a failed asynchronous invocation).
LOGS_AND_TRACES = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
EVENT_SOURCE = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# A failed message made visible again within seconds instead of the queue's 360 s (app.py `_retry_soon`).
RETRY_SOON = {"sqs:ChangeMessageVisibility"}
FAILOVER = {"ses:SendEmail", "sms-voice:SendVoiceMessage"}
ROLE_ACTIONS = {
    "ApiHandlerRole": LOGS_AND_TRACES | {"states:StartExecution", "states:StopExecution", "sqs:SendMessage",
                                         "s3:PutObject"},
    "InboundSmsRole": LOGS_AND_TRACES | {"states:StartExecution", "sqs:SendMessage", "sns:Publish",
                                         "sns:OptInPhoneNumber"},
    # No StartExecution any more: a start deferred to a queue is made by run_jobs. SendTaskSuccess: a tier's timeout
    # starts once its pages were sent.
    "SendPagesRole": LOGS_AND_TRACES | EVENT_SOURCE | RETRY_SOON | FAILOVER | {"sqs:SendMessage", "sns:Publish",
                                                                                "states:SendTaskSuccess"},
    "RunJobsRole": LOGS_AND_TRACES | EVENT_SOURCE | RETRY_SOON | FAILOVER | {"sqs:SendMessage",
                                                                              "states:StartExecution"},
    "SmsReceiptsRole": LOGS_AND_TRACES | FAILOVER,
    "EscalationStateMachineRole": {"sqs:SendMessage", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                                   "xray:GetSamplingRules", "xray:GetSamplingTargets"},
    "TimerStateMachineRole": {"sqs:SendMessage", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                              "xray:GetSamplingRules", "xray:GetSamplingTargets"},
    "SmsDeliveryStatusRole": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
}
# What each non-"*" grant points at: the stack's own queues, state machines, bucket and parameters only.
TARGETS = {
    "states:StartExecution": {"EscalationStateMachine", "TimerStateMachine"},
    "states:StopExecution": {"TimerStateMachine"},
    "sqs:ReceiveMessage": {"PageQueue", "JobsQueue"},
    "sqs:ChangeMessageVisibility": {"PageQueue", "JobsQueue"},
    "sqs:SendMessage": {"PageQueue", "JobsQueue", "InboundSmsDeadLetters"},
    "s3:PutObject": {"EvidenceBucket"},
    "ses:SendEmail": {"EmailFrom", "EmailDomain"},
    "sms-voice:SendVoiceMessage": {"VoiceOriginationNumberArn"},
}
# Each function's own queue (the one it consumes and shortens retries on).
OWN_QUEUE = {"SendPagesRole": "PageQueue", "RunJobsRole": "JobsQueue"}
# Wildcards inside an ARN that stay within one of the stack's own resources.
SCOPED_WILDCARDS = {
    r"\$\{\w+Table\.Arn\}/index/\*": "a table's own indexes",
    r"\$\{EvidenceBucket\.Arn\}/incidents/\*": "evidence objects (the API signs upload POSTs with its role)",
    r"arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:execution:"
    r"\$\{TimerStateMachine\.Name\}:\*": "executions of the stack's timer state machine (stopping a timer)",
}
LOG_GROUPS = {"ApiHandlerRole": "APIHandlerLogGroup", "InboundSmsRole": "InboundSmsLogGroup",
              "SendPagesRole": "SendPagesLogGroup", "RunJobsRole": "RunJobsLogGroup",
              "SmsReceiptsRole": "SmsReceiptsLogGroup",
              "SmsDeliveryStatusRole": {"SmsDeliveryStatusLogGroup", "SmsDeliveryFailureLogGroup"}}
FUNCTION_IDS = {"APIHandler", "InboundSms", "SendPages", "RunJobs", "SmsReceipts"}


# --- building (package_dir and template: session fixtures of tests/conftest.py, shared with the least-privilege
# check and the packaged-zip test) ------------------------------------------------------------------------------------
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
    assert "chalicelib/services/__pycache__/intake.cpython-311.pyc" in names


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
    assert set(functions) == FUNCTION_IDS
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
    jobs_event = resources["RunJobs"]["Properties"]["Events"]["RunJobsSqsEventSource"]
    assert jobs_event["Properties"]["Queue"] == {"Fn::Sub": "${JobsQueue.Arn}"}
    assert jobs_event["Properties"]["BatchSize"] == 1
    assert jobs_event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "JobRunnerMaxConcurrency"}}
    # Lambda refuses an SQS event source whose visibility timeout is shorter than the function's timeout; AWS advises
    # six times the timeout (a message is then never delivered again while its first invocation still runs).
    for queue, function in (("PageQueue", "SendPages"), ("JobsQueue", "RunJobs")):
        assert resources[function]["Properties"]["Timeout"] == 60, function
        assert resources[queue]["Properties"]["VisibilityTimeout"] >= 6 * resources[function]["Properties"]["Timeout"]
    assert resources["SmsReceipts"]["Properties"]["Timeout"] == 30
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True


def test_tables_are_on_demand_recoverable_and_retained(resources):
    tables = of_type(resources, "AWS::DynamoDB::Table")
    assert len(tables) >= 6
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        assert props["SSESpecification"] == {"SSEEnabled": True}, logical_id
        # Retained, except when the stack's first create fails: then a retry must not trip over leftover tables.
        assert table["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
        assert table["UpdateReplacePolicy"] == "Retain", logical_id
    with_ttl = {k for k, t in tables.items() if t["Properties"].get("TimeToLiveSpecification", {}).get("Enabled")}
    assert with_ttl == {"PagesTable", "LookupsTable", "IdempotencyTable", "CheckInsTable"}


def test_evidence_bucket_is_private_encrypted_and_expires(resources):
    bucket = resources["EvidenceBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert any(rule["Status"] == "Enabled" and rule.get("ExpirationInDays")
               for rule in bucket["LifecycleConfiguration"]["Rules"])
    policy = resources["EvidenceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


@pytest.mark.parametrize("logical_id, file, substitutions", [
    ("EscalationStateMachine", "escalation.asl.json", {"IncidentsTable": {"Ref": "IncidentsTable"},
                                                       "PageQueueUrl": {"Ref": "PageQueue"}}),
    ("TimerStateMachine", "timer.asl.json", {"JobsQueueUrl": {"Ref": "JobsQueue"}}),
])
def test_state_machine_is_the_infra_file_with_substitutions_and_traced(resources, logical_id, file, substitutions):
    machine = resources[logical_id]["Properties"]
    assert machine["Definition"] == json.loads((ROOT / "infra" / file).read_text())
    assert machine["DefinitionSubstitutions"] == substitutions
    assert machine["TracingConfiguration"] == {"Enabled": True}
    states = machine["Definition"]["States"]
    targets = [machine["Definition"]["StartAt"]]
    for state in states.values():
        targets += [state[key] for key in ("Next", "Default") if key in state]
        targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    assert set(targets) <= set(states), f"transitions to missing states: {set(targets) - set(states)}"


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches: its own, or those of its metric math."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"],
                 "Dimensions": props.get("Dimensions", [])}]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def test_alarms_cover_escalation_sms_queues_and_api(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    watched = {(m["Namespace"], m["MetricName"]) for a in alarms.values() for m in alarm_metrics(a)}
    assert {
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/States", "ExecutionThrottled"),
        ("AWS/States", "ThrottledEvents"),
        ("TrustSafetyAlerts", "EscalationExhausted"),
        ("TrustSafetyAlerts", "SmsPublishFailed"),
        ("AWS/SNS", "NumberOfNotificationsFailed"),
        ("AWS/SNS", "SMSMonthToDateSpentUSD"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "4XXError"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
    } <= watched
    queues_watched = {
        (m["MetricName"], m["Dimensions"][0]["Value"]["Fn::GetAtt"][0])
        for a in alarms.values() for m in alarm_metrics(a) if m["Namespace"] == "AWS/SQS"
    }
    dead_letter_queues = {q for metric, q in queues_watched if metric == "ApproximateNumberOfMessagesVisible"
                          and q.endswith("DeadLetters")}
    assert dead_letter_queues == {"PageQueueDeadLetters", "InboundSmsDeadLetters", "JobsQueueDeadLetters"}
    # Work waiting too long: page requests and due jobs (check-ins, timers, dispatch calls).
    assert {("ApproximateAgeOfOldestMessage", "PageQueue"), ("ApproximateAgeOfOldestMessage", "JobsQueue")} <= \
        queues_watched
    timer_alarms = [m for a in alarms.values() for m in alarm_metrics(a) if m["Namespace"] == "AWS/States"
                    and m["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "TimerStateMachine"}}]]
    assert {m["MetricName"] for m in timer_alarms} == {"ExecutionsFailed"}
    # No receipt while SMS are delivered: delivery status logging is off (an account setting, outside the stack).
    receipts = [m for a in alarms.values() for m in alarm_metrics(a) if m["MetricName"] == "Invocations"]
    assert [m["Dimensions"] for m in receipts] == [[{"Name": "FunctionName", "Value": {"Ref": "SmsReceipts"}}]]
    api = resources["RestAPI"]["Properties"]
    for metric in (m for a in alarms.values() for m in alarm_metrics(a) if m["Namespace"] == "AWS/ApiGateway"):
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions == {"Stage": api["StageName"], "ApiName": api["Name"]}, metric
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
    # The app's EMF metrics carry the Powertools service name as a dimension; the alarms must name the same one.
    services = {d["Value"] for a in alarms.values() if a["Properties"].get("Namespace") == "TrustSafetyAlerts"
                for d in a["Properties"].get("Dimensions", []) if d["Name"] == "service"}
    for function in of_type(resources, "AWS::Serverless::Function").values():
        assert {function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]} == services
    filters = of_type(resources, "AWS::Logs::MetricFilter")
    assert {f["Properties"]["MetricTransformations"][0]["MetricName"] for f in filters.values()} == {"SmsPublishFailed"}


def test_every_function_and_every_table_and_index_has_its_alarms(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    per_function = {(m["MetricName"], m["Dimensions"][0]["Value"]["Ref"])
                    for a in alarms.values() for m in alarm_metrics(a) if m["Namespace"] == "AWS/Lambda"
                    and m["MetricName"] in ("Errors", "Throttles")}
    functions = set(of_type(resources, "AWS::Serverless::Function"))
    assert per_function == {(kind, f) for kind in ("Errors", "Throttles") for f in functions}
    for logical_id, table in of_type(resources, "AWS::DynamoDB::Table").items():
        owners = {None} | {i["IndexName"] for i in table["Properties"].get("GlobalSecondaryIndexes", [])}
        covered = {(m["MetricName"], next((d["Value"] for d in m["Dimensions"]
                                           if d["Name"] == "GlobalSecondaryIndexName"), None))
                   for a in alarms.values() for m in alarm_metrics(a) if m["Namespace"] == "AWS/DynamoDB"
                   and m["Dimensions"][0]["Value"] == {"Ref": logical_id}}
        assert covered == {(k, o) for k in ("ReadThrottleEvents", "WriteThrottleEvents") for o in owners}, logical_id


def test_the_docs_say_escalation_exhausted_is_emitted():
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert "does not emit it yet" not in deploy and "not emitted" not in deploy
    assert "stays OK" not in (ROOT / "infra" / "deployment.yaml").read_text()


def test_send_pages_is_capped_by_its_event_source_not_reserved_concurrency(resources, template):
    send_pages = resources["SendPages"]["Properties"]
    assert "ReservedConcurrentExecutions" not in send_pages
    for function in of_type(resources, "AWS::Serverless::Function").values():
        assert "ReservedConcurrentExecutions" not in function["Properties"]
    scaling = send_pages["Events"]["SendPagesSqsEventSource"]["Properties"]["ScalingConfig"]
    assert scaling == {"MaximumConcurrency": {"Ref": "PageSenderMaxConcurrency"}}
    for name in ("PageSenderMaxConcurrency", "JobRunnerMaxConcurrency"):
        parameter = template["Parameters"][name]
        assert parameter["MinValue"] >= 2 and parameter["MaxValue"] <= 1000, name  # SQS event source limits


def test_retained_data_is_retained_except_when_the_first_create_fails(resources):
    retained = {k for k, r in resources.items() if r.get("DeletionPolicy", "").startswith("Retain")}
    assert set(of_type(resources, "AWS::DynamoDB::Table")) | {"EvidenceBucket"} <= retained
    for logical_id in retained:
        assert resources[logical_id]["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id


def test_sns_may_use_the_origination_number_and_the_opt_out_list(resources, template):
    policies = of_type(resources, "AWS::SMSVOICE::ResourcePolicy")
    assert set(policies) == {"SmsOriginationNumberPolicy", "SmsOptOutListPolicy"}
    expected = {"SmsOriginationNumberPolicy": ("SmsOriginationNumberArn", {"sms-voice:SendTextMessage"}),
                "SmsOptOutListPolicy": ("SmsOptOutListArn", {"sms-voice:DescribeOptedOutNumbers",
                                                             "sms-voice:PutOptedOutNumber",
                                                             "sms-voice:DeleteOptedOutNumber"})}
    for logical_id, (parameter, actions) in expected.items():
        props = policies[logical_id]["Properties"]
        assert props["ResourceArn"] == {"Ref": parameter}
        (statement,) = props["PolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
        assert set(as_list(statement["Action"])) == actions and statement["Resource"] == {"Ref": parameter}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        # Optional: a number whose policy is managed elsewhere deploys without it.
        assert template["Parameters"][parameter]["Default"] == "" and "Condition" in policies[logical_id]


def test_local_stack_only_settings_never_reach_a_deployed_function(resources):
    for logical_id, function in of_type(resources, "AWS::Serverless::Function").items():
        env = function["Properties"]["Environment"]["Variables"]
        assert not {"LOCAL_STACK", "TOKEN_SECRET", "AWS_ENDPOINT_URL", "MOTO_PORT", "VOICE_DEV_URL"} & set(env), \
            logical_id
        assert env["VOICE_PROVIDER"] == "eum", f"{logical_id}: failover calls through End User Messaging on AWS"


def test_failover_and_rate_settings_come_from_parameters(resources, template):
    parameters = template["Parameters"]
    for logical_id, function in of_type(resources, "AWS::Serverless::Function").items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["EMAIL_FROM"] == {"Ref": "EmailFrom"}, logical_id
        # An ARN: SendVoiceMessage takes it as OriginationIdentity, and IAM scopes the call to it.
        assert env["VOICE_ORIGINATION_NUMBER"] == {"Ref": "VoiceOriginationNumberArn"}, logical_id
        assert env["DISPATCH_API_URL"] == {"Ref": "DispatchApiUrl"}, logical_id
        # Only the page sender's concurrency is capped, so only its per-process rate adds up to the number's rate.
        assert ("SMS_RATE_PER_S" in env) == (logical_id == "SendPages"), logical_id
    assert resources["SendPages"]["Properties"]["Environment"]["Variables"]["SMS_RATE_PER_S"] == \
        {"Ref": "SmsRatePerSender"}
    assert parameters["SmsRatePerSender"]["Type"] == "Number" and parameters["SmsRatePerSender"]["Default"] == 0.2
    assert "Default" not in parameters["EmailFrom"] and "Default" not in parameters["VoiceOriginationNumberArn"]
    assert re.fullmatch(parameters["VoiceOriginationNumberArn"]["AllowedPattern"],
                        "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-0123456789abcdef")
    assert re.fullmatch(parameters["EmailFrom"]["AllowedPattern"], "alerts@example.com")
    assert not re.fullmatch(parameters["EmailFrom"]["AllowedPattern"], "Alerts <alerts@example.com>")


SECRET_SETTINGS = {"DISPATCH_API_TOKEN": "api_token", "DISPATCH_WEBHOOK_SECRET": "webhook_secret"}


def test_dispatch_credentials_are_resolved_from_secrets_manager_never_passed_as_parameters(resources, template):
    """The provider's token and webhook secret are CloudFormation dynamic references to a Secrets Manager secret:
    never a parameter value (which the console, describe-stacks and shell histories would show), never in the
    template; and only the functions that use them get them."""
    holders = {}
    for logical_id, function in of_type(resources, "AWS::Serverless::Function").items():
        env = function["Properties"]["Environment"]["Variables"]
        for name, key in SECRET_SETTINGS.items():
            if name not in env:
                continue
            holders.setdefault(name, set()).add(logical_id)
            condition, value, off = env[name]["Fn::If"]
            assert condition == "HasDispatch" and off == "", f"{logical_id}.{name}"
            pinned, with_version, current = value["Fn::If"]
            assert pinned == "PinsDispatchSecretVersion"
            assert with_version == {"Fn::Sub": "{{resolve:secretsmanager:${DispatchSecretId}:SecretString:%s::"
                                               "${DispatchSecretVersionId}}}" % key}, f"{logical_id}.{name}"
            assert current == {"Fn::Sub": "{{resolve:secretsmanager:${DispatchSecretId}:SecretString:%s}}" % key}
        for name, value in env.items():
            if isinstance(value, dict) and "Ref" in value and value["Ref"] in template["Parameters"]:
                assert not re.search(r"SECRET|PASSWORD|API_TOKEN", name), f"{logical_id}.{name} is a plain parameter"
    assert holders == {"DISPATCH_API_TOKEN": {"APIHandler", "InboundSms", "SendPages", "RunJobs"},
                       "DISPATCH_WEBHOOK_SECRET": {"APIHandler"}}
    # No role reads the secret at run time: CloudFormation resolves it with the deployer's permissions.
    for role in of_type(resources, "AWS::IAM::Role"):
        assert not [a for s in role_statements(resources, role) for a in as_list(s["Action"])
                    if a.startswith("secretsmanager:") or a.startswith("ssm:")], role
    assert template["Conditions"]["HasDispatch"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DispatchApiUrl"}, ""]}]}
    webhook = template["Outputs"]["DispatchWebhookUrl"]
    assert webhook["Condition"] == "HasDispatch" and webhook["Value"]["Fn::Sub"].endswith("/api/v1/dispatch/webhook")


def test_sms_delivery_receipts_reach_sms_receipts(resources, template):
    """SNS SMS delivery status logs (account attributes, docs/DEPLOY.md step 7.2) -> two log groups the stack creates
    -> subscription filters -> sms_receipts, and the role SNS writes the logs with, limited to those two groups."""
    groups = {"SmsDeliveryStatusLogGroup": "sns/${AWS::Region}/${AWS::AccountId}/DirectPublishToPhoneNumber",
              "SmsDeliveryFailureLogGroup": "sns/${AWS::Region}/${AWS::AccountId}/DirectPublishToPhoneNumber/Failure"}
    for logical_id, name in groups.items():
        props = resources[logical_id]["Properties"]
        assert props["LogGroupName"] == {"Fn::Sub": name}
        assert props["RetentionInDays"] <= 30, "the lines hold destination phone numbers in clear"
    filters = of_type(resources, "AWS::Logs::SubscriptionFilter")
    assert {f["Properties"]["LogGroupName"]["Ref"] for f in filters.values()} == set(groups)
    for logical_id, subscription in filters.items():
        assert subscription["Properties"]["FilterPattern"] == "", "every receipt, unfiltered"
        permission = resources[subscription["DependsOn"]]["Properties"]
        assert permission["Principal"] == "logs.amazonaws.com" and permission["Action"] == "lambda:InvokeFunction"
        assert permission["FunctionName"] == {"Fn::GetAtt": ["SmsReceipts", "Arn"]}
        assert permission["SourceArn"] == {"Fn::GetAtt": [subscription["Properties"]["LogGroupName"]["Ref"], "Arn"]}
        assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    role = resources["SmsDeliveryStatusRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sns.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    statements = role_statements(resources, "SmsDeliveryStatusRole")
    assert {a for s in statements for a in as_list(s["Action"])} == {
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert {referenced(r) for s in statements for r in as_list(s["Resource"])} == set(groups)
    assert template["Outputs"]["SmsDeliveryStatusRoleArn"]["Value"] == {"Fn::GetAtt": ["SmsDeliveryStatusRole", "Arn"]}


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

    def has_resource_types(action: str) -> bool:
        service, _, name = action.partition(":")
        return bool(known.get(service, {}).get("Actions", {}).get(name.lower(), {}).get("Resources"))
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
                    unjustified = [a for a in actions if a not in STAR_RESOURCE_ALLOWED and has_resource_types(a)]
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
            text = resource["Fn::Sub"] if isinstance(resource["Fn::Sub"], str) else resource["Fn::Sub"][0]
            match = re.search(r"\$\{(?!AWS::)(\w+)", text)  # the first resource or parameter, not a pseudo one
            return match.group(1) if match else None
    return None


def test_each_role_may_do_only_what_its_code_does(resources):
    function_roles = {f["Properties"]["Role"]["Fn::GetAtt"][0]
                      for f in of_type(resources, "AWS::Serverless::Function").values()}
    machine_roles = {m["Properties"]["RoleArn"]["Fn::GetAtt"][0]
                     for m in of_type(resources, "AWS::StepFunctions::StateMachine").values()}
    assert function_roles | machine_roles | {"SmsDeliveryStatusRole"} == set(ROLE_ACTIONS) == \
        set(of_type(resources, "AWS::IAM::Role"))
    for role, expected in ROLE_ACTIONS.items():
        actions = {a for s in role_statements(resources, role) for a in as_list(s["Action"])}
        assert actions - {a for a in actions if a.startswith("dynamodb:")} == expected, role
    for role in ROLE_ACTIONS:
        for statement in role_statements(resources, role):
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    if action in TARGETS:
                        assert referenced(resource) in TARGETS[action], f"{role}: {action} on {resource}"
                    if action in EVENT_SOURCE | RETRY_SOON:
                        assert referenced(resource) == OWN_QUEUE[role], f"{role}: {action} on {resource}"
                    if action.startswith("logs:"):
                        groups = LOG_GROUPS[role] if isinstance(LOG_GROUPS[role], set) else {LOG_GROUPS[role]}
                        assert referenced(resource) in groups, f"{role}: {action} on {resource}"
    timer_queue = {referenced(r) for s in role_statements(resources, "TimerStateMachineRole")
                   if "sqs:SendMessage" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    assert timer_queue == {"JobsQueue"}


# Per role, per table: the DynamoDB actions (on the table itself; indexes below). What the suite saw each function do.
TABLE_ACTIONS = {
    "ApiHandlerRole": {
        "IncidentsTable": {"GetItem", "PutItem", "UpdateItem"},
        "TimelineTable": {"PutItem", "Query"},
        "LookupsTable": {"GetItem", "PutItem", "BatchGetItem"},
        "DirectoryTable": {"GetItem", "PutItem", "DeleteItem", "Query", "BatchGetItem"},
        "CheckInsTable": {"GetItem", "PutItem"},
    },
    "InboundSmsRole": {
        "IncidentsTable": {"GetItem", "UpdateItem", "BatchGetItem"},
        "TimelineTable": {"PutItem"},
        "LookupsTable": {"GetItem", "PutItem", "UpdateItem"},
        "DirectoryTable": {"GetItem", "UpdateItem"},
        "IdempotencyTable": {"PutItem", "UpdateItem", "DeleteItem"},
    },
    "SendPagesRole": {
        "IncidentsTable": {"GetItem", "UpdateItem"},
        "TimelineTable": {"PutItem"},
        "PagesTable": {"GetItem", "PutItem", "Query"},
        "LookupsTable": {"GetItem", "PutItem"},
        "DirectoryTable": {"BatchGetItem"},
    },
    "RunJobsRole": {
        "IncidentsTable": {"GetItem", "PutItem", "UpdateItem"},
        "TimelineTable": {"PutItem"},
        "PagesTable": {"GetItem", "PutItem"},
        "LookupsTable": {"GetItem", "PutItem"},
        "DirectoryTable": {"GetItem", "BatchGetItem"},
        "CheckInsTable": {"GetItem", "PutItem"},
    },
    "SmsReceiptsRole": {
        "IncidentsTable": {"GetItem", "UpdateItem"},
        "TimelineTable": {"PutItem"},
        "PagesTable": {"PutItem"},
        "LookupsTable": {"GetItem", "PutItem"},
        "DirectoryTable": {"BatchGetItem"},
    },
    "EscalationStateMachineRole": {"IncidentsTable": {"UpdateItem"}},
}
# Index queries: `${Table.Arn}/index/*` where the function queries every index of the table, the one index otherwise.
INDEX_GRANTS = {
    "ApiHandlerRole": {"${IncidentsTable.Arn}/index/*"},
    "InboundSmsRole": {"${PagesTable.Arn}/index/*", "${DirectoryTable.Arn}/index/*"},
    "SmsReceiptsRole": {"${PagesTable.Arn}/index/by_message"},
}


def dynamodb_grants(resources: dict[str, Any], role: str) -> tuple[dict[str, set[str]], set[str]]:
    tables: dict[str, set[str]] = {}
    indexes: set[str] = set()
    for statement in role_statements(resources, role):
        actions = {a.removeprefix("dynamodb:") for a in as_list(statement["Action"]) if a.startswith("dynamodb:")}
        if not actions:
            continue
        for resource in as_list(statement["Resource"]):
            if isinstance(resource, dict) and "Fn::Sub" in resource and "/index/" in resource["Fn::Sub"]:
                assert actions == {"Query"}, f"{role}: {actions} on an index"
                indexes.add(resource["Fn::Sub"])
            else:
                tables.setdefault(referenced(resource), set()).update(actions)
    return tables, indexes


def test_each_role_reads_and_writes_only_the_tables_its_code_uses(resources):
    for role in ROLE_ACTIONS:
        tables, indexes = dynamodb_grants(resources, role)
        assert tables == TABLE_ACTIONS.get(role, {}), role
        assert indexes == INDEX_GRANTS.get(role, set()), role


def test_no_lambda_may_delete_an_incident_or_rewrite_the_timeline(resources):
    """The timeline is append-only and hash-chained; IAM makes that hold even against a bug."""
    for role in ROLE_ACTIONS:
        tables, _ = dynamodb_grants(resources, role)
        assert not tables.get("TimelineTable", set()) & {"UpdateItem", "DeleteItem", "BatchWriteItem"}, role
        assert not tables.get("IncidentsTable", set()) & {"DeleteItem", "BatchWriteItem"}, role
    # The page sender reads the incident, the shopper's location for the page text (lookups), who is pageable now
    # (a batch read of the directory) and writes pages and the timeline; never an idempotency record or a check-in.
    tables, _ = dynamodb_grants(resources, "SendPagesRole")
    assert set(tables) == {"IncidentsTable", "TimelineTable", "PagesTable", "LookupsTable", "DirectoryTable"}
    assert tables["DirectoryTable"] == {"BatchGetItem"} and tables["LookupsTable"] == {"GetItem", "PutItem"}
    # Receipts: the page of a message id (its index only), nothing of the roster but who is pageable.
    tables, indexes = dynamodb_grants(resources, "SmsReceiptsRole")
    assert "CheckInsTable" not in tables and indexes == {"${PagesTable.Arn}/index/by_message"}


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
