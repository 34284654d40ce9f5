#!/usr/bin/env bash
# Runs every check of the project, from the repository root:
#
#   bash scripts/test.sh
#
# Needs Rust (with rustfmt and clippy), Node 20 or later with npm, Java 17 or later, and Chromium
# for the browser tests. On a Debian machine without `java` or /usr/bin/chromium, it installs
# openjdk-17-jre-headless or chromium with apt-get (as root, or with sudo); CHROMIUM_PATH names
# another Chromium binary. Steps: install the Node packages, start DynamoDB Local, create a table,
# check formatting and clippy lints, and run the Rust tests against the embedded store and DynamoDB
# Local. Then run every tests/node/*.test.mjs file with the official SDKs against a local stack on
# each store, each stack with a Stripe emulator of its own as its Stripe. Last, the deployment
# checks of scripts/deploy-checks.sh, including the arm64 Lambda zips (SKIP_ARM64_BUILD=1 skips
# them). Every process it starts is stopped on exit, and its temporary folder is removed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

# The script starts its own DynamoDB Local, and an endpoint or table from the caller's environment
# would point the local stack somewhere else.
unset DYNAMODB_ENDPOINT TABLE_NAME REQUIRE_DYNAMODB
# Keeps the AWS SDK from asking an instance metadata service for credentials or a region.
export AWS_EC2_METADATA_DISABLED=true

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/entitlements-test.XXXXXX")
dynamodb_pid_file="$work_dir/dynamodb-local.pid"
server_pids=()
current_group=""
current_step=""
step_started=""
timings=()

# Prints microseconds since the epoch. EPOCHREALTIME's decimal separator follows the locale.
now_us() {
  echo "${EPOCHREALTIME//[!0-9]/}"
}
script_started=$(now_us)

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
  printf '\n==> %s\n' "$current_step"
}

# Runs a command in a new session, and so in a new process group, and waits for it. The exit trap
# can then stop the command with everything it spawned (rustc, test binaries, node test files).
run() {
  setsid --wait "$@" &
  current_group=$!
  local status=0
  wait "$current_group" || status=$?
  current_group=""
  return "$status"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local failed_step=$current_step
  finish_step

  if [[ -n $current_group ]]; then
    kill -TERM -- "-$current_group" 2>/dev/null || kill -TERM "$current_group" 2>/dev/null || true
    wait "$current_group" 2>/dev/null || true
  fi
  local pid
  for pid in "${server_pids[@]}"; do
    stop_pid "$pid"
  done
  if [[ -f $dynamodb_pid_file ]]; then
    stop_pid "$(cat "$dynamodb_pid_file")"
  fi

  if ((status != 0)); then
    local log
    for log in "$work_dir"/*.log; do
      [[ -s $log ]] || continue
      printf '\n--- last lines of %s ---\n' "$(basename "$log")"
      tail -n 40 "$log"
    done
  fi
  rm -rf "$work_dir"

  printf '\nStep durations:\n'
  printf '%s\n' "${timings[@]}"
  local total_tenths=$((($(now_us) - script_started) / 100000))
  printf '%6d.%d s  total\n' $((total_tenths / 10)) $((total_tenths % 10))
  if ((status != 0)); then
    printf '\nFAILED in step "%s" (exit status %d)\n' "$failed_step" "$status" >&2
  else
    printf '\nAll checks passed.\n'
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the string FIELD of the JSON object on stdin, and fails when it is missing or not a string.
json_string() {
  node -e '
    const value = JSON.parse(require("node:fs").readFileSync(0, "utf8"))[process.argv[1]];
    if (typeof value !== "string") process.exit(1);
    console.log(value);
  ' "$1"
}

# Installs Debian packages with apt-get, as root or with sudo.
apt_install() {
  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
      echo "cannot install $*: not running as root and sudo is missing; install it or run as root" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  run "${sudo[@]}" apt-get update
  run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# Prints a random string of 43 URL-safe characters (256 bits).
random_secret() {
  node -e 'console.log(require("node:crypto").randomBytes(32).toString("base64url"))'
}

# Starts the local stack in the background with the given flags and the variables in stack_env,
# and sets stack_pid.
start_stack() {
  local label=$1
  shift
  env "${stack_env[@]}" "$local_stack" "$@" </dev/null >>"$work_dir/$label.out" 2>>"$work_dir/$label.log" &
  stack_pid=$!
  server_pids+=("$stack_pid")
}

# Stops a server this script started, and removes its PID from server_pids.
stop_server() {
  local stopped=$1
  stop_pid "$stopped"
  local remaining=() pid
  for pid in "${server_pids[@]}"; do
    [[ $pid == "$stopped" ]] || remaining+=("$pid")
  done
  server_pids=("${remaining[@]}")
}

stop_stack() {
  stop_server "$stack_pid"
}

# Starts a Stripe emulator on a free loopback port, and sets emulator_pid and emulator_url.
start_emulator() {
  local label=$1
  local out="$work_dir/$label-emulator.out"
  "$stripe_emulator" --port 0 </dev/null >"$out" 2>>"$work_dir/$label-emulator.log" &
  emulator_pid=$!
  server_pids+=("$emulator_pid")
  local deadline=$((SECONDS + 30))
  # The emulator prints its base URL on stdout once it listens.
  emulator_url=""
  until [[ $emulator_url =~ ^http://127\.0\.0\.1:[0-9]+$ ]]; do
    if ! kill -0 "$emulator_pid" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "the Stripe emulator printed no base URL to $out" >&2
      return 1
    fi
    sleep 0.1
    emulator_url=$(head -n 1 "$out")
  done
  wait_for_http 127.0.0.1 "${emulator_url##*:}" "$emulator_pid" 30
  echo "Stripe emulator on $emulator_url (PID $emulator_pid)"
}

# Runs the Node suite against a local stack on one store: the embedded store when ENDPOINT is
# empty, DynamoDB at ENDPOINT otherwise. The stack's Stripe is a new Stripe emulator, with fresh
# webhook and cookie secrets that the tests also get. The stack creates the first environment and
# writes its credentials. The admin CLI then creates a second one while the stack is stopped,
# because only one process at a time can open the embedded store's file. The restart on the same
# data also checks that the stack starts on a store that has data.
run_node_suite() {
  local label=$1 endpoint=$2
  local data_dir="$work_dir/$label-data"
  local credentials="$work_dir/$label-credentials.json"
  # The stack keeps generated local secrets in its data folder on either store, and the admin CLI
  # reads the stack's KEY_ENCRYPTION_KEY there.
  local stack_args=(--data-dir "$data_dir")
  local store_args=(--data-dir "$data_dir")
  if [[ -n $endpoint ]]; then
    stack_args+=(--dynamodb-endpoint "$endpoint")
    store_args+=(--dynamodb-endpoint "$endpoint")
  fi
  # The stack and admin read TABLE_NAME, and a fresh table gives the stack an empty store.
  local -x TABLE_NAME="$table_name-node"

  local emulator_pid emulator_url webhook_secret cookie_password refresh_grace_seconds=3
  start_emulator "$label"
  webhook_secret="whsec_$(random_secret)"
  cookie_password=$(random_secret)
  stack_args+=(--stripe real)
  # Without STRIPE_REDIRECT_URI the stack uses its own callback URL, whose port is not known
  # before a start with --port 0.
  local stack_env=(
    "STRIPE_API_BASE=$emulator_url/"
    "STRIPE_CONNECT_BASE=$emulator_url/"
    STRIPE_SECRET_KEY=sk_test_emulator
    STRIPE_CLIENT_ID=ca_emulator
    "STRIPE_WEBHOOK_SECRETS=$webhook_secret"
    "COOKIE_PASSWORD=$cookie_password"
    # A short grace window lets the Node suite also check a refresh token reused after it.
    "REFRESH_GRACE_SECONDS=$refresh_grace_seconds"
  )

  start_stack "$label" --port 0 --credentials-file "$credentials" "${stack_args[@]}"
  local deadline=$((SECONDS + 60))
  until [[ -s $credentials ]] && json_string api_key <"$credentials" >/dev/null 2>&1; do
    if ! kill -0 "$stack_pid" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "the local stack wrote no credentials to $credentials" >&2
      return 1
    fi
    sleep 0.2
  done
  local api_key client_id base_url port
  api_key=$(json_string api_key <"$credentials")
  client_id=$(json_string client_id <"$credentials")
  base_url=$(json_string base_url <"$credentials")
  port=${base_url##*:}
  wait_for_http 127.0.0.1 "$port" "$stack_pid" 60
  stop_stack

  local second api_key_2 client_id_2
  second=$("$admin" "${store_args[@]}" create-environment --name second --mode test 2>>"$work_dir/$label.log")
  api_key_2=$(json_string api_key <<<"$second")
  client_id_2=$(json_string client_id <<<"$second")

  stack_env+=("STRIPE_REDIRECT_URI=$base_url/stripe/oauth/callback")
  start_stack "$label" --port "$port" "${stack_args[@]}"
  wait_for_http 127.0.0.1 "$port" "$stack_pid" 60
  echo "local stack on $base_url (PID $stack_pid)"

  BASE_URL=$base_url API_KEY=$api_key CLIENT_ID=$client_id API_KEY_2=$api_key_2 \
    CLIENT_ID_2=$client_id_2 STRIPE_EMULATOR_URL=$emulator_url \
    STRIPE_WEBHOOK_SECRET=$webhook_secret STRIPE_WEBHOOK_SECRETS=$webhook_secret \
    COOKIE_PASSWORD=$cookie_password REFRESH_GRACE_SECONDS=$refresh_grace_seconds \
    BROWSER_ARTIFACTS_DIR="$work_dir/$label-browser" \
    run node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec "${node_tests[@]}"
  stop_stack
  stop_server "$emulator_pid"
}

step "Install the Node packages (npm ci)"
run npm ci --prefix tests/node --no-audit --no-fund

step "Check Java for DynamoDB Local"
if ! command -v java >/dev/null; then
  apt_install openjdk-17-jre-headless
fi
java -version 2>&1 | head -n 1

step "Check Chromium for the browser tests"
# The browser tests read CHROMIUM_PATH, which defaults to Debian's package.
if [[ -z ${CHROMIUM_PATH:-} && ! -x /usr/bin/chromium ]]; then
  apt_install chromium
fi
# Debian's wrapper script prints a shell warning on stderr even when Chromium works.
if ! "${CHROMIUM_PATH:-/usr/bin/chromium}" --version 2>/dev/null; then
  echo "Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium} does not start; run it with --version to see why" >&2
  exit 1
fi

step "Start DynamoDB Local"
dynamodb_endpoint=$(scripts/dynamodb-local.sh --pid-file "$dynamodb_pid_file" \
  --log-file "$work_dir/dynamodb-local.log")
echo "DynamoDB Local on $dynamodb_endpoint (PID $(cat "$dynamodb_pid_file"))"

step "Create the DynamoDB table"
# DynamoDB table names allow letters, digits, '_', '-' and '.'.
table_name="entitlements-test-$(date +%s)-$$"
TABLE_NAME=$table_name run cargo run -p local-stack --bin admin -- \
  --dynamodb-endpoint "$dynamodb_endpoint" create-table

step "Check formatting (cargo fmt)"
run cargo fmt --all --check

step "Lint (cargo clippy)"
run cargo clippy --workspace --all-targets -- -D warnings

step "Rust tests on the embedded store and DynamoDB Local (cargo test)"
DYNAMODB_ENDPOINT=$dynamodb_endpoint TABLE_NAME=$table_name REQUIRE_DYNAMODB=1 \
  run cargo test --workspace

step "Build the local stack and the Stripe emulator"
run cargo build -p local-stack -p stripe-emulator --bins
# CARGO_TARGET_DIR, when set, moves the binaries, and cargo metadata reports the folder in effect.
target_dir=$(cargo metadata --format-version 1 --no-deps | json_string target_directory)
local_stack="$target_dir/debug/local-stack"
admin="$target_dir/debug/admin"
stripe_emulator="$target_dir/debug/stripe-emulator"
shopt -s nullglob
node_tests=(tests/node/*.test.mjs)
shopt -u nullglob
if ((${#node_tests[@]} == 0)); then
  echo "no Node tests found: tests/node/*.test.mjs" >&2
  exit 1
fi
printf 'Node test files: %s\n' "${node_tests[*]}"

step "Node suite on the embedded store"
run_node_suite embedded ""

step "Node suite on DynamoDB Local"
run_node_suite dynamodb "$dynamodb_endpoint"

step "Deployment checks: template lint, Lambda event tests, arm64 zips (scripts/deploy-checks.sh)"
# SKIP_ARM64_BUILD=1 passes through and skips the arm64 release build, which takes tens of
# minutes cold on 2 cores.
DYNAMODB_ENDPOINT=$dynamodb_endpoint TABLE_NAME=$table_name \
  run bash scripts/deploy-checks.sh

finish_step
