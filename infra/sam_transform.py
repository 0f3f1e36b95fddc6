"""The SAM transform, offline: `python infra/sam_transform.py build/prod/sam.json build/prod/transformed.json`.

CloudFormation runs the AWS::Serverless-2016-10-31 transform (aws-sam-translator) on the deployed template before it
creates anything. cfn-lint 1.x validates the SAM resources against SAM's schemas without transforming, so a template
that lints clean can still fail in the transform, or expand into resources that are wrong. This runs the same
translator locally (no AWS call: the managed-policy loader is a stub, and this service's roles use no managed
policies) so that `make lint-template` and tests/infra can lint what CloudFormation will actually create.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


class NoManagedPolicies:
    """SAM asks for the account's managed policy ARNs only to expand policy names in `Policies`; the functions here
    get their roles from .chalice/policy-*.json (no `Policies`), so any request for one is a mistake."""

    def load(self) -> dict[str, str]:
        return {}


def as_packaged(template: dict[str, Any], bucket: str = "artifacts-bucket") -> dict[str, Any]:
    """What `aws cloudformation package` hands CloudFormation: local CodeUri paths replaced by S3 URIs."""
    packaged = json.loads(json.dumps(template))
    for resource in packaged["Resources"].values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str) \
                and not props["CodeUri"].startswith("s3://"):
            props["CodeUri"] = f"s3://{bucket}/{Path(props['CodeUri']).name}"
    return packaged


def transform(template: dict[str, Any], parameter_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The packaged SAM template as CloudFormation expands it (plain AWS::* resources)."""
    # The translator asks boto3 for a region (ARN partitions); no call is made with it.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform as sam_transform

    # SAM resolves a few intrinsics in its own properties (CodeUri, AutoPublishAlias) from these values.
    values = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
              "AWS::StackName": "trust-safety-alerts-check", **(parameter_values or {})}
    return sam_transform(as_packaged(template), values, NoManagedPolicies())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    transformed = transform(json.loads(args.template.read_text()))
    args.output.write_text(json.dumps(transformed, indent=2) + "\n")
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
