# Helpers shared by the scripts in this folder. Source it from bash; it defines functions only.

# Prints a TCP port that is free on 127.0.0.1 at the time of the call. The caller binds it a moment
# later, so another process may take it first; callers that can pass port 0 should do that instead.
free_port() {
  node -e '
    const server = require("node:net").createServer();
    server.listen(0, "127.0.0.1", () => {
      console.log(server.address().port);
      server.close();
    });
  '
}

# Succeeds when a server on HOST:PORT responds to a GET request with an HTTP status line.
http_responds() {
  local host=$1 port=$2
  (
    exec 3<>"/dev/tcp/$host/$port"
    printf 'GET / HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$host" "$port" >&3
    IFS= read -r -t 5 status_line <&3
    [[ $status_line == HTTP/* ]]
  ) 2>/dev/null
}

# Waits until HOST:PORT responds to HTTP. Fails when process PID exits first or after TIMEOUT seconds.
wait_for_http() {
  local host=$1 port=$2 pid=$3 timeout=$4
  local deadline=$((SECONDS + timeout))
  until http_responds "$host" "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited before $host:$port responded to HTTP" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "timed out after ${timeout}s waiting for $host:$port to respond to HTTP" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Stops process PID with SIGTERM, then SIGKILL when it is still running after 10 seconds.
# Reaps it when it is a child of this shell. Succeeds when the process is already gone.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  local attempt
  for attempt in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "process $pid ignored SIGTERM for 10s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
