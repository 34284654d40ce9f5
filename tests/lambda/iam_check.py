"""Check that template.yaml allows each function the DynamoDB actions its code can call, and no more.

Usage: python tests/lambda/iam_check.py [REPOSITORY_ROOT]

A static estimate from the source, at the granularity of the store's DynamoDB modules:

1. Each file of shared/src/store/dynamo/ implements some store trait methods and calls some
   DynamoDB operations: client calls such as `.get_item()`, the items of `TransactWriteItems`
   (`Put::builder()` and so on) and the module's helpers (`.get_item(pk, sk)`, `.put_new(item)`).
   Every method of a file is taken to need every action of that file.
2. The Rust files a function can reach are its own crate's, plus the `shared` modules they name
   (`shared::x`), followed through `crate::y` references, except into the store itself.
3. A function needs the actions of every DynamoDB module whose trait methods those files call
   (`.create_organization(` and so on).

The result over-approximates, because a whole module's actions count for any of its methods. A
call through a generic or a closure that hides the method name would be missed, so the Lambda
tests also check the actions each function really sends. The check fails when a function's policy lacks a
needed action or allows one that no reachable code needs.
"""

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from template_summary import load_template, summarize  # noqa: E402

# IAM has no TransactWriteItems action: it checks the action of each item instead.
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}

CLIENT_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem",
    # The operations below need the actions of their items, found through the builders.
    "transact_write_items": None,
    "transact_get_items": None,
}

# Helpers of shared/src/store/dynamo/mod.rs and the actions they send.
HELPER_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_new": "dynamodb:PutItem",
}

CLIENT_CALL = re.compile(r"\.(" + "|".join(CLIENT_ACTIONS) + r")\(\)")
ITEM_BUILDER = re.compile(r"\b(" + "|".join(TRANSACT_ITEM_ACTIONS) + r")::builder\(\)")
# rustfmt may put `self` and `.get_item(` on separate lines, so the receiver is not matched.
HELPER_CALL = re.compile(r"\.(" + "|".join(HELPER_ACTIONS) + r")\(")
TRAIT_METHOD = re.compile(r"async fn ([a-z_][a-z0-9_]*)\s*[<(]")
SHARED_PATH = re.compile(r"\bshared::([a-z_][a-z0-9_]*)")
CRATE_PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
# Modules whose code is not followed: the store is where the actions are counted, and the
# others only build clients and configuration.
NOT_FOLLOWED = {"store", "state", "config", "logging"}


def module_files(shared_src, name):
    """Return the files of module `name` of the shared crate: x.rs, or x/mod.rs and its folder."""
    single = shared_src / f"{name}.rs"
    if single.is_file():
        return [single]
    folder = shared_src / name
    if folder.is_dir():
        return sorted(folder.rglob("*.rs"))
    return []


def dynamo_modules(shared_src):
    """Map each DynamoDB module file to (trait methods it implements, actions it sends)."""
    modules = {}
    for path in sorted((shared_src / "store" / "dynamo").glob("*.rs")):
        text = path.read_text()
        if "for DynamoStore" not in text:
            continue
        actions = set()
        for call in CLIENT_CALL.findall(text):
            if CLIENT_ACTIONS[call]:
                actions.add(CLIENT_ACTIONS[call])
        actions.update(TRANSACT_ITEM_ACTIONS[kind] for kind in ITEM_BUILDER.findall(text))
        actions.update(HELPER_ACTIONS[helper] for helper in HELPER_CALL.findall(text))
        if "transact_write_items()" in text and not ITEM_BUILDER.search(text) and "put_new(" not in text:
            raise SystemExit(f"{path}: TransactWriteItems with no item builder this check can see")
        modules[path.name] = (set(TRAIT_METHOD.findall(text)), actions)
    return modules


def trait_methods(shared_src):
    """Return the names of every store trait method, as declared in shared/src/store/*.rs."""
    names = set()
    for path in (shared_src / "store").glob("*.rs"):
        text = path.read_text()
        for trait in re.finditer(r"pub trait \w+[^{]*\{(.*?)\n\}", text, re.S):
            names.update(TRAIT_METHOD.findall(trait.group(1)))
    return names


def reachable_files(function_src, shared_src):
    """Return the function crate's files and the shared files they reach."""
    files = set(function_src.rglob("*.rs"))
    pending = [(path, SHARED_PATH) for path in files]
    seen_modules = set()
    while pending:
        path, pattern = pending.pop()
        for name in pattern.findall(path.read_text()):
            if name in NOT_FOLLOWED or name in seen_modules:
                continue
            seen_modules.add(name)
            for module_file in module_files(shared_src, name):
                if module_file not in files:
                    files.add(module_file)
                    pending.append((module_file, CRATE_PATH))
            # A folder module's files also reach each other through `super::`.
    return files


def required_actions(root, function_dir):
    shared_src = root / "shared" / "src"
    modules = dynamo_modules(shared_src)
    methods = trait_methods(shared_src)
    text = "\n".join(path.read_text() for path in reachable_files(root / function_dir / "src", shared_src))
    called = {name for name in methods if re.search(r"\." + name + r"\s*\(", text)}
    actions, used_modules = set(), []
    for module, (implemented, module_actions) in modules.items():
        if implemented & called:
            actions |= module_actions
            used_modules.append(module)
    return sorted(actions), sorted(called), used_modules


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    summary = summarize(load_template(str(root / "template.yaml")))
    failures = 0
    for logical_id, function in sorted(summary["functions"].items()):
        binary = function["binary"]
        function_dir = Path("functions") / binary
        if not (root / function_dir / "src").is_dir():
            print(f"{logical_id}: no crate at {function_dir}", file=sys.stderr)
            failures += 1
            continue
        needed, called, used_modules = required_actions(root, function_dir)
        allowed = set(function["dynamodb_actions"])
        missing = sorted(set(needed) - allowed)
        extra = sorted(allowed - set(needed))
        print(f"{logical_id} ({binary}): store modules {', '.join(used_modules) or 'none'}")
        print(f"  needs   {', '.join(needed) or 'nothing'}")
        if missing:
            print(f"  MISSING from template.yaml: {', '.join(missing)}")
            failures += 1
        if extra:
            print(f"  allowed by template.yaml but not needed: {', '.join(extra)}")
            failures += 1
        if "--verbose" in sys.argv:
            print(f"  store methods called: {json.dumps(called)}")
    if failures:
        noun = "policy does" if failures == 1 else "policies do"
        print(f"{failures} function {noun} not match the code", file=sys.stderr)
        sys.exit(1)
    print("Every function's DynamoDB policy matches the actions its code can call.")


if __name__ == "__main__":
    main()
