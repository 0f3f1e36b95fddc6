"""local/moto_fixes.py's executor patches change what moto costs, not what it does.

The same definition is run for several different inputs at once, twice: with the patches (one parsed program shared
by every execution, cached jsonpath expressions, one boto3 client per key) and with moto's own functions put back.
Per input, the two execution histories must be the same event for event (times, ids and tokens aside). The
definition takes different paths for different inputs: intrinsics, a Choice, a DynamoDB Task whose condition fails
for some inputs (Retry counters kept in the execution's heap under the components' heap keys, then Catch), a Map, a
`waitForTaskToken` SQS Task answered by a thread here, a Wait, Succeed and Fail.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

REGION = "us-east-1"
INPUTS = [
    {"i": i, "items": list(range(i % 4 + 1))[::-1], "fail": "yes" if i % 4 == 3 else "no", "wait": 0}
    for i in range(8)
]


def _definition(table: str, queue_url: str) -> str:
    return json.dumps({
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Parameters": {
                "run.$": "$.run", "i.$": "$.i", "items.$": "$.items", "fail.$": "$.fail", "wait.$": "$.wait",
                "key.$": "States.Format('{}-{}', $.run, $.i)", "next.$": "States.MathAdd($.i, 1)",
                "count.$": "States.ArrayLength($.items)"}, "Next": "Claim"},
            "Claim": {
                "Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
                "Parameters": {"TableName": table, "Key": {"pk": {"S.$": "$.key"}},
                               "UpdateExpression": "SET n = :n", "ConditionExpression": ":fail = :no",
                               "ExpressionAttributeValues": {":n": {"N.$": "States.Format('{}', $.next)"},
                                                             ":fail": {"S.$": "$.fail"}, ":no": {"S": "no"}}},
                "ResultPath": None,
                "Retry": [{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "IntervalSeconds": 1,
                           "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Refused"}],
                "Next": "Each"},
            "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "ResultPath": "$.mapped",
                     "Iterator": {"StartAt": "Size", "States": {
                         "Size": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 1,
                                                                 "Next": "Big"}], "Default": "Small"},
                         "Big": {"Type": "Pass", "Parameters": {"v.$": "$", "size": "big"}, "End": True},
                         "Small": {"Type": "Pass", "Parameters": {"v.$": "$", "size": "small"}, "End": True}}},
                     "Next": "Ask"},
            "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": queue_url, "MessageBody": {
                        "key.$": "$.key", "count.$": "$.count", "second.$": "$.mapped[0].size",
                        "token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": 30, "ResultPath": "$.answer",
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Refused"}],
                    "Next": "Pause"},
            "Pause": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Decide"},
            "Decide": {"Type": "Choice", "Choices": [{"Variable": "$.answer.ok", "BooleanEquals": True,
                                                      "Next": "Done"}], "Default": "Declined"},
            "Done": {"Type": "Succeed", "OutputPath": "$.answer"},
            "Declined": {"Type": "Fail", "Error": "Declined", "Cause": "an even count"},
            "Refused": {"Type": "Fail", "Error": "Refused", "Cause": "the claim's condition failed"},
        },
    })


def _answer_tasks(sqs, queue_url: str, sfn, stop: threading.Event) -> None:
    """The other side of `waitForTaskToken`: answers from the message alone, so both runs get the same answers."""
    while not stop.is_set():
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(message["Body"])
            output = {"ok": body["count"] % 2 == 1, "key": body["key"], "second": body["second"]}
            sfn.send_task_success(taskToken=body["token"], output=json.dumps(output))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _normalised(events: list[dict], run: str, name: str) -> list[str]:
    out = []
    for event in events:
        text = json.dumps({k: v for k, v in event.items() if k != "timestamp"}, sort_keys=True, default=str)
        text = text.replace(run, "<run>").replace(name, "<name>")
        text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", text)
        text = re.sub(r"\b[0-9a-f]{32}\b", "<md5>", text)
        text = re.sub(r"Request ID: [^;]+;", "Request ID: <id>;", text)
        out.append(text)
    return out


def _run_concurrently(sfn, machine_arn: str) -> dict[int, list[str]]:
    run = uuid.uuid4().hex[:12]

    def one(entry: dict) -> tuple[int, list[str]]:
        name = f"x{run}-{entry['i']}"
        arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps({**entry, "run": run}))
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=arn["executionArn"])["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"{name} still running"
            time.sleep(0.05)
        events = sfn.get_execution_history(executionArn=arn["executionArn"], maxResults=1000)["events"]
        return entry["i"], _normalised(events, run, name)

    with ThreadPoolExecutor(max_workers=len(INPUTS)) as pool:
        return dict(pool.map(one, INPUTS))


@pytest.fixture()
def fixes(stack):
    from local import moto_fixes

    missing = [name for name in moto_fixes.EXECUTOR_PATCHES if not moto_fixes.applied.get(name)]
    if missing:
        pytest.skip(f"executor patches not applied in this process: {missing}")
    return moto_fixes


@pytest.fixture()
def machine(stack):
    session = boto3.Session(region_name=REGION)
    dynamodb = session.client("dynamodb", endpoint_url=stack.aws_url)
    sqs = session.client("sqs", endpoint_url=stack.aws_url)
    sfn = session.client("stepfunctions", endpoint_url=stack.aws_url)
    suffix = uuid.uuid4().hex[:8]
    table = f"moto-fixes-{suffix}"
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    queue_url = sqs.create_queue(QueueName=f"moto-fixes-{suffix}")["QueueUrl"]
    definition = _definition(table, queue_url)
    machine_arn = sfn.create_state_machine(name=f"moto-fixes-{suffix}", definition=definition,
                                           roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    stop = threading.Event()
    answerer = threading.Thread(target=_answer_tasks, args=(sqs, queue_url, sfn, stop), daemon=True)
    answerer.start()
    yield sfn, machine_arn, definition
    stop.set()
    answerer.join(timeout=5)


def _moto_as_it_ships(monkeypatch, fixes) -> None:
    """Puts moto's own parse, jsonpath parsers and boto_client_for back, for the duration of one test."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(fixes.originals["parse_cache"]))
    monkeypatch.setattr(json_path, "parse", fixes.originals["jsonpath_cache"]["json_path"])
    monkeypatch.setattr(result_path, "parse", fixes.originals["jsonpath_cache"]["result_path"])
    cached = boto_client.boto_client_for
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.") and getattr(module, "boto_client_for", None) is cached:
            monkeypatch.setattr(module, "boto_client_for", fixes.originals["boto_clients"])


def test_shared_program_gives_the_same_histories_as_parsing_each_time(fixes, machine, monkeypatch):
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    sfn, machine_arn, definition = machine
    misses = fixes.stats()["parse_misses"]
    program = AmazonStateLanguageParser.parse(definition)[0]  # parsed when the machine was created
    assert fixes.stats()["parse_misses"] == misses, "the definition was parsed again"
    before = repr(program)  # every attribute of every component, heap keys included

    cached = _run_concurrently(sfn, machine_arn)

    assert fixes.stats()["parse_misses"] == misses, "an execution parsed the definition again"
    assert AmazonStateLanguageParser.parse(definition)[0] is program
    assert repr(program) == before, "an execution changed the shared program"
    keyless = []
    pending = [program]
    while pending:  # every component had its heap key before any execution could race to assign it
        value = pending.pop()
        if isinstance(value, EvalComponent):
            if value._EvalComponent__heap_key is None:
                keyless.append(type(value).__name__)
            pending.extend(vars(value).values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
    assert not keyless

    _moto_as_it_ships(monkeypatch, fixes)
    reference = _run_concurrently(sfn, machine_arn)

    assert fixes.stats()["parse_misses"] == misses  # the reference run did not go through the cache
    for entry in INPUTS:
        assert cached[entry["i"]] == reference[entry["i"]], f"input {entry}"
    # The inputs really took different paths: successes, a declined answer and a refused claim with its retries.
    last = {i: json.loads(history[-1])["type"] for i, history in cached.items()}
    assert set(last.values()) == {"ExecutionSucceeded", "ExecutionFailed"}
    refused = [h for i, h in cached.items() if INPUTS[i]["fail"] == "yes"]
    assert refused and all(sum('"TaskFailed"' in e for e in h) == 2 for h in refused)  # and its retry


def test_one_client_per_key(fixes):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sqs,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    assert state_task_service_sqs.boto_client_for is boto_client.boto_client_for  # imported by name, repointed
    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(lambda _: boto_client.boto_client_for(region="eu-west-3", service="sqs"), range(32)))
    assert len({id(c) for c in clients}) == 1
    sqs = clients[0]
    assert boto_client.boto_client_for(region="eu-west-3", service="sqs", state_credentials=None) is sqs
    assert boto_client.boto_client_for(region="eu-west-3", service="sns") is not sqs
    assert boto_client.boto_client_for(region="eu-west-2", service="sqs") is not sqs
    assert sqs.meta.region_name == "eu-west-3" and sqs.meta.service_model.service_name == "sqs"
    # The client moto itself would build: same endpoint, credentials and retry settings.
    fresh = fixes.originals["boto_clients"](region="eu-west-3", service="sqs")
    assert sqs.meta.endpoint_url == fresh.meta.endpoint_url
    assert sqs._request_signer._credentials.get_frozen_credentials() == \
        fresh._request_signer._credentials.get_frozen_credentials()
    assert sqs.meta.config.retries == fresh.meta.config.retries


def test_a_transaction_repeated_with_its_client_token_succeeds_without_writing_again(stack):
    """As DynamoDB does: the repeat botocore sends after a lost answer (same ClientRequestToken) is a success that
    writes nothing; without the patch moto ran it again, failed its own condition, and the caller decided anew."""
    dynamodb = boto3.Session(region_name=REGION).client("dynamodb", endpoint_url=stack.aws_url)
    table = f"moto-tokens-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    add_one = [{"Update": {"TableName": table, "Key": {"pk": {"S": "counter"}}, "UpdateExpression": "ADD n :one",
                           "ExpressionAttributeValues": {":one": {"N": "1"}}}},
               {"Put": {"TableName": table, "Item": {"pk": {"S": "event-1"}},
                        "ConditionExpression": "attribute_not_exists(pk)"}}]
    token = uuid.uuid4().hex

    dynamodb.transact_write_items(TransactItems=add_one, ClientRequestToken=token)
    dynamodb.transact_write_items(TransactItems=add_one, ClientRequestToken=token)  # the retry: a success

    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "counter"}})["Item"]["n"] == {"N": "1"}
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):  # a new token is a new transaction
        dynamodb.transact_write_items(TransactItems=add_one, ClientRequestToken=uuid.uuid4().hex)
    with pytest.raises(dynamodb.exceptions.IdempotentParameterMismatchException):
        dynamodb.transact_write_items(TransactItems=add_one[:1], ClientRequestToken=token)
