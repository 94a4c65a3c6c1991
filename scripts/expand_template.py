"""Expands template.yaml the way `sam build` and `sam deploy` do, for the template tests.

usage: python3 scripts/expand_template.py TEMPLATE [--translate] [Name=Value ...]

Runs the pinned SAM CLI's AWS::LanguageExtensions expander (Fn::ForEach) with the given parameter
values, then with --translate the SAM transform (AWS::Serverless::* into CloudFormation), and
prints the result as JSON.
"""

import json
import os
import sys

from samcli.lib.cfn_language_extensions import PseudoParameterValues, process_template
from samcli.yamlhelper import yaml_parse


def main(argv):
    path, rest = argv[0], argv[1:]
    translate = "--translate" in rest
    parameters = dict(arg.split("=", 1) for arg in rest if arg != "--translate")
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    pseudo = PseudoParameterValues(
        region="us-east-1",
        account_id="123456789012",
        stack_name="hookcatch",
        stack_id="arn:aws:cloudformation:us-east-1:123456789012:stack/hookcatch/1",
        partition="aws",
        url_suffix="amazonaws.com",
    )
    expanded = process_template(template, parameter_values=parameters, pseudo_parameters=pseudo)
    if translate:
        from samtranslator.model.exceptions import InvalidDocumentException
        from samtranslator.translator.transform import transform

        class NoManagedPolicies:
            def load(self):
                return {}

        expanded["Transform"] = "AWS::Serverless-2016-10-31"
        # As `sam validate` does: local code paths become a placeholder package.
        for resource in expanded["Resources"].values():
            if resource.get("Type") == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
        # The translator asks boto for the region of its pseudo parameters.
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        try:
            expanded = transform(expanded, parameters, NoManagedPolicies())
        except InvalidDocumentException as e:
            sys.exit("; ".join(str(c) for c in e.causes))
    json.dump(expanded, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
