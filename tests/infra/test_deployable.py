"""The template as CloudFormation will take it: through an artifact bucket when it is over the inline limit, and
expanded by the SAM transform (run offline with aws-sam-translator) into resources that cfn-lint also accepts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INLINE_TEMPLATE_LIMIT = 51_200  # bytes: `aws cloudformation deploy` refuses a larger template without --s3-bucket
sys.path.insert(0, str(ROOT))


def shell_commands(text: str) -> list[str]:
    """Commands in text, backslash-continued lines joined."""
    return [re.sub(r"\s+", " ", command) for command in re.sub(r"\\\n\s*", " ", text).splitlines()]


def doc_commands(markdown: str) -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.S)
    return [c for block in blocks for c in shell_commands(block)]


def test_a_template_over_the_inline_limit_is_deployed_through_the_artifact_bucket(package_dir):
    size = (package_dir / "sam.json").stat().st_size
    assert size > INLINE_TEMPLATE_LIMIT / 2, "the check below would be vacuous for a small template"
    if size <= INLINE_TEMPLATE_LIMIT:
        return
    dry_run = subprocess.run(["make", "-n", "deploy", "STAGE=prod", "ARTIFACT_BUCKET=test-artifacts",
                              "PARAMETERS=TokenIssuer=x"], cwd=ROOT, capture_output=True, text=True, check=True)
    commands = shell_commands(dry_run.stdout)
    for verb in ("package", "deploy"):
        lines = [c for c in commands if f"cloudformation {verb} " in c]
        assert lines, f"make deploy runs no `aws cloudformation {verb}`"
        assert all("--s3-bucket test-artifacts" in c for c in lines), lines
    # Without a bucket make deploy stops at once, before building anything.
    refused = subprocess.run(["make", "deploy", "STAGE=prod", "ARTIFACT_BUCKET=", "AWS=false"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "ARTIFACT_BUCKET" in refused.stderr
    # The documented commands too.
    documented = [c for c in doc_commands((ROOT / "docs" / "DEPLOY.md").read_text())
                  if "cloudformation deploy " in c or re.search(r"\bmake deploy\b", c)]
    assert documented, "docs/DEPLOY.md shows no deploy command"
    for command in documented:
        assert "--s3-bucket" in command or "ARTIFACT_BUCKET=" in command, command


def transformed_template(template: dict[str, Any]) -> dict[str, Any]:
    from infra.sam_transform import transform

    return transform(template)


def test_the_sam_transform_accepts_the_template_and_its_result_lints_clean(template, tmp_path):
    transformed = transformed_template(template)
    resources = transformed["Resources"]
    assert "Transform" not in transformed
    assert not [k for k, r in resources.items() if r["Type"].startswith("AWS::Serverless::")]
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == {"APIHandler", "InboundSms", "SendPages", "RunJobs", "SmsReceipts"}
    for logical_id, function in functions.items():
        assert function["Properties"]["Role"]["Fn::GetAtt"][0].endswith("Role"), logical_id
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, logical_id
    mappings = {r["Properties"]["FunctionName"]["Ref"]: r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    assert set(mappings) == {"SendPages", "RunJobs"}
    assert mappings["SendPages"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "PageSenderMaxConcurrency"}}
    assert mappings["SendPages"]["EventSourceArn"] == {"Fn::Sub": "${PageQueue.Arn}"}
    assert mappings["RunJobs"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "JobRunnerMaxConcurrency"}}
    assert mappings["RunJobs"]["EventSourceArn"] == {"Fn::Sub": "${JobsQueue.Arn}"}
    # sms_receipts: invoked by the delivery status log groups' subscription filters, each allowed by a permission.
    filters = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::SubscriptionFilter"]
    assert {f["LogGroupName"]["Ref"] for f in filters} == {"SmsDeliveryStatusLogGroup", "SmsDeliveryFailureLogGroup"}
    assert all(f["DestinationArn"] == {"Fn::GetAtt": ["SmsReceipts", "Arn"]} for f in filters)
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
                   and r["Properties"]["Principal"] == "logs.amazonaws.com"]
    assert {p["SourceArn"]["Fn::GetAtt"][0] for p in permissions} == {"SmsDeliveryStatusLogGroup",
                                                                      "SmsDeliveryFailureLogGroup"}
    (subscription,) = [r for r in resources.values() if r["Type"] == "AWS::SNS::Subscription"
                       and r["Properties"]["Protocol"] == "lambda"]
    assert subscription["Properties"]["TopicArn"] == {"Fn::Sub": "${InboundSmsTopic}"}
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed, indent=2))
    executable = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(executable), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_lint_template_runs_the_transform_too():
    recipe = subprocess.run(["make", "-n", "lint-template", "STAGE=prod"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    assert "infra/sam_transform.py build/prod/sam.json build/prod/transformed.json" in recipe
    assert "cfn-lint build/prod/transformed.json" in recipe
