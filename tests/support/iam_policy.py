"""IAM evaluation of recorded calls against the roles of the packaged template, as the local stack would be named.

- `LocalArns` resolves the template's intrinsics (Ref, Fn::GetAtt, Fn::Sub, Fn::Select/Split, Fn::If on the
  template's Conditions) to the ARNs the local stack's resources have (stack `local`, account 123456789012,
  us-east-1, parameters as `LOCAL_PARAMETERS`), so a role's statements name the same resources as the calls recorded
  by local/iam_recorder.py.
- `RolePolicy` evaluates (action, resource) with moto's IAM statement matching (`moto.iam.access_control`: Allow and
  explicit Deny across statements, Action/NotAction, `*` wildcards), behind an adapter that makes it match as IAM
  does where moto differs: action names are case-insensitive, `?` is a one-character wildcard, and every other
  character of a resource pattern is literal (moto would read `.` or `+` as regular expression syntax). Statements
  this cannot evaluate faithfully (Condition, NotResource, Principal) make it refuse, never guess.
- `IamActions`: cfn-lint's copy of the Service Authorization Reference. An action with no resource types is
  authorised against "*" whatever the call names (X-Ray, SendTaskSuccess); an unknown action is a mapping bug.
- `state_machine_permissions` reads every Task state of a state machine definition into the permissions its role
  needs (the executor's calls inside the moto server are not attributed to any Lambda).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from local.iam_recorder import ACCOUNT_ID, requested_permissions, sqs_queue_arn

REGION = "us-east-1"
STACK_NAME = "local"
# What the local stack stands for where the template takes a parameter that a role's policy names (local/stack.py
# configures the same values; tests/infra/test_least_privilege.py checks they agree). Other parameters resolve to
# their Default, or to "<parameter Name>", which matches no recorded call.
LOCAL_PARAMETERS = {"EmailFrom": "alerts@trust-safety.local",
                    "VoiceOriginationNumberArn": "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-local"}


class Unsupported(Exception):
    """A policy or definition construct this checker cannot evaluate faithfully."""


# --- intrinsics -> local ARNs -------------------------------------------------------------------------------------
class LocalArns:
    def __init__(self, template: dict[str, Any], stack_name: str = STACK_NAME, region: str = REGION,
                 account: str = ACCOUNT_ID, parameter_values: dict[str, str] | None = None):
        self.resources = template["Resources"]
        self.parameters = template.get("Parameters", {})
        self.conditions = template.get("Conditions", {})
        self.parameter_values = LOCAL_PARAMETERS if parameter_values is None else parameter_values
        self.pseudo = {"AWS::StackName": stack_name, "AWS::Region": region, "AWS::AccountId": account,
                       "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        self.region, self.account = region, account

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(logical_id, attribute)
            if key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                variables = {k: self.resolve(v) for k, v in variables.items()}
                return re.sub(r"\$\{([\w:.]+)\}", lambda m: str(variables[m.group(1)]) if m.group(1) in variables
                              else self._sub_name(m.group(1)), text)
            if key == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.resolve(p)) for p in parts)
            if key == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key.startswith("Fn::"):
                raise Unsupported(f"intrinsic {key}")
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        """A condition of the template, evaluated with the local parameter values."""
        return self._truth(self.conditions[name])

    def _truth(self, value: Any) -> bool:
        (key, argument), = value.items()
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            return str(self.resolve(argument[0])) == str(self.resolve(argument[1]))
        if key == "Fn::Not":
            return not self._truth(argument[0])
        if key == "Fn::And":
            return all(self._truth(v) for v in argument)
        if key == "Fn::Or":
            return any(self._truth(v) for v in argument)
        raise Unsupported(f"condition function {key}")

    def _sub_name(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.attribute(logical_id, attribute)
        return self.ref(name)

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            if name in self.parameter_values:
                return self.parameter_values[name]
            return str(self.parameters[name].get("Default", f"<parameter {name}>"))
        return self._attributes(name)["Ref"]

    def attribute(self, logical_id: str, attribute: str) -> str:
        attributes = self._attributes(logical_id)
        if attribute not in attributes:
            raise Unsupported(f"{logical_id}.{attribute}")
        return attributes[attribute]

    def _attributes(self, logical_id: str) -> dict[str, str]:
        resource = self.resources[logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        name = lambda key: self.resolve(props.get(key, logical_id))  # noqa: E731
        r, a = self.region, self.account
        if kind == "AWS::DynamoDB::Table":
            table = name("TableName")
            return {"Ref": table, "Arn": f"arn:aws:dynamodb:{r}:{a}:table/{table}"}
        if kind == "AWS::SQS::Queue":
            queue = name("QueueName")
            return {"Ref": f"https://sqs.{r}.amazonaws.com/{a}/{queue}", "Arn": f"arn:aws:sqs:{r}:{a}:{queue}",
                    "QueueName": queue, "QueueUrl": f"https://sqs.{r}.amazonaws.com/{a}/{queue}"}
        if kind == "AWS::SNS::Topic":
            topic = name("TopicName")
            return {"Ref": f"arn:aws:sns:{r}:{a}:{topic}", "TopicArn": f"arn:aws:sns:{r}:{a}:{topic}",
                    "TopicName": topic}
        if kind == "AWS::StepFunctions::StateMachine":
            machine = name("StateMachineName")
            arn = f"arn:aws:states:{r}:{a}:stateMachine:{machine}"
            return {"Ref": arn, "Arn": arn, "Name": machine}
        if kind == "AWS::S3::Bucket":
            bucket = name("BucketName")
            return {"Ref": bucket, "Arn": f"arn:aws:s3:::{bucket}"}
        if kind == "AWS::Logs::LogGroup":
            group = name("LogGroupName")
            return {"Ref": group, "Arn": f"arn:aws:logs:{r}:{a}:log-group:{group}:*"}
        if kind == "AWS::IAM::Role":
            return {"Ref": logical_id, "Arn": f"arn:aws:iam::{a}:role/{logical_id}"}
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            function = name("FunctionName")
            return {"Ref": function, "Arn": f"arn:aws:lambda:{r}:{a}:function:{function}"}
        raise Unsupported(f"{logical_id}: resource type {kind}")


# --- IAM action metadata ------------------------------------------------------------------------------------------
class IamActions:
    def __init__(self) -> None:
        from cfnlint.data import AdditionalSpecs
        from cfnlint.helpers import load_resource

        self._services = load_resource(AdditionalSpecs, "Policies.json")

    def known(self, action: str) -> bool:
        service, _, name = action.partition(":")
        return name.lower() in self._services.get(service, {}).get("Actions", {})

    def has_resource_types(self, action: str) -> bool:
        service, _, name = action.partition(":")
        return bool(self._services.get(service, {}).get("Actions", {}).get(name.lower(), {}).get("Resources"))


# --- evaluation ---------------------------------------------------------------------------------------------------
def _pattern(value: str) -> str:
    """An IAM pattern (`*` any run, `?` any one character, the rest literal) as the text moto turns into a regex:
    moto only replaces `*` with `.*`, so everything else is escaped here and `?` becomes `.`."""
    return "*".join(".".join(re.escape(piece) for piece in part.split("?")) for part in value.split("*"))


@dataclass
class RolePolicy:
    name: str
    statements: list[dict[str, Any]]

    def __post_init__(self) -> None:
        from moto.iam.access_control import IAMPolicy

        normalised = []
        for statement in self.statements:
            unsupported = {"Condition", "NotResource", "Principal", "NotPrincipal"} & set(statement)
            if unsupported:
                raise Unsupported(f"{self.name}: statement {statement.get('Sid', '')} uses {sorted(unsupported)}")
            entry = {"Effect": statement["Effect"]}
            for key in ("Action", "NotAction"):
                if key in statement:
                    values = statement[key] if isinstance(statement[key], list) else [statement[key]]
                    entry[key] = [_pattern(v.lower()) for v in values]
            resources = statement.get("Resource", "*")
            entry["Resource"] = [_pattern(r) for r in (resources if isinstance(resources, list) else [resources])]
            normalised.append(entry)
        self._policy = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": normalised}))

    def allows(self, action: str, resource: str) -> bool:
        from moto.iam.access_control import PermissionResult

        return self._policy.is_action_permitted(action.lower(), resource) == PermissionResult.PERMITTED


def role_of(template: dict[str, Any], logical_id: str) -> str:
    props = template["Resources"][logical_id]["Properties"]
    role = props.get("Role") or props.get("RoleArn")
    return role["Fn::GetAtt"][0]


def role_policy(template: dict[str, Any], role: str, arns: LocalArns) -> RolePolicy:
    props = template["Resources"][role]["Properties"]
    if props.get("ManagedPolicyArns"):
        raise Unsupported(f"{role}: managed policies cannot be evaluated offline")
    statements = [s for p in props.get("Policies", []) for s in arns.resolve(p["PolicyDocument"])["Statement"]]
    return RolePolicy(role, statements)


@dataclass
class Finding:
    who: str  # the function (or state machine) that made the call
    role: str
    action: str
    resources: list[str]
    operation: str
    problem: str  # "denied", "unknown action"

    def __str__(self) -> str:
        return (f"{self.who} ({self.role}): {self.action} on {' or '.join(self.resources)} "
                f"[{self.operation}] {self.problem}")


class Checker:
    """Evaluates permissions (action, candidate resources) against the roles of one packaged template."""

    def __init__(self, template: dict[str, Any], functions: dict[str, str]):
        """functions: logical id -> function name (infra/build_template.py FUNCTIONS)."""
        self.template = template
        self.arns = LocalArns(template)
        self.actions = IamActions()
        self.roles = {name: role_of(template, logical_id) for logical_id, name in functions.items()}
        self._policies: dict[str, RolePolicy] = {}

    def policy(self, role: str) -> RolePolicy:
        if role not in self._policies:
            self._policies[role] = role_policy(self.template, role, self.arns)
        return self._policies[role]

    def check(self, who: str, role: str, action: str, resources: list[str], operation: str) -> Finding | None:
        if not self.actions.known(action):
            return Finding(who, role, action, resources, operation, "is not an IAM action (fix the call mapping)")
        candidates = resources if self.actions.has_resource_types(action) else ["*"]
        if any(self.policy(role).allows(action, resource) for resource in candidates):
            return None
        return Finding(who, role, action, candidates, operation, "DENIED")

    def check_calls(self, calls: list[dict[str, Any]]) -> list[Finding]:
        findings = []
        for call in calls:
            role = self.roles.get(call["function"])
            if role is None:
                findings.append(Finding(call["function"], "?", call["action"], call["resources"], call["operation"],
                                        "made by a function the template does not have"))
                continue
            finding = self.check(call["function"], role, call["action"], call["resources"], call["operation"])
            if finding:
                findings.append(finding)
        return findings

    def unused_grants(self, calls: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        """(function, action, resource) of every Allow of each function's role that no recorded call of that function
        needed. A call uses a grant when its action matches and, for an action with resource types, one of its
        candidate resources matches the grant's (IAM's matching, as `check`)."""
        unused = []
        for function, role in self.roles.items():
            made = [c for c in calls if c["function"] == function]
            for statement in self.policy(role).statements:
                if statement["Effect"] != "Allow":
                    continue
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for action in actions:
                    for resource in resources:
                        grant = RolePolicy("grant", [{"Effect": "Allow", "Action": action, "Resource": resource}])
                        if not any(self._uses(call, grant) for call in made):
                            unused.append((function, action, resource))
        return unused

    def _uses(self, call: dict[str, Any], grant: RolePolicy) -> bool:
        candidates = call["resources"] if self.actions.has_resource_types(call["action"]) else ["*"]
        return any(grant.allows(call["action"], resource) for resource in candidates)

    def check_state_machines(self) -> tuple[list[tuple[str, str, list[str], str]], list[Finding]]:
        """(every permission the definitions need, the findings) for each state machine of the template."""
        needed, findings = [], []
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] != "AWS::StepFunctions::StateMachine":
                continue
            props = resource["Properties"]
            substitutions = {k: str(self.arns.resolve(v)) for k, v in props.get("DefinitionSubstitutions", {}).items()}
            text = json.dumps(props["Definition"])
            text = re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m.group(1)], text)
            role = role_of(self.template, logical_id)
            for state, action, resources in state_machine_permissions(json.loads(text), REGION):
                needed.append((state, action, resources, role))
                finding = self.check(f"{logical_id}.{state}", role, action, resources, "Task")
                if finding:
                    findings.append(finding)
        return needed, findings


# --- state machine definitions -> permissions ---------------------------------------------------------------------
_OPTIMISED = {
    ("dynamodb", "getItem"): ("dynamodb", "GetItem"), ("dynamodb", "putItem"): ("dynamodb", "PutItem"),
    ("dynamodb", "updateItem"): ("dynamodb", "UpdateItem"), ("dynamodb", "deleteItem"): ("dynamodb", "DeleteItem"),
    ("sqs", "sendMessage"): ("sqs", "SendMessage"), ("sns", "publish"): ("sns", "Publish"),
    ("states", "startExecution"): ("stepfunctions", "StartExecution"),
    ("events", "putEvents"): ("events", "PutEvents"), ("lambda", "invoke"): ("lambda", "Invoke"),
}
# aws-sdk integrations name services as the SDKs do; botocore's service name where it differs.
_SDK_SERVICES = {"sfn": "stepfunctions"}


def _static(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters with static values only: `Key.$` (a path, known only at run time) becomes "*" under `Key`."""
    result: dict[str, Any] = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            result[key[:-2]] = "*"
        elif isinstance(value, dict):
            result[key] = _static(value)
        else:
            result[key] = value
    return result


def _walk(states: dict[str, Any]):
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _walk(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _walk(state[key]["States"])


def state_machine_permissions(definition: dict[str, Any], region: str) -> list[tuple[str, str, list[str]]]:
    """(state name, action, candidate resources) for every Task state."""
    permissions = []
    for name, state in _walk(definition["States"]):
        if state.get("Type") != "Task":
            continue
        resource = state["Resource"]
        parameters = _static(state.get("Parameters") or state.get("Arguments") or {})
        match = re.fullmatch(r"arn:aws:states:::(aws-sdk:)?([\w-]+):(\w+)(\.sync(:2)?|\.waitForTaskToken)?", resource)
        if not match:
            raise Unsupported(f"{name}: Task resource {resource} (Lambda ARNs and activities are not checked)")
        sdk, service, api = match.group(1), match.group(2), match.group(3)
        if sdk:
            botocore_service = _SDK_SERVICES.get(service, service)
            prefix, operation = ("states" if service == "sfn" else service), api[0].upper() + api[1:]
        elif (service, api) in _OPTIMISED:
            botocore_service, operation = _OPTIMISED[(service, api)]
            prefix = {"stepfunctions": "states"}.get(botocore_service, botocore_service)
        else:
            raise Unsupported(f"{name}: integration {service}:{api}")
        if match.group(4) and match.group(4).startswith(".sync"):
            raise Unsupported(f"{name}: .sync integrations need more permissions than this checker models")
        if botocore_service == "lambda":
            function = parameters.get("FunctionName", "*")
            permissions.append((name, "lambda:InvokeFunction", [function]))
            continue
        if botocore_service == "events" and operation == "PutEvents":
            buses = {e.get("EventBusName", "default") for e in parameters.get("Entries", [{}])}
            permissions += [(name, "events:PutEvents",
                             [b if str(b).startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT_ID}:event-bus/{b}"])
                            for b in buses]
            continue
        if botocore_service == "sqs" and parameters.get("QueueUrl") not in (None, "*"):
            permissions.append((name, "sqs:SendMessage" if operation == "SendMessage" else f"sqs:{operation}",
                                [sqs_queue_arn(parameters["QueueUrl"], region)]))
            continue
        for action, resources in requested_permissions(botocore_service, prefix, operation, parameters, region):
            permissions.append((name, action, resources))
    return permissions
