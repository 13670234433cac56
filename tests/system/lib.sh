# Shared helpers for carico's system tests (sourced, not run).
# Every process started with `start NAME CMD...` is killed by PID on exit.
set -euo pipefail

: "${CARICO_BIN:?CARICO_BIN must point at the build directory}"
BROKER=$CARICO_BIN/broker/carico-broker
WORKER=$CARICO_BIN/worker/carico-worker
CLIENT=$CARICO_BIN/client/carico-client

WORK=$(mktemp -d "${TMPDIR:-/tmp}/carico-system.XXXXXX")
cd "$WORK"  # default files (journal, storage, logs) land in the scratch folder
declare -A PIDS=()

cleanup() {
  local status=$?
  for name in "${!PIDS[@]}"; do
    kill -9 "${PIDS[$name]}" 2>/dev/null || true
  done
  for name in "${!PIDS[@]}"; do
    wait "${PIDS[$name]}" 2>/dev/null || true
  done
  if [ $status -ne 0 ]; then
    echo "--- logs in $WORK (kept: test failed)"
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }; done
  else
    rm -rf "$WORK"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start NAME CMD... : runs CMD in the background, output to $WORK/NAME.log.
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS[$name]=$!
}

# stop NAME [SIGNAL] : signals a started process and waits for it.
stop() {
  local name=$1 sig=${2:-TERM}
  local pid=${PIDS[$name]:-}
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$name]"
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# wait_until SECONDS CMD... : retries CMD every 0.1 s until it succeeds.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# workers_ready EP N : the broker at EP has N workers in state ready.
workers_ready() {
  local n
  n=$("$CLIENT" --connect "$1" --timeout-ms 1000 --json workers | grep -o "\"state\":\"ready\"" | wc -l)
  [ "$n" -eq "$2" ]
}
