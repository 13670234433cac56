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
  # PostgreSQL (start_postgres) first: SIGQUIT is its immediate shutdown, which
  # ends its backends and frees its shared memory (a SIGKILL would leave both).
  if [ -n "${PIDS[pg]:-}" ]; then
    kill -QUIT "${PIDS[pg]}" 2>/dev/null || true
    local i
    for i in $(seq 50); do kill -0 "${PIDS[pg]}" 2>/dev/null || break; sleep 0.1; done
  fi
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

# N text workers w1..wN on $back, each storing to $WORK/storage/wI; returns
# when the broker at $front lists all N (or fails the test).
start_text_workers() {
  local n=$1 i
  for (( i = 1; i <= n; i++ )); do
    start "w$i" "$WORKER" --connect "$back" --name "w$i" --storage "$WORK/storage/w$i"
  done
  wait_until 10 workers_ready "$front" "$n" || fail "$n workers did not join"
}

# kill_hard NAME : kill -9 a started process (a crash), reaped at once.
kill_hard() {
  kill -9 "${PIDS[$1]}"
  wait "${PIDS[$1]}" 2>/dev/null || true
  unset "PIDS[$1]"
}

# all_answered_once REPLIES N STORAGE : the --json replies of a `send` of N
# documents are N replies 200 for N distinct request numbers, and STORAGE
# holds N stored files: each document answered once and stored once.
all_answered_once() {
  local replies=$1 n=$2 storage=$3 total ok distinct files
  total=$(grep -c '"code":' "$replies" || true)
  ok=$(grep -c '"code":200' "$replies" || true)
  [ "$total" -eq "$n" ] || fail "expected $n replies, got $total"
  [ "$ok" -eq "$n" ] || fail "expected $n replies 200, got $ok"
  distinct=$(grep -o '"request":[0-9]*' "$replies" | sort -u | wc -l)
  [ "$distinct" -eq "$n" ] || fail "expected $n distinct request numbers, got $distinct"
  files=$(find "$storage" -name '*.json' | wc -l)
  [ "$files" -eq "$n" ] || fail "expected $n stored files, got $files"
}

# exits_ok NAME : waits for a started process to end; fails unless it exits 0.
exits_ok() {
  local status=0
  wait "${PIDS[$1]}" || status=$?
  unset "PIDS[$1]"
  [ "$status" -eq 0 ] || fail "$1 exited $status"
}

# ms_since T0 : milliseconds since T0 (a `date +%s%N`).
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# kill_mid_run NAME REPLIES AFTER TOTAL : once REPLIES (a `send --json`
# output) holds AFTER replies 200, kill -9 NAME; fails unless some of the
# TOTAL requests were still unanswered then. Sets `before`: replies by then.
kill_mid_run() {
  local name=$1 replies=$2 after=$3 total=$4
  answered() { [ "$(grep -c '"code":200' "$1" || true)" -ge "$2" ]; }
  wait_until 20 answered "$replies" "$after" || fail "no replies before the kill"
  kill_hard "$name"
  before=$(grep -c '"code":' "$replies" || true)
  [ "$before" -lt "$total" ] || fail "every request was answered before the kill: nothing in flight"
}

# start_postgres: a real PostgreSQL server for the test (the newest of Debian's
# /usr/lib/postgresql/N/bin), started as process `pg`: initdb in $WORK/pg on
# the first call (as the postgres user when root: setpriv, which execs, so the
# PID is the postmaster's), a free loopback port, and a database `carico`.
# A later call starts the same cluster again on the same port (after
# stop_postgres). Sets pgport and pg_uri (the database's URI for --journal).
start_postgres() {
  local pgbin
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$pgbin/postgres" ] ||
    fail "PostgreSQL's server binaries are not installed: run scripts/setup.sh --test"
  as_pg=()
  [ "$(id -u)" -eq 0 ] && as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
  local fresh=0
  if [ ! -d "$WORK/pg/data" ]; then
    fresh=1
    mkdir "$WORK/pg"
    if [ "$(id -u)" -eq 0 ]; then
      chmod o+x "$WORK"  # the postgres user reaches its directory through the scratch folder
      chown postgres: "$WORK/pg"
    fi
    "${as_pg[@]}" "$pgbin/initdb" -D "$WORK/pg/data" -A trust -U postgres --no-sync \
      >"$WORK/initdb.out" 2>&1 || fail "initdb failed: $(tail -n 3 "$WORK/initdb.out")"
    pgport=$(free_port)
  fi
  "${as_pg[@]}" "$pgbin/postgres" -D "$WORK/pg/data" -p "$pgport" -k "$WORK/pg" \
    -c listen_addresses=127.0.0.1 >>"$WORK/pg.log" 2>&1 &
  PIDS[pg]=$!
  wait_until 60 sql "SELECT 1" || fail "PostgreSQL did not start: $(tail -n 3 "$WORK/pg.log")"
  [ "$fresh" -eq 0 ] || sql "CREATE DATABASE carico" >/dev/null
  pg_uri=postgresql://postgres@127.0.0.1:$pgport/carico
}

# stop_postgres [SIGNAL] : stops the server started by start_postgres and waits
# for it; INT (default) is a fast shutdown (pg_ctl -m fast), QUIT immediate.
stop_postgres() { stop pg "${1:-INT}"; }

# sql QUERY [DATABASE] : one query on the test's server, unaligned rows.
sql() { psql -h 127.0.0.1 -p "$pgport" -U postgres -At -c "$1" "${2:-postgres}"; }

# listening PORT : something listens on 127.0.0.1:PORT.
listening() { ss -ltn | grep -q "127.0.0.1:$1 "; }

# After start_ha_pair: `carico-client --connect a,b send --count $n` with
# default flags (seed $1); its JSON lines land in $replies.
start_ha_send() {
  start client "$CLIENT" --connect "$fronts" --json send --count "$n" \
    --files "$CARICO_SOURCE/files" --seed "$1"
  replies=$WORK/client.log
}

# answered N: the client has N replies 200 or more.
answered() { [ "$(grep -c '"code":200' "$replies" || true)" -ge "$1" ]; }

# start_ha_pair WORKERS : PostgreSQL (start_postgres), broker `a` active on it,
# then broker `b` its standby, each on its own free ports with its log file in
# $WORK/NAME.file.log (the info lines: "active, term N", "standby"); WORKERS
# workers w1.. with --connect to both backends and one store, $WORK/storage
# (a request run again after a failover overwrites its own file). Sets fronts
# (the client's --connect list), front_a/front_b, back_a/back_b.
start_ha_pair() {
  local n=$1 i
  start_postgres
  local fa ba fb bb
  fa=$(free_port); ba=$(free_port); fb=$(free_port); bb=$(free_port)
  front_a=tcp://127.0.0.1:$fa; back_a=tcp://127.0.0.1:$ba
  front_b=tcp://127.0.0.1:$fb; back_b=tcp://127.0.0.1:$bb
  fronts=$front_a,$front_b
  start a "$BROKER" --journal "$pg_uri" --frontend "$front_a" --backend "$back_a" \
    --log "$WORK/a.file.log"
  wait_until 20 listening "$fa" || fail "broker a does not listen"
  start b "$BROKER" --journal "$pg_uri" --frontend "$front_b" --backend "$back_b" \
    --log "$WORK/b.file.log"
  wait_until 20 grep -q "standby" "$WORK/b.file.log" || fail "broker b did not say standby"
  wait_until 3 grep -q "active, term 1" "$WORK/a.file.log" || fail "broker a is not active in term 1"
  for i in $(seq 1 "$n"); do
    start "w$i" "$WORKER" --connect "$back_a,$back_b" --name "w$i" --storage "$WORK/storage"
  done
  wait_until 20 workers_ready "$front_a" "$n" || fail "$n workers did not join broker a"
}
