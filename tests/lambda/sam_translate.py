"""Translate template.yaml with the SAM translator, offline, and write the CloudFormation JSON.

Usage: python tests/lambda/sam_translate.py TEMPLATE OUTPUT.json

`sam validate --lint` lints the SAM template through cfn-lint's own handling of the transform,
which lets through templates that the SAM transform in CloudFormation rejects (for example a
`!Ref` as an HttpApi event's Path). This runs the same translator CloudFormation runs, with:

- every CodeUri replaced by an S3 URI, as `sam package` does before deploying;
- a dummy region (us-east-1) for the pseudo parameters, and no AWS credentials or calls: the
  template has inline policies only, so the managed-policy loader returns nothing.

Lint the output with cfn-lint to check the deployed resources themselves, such as circular
dependencies between the API and the functions.
"""

import json
import os
import sys

from samtranslator.translator.transform import transform

from template_summary import load_template

PACKAGED_CODE_URI = "s3://deployment-bucket/code.zip"


class OfflinePolicyLoader:
    """A managed-policy loader that makes no IAM call and returns no managed policy."""

    def load(self):
        return {}


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: sam_translate.py TEMPLATE OUTPUT.json")
    template = load_template(sys.argv[1])
    globals_function = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_function:
        globals_function["CodeUri"] = PACKAGED_CODE_URI
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in resource.get("Properties", {}):
            resource["Properties"]["CodeUri"] = PACKAGED_CODE_URI
    # boto3 reads the region for the translator's pseudo parameters from AWS_DEFAULT_REGION.
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    translated = transform(template, {}, OfflinePolicyLoader())
    with open(sys.argv[2], "w") as output:
        json.dump(translated, output, indent=1, sort_keys=True)
        output.write("\n")


if __name__ == "__main__":
    main()
