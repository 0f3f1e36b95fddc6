"""Least privilege, checked against real calls.

local/iam_recorder.py records, for the whole test session (in-process stack and the e2e subprocess alike), every AWS
call each Lambda makes as the IAM permissions it needs; the last test of the session evaluates every one against that
function's role in the packaged template (tests/support/iam_policy.py) and fails naming each call a role would deny.
Before it: the matcher and the call mapping, the state machine roles against their definitions, and, driven through
the local stack, the gaps found when this was first built and the rarer paths of the second release (deferred
starts, failover from the sender, the idempotency layer's clean-up). Another runs_last test judges the other way
round: every grant of every role was used by some recorded call (over the whole suite only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import boto3
import pytest
import requests

from infra.build_template import FUNCTIONS
from local.iam_recorder import CALLS_FILE_ENV, read_calls, requested_permissions
from tests.conftest import ROOT, new_phone, unique, wait_for
from tests.support.iam_policy import Checker, LocalArns, RolePolicy, Unsupported, state_machine_permissions

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/local-directory"


@pytest.fixture(scope="module")
def checker(template) -> Checker:
    return Checker(template, FUNCTIONS)


def recorded(function: str | None = None, action: str | None = None) -> list[dict]:
    calls = read_calls(os.environ[CALLS_FILE_ENV])
    return [c for c in calls if (function is None or c["function"] == function) and (action is None or c["action"] == action)]


# --- the matcher: as IAM matches ------------------------------------------------------------------------------------
def policy(*statements: dict) -> RolePolicy:
    return RolePolicy("test", list(statements))


def allow(action, resource) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def test_table_grants_do_not_reach_indexes_and_index_grants_do_not_reach_tables():
    table_only = policy(allow("dynamodb:Query", TABLE))
    assert table_only.allows("dynamodb:Query", TABLE)
    assert not table_only.allows("dynamodb:Query", f"{TABLE}/index/by_phone")
    indexes = policy(allow("dynamodb:Query", f"{TABLE}/index/*"))
    assert indexes.allows("dynamodb:Query", f"{TABLE}/index/by_phone")
    assert not indexes.allows("dynamodb:Query", TABLE)
    assert not table_only.allows("dynamodb:Query", TABLE + "-other")


def test_actions_match_case_insensitively_with_wildcards_and_resources_match_literally():
    rules = policy(allow("DynamoDB:Get*", "*"), allow("s3:PutObject", "arn:aws:s3:::my.bucket/incidents/?/*"))
    assert rules.allows("dynamodb:GetItem", TABLE) and rules.allows("dynamodb:getitem", TABLE)
    assert not rules.allows("dynamodb:PutItem", TABLE)
    assert rules.allows("s3:PutObject", "arn:aws:s3:::my.bucket/incidents/a/photo.jpg")
    assert not rules.allows("s3:PutObject", "arn:aws:s3:::myXbucket/incidents/a/photo.jpg"), "'.' is literal"
    assert not rules.allows("s3:PutObject", "arn:aws:s3:::my.bucket/incidents/ab/photo.jpg"), "'?' is one character"


def test_an_explicit_deny_wins_and_not_action_excludes():
    rules = policy(allow("dynamodb:*", "*"), {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE})
    assert rules.allows("dynamodb:DeleteItem", TABLE + "-other")
    assert not rules.allows("dynamodb:DeleteItem", TABLE)
    assert not policy({"Effect": "Allow", "NotAction": "dynamodb:*", "Resource": "*"}).allows("dynamodb:GetItem", TABLE)


def test_statements_it_cannot_evaluate_faithfully_are_refused():
    with pytest.raises(Unsupported):
        policy({**allow("sqs:SendMessage", "*"), "Condition": {"Bool": {"aws:SecureTransport": "true"}}})


# --- calls -> permissions -------------------------------------------------------------------------------------------
def test_calls_map_to_the_permissions_iam_checks():
    region = "us-east-1"
    transaction = {"TransactItems": [
        {"Put": {"TableName": "local-timeline"}}, {"Update": {"TableName": "local-incidents"}},
        {"ConditionCheck": {"TableName": "local-lookups"}}, {"Delete": {"TableName": "local-pages"}}]}
    assert requested_permissions("dynamodb", "dynamodb", "TransactWriteItems", transaction, region) == [
        ("dynamodb:PutItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/local-timeline"]),
        ("dynamodb:UpdateItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/local-incidents"]),
        ("dynamodb:ConditionCheckItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/local-lookups"]),
        ("dynamodb:DeleteItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/local-pages"])]
    batch = {"RequestItems": {"local-directory": {}, "local-lookups": {}}}
    assert [a for a, _ in requested_permissions("dynamodb", "dynamodb", "BatchGetItem", batch, region)] == \
        ["dynamodb:BatchGetItem"] * 2
    assert requested_permissions("dynamodb", "dynamodb", "Query", {"TableName": "local-pages", "IndexName": "by_phone"},
                                 region) == [("dynamodb:Query", [
                                     "arn:aws:dynamodb:us-east-1:123456789012:table/local-pages/index/by_phone"])]
    assert requested_permissions("sqs", "sqs", "SendMessageBatch", {"QueueUrl": "http://127.0.0.1:5000/123456789012/q"},
                                 region) == [("sqs:SendMessage", ["arn:aws:sqs:us-east-1:123456789012:q"])]
    assert requested_permissions("sns", "sns", "Publish", {"PhoneNumber": "+15555550100"}, region) == \
        [("sns:Publish", ["*"])]
    assert requested_permissions("sns", "sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:1:t"}, region) == \
        [("sns:Publish", ["arn:aws:sns:us-east-1:1:t"])]
    assert requested_permissions("stepfunctions", "states", "SendTaskSuccess", {"taskToken": "t"}, region) == \
        [("states:SendTaskSuccess", ["*"])]
    assert requested_permissions("sesv2", "ses", "SendEmail", {"FromEmailAddress": "Ops <ops@example.com>"},
                                 region) == [("ses:SendEmail", [
                                     "arn:aws:ses:us-east-1:123456789012:identity/ops@example.com",
                                     "arn:aws:ses:us-east-1:123456789012:identity/example.com"])]


PRESIGN = """
import boto3
from local.iam_recorder import function_context, install_from_environment
install_from_environment()
s3 = boto3.session.Session().client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
with function_context("api_handler"):
    s3.generate_presigned_post(Bucket="evidence", Key="incidents/inc_1/a.jpg")
    s3.generate_presigned_url("get_object", Params={"Bucket": "evidence", "Key": "incidents/inc_1/a.jpg"})
s3.generate_presigned_post(Bucket="evidence", Key="outside/any/handler")
"""


def test_presigned_posts_and_urls_are_recorded_as_the_s3_action_they_allow(tmp_path):
    """In a process of its own: these made-up calls must not reach the session's calls file."""
    calls_file = tmp_path / "calls.jsonl"
    env = {**os.environ, CALLS_FILE_ENV: str(calls_file)}
    subprocess.run([sys.executable, "-c", PRESIGN], cwd=ROOT, env=env, check=True, timeout=60)
    calls = read_calls(str(calls_file))
    assert {(c["function"], c["action"], tuple(c["resources"])) for c in calls} == {
        ("api_handler", "s3:PutObject", ("arn:aws:s3:::evidence/incidents/inc_1/a.jpg",)),
        ("api_handler", "s3:GetObject", ("arn:aws:s3:::evidence/incidents/inc_1/a.jpg",))}


def test_template_intrinsics_resolve_to_the_local_stacks_names(template):
    arns = LocalArns(template)
    assert arns.resolve({"Fn::GetAtt": ["DirectoryTable", "Arn"]}) == TABLE
    assert arns.resolve({"Fn::Sub": "${PagesTable.Arn}/index/*"}).endswith(":table/local-pages/index/*")
    assert arns.resolve({"Ref": "EscalationStateMachine"}) == \
        "arn:aws:states:us-east-1:123456789012:stateMachine:local-escalation"


def test_failover_identities_and_conditions_resolve_with_the_local_parameters(template):
    arns = LocalArns(template)
    domain = {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "EmailFrom"}]}]}
    assert arns.resolve({"Fn::Sub": ["arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${D}",
                                     {"D": domain}]}) == "arn:aws:ses:us-east-1:123456789012:identity/trust-safety.local"
    assert arns.resolve({"Ref": "VoiceOriginationNumberArn"}).endswith(":phone-number/phone-local")
    assert arns.condition("HasDispatch") is False  # DispatchApiUrl defaults to "": dispatch off
    assert arns.resolve({"Fn::If": ["HasDispatch", "on", "off"]}) == "off"


def test_resolved_arns_equal_what_the_local_stack_creates(template, stack):
    """The resolver's names are the local stack's: otherwise every check below would compare unrelated strings."""
    arns = LocalArns(template)
    env = stack.env
    assert arns.resolve({"Ref": "EscalationStateMachine"}) == env["ESCALATION_STATE_MACHINE_ARN"]
    assert arns.resolve({"Ref": "InboundSmsTopic"}) == env["INBOUND_SMS_TOPIC_ARN"]
    assert arns.resolve({"Ref": "IncidentsTable"}) == env["INCIDENTS_TABLE"]
    assert arns.resolve({"Ref": "EvidenceBucket"}) == env["EVIDENCE_BUCKET"]
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=stack.aws_url)
    queue_arn = sqs.get_queue_attributes(QueueUrl=env["PAGE_QUEUE_URL"], AttributeNames=["QueueArn"])
    assert arns.resolve({"Fn::GetAtt": ["PageQueue", "Arn"]}) == queue_arn["Attributes"]["QueueArn"]
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url)
    assert arns.resolve({"Fn::GetAtt": ["DirectoryTable", "Arn"]}) == \
        ddb.describe_table(TableName=env["DIRECTORY_TABLE"])["Table"]["TableArn"]


# --- the state machine: its role against every Task of its definition ----------------------------------------------
def test_the_state_machine_role_allows_every_task_state(checker):
    needed, findings = checker.check_state_machines()
    actions = {(action, resources[0].rsplit(":", 1)[-1].rsplit("/", 1)[-1]) for _, action, resources, _ in needed}
    assert {("dynamodb:UpdateItem", "local-incidents"), ("sqs:SendMessage", "local-pages")} <= actions
    assert not findings, "\n".join(map(str, findings))


def test_task_states_of_every_integration_kind_are_read():
    definition = {"States": {
        "Wait": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                 "Parameters": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q", "MessageBody": {}}},
        "Sdk": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:transactWriteItems",
                "Parameters": {"TransactItems": [{"Put": {"TableName": "t"}}]}},
        "Sms": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "Parameters": {"PhoneNumber.$": "$.to"}},
        "Map": {"Type": "Map", "ItemProcessor": {"States": {
            "Get": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                    "Parameters": {"TableName.$": "$.table"}}}}},
    }}
    assert state_machine_permissions(definition, "us-east-1") == [
        ("Wait", "sqs:SendMessage", ["arn:aws:sqs:us-east-1:123456789012:q"]),
        ("Sdk", "dynamodb:PutItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/t"]),
        ("Sms", "sns:Publish", ["*"]),
        ("Get", "dynamodb:GetItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/*"]),  # dynamic name: any table
    ]
    with pytest.raises(Unsupported):
        state_machine_permissions({"States": {"L": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f"}}},
                                  "us-east-1")


# --- the gaps found when this was built, each through the local stack -----------------------------------------------
def open_panic_paged(world) -> dict:
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [60]))
    incident = world.open_panic()
    wait_for(lambda: world.sms.to(responder["phone"]), timeout=20, message="the tier-1 page")
    return incident


def assert_recorded_and_allowed(checker, function: str, action: str, table_suffix: str) -> None:
    calls = [c for c in recorded(function, action) if any(r.endswith(table_suffix) for r in c["resources"])]
    assert calls, f"{function} made no {action} on *{table_suffix}: the scenario or the recorder changed"
    findings = checker.check_calls(calls)
    assert not findings, "\n".join(map(str, findings))


def test_intake_batch_reads_the_directory_and_the_api_role_allows_it(world, checker):
    open_panic_paged(world)
    assert_recorded_and_allowed(checker, "api_handler", "dynamodb:BatchGetItem", ":table/local-directory")


def test_send_pages_reads_the_shoppers_location_and_its_role_allows_it(world, checker):
    open_panic_paged(world)
    lookups = [c for c in recorded("send_pages") if any(r.endswith(":table/local-lookups") for r in c["resources"])]
    assert lookups, "send_pages read nothing from the lookups table: the scenario or the recorder changed"
    findings = checker.check_calls(lookups)
    assert not findings, "\n".join(map(str, findings))


def faults():
    from tests.reliability.faults import Faults

    return Faults()


def assert_allowed(checker, calls: list[dict], what: str) -> None:
    assert calls, f"nothing recorded for {what}: the scenario or the recorder changed"
    findings = checker.check_calls(calls)
    assert not findings, "\n".join(map(str, findings))


def test_a_start_deferred_at_intake_goes_through_the_jobs_queue_and_run_jobs_starts_it(world, checker):
    """StartExecution fails at intake: the API puts the start on the jobs queue, and run_jobs starts the execution."""
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [60]))
    injected = faults()
    try:
        injected.add("sfn", "StartExecution", "5xx")
        incident = world.open_panic()
    finally:
        injected.clear()
    wait_for(lambda: world.sms.to(responder["phone"]), timeout=30, message="the page after the deferred start")
    deferred = [c for c in recorded("api_handler", "sqs:SendMessage") if c["resources"][0].endswith(":local-jobs")]
    assert_allowed(checker, deferred, f"the API deferring {incident['id']}'s start")
    assert_allowed(checker, recorded("run_jobs", "states:StartExecution"), "run_jobs starting the escalation")


def test_a_missed_check_in_whose_escalation_cannot_start_is_deferred_by_run_jobs(world, checker):
    """The timer's job opens the missed_check_in incident in run_jobs; StartExecution fails there, so run_jobs puts
    the start on its own queue and runs it later."""
    responder = world.responder()
    world.route_all_to(world.policy([[responder]], [60]))
    shopper = world.as_("shopper")
    created = shopper.post("/v1/check-ins", json={"due_in_s": 5, "location": {"lat": 40.7, "lng": -74.0}})
    assert created.status_code == 201, created.text
    check_in_id = created.json()["check_in"]["id"]
    def deferred() -> list[dict]:
        return [c for c in recorded("run_jobs", "sqs:SendMessage") if c["resources"][0].endswith(":local-jobs")]

    injected = faults()
    try:
        # Every attempt (botocore retries a 5xx) until the start was handed to the queue.
        injected.add("sfn", "StartExecution", "5xx",
                     match=lambda params: "escalation" in str(params.get("stateMachineArn", "")))
        wait_for(lambda: shopper.get(f"/v1/check-ins/{check_in_id}").json()["check_in"]["status"] == "missed",
                 timeout=30, message="the missed check-in")
        wait_for(deferred, timeout=30, message="run_jobs deferring the start")
    finally:
        injected.clear()
    wait_for(lambda: world.sms.to(responder["phone"]), timeout=60, message="the page after the deferred start")
    assert_allowed(checker, deferred(), "run_jobs deferring a start to its own queue")


def test_a_refused_publish_fails_over_by_email_from_send_pages(world, checker):
    """SNS refuses the page (nothing was sent): send_pages itself fails over, by email to a responder who has one."""
    responder_id, phone, email = unique("r"), new_phone(), f"{unique('oncall')}@example.com"
    assert world.admin.put(f"/v1/responders/{responder_id}",
                           json={"name": responder_id, "phone": phone, "email": email}).status_code == 201
    world.route_all_to(world.policy([[{"id": responder_id}]], [3600]))
    injected = faults()
    try:
        injected.add("sns", "Publish", "reject", match=lambda params: params.get("PhoneNumber") == phone)
        incident = world.open_panic()
        wait_for(lambda: [m for m in requests.get(f"{world.stack.dev_url}/dev/email", timeout=10).json()["emails"]
                          if email in m["to"]], timeout=30, message="the failover email")
    finally:
        injected.clear()
    sent = [c for c in recorded("send_pages", "ses:SendEmail")]
    assert_allowed(checker, sent, f"send_pages failing over {incident['id']}'s page by email")


def test_a_command_that_fails_is_forgotten_by_the_idempotency_layer_so_its_retry_runs(world, checker):
    """STOP cannot be stored at first: powertools deletes its in-progress record (so SNS's retry runs the command
    again) with inbound_sms's role."""
    responder = world.responder()
    injected = faults()
    try:
        injected.add("dynamodb", "UpdateItem", "reject", times=1,
                     match=lambda params: str(params.get("TableName", "")).endswith("-directory"))
        world.sms.reply(responder["phone"], "STOP")
    finally:
        injected.clear()
    wait_for(lambda: world.admin.get(f"/v1/responders/{responder['id']}").json()["responder"].get("opted_out"),
             timeout=20, message="STOP, after its retry")
    assert_allowed(checker, recorded("inbound_sms", "dynamodb:DeleteItem"), "the idempotency record's deletion")


# Failover calls: locally the dev server places them (no emulator speaks End User Messaging voice), so no call is
# recorded; what the code would ask IAM for is derived from the deployed setting instead.
FAILOVER_FUNCTIONS = {"send_pages", "run_jobs", "sms_receipts"}


def test_functions_that_fail_over_may_call_from_the_voice_number_and_only_they(template, checker):
    from tests.support.iam_policy import LOCAL_PARAMETERS

    env = {logical_id: template["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
           for logical_id in FUNCTIONS}
    assert {e["VOICE_ORIGINATION_NUMBER"]["Ref"] for e in env.values()} == {"VoiceOriginationNumberArn"}
    identity = LOCAL_PARAMETERS["VoiceOriginationNumberArn"]
    ((action, resources),) = requested_permissions("pinpoint-sms-voice-v2", "sms-voice", "SendVoiceMessage",
                                                   {"OriginationIdentity": identity}, "us-east-1")
    for logical_id, function in FUNCTIONS.items():
        finding = checker.check(function, checker.roles[function], action, resources, "SendVoiceMessage")
        assert (finding is None) == (function in FAILOVER_FUNCTIONS), (function, finding)
        other = identity.replace("phone-local", "phone-other")
        assert checker.check(function, checker.roles[function], action, [other], "SendVoiceMessage"), \
            f"{function} may call from a number that is not the configured one"


def test_the_local_parameters_are_what_the_local_stack_runs_with(stack):
    from tests.support.iam_policy import LOCAL_PARAMETERS

    assert LOCAL_PARAMETERS["EmailFrom"] == os.environ["EMAIL_FROM"]


# --- the verdict, after every other test of the session -------------------------------------------------------------
# Grants no Lambda code makes a call for, so the recorder cannot see them used: what the Lambda service does with the
# function's role (writing its logs, sending its traces, polling its SQS event source, parking a failed asynchronous
# invocation), and failover calls (no voice emulator: the test above derives them from the deployed setting).
NOT_RECORDABLE = {
    "logs:CreateLogStream": "Lambda writes the function's logs",
    "logs:PutLogEvents": "Lambda writes the function's logs",
    "xray:PutTraceSegments": "Lambda's X-Ray daemon",
    "xray:PutTelemetryRecords": "Lambda's X-Ray daemon",
    "sqs:ReceiveMessage": "the SQS event source mapping polls with the function's role",
    "sqs:DeleteMessage": "the SQS event source mapping deletes what the function handled",
    "sqs:GetQueueAttributes": "the SQS event source mapping reads its queue",
    "sms-voice:SendVoiceMessage": "failover calls (dev server locally): test_functions_that_fail_over_may_call...",
}
# Specific grants of that kind: (function, action, resource suffix).
NOT_RECORDABLE_ON = {("inbound_sms", "sqs:SendMessage", ":local-inbound-sms-dlq"):
                     "Lambda parks a failed asynchronous (SNS) invocation on the function's dead-letter queue"}
SESSION_PARTS = ("tests/integration/", "tests/e2e/", "tests/reliability/", "tests/infra/test_least_privilege.py")


def whole_suite(session) -> bool:
    """Unused grants are judged only when the session ran everything that exercises the Lambdas."""
    paths = {str(item.path) for item in session.items}
    return all(any(part in path for path in paths) for part in SESSION_PARTS)


@pytest.mark.runs_last
def test_every_grant_of_every_role_was_used_by_a_recorded_call(checker, request):
    """The other half of least privilege: a role may do only what its function was seen to do (over the whole suite)."""
    if not whole_suite(request.session):
        pytest.skip("only the whole suite exercises every call: unused grants are not judged on a part of it")
    unused = [(function, action, resource) for function, action, resource in checker.unused_grants(recorded())
              if action not in NOT_RECORDABLE
              and not any(f == function and a == action and resource.endswith(suffix)
                          for f, a, suffix in NOT_RECORDABLE_ON)]
    assert not unused, "grants no recorded call used (remove them, or record the call that needs them):\n" + \
        "\n".join(f"{f}: {a} on {r}" for f, a, r in unused)


@pytest.mark.runs_last
def test_every_aws_call_a_lambda_made_is_allowed_by_its_role(checker):
    time.sleep(0.5)  # the last handler threads of the stacks finish writing
    calls = recorded()
    assert calls, f"nothing was recorded in {os.environ[CALLS_FILE_ENV]}: the recorder is not installed"
    findings = checker.check_calls(calls)
    by_function = {}
    for call in calls:
        by_function.setdefault(call["function"], set()).add(call["action"])
    summary = "; ".join(f"{f}: {len(a)} actions" for f, a in sorted(by_function.items()))
    assert not findings, f"{len(findings)} of {len(calls)} recorded calls would be denied on AWS ({summary}):\n" + \
        "\n".join(sorted({str(f) for f in findings}))


def test_threads_started_inside_a_handler_context_are_not_attributed_to_it():
    """Why the Step Functions executor's calls (threads the moto server starts) never count as a Lambda's: a new
    thread starts with an empty context, whatever context the code that started it ran in."""
    import threading

    from local.iam_recorder import current_function, function_context

    seen = []
    with function_context("api_handler"):
        assert current_function() == "api_handler"
        worker = threading.Thread(target=lambda: seen.append(current_function()))
        worker.start()
        worker.join()
    assert seen == [None] and current_function() is None
