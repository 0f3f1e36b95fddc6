"""tools/check_sms_setup.py against stubbed End User Messaging and SNS answers (no emulator exists for the SMS v2
API): a complete setup passes; each missing piece fails with a line saying what to do."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from tools.check_sms_setup import check, check_failover, grants

NUMBER = "+18005550100"
NUMBER_ARN = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc"
LIST_ARN = "arn:aws:sms-voice:us-east-1:123456789012:opt-out-list/Default"
TOPIC = "arn:aws:sns:us-east-1:123456789012:inbound-sms"
ROLE = "arn:aws:iam::123456789012:role/trust-safety-alerts-prod-SmsDeliveryStatusRole-ABC"


def policy(arn: str, *actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": list(actions), "Resource": arn,
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]})


GOOD = {
    "number": {"PhoneNumberArn": NUMBER_ARN, "PhoneNumberId": "phone-abc", "PhoneNumber": NUMBER, "Status": "ACTIVE",
               "IsoCountryCode": "US", "MessageType": "TRANSACTIONAL", "NumberCapabilities": ["SMS"],
               "NumberType": "TOLL_FREE", "MonthlyLeasingPrice": "2", "TwoWayEnabled": True,
               "TwoWayChannelArn": TOPIC, "SelfManagedOptOutsEnabled": False, "OptOutListName": "Default",
               "DeletionProtectionEnabled": True, "CreatedTimestamp": datetime(2025, 3, 1, tzinfo=timezone.utc)},
    "number_policy": policy(NUMBER_ARN, "sms-voice:SendTextMessage"),
    "list_policy": policy(LIST_ARN, "sms-voice:DescribeOptedOutNumbers", "sms-voice:PutOptedOutNumber",
                          "sms-voice:DeleteOptedOutNumber"),
    "sandbox": False,
    "attributes": {"MonthlySpendLimit": "500", "DefaultSMSType": "Transactional", "DeliveryStatusIAMRole": ROLE,
                   "DeliveryStatusSuccessSamplingRate": "100"},
}


def run(**changes):
    setup = {**GOOD, **changes}
    sms_voice = boto3.client("pinpoint-sms-voice-v2", region_name="us-east-1", aws_access_key_id="x",
                             aws_secret_access_key="x")
    sns = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sms_voice) as sv, Stubber(sns) as sn:
        sv.add_response("describe_phone_numbers", {"PhoneNumbers": [setup["number"]]})
        if setup["number_policy"]:
            sv.add_response("get_resource_policy", {"ResourceArn": NUMBER_ARN, "Policy": setup["number_policy"]},
                            {"ResourceArn": NUMBER_ARN})
        else:
            sv.add_client_error("get_resource_policy", "ResourceNotFoundException", http_status_code=404)
        sv.add_response("describe_opt_out_lists", {"OptOutLists": [
            {"OptOutListArn": LIST_ARN, "OptOutListName": "Default", "CreatedTimestamp": datetime(2024, 1, 1)}]},
            {"OptOutListNames": ["Default"]})
        sv.add_response("get_resource_policy", {"ResourceArn": LIST_ARN, "Policy": setup["list_policy"]},
                        {"ResourceArn": LIST_ARN})
        sn.add_response("get_sms_sandbox_account_status", {"IsInSandbox": setup["sandbox"]})
        sn.add_response("get_sms_attributes", {"attributes": setup["attributes"]})
        report = check(sms_voice, sns, NUMBER, TOPIC, ROLE)
    return report


def test_a_complete_setup_passes():
    report = run()
    assert not report.failed, str(report)
    assert [level for level, _ in report.lines] == ["OK"] * 9


@pytest.mark.parametrize("changes, says", [
    ({"number_policy": None}, "SNS may not send from it"),
    ({"list_policy": policy(LIST_ARN, "sms-voice:DescribeOptedOutNumbers")}, "may not use the opt-out list"),
    ({"number": {**GOOD["number"], "TwoWayEnabled": False}}, "two-way SMS is off"),
    ({"number": {**GOOD["number"], "TwoWayChannelArn": "arn:aws:sns:us-east-1:123456789012:other"}}, "not the stack's"),
    ({"sandbox": True}, "SMS sandbox"),
    ({"attributes": {**GOOD["attributes"], "MonthlySpendLimit": "1"}}, "spend limit is 1 USD"),
    ({"attributes": {"MonthlySpendLimit": "500", "DefaultSMSType": "Transactional"}},
     "delivery status logging is off"),
    ({"attributes": {**GOOD["attributes"], "DeliveryStatusIAMRole": "arn:aws:iam::123456789012:role/other"}},
     "not the stack's"),
    ({"attributes": {**GOOD["attributes"], "DeliveryStatusSuccessSamplingRate": "10"}}, "only 10% of successful"),
])
def test_each_missing_piece_fails_and_says_what_is_missing(changes, says):
    report = run(**changes)
    assert report.failed
    assert any(level == "FAIL" and says in text for level, text in report.lines), str(report)


def test_an_old_number_without_a_policy_only_warns():
    old = {**GOOD["number"], "CreatedTimestamp": datetime(2023, 5, 1, tzinfo=timezone.utc)}
    report = run(number=old, number_policy=None)
    assert not report.failed and any(level == "WARN" for level, _ in report.lines)


def test_policy_grants_need_the_sns_principal_the_resource_and_the_action():
    assert grants(policy(NUMBER_ARN, "sms-voice:*"), NUMBER_ARN, {"sms-voice:SendTextMessage"})
    assert not grants(policy("arn:aws:sms-voice:us-east-1:123456789012:phone-number/other",
                             "sms-voice:SendTextMessage"), NUMBER_ARN, {"sms-voice:SendTextMessage"})
    other_principal = json.loads(policy(NUMBER_ARN, "sms-voice:SendTextMessage"))
    other_principal["Statement"][0]["Principal"] = {"Service": "connect.amazonaws.com"}
    assert not grants(json.dumps(other_principal), NUMBER_ARN, {"sms-voice:SendTextMessage"})


def failover_report(number: dict | None, identities: dict[str, bool], production: bool = True,
                    voice_arn: str = NUMBER_ARN, email_from: str = "alerts@example.com"):
    from tools.check_sms_setup import Report

    sms_voice = boto3.client("pinpoint-sms-voice-v2", region_name="us-east-1", aws_access_key_id="x",
                             aws_secret_access_key="x")
    sesv2 = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sms_voice) as sv, Stubber(sesv2) as ses:
        sv.add_response("describe_phone_numbers", {"PhoneNumbers": [number] if number else []})
        for identity in (email_from, email_from.rsplit("@", 1)[-1]):
            if identities.get(identity) is None:
                ses.add_client_error("get_email_identity", "NotFoundException", http_status_code=404)
            else:
                ses.add_response("get_email_identity", {"VerifiedForSendingStatus": identities[identity]},
                                 {"EmailIdentity": identity})
        ses.add_response("get_account", {"ProductionAccessEnabled": production})
        return check_failover(Report(), sms_voice, sesv2, voice_arn, email_from)


def test_failover_channels_pass_with_a_voice_number_a_verified_domain_and_production_ses():
    voice = {**GOOD["number"], "NumberCapabilities": ["SMS", "VOICE"]}
    report = failover_report(voice, {"example.com": True})
    assert not report.failed and [level for level, _ in report.lines] == ["OK"] * 3, str(report)


@pytest.mark.parametrize("number, identities, production, says", [
    (GOOD["number"], {"example.com": True}, True, "cannot call"),
    (None, {"example.com": True}, True, "not in this account"),
    ({**GOOD["number"], "NumberCapabilities": ["SMS", "VOICE"]}, {"alerts@example.com": False}, True,
     "is a verified SES identity"),
    ({**GOOD["number"], "NumberCapabilities": ["SMS", "VOICE"]}, {"example.com": True}, False, "SES sandbox"),
])
def test_each_missing_failover_piece_fails(number, identities, production, says):
    report = failover_report(number, identities, production)
    assert report.failed and any(level == "FAIL" and says in text for level, text in report.lines), str(report)
