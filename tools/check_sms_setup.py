"""Checks an account's SMS setup before (and after) a deploy: `make check-sms ORIGINATION_NUMBER=+1... [STACK=...]`.

What AWS needs before a page reaches a phone, each checked with read-only calls (End User Messaging SMS
`pinpoint-sms-voice-v2` and SNS):
- the origination number exists, is ACTIVE and can send SMS;
- SNS may send from it: numbers obtained after 2024-09-24 need a resource policy granting sns.amazonaws.com
  `sms-voice:SendTextMessage` (the stack creates it when given SmsOriginationNumberArn, or `put-resource-policy`);
- SNS may use its opt-out list (no default policy on any opt-out list): DescribeOptedOutNumbers, PutOptedOutNumber,
  DeleteOptedOutNumber;
- two-way SMS is on and delivers replies to the stack's inbound-sms topic (else ACKs never arrive);
- the account left the SMS sandbox (else only verified numbers receive pages);
- the monthly SMS spend limit is above the 1 USD default (at the limit SNS stops sending, pages included);
- the default SMS type is Transactional;
- SMS delivery status logging (the receipts behind `page_delivered` / `page_failed`) is on, through the stack's
  SmsDeliveryStatusRoleArn, sampling 100% of successful deliveries: account attributes that no CloudFormation
  resource can set (docs/DEPLOY.md steps 3.5 and 7.2);
- with the stack's parameters (or --voice-origination-arn / --email-from): the failover voice number exists and has
  the VOICE capability, the failover email sender is a verified SES identity (address or domain) and the account
  left the SES sandbox.
Prints one line per check and exits 1 if any failed (warnings do not fail).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

RESOURCE_POLICIES_SINCE = datetime(2024, 9, 24, tzinfo=timezone.utc)
SNS = "sns.amazonaws.com"
NUMBER_ACTIONS = {"sms-voice:SendTextMessage"}
OPT_OUT_ACTIONS = {"sms-voice:DescribeOptedOutNumbers", "sms-voice:PutOptedOutNumber", "sms-voice:DeleteOptedOutNumber"}


@dataclass
class Report:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(("OK", text))

    def warn(self, text: str) -> None:
        self.lines.append(("WARN", text))

    def fail(self, text: str) -> None:
        self.lines.append(("FAIL", text))

    @property
    def failed(self) -> bool:
        return any(level == "FAIL" for level, _ in self.lines)

    def __str__(self) -> str:
        return "\n".join(f"{level:4}  {text}" for level, text in self.lines)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def grants(policy_text: str | None, resource_arn: str, actions: set[str]) -> set[str]:
    """The actions of `actions` that the resource policy lets SNS perform on resource_arn (Allow statements)."""
    if not policy_text:
        return set()
    granted: set[str] = set()
    for statement in _as_list(json.loads(policy_text).get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else [principal]
        if SNS not in services and "*" not in services:
            continue
        if not any(fnmatch.fnmatchcase(resource_arn, r) for r in _as_list(statement.get("Resource", "*"))):
            continue
        for action in actions:
            if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(statement.get("Action", []))):
                granted.add(action)
    return granted


def _policy(sms_voice: Any, arn: str) -> str | None:
    try:
        return sms_voice.get_resource_policy(ResourceArn=arn).get("Policy")
    except sms_voice.exceptions.ResourceNotFoundException:
        return None


def _find_number(sms_voice: Any, number: str) -> dict | None:
    token = None
    while True:
        page = sms_voice.describe_phone_numbers(**({"NextToken": token} if token else {}))
        for candidate in page.get("PhoneNumbers", []):
            if candidate["PhoneNumber"] == number:
                return candidate
        token = page.get("NextToken")
        if not token:
            return None


def check(sms_voice: Any, sns: Any, origination_number: str, inbound_topic_arn: str | None,
          delivery_status_role_arn: str | None = None) -> Report:
    report = Report()
    number = _find_number(sms_voice, origination_number)
    if number is None:
        report.fail(f"{origination_number} is not an origination number of this account and region")
        return report
    arn = number["PhoneNumberArn"]
    if number.get("Status") == "ACTIVE" and "SMS" in number.get("NumberCapabilities", []):
        report.ok(f"{origination_number} is ACTIVE and sends SMS ({number.get('NumberType')}, {arn})")
    else:
        report.fail(f"{origination_number} is {number.get('Status')} with {number.get('NumberCapabilities')}")

    missing = NUMBER_ACTIONS - grants(_policy(sms_voice, arn), arn, NUMBER_ACTIONS)
    created = number.get("CreatedTimestamp")
    if not missing:
        report.ok("its resource policy lets SNS send from it")
    elif created and created < RESOURCE_POLICIES_SINCE:
        report.warn("no resource policy for SNS: fine for a number created before 2024-09-24, add one anyway")
    else:
        report.fail(f"SNS may not send from it: put a resource policy granting {SNS} {sorted(missing)} "
                    f"(SmsOriginationNumberArn parameter, or docs/DEPLOY.md step 3)")

    list_name = number.get("OptOutListName", "Default")
    lists = sms_voice.describe_opt_out_lists(OptOutListNames=[list_name]).get("OptOutLists", [])
    if not lists:
        report.fail(f"its opt-out list {list_name} does not exist")
    else:
        list_arn = lists[0]["OptOutListArn"]
        missing = OPT_OUT_ACTIONS - grants(_policy(sms_voice, list_arn), list_arn, OPT_OUT_ACTIONS)
        if missing:
            report.fail(f"SNS may not use the opt-out list {list_name}: grant {SNS} {sorted(missing)} "
                        f"(SmsOptOutListArn parameter, or docs/DEPLOY.md step 3)")
        else:
            report.ok(f"its opt-out list {list_name} is usable by SNS")

    if not number.get("TwoWayEnabled"):
        report.fail("two-way SMS is off: replies (ACK) never reach the service")
    elif inbound_topic_arn and number.get("TwoWayChannelArn") != inbound_topic_arn:
        report.fail(f"two-way SMS goes to {number.get('TwoWayChannelArn')}, not the stack's {inbound_topic_arn}")
    else:
        report.ok(f"two-way SMS delivers replies to {number.get('TwoWayChannelArn')}")

    if sns.get_sms_sandbox_account_status()["IsInSandbox"]:
        report.fail("the account is in the SMS sandbox: only verified destination numbers receive pages")
    else:
        report.ok("the account is out of the SMS sandbox")

    attributes = sns.get_sms_attributes(attributes=["MonthlySpendLimit", "DefaultSMSType", "DeliveryStatusIAMRole",
                                                    "DeliveryStatusSuccessSamplingRate"])["attributes"]
    limit = float(attributes.get("MonthlySpendLimit", "1"))
    if limit <= 1:
        report.fail(f"the monthly SMS spend limit is {limit:g} USD: SNS stops sending, pages included, at the limit")
    else:
        report.ok(f"the monthly SMS spend limit is {limit:g} USD (keep SmsMonthlySpendAlarmUsd below it)")
    if attributes.get("DefaultSMSType") == "Transactional":
        report.ok("the default SMS type is Transactional")
    else:
        report.warn(f"the default SMS type is {attributes.get('DefaultSMSType', 'unset')} (pages set Transactional "
                    f"themselves; replies too)")
    check_delivery_status(report, attributes, delivery_status_role_arn)
    return report


def check_delivery_status(report: Report, attributes: dict, role_arn: str | None) -> None:
    """Delivery receipts come from SNS's delivery status logs, which only the account's SMS attributes turn on."""
    fix = (f"aws sns set-sms-attributes --attributes DeliveryStatusIAMRole={role_arn or '<SmsDeliveryStatusRoleArn>'},"
           f"DeliveryStatusSuccessSamplingRate=100")
    configured = attributes.get("DeliveryStatusIAMRole", "")
    if not configured:
        report.fail(f"SMS delivery status logging is off: no receipt ever arrives, every page fails over after "
                    f"delivery_timeout_s ({fix})")
    elif role_arn and configured != role_arn:
        report.fail(f"SMS delivery status logs are written with {configured}, not the stack's {role_arn} ({fix})")
    else:
        report.ok(f"SMS delivery status logging is on ({configured})")
    rate = attributes.get("DeliveryStatusSuccessSamplingRate", "0") or "0"
    if configured and float(rate) < 100:
        report.fail(f"only {rate}% of successful SMS deliveries are logged: the others look undelivered and fail "
                    f"over to voice and email ({fix})")
    elif configured:
        report.ok("every successful SMS delivery is logged (sampling 100%)")


def check_failover(report: Report, sms_voice: Any, sesv2: Any, voice_origination_arn: str | None,
                   email_from: str | None) -> Report:
    """The failover channels: the voice number can place calls, SES may send as the sender and outside its sandbox."""
    if voice_origination_arn:
        if ":pool/" in voice_origination_arn:
            report.warn(f"failover calls come from the pool {voice_origination_arn}: check its numbers have VOICE")
        else:
            number = next((n for n in _numbers(sms_voice) if n["PhoneNumberArn"] == voice_origination_arn), None)
            if number is None:
                report.fail(f"the failover voice number {voice_origination_arn} is not in this account and region")
            elif "VOICE" not in number.get("NumberCapabilities", []) or number.get("Status") != "ACTIVE":
                report.fail(f"the failover voice number {number['PhoneNumber']} cannot call "
                            f"({number.get('Status')}, {number.get('NumberCapabilities')}): request VOICE for it")
            else:
                report.ok(f"failover calls come from {number['PhoneNumber']} (ACTIVE, VOICE)")
    if email_from:
        domain = email_from.rsplit("@", 1)[-1]
        verified = [identity for identity in (email_from, domain) if _ses_verified(sesv2, identity)]
        if verified:
            report.ok(f"failover email may be sent as {email_from} (verified SES identity {verified[0]})")
        else:
            report.fail(f"neither {email_from} nor {domain} is a verified SES identity: failover emails are refused "
                        f"(aws sesv2 create-email-identity --email-identity {domain})")
        if sesv2.get_account().get("ProductionAccessEnabled"):
            report.ok("the account is out of the SES sandbox")
        else:
            report.fail("the account is in the SES sandbox: failover emails reach only verified addresses")
    return report


def _numbers(sms_voice: Any) -> list[dict]:
    numbers, token = [], None
    while True:
        page = sms_voice.describe_phone_numbers(**({"NextToken": token} if token else {}))
        numbers += page.get("PhoneNumbers", [])
        token = page.get("NextToken")
        if not token:
            return numbers


def _ses_verified(sesv2: Any, identity: str) -> bool:
    try:
        return bool(sesv2.get_email_identity(EmailIdentity=identity).get("VerifiedForSendingStatus"))
    except sesv2.exceptions.NotFoundException:
        return False


def stack_values(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs and parameters by key, or {} before its first deploy (then two-way SMS and delivery
    status logging cannot point at it yet)."""
    from botocore.exceptions import ClientError

    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError:
        print(f"note  stack {stack} not found: its inbound-sms topic and delivery status role are not checked "
              f"(deploy first)")
        return {}
    values = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    values.update({o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])})
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origination-number", required=True, help="E.164, e.g. +18005550100")
    parser.add_argument("--inbound-topic-arn", help="the stack's InboundSmsTopicArn (or --stack to look it up)")
    parser.add_argument("--stack", help="stack name: checks that two-way SMS goes to its inbound-sms topic")
    parser.add_argument("--delivery-status-role-arn", help="the stack's SmsDeliveryStatusRoleArn (or --stack)")
    parser.add_argument("--voice-origination-arn", help="the stack's VoiceOriginationNumberArn (or --stack)")
    parser.add_argument("--email-from", help="the stack's EmailFrom (or --stack)")
    parser.add_argument("--region")
    args = parser.parse_args(argv)

    import boto3

    session = boto3.Session(region_name=args.region)
    stack = stack_values(session.client("cloudformation"), args.stack) if args.stack else {}
    topic = args.inbound_topic_arn or stack.get("InboundSmsTopicArn")
    role = args.delivery_status_role_arn or stack.get("SmsDeliveryStatusRoleArn")
    sms_voice = session.client("pinpoint-sms-voice-v2")
    report = check(sms_voice, session.client("sns"), args.origination_number, topic, role)
    check_failover(report, sms_voice, session.client("sesv2"),
                   args.voice_origination_arn or stack.get("VoiceOriginationNumberArn"),
                   args.email_from or stack.get("EmailFrom"))
    print(report)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
