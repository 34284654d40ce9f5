"""Print what template.yaml gives each Lambda function, as JSON, for the Lambda tests.

Usage: python tests/lambda/template_summary.py [TEMPLATE]

For every AWS::Serverless::Function: the cargo-lambda binary, the names of its environment
variables (Globals merged in), the DynamoDB actions its policies allow and the resources they
name, and its HttpApi routes as [METHOD, PATH] with parameter references resolved to their
defaults. Reads the template with cfn-lint's YAML loader, which understands the short forms of
the intrinsic functions (!Ref, !Sub, !GetAtt).
"""

import json
import sys

from cfnlint.decode import decode


def load_template(path):
    """Return the template as plain dicts and lists, or exit with the parser's messages."""
    template, matches = decode(path)
    if matches:
        for match in matches:
            print(f"{path}: {match}", file=sys.stderr)
        sys.exit(1)
    return json.loads(json.dumps(template))


def resolve(value, parameters):
    """Resolve a {"Ref": parameter} to the parameter's default; leave other values as they are."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]].get("Default")
    return value


def as_list(value):
    return value if isinstance(value, list) else [value]


def summarize(template):
    parameters = template.get("Parameters", {})
    globals_function = template.get("Globals", {}).get("Function", {})
    global_variables = globals_function.get("Environment", {}).get("Variables", {})

    functions = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        metadata = resource.get("Metadata", {})
        variables = {**global_variables, **properties.get("Environment", {}).get("Variables", {})}

        actions, resources = set(), []
        for policy in properties.get("Policies", []):
            if not isinstance(policy, dict):
                continue
            for statement in as_list(policy.get("Statement", [])):
                if statement.get("Effect") != "Allow":
                    continue
                statement_actions = [a for a in as_list(statement.get("Action", [])) if a.startswith("dynamodb:")]
                if statement_actions:
                    actions.update(statement_actions)
                    resources.extend(as_list(statement.get("Resource")))

        routes = []
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            event_properties = event.get("Properties", {})
            routes.append(
                [
                    resolve(event_properties.get("Method"), parameters),
                    resolve(event_properties.get("Path"), parameters),
                ]
            )

        functions[logical_id] = {
            "binary": metadata.get("BuildProperties", {}).get("Binary"),
            "build_method": metadata.get("BuildMethod"),
            "variables": sorted(variables),
            "dynamodb_actions": sorted(actions),
            "dynamodb_resources": resources,
            "routes": sorted(routes),
        }
    return {"functions": functions}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    print(json.dumps(summarize(load_template(path)), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
