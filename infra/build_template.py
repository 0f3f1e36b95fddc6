"""Build the deployable CloudFormation template: `python infra/build_template.py --stage prod` (`make package`).

1. The merge template: infra/resources.yaml (what the local stack creates too) plus infra/deployment.yaml (what only a
   deployment has), with the state machine's definition file inlined as Definition (its ${Placeholders} are filled
   by CloudFormation from the same DefinitionSubstitutions the local stack uses), and for every Chalice
   function: the runtime, a fixed name, its own log group, and the environment variables pointing at the resources.
2. `chalice package --stage STAGE --merge-template` deep-merges it into Chalice's SAM template (Lambdas, API, and one
   IAM role per function from .chalice/policy-*.json).
   Also generated here, from what the other files declare: `DeletionPolicy: RetainExceptOnCreate` for every retained
   resource (a failed first create can be retried), and alarms per function (Lambda errors, throttles) and per table
   (DynamoDB throttling, its indexes included).
3. A check that every function Chalice generated got its wiring, and that no override names a function Chalice no
   longer generates (a deep merge would leave a resource without a Type).

Output in --out (default build/STAGE): merge-template.json, sam.json, deployment.zip. Works offline except for the
package registry: Chalice downloads the Linux wheels of requirements.txt.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
sys.path.insert(0, str(ROOT))

from infra.environment import template_environment  # noqa: E402 - the one list of env var -> resource
from infra.state_machines import check_substitutions, definition, state_machines  # noqa: E402

RUNTIME = "python3.11"
LOG_RETENTION_DAYS = 90
SECTIONS = ("Parameters", "Conditions", "Resources", "Outputs")

# Chalice's logical id -> the function's name in app.py (and in .chalice/config.json's lambda_functions).
FUNCTIONS = {"APIHandler": "api_handler", "InboundSms": "inbound_sms", "SendPages": "send_pages", "RunJobs": "run_jobs",
             "SmsReceipts": "sms_receipts"}

# Every function: token verification on AWS (RS256 against the issuer's JWKS, never a shared secret: see
# chalicelib/auth.py), the numbers SMS and failover calls come from, the failover email sender, and the dispatch
# provider's URL (not a secret).
DEPLOYED_ENVIRONMENT = {
    "TOKEN_JWKS_URL": {"Ref": "TokenJwksUrl"},
    "TOKEN_ISSUER": {"Ref": "TokenIssuer"},
    "TOKEN_AUDIENCE": {"Ref": "TokenAudience"},
    "SMS_ORIGINATION_NUMBER": {"Ref": "SmsOriginationNumber"},
    "EMAIL_FROM": {"Ref": "EmailFrom"},
    # Always End User Messaging on AWS ("dev" is the local dev server, which has no business in a deployment).
    "VOICE_PROVIDER": "eum",
    # The ARN: SendVoiceMessage takes it as OriginationIdentity, and IAM scopes the call to exactly it.
    "VOICE_ORIGINATION_NUMBER": {"Ref": "VoiceOriginationNumberArn"},
    "DISPATCH_API_URL": {"Ref": "DispatchApiUrl"},
}


def dispatch_secret(key: str) -> dict[str, Any]:
    """A value of the dispatch secret (Secrets Manager JSON), resolved by CloudFormation at deploy time: never a
    parameter, never in the template or the stack's events; "" when dispatch is off (the secret is then not read)."""
    reference = "{{resolve:secretsmanager:${DispatchSecretId}:SecretString:%s%s}}"
    return {"Fn::If": ["HasDispatch",
                       {"Fn::If": ["PinsDispatchSecretVersion",
                                   {"Fn::Sub": reference % (key, "::${DispatchSecretVersionId}")},
                                   {"Fn::Sub": reference % (key, "")}]},
                       ""]}


# Only where it is used. The API token: every function that may request or place a dispatch (the service treats
# dispatch as configured only when URL and token are both set). The webhook secret: the API, which verifies the
# provider's webhooks. The SMS rate: the page sender, the one SMS sender whose concurrency is capped, so that
# rate x PageSenderMaxConcurrency is the origination number's rate.
FUNCTION_ENVIRONMENT: dict[str, dict[str, Any]] = {
    "APIHandler": {"DISPATCH_API_TOKEN": dispatch_secret("api_token"),
                   "DISPATCH_WEBHOOK_SECRET": dispatch_secret("webhook_secret")},
    "InboundSms": {"DISPATCH_API_TOKEN": dispatch_secret("api_token")},
    "SendPages": {"DISPATCH_API_TOKEN": dispatch_secret("api_token"), "SMS_RATE_PER_S": {"Ref": "SmsRatePerSender"}},
    "RunJobs": {"DISPATCH_API_TOKEN": dispatch_secret("api_token")},
    "SmsReceipts": {},
}
# Settings of the local stack only: a deployed function carrying one would trust HS256 tokens, call moto, or place
# failover calls through a dev server.
LOCAL_ONLY_ENVIRONMENT = ("LOCAL_STACK", "TOKEN_SECRET", "AWS_ENDPOINT_URL", "MOTO_PORT", "VOICE_DEV_URL")


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def inline_state_machines(resources: dict[str, Any]) -> None:
    """Definition from the file named in Metadata.DefinitionFile; every placeholder must have a substitution."""
    for logical_id, resource in state_machines(resources).items():
        check_substitutions(logical_id, resource)
        # Definition (the JSON itself) rather than DefinitionString: CloudFormation fills the placeholders in
        # either, but cfn-lint validates the states only in Definition when the template uses the SAM transform.
        resource["Properties"]["Definition"] = definition(resource)


def function_wiring() -> dict[str, Any]:
    """Per Chalice function: runtime, name, log group (its role may write only there) and environment."""
    environment = {**template_environment(), **DEPLOYED_ENVIRONMENT}
    wiring: dict[str, Any] = {}
    for logical_id, name in FUNCTIONS.items():
        log_group = f"{logical_id}LogGroup"
        function_name = f"${{AWS::StackName}}-{name}"
        wiring[log_group] = {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/{function_name}"},
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
        wiring[logical_id] = {
            # The log group exists before the function can run, so nothing is logged into a group CloudFormation
            # does not own (and the role needs no logs:CreateLogGroup).
            "DependsOn": [log_group],
            "Properties": {
                "Runtime": RUNTIME,  # explicit: Chalice silently picks an older runtime for a Python it does not know
                "FunctionName": {"Fn::Sub": function_name},
                "Environment": {"Variables": copy.deepcopy({**environment, **FUNCTION_ENVIRONMENT[logical_id]})},
            },
        }
    return wiring


def retain_except_on_create(resources: dict[str, Any]) -> None:
    """Retain -> RetainExceptOnCreate: data outlives the stack, but a first create that fails half-way rolls back
    cleanly (CloudFormation deletes what it created) instead of leaving tables whose names block the retry."""
    for resource in resources.values():
        if resource.get("DeletionPolicy") == "Retain":
            resource["DeletionPolicy"] = "RetainExceptOnCreate"


def _alarm(name: str, description: str, threshold: float, *, period: int = 300, **metric: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": {"Fn::Sub": f"${{AWS::StackName}}-{name}"},
            "AlarmDescription": description,
            **metric,
            **({"Period": period, "Statistic": "Sum"} if "MetricName" in metric else {}),
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
        },
    }


def generated_alarms(resources: dict[str, Any]) -> dict[str, Any]:
    """Per function: Errors and Throttles. Per table: read and write throttle events of the table and its GSIs."""
    alarms: dict[str, Any] = {}
    for logical_id, name in FUNCTIONS.items():
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": logical_id}}]
        alarms[f"{logical_id}ErrorsAlarm"] = _alarm(
            f"{name}-errors", f"{name} invocations failed (unhandled errors; send_pages: pages retried from the queue).",
            3, Namespace="AWS/Lambda", MetricName="Errors", Dimensions=dimensions)
        alarms[f"{logical_id}ThrottlesAlarm"] = _alarm(
            f"{name}-throttles", f"{name} invocations were throttled (account concurrency exhausted).",
            1, Namespace="AWS/Lambda", MetricName="Throttles", Dimensions=dimensions)
    for logical_id, table in resources.items():
        if table.get("Type") != "AWS::DynamoDB::Table":
            continue
        owners = [[]] + [[{"Name": "GlobalSecondaryIndexName", "Value": index["IndexName"]}]
                         for index in table["Properties"].get("GlobalSecondaryIndexes", [])]
        metrics = [
            {"Id": f"{'i' + str(i) if owner else 'table'}_{kind[0].lower()}", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "AWS/DynamoDB", "MetricName": kind,
                           "Dimensions": [{"Name": "TableName", "Value": {"Ref": logical_id}}, *owner]},
                "Period": 300, "Stat": "Sum"}}
            for i, owner in enumerate(owners) for kind in ("ReadThrottleEvents", "WriteThrottleEvents")
        ]
        if len(metrics) >= 10:
            raise ValueError(f"{logical_id}: too many indexes for one alarm's metric math (10 metrics at most)")
        metrics.append({"Id": "throttled", "Label": "throttle events (table and indexes)", "ReturnData": True,
                        "Expression": " + ".join(f"FILL({m['Id']}, 0)" for m in metrics)})
        short_name = re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id.removesuffix("Table")).lower()
        alarms[f"{logical_id}ThrottledAlarm"] = _alarm(
            f"{short_name}-throttled",
            "DynamoDB throttled reads or writes of this table or its indexes (a hot partition; the SDK retries).",
            5, Metrics=metrics)
    return alarms


def deep_merge(base: Any, override: Any) -> Any:
    """Chalice's merge semantics: dicts merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return override


def merge_template() -> dict[str, Any]:
    shared = load_yaml(INFRA / "resources.yaml")
    deployment = load_yaml(INFRA / "deployment.yaml")
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": shared["Description"],
    }
    for section in SECTIONS:
        merged = dict(shared.get(section) or {})
        for key, value in (deployment.get(section) or {}).items():
            if key in merged:
                raise ValueError(f"{section}.{key} is defined in both resources.yaml and deployment.yaml")
            merged[key] = value
        if merged:
            template[section] = merged
    resources = template["Resources"]
    inline_state_machines(resources)
    retain_except_on_create(resources)
    for logical_id, alarm in generated_alarms(resources).items():
        if logical_id in resources:
            raise ValueError(f"{logical_id} is generated by build_template.py and also declared")
        resources[logical_id] = alarm
    for logical_id, wiring in function_wiring().items():
        resources[logical_id] = deep_merge(resources.get(logical_id, {}), wiring)
    return template


def chalice_package(stage: str, merge_file: Path, out_dir: Path) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice) if chalice.exists() else "chalice", "package", "--stage", stage,
               "--merge-template", str(merge_file), str(out_dir)]
    # Chalice insists on a region; the template itself uses ${AWS::Region}, so any region builds the same template.
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def merged_intrinsics(node: Any, path: str = "") -> list[str]:
    """Paths of dicts holding an intrinsic next to other keys: what a key-by-key merge of two different intrinsics
    (say Chalice's Fn::Sub and an override's Ref) leaves behind."""
    found: list[str] = []
    if isinstance(node, dict):
        if len(node) > 1 and any(key == "Ref" or key.startswith("Fn::") for key in node):
            found.append(path)
        for key, value in node.items():
            found += merged_intrinsics(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += merged_intrinsics(value, f"{path}[{index}]")
    return found


def event_sources(template: dict[str, Any]) -> dict[str, Any]:
    """Function logical id -> {event name: its Topic or Queue}."""
    sources: dict[str, Any] = {}
    for logical_id in FUNCTIONS:
        for name, event in template["Resources"][logical_id]["Properties"].get("Events", {}).items():
            props = event.get("Properties", {})
            sources.setdefault(logical_id, {})[name] = props.get("Topic", props.get("Queue"))
    return sources


def check_packaged(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    untyped = sorted(logical_id for logical_id, resource in resources.items() if "Type" not in resource)
    if untyped:
        raise ValueError(f"overrides for resources Chalice did not generate (renamed handler?): {untyped}")
    functions = {k for k, r in resources.items() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    if functions != set(FUNCTIONS):
        raise ValueError(f"Chalice generated functions {sorted(functions)}; FUNCTIONS wires {sorted(FUNCTIONS)}")
    for logical_id in FUNCTIONS:
        props = resources[logical_id]["Properties"]
        if props.get("Runtime") != RUNTIME or "TOKEN_JWKS_URL" not in props["Environment"]["Variables"]:
            raise ValueError(f"{logical_id}: merge did not apply")
    broken = merged_intrinsics(template)
    if broken:
        raise ValueError(f"override merged into a different intrinsic instead of replacing it: {broken}")
    for logical_id in FUNCTIONS:
        if "ReservedConcurrentExecutions" in resources[logical_id]["Properties"]:
            raise ValueError(f"{logical_id}: reserved concurrency (set MaximumConcurrency on its event source instead)")
    expected = {
        "InboundSms": {"InboundSmsSnsSubscription": {"Fn::Sub": "${InboundSmsTopic}"}},
        "SendPages": {"SendPagesSqsEventSource": {"Fn::Sub": "${PageQueue.Arn}"}},
        "RunJobs": {"RunJobsSqsEventSource": {"Fn::Sub": "${JobsQueue.Arn}"}},
    }
    if event_sources(template) != expected:
        raise ValueError(f"event sources are not the stack's topic and queues: {event_sources(template)}")
    # sms_receipts has no event source Chalice knows of: the delivery status log groups' subscription filters.
    filtered = {r["Properties"]["LogGroupName"]["Ref"] for r in resources.values()
                if r["Type"] == "AWS::Logs::SubscriptionFilter"
                and r["Properties"]["DestinationArn"] == {"Fn::GetAtt": ["SmsReceipts", "Arn"]}}
    if filtered != {"SmsDeliveryStatusLogGroup", "SmsDeliveryFailureLogGroup"}:
        raise ValueError(f"sms_receipts is not subscribed to both SMS delivery status log groups: {sorted(filtered)}")
    for logical_id in FUNCTIONS:
        env = resources[logical_id]["Properties"]["Environment"]["Variables"]
        local_only = sorted(set(LOCAL_ONLY_ENVIRONMENT) & set(env))
        if local_only or env.get("VOICE_PROVIDER") != "eum":
            raise ValueError(f"{logical_id}: local-stack settings in a deployment ({local_only}, VOICE_PROVIDER="
                             f"{env.get('VOICE_PROVIDER')!r})")


def build(stage: str, out_dir: Path) -> Path:
    """Builds out_dir/sam.json (and deployment.zip); returns the template's path."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    merge_file = out_dir / "merge-template.json"
    merge_file.write_text(json.dumps(merge_template(), indent=2) + "\n")
    package_dir = out_dir / "package"
    chalice_package(stage, merge_file, package_dir)
    for produced in package_dir.iterdir():
        produced.rename(out_dir / produced.name)
    package_dir.rmdir()
    add_bytecode(out_dir / "deployment.zip")
    sam = out_dir / "sam.json"
    check_packaged(json.loads(sam.read_text()))
    return sam


def add_bytecode(zip_path: Path) -> None:
    """Adds compiled bytecode to the deployment package. Chalice ships sources only and /var/task is read-only, so
    every cold start would compile every module again: measured 1.0 s against 0.22 s for `import app` (BENCHMARKS.md,
    P2). Unchecked-hash .pyc files are used as they are, without comparing them with the source. Only a Python of the
    Lambda runtime's version can write them."""
    import compileall
    import py_compile
    import tempfile
    import zipfile

    if sys.version_info[:2] != tuple(int(part) for part in RUNTIME.removeprefix("python").split(".")):
        print(f"not adding bytecode: this is Python {sys.version_info[0]}.{sys.version_info[1]}, the runtime is {RUNTIME}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(zip_path) as package:
            package.extractall(tmp)
        compileall.compile_dir(tmp, quiet=1, workers=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        rebuilt = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as package:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    package.write(path, path.relative_to(tmp).as_posix())
        rebuilt.replace(zip_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", choices=sorted(load_stages()))
    parser.add_argument("--out", type=Path, help="output directory (default build/STAGE)")
    parser.add_argument("--merge-only", action="store_true", help="write the merge template only, no chalice package")
    args = parser.parse_args(argv)
    out_dir = (args.out or ROOT / "build" / args.stage).resolve()
    if args.merge_only:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "merge-template.json").write_text(json.dumps(merge_template(), indent=2) + "\n")
        print(out_dir / "merge-template.json")
        return 0
    print(build(args.stage, out_dir))
    return 0


def load_stages() -> dict[str, Any]:
    return json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]


if __name__ == "__main__":
    sys.exit(main())
