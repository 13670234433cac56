#!/usr/bin/env bash
# scripts/start_cluster.sh --ha end to end (issue 21), with its own run dir and
# free ports: a local PostgreSQL in RUN_DIR/pg, broker active and broker2
# standby on it, workers and clients knowing both. `status` says which broker
# is active; documents sent to both endpoints are answered; kill -9 of the
# active: status shows broker2 active in term 2 and documents still go through;
# `stop` stops everything it started, PostgreSQL included, and nothing else.
source "$(dirname "$0")/lib.sh"

SCRIPT=$CARICO_SOURCE/scripts/start_cluster.sh
export CARICO_NO_BUILD=1  # the binaries of $CARICO_BIN, as built
[ -x "$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/postgres" ] ||
  fail "PostgreSQL's server binaries are not installed: run scripts/setup.sh --test"
[ "$(id -u)" -ne 0 ] || chmod o+x "$WORK"  # as root, PostgreSQL runs as postgres in RUN_DIR/pg
run=$WORK/run
cluster() { "$SCRIPT" "$@" --run-dir "$run"; }
trap 'rc=$?; [ -f "$run/cluster.env" ] && cluster stop >/dev/null 2>&1; (exit $rc); cleanup' EXIT

# running PID: alive and not a zombie (a stopped process not yet reaped by init).
running() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat; stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }; [ "${stat%% *}" != Z ]
}

# Three free ports whose + 10 (the standby's) are free too.
ports_ok() {
  local p
  for p in "$@"; do ! listening "$p" && ! listening $((p + 10)) || return 1; done
  [ "$(printf '%s\n' "$@" $(($1 + 10)) $(($2 + 10)) $(($3 + 10)) | sort -u | wc -l)" -eq 6 ]
}
fport=$(free_port); bport=$(free_port); hport=$(free_port)
until ports_ok "$fport" "$bport" "$hport"; do
  fport=$(free_port); bport=$(free_port); hport=$(free_port)
done
fronts=tcp://127.0.0.1:$fport,tcp://127.0.0.1:$((fport + 10))

cluster --ha --no-client --workers 2 --frontend-port "$fport" --backend-port "$bport" \
  --http-port "$hport" >"$WORK/start.out" || fail "start_cluster.sh --ha failed: $(tail -n 5 "$WORK/start.out")"
grep -qF "clients connect to   $fronts" "$WORK/start.out" || fail "start did not give both frontends"
grep -q "journal              postgresql://postgres@127.0.0.1:[0-9]*/carico" "$WORK/start.out" ||
  fail "start did not say where the journal is"
pg_pid=$(cat "$run/pids/postgresql.pid")
running "$pg_pid" || fail "no PostgreSQL running"

cluster status >"$WORK/status.out" || fail "status failed"
grep -q "^postgresql .* running (127.0.0.1:" "$WORK/status.out" || fail "status: PostgreSQL not running: $(cat "$WORK/status.out")"
grep -q "^broker .* running, active, term 1$" "$WORK/status.out" || fail "status: broker not active in term 1: $(cat "$WORK/status.out")"
grep -q "^broker2 .* running, standby$" "$WORK/status.out" || fail "status: broker2 not standby: $(cat "$WORK/status.out")"
[ "$(grep -c '^w[12] .* running$' "$WORK/status.out")" -eq 2 ] || fail "status: 2 workers not running"

"$CLIENT" --connect "$fronts" --json send --count 40 --files "$CARICO_SOURCE/files" >"$WORK/first.jsonl" ||
  fail "send --count 40 failed"
[ "$(grep -c '"code":200' "$WORK/first.jsonl")" -eq 40 ] || fail "not all 40 replies are 200"

# kill -9 of the active: broker2 takes over; status says so.
kill -9 "$(cat "$run/pids/broker.pid")"
t0=$(date +%s%N)
b2_active() { cluster status >"$WORK/status2.out" && grep -q "^broker2 .* running, active, term 2$" "$WORK/status2.out"; }
wait_until 15 b2_active || fail "status does not show broker2 active in term 2: $(cluster status)"
took_ms=$(ms_since "$t0")
grep -q "^broker .* not running$" "$WORK/status2.out" || fail "status does not show broker gone"
"$CLIENT" --connect "$fronts" --json send --count 20 --files "$CARICO_SOURCE/files" >"$WORK/second.jsonl" ||
  fail "send --count 20 after the failover failed"
[ "$(grep -c '"code":200' "$WORK/second.jsonl")" -eq 20 ] || fail "not all 20 replies after the failover are 200"
grep -o '"request":[0-9]*' "$WORK/first.jsonl" "$WORK/second.jsonl" | cut -d: -f2- | sort | uniq -d |
  grep -q . && fail "a request number was used twice across the failover"

# stop: every process it started is gone, PostgreSQL included; nothing else touched.
pids=$(cat "$run"/pids/*.pid)
start bystander sleep 60
cluster stop >"$WORK/stop.out" || fail "stop failed"
grep -q "postgresql ($pg_pid)" "$WORK/stop.out" || fail "stop did not say it stopped PostgreSQL: $(cat "$WORK/stop.out")"
for pid in $pids; do
  running "$pid" && fail "process $pid is still running after stop"
done
pgrep -f -- "-D $run/pg/data" >/dev/null && fail "a PostgreSQL process of the run dir is left"
[ -z "$(ls "$run/pids")" ] || fail "pid files left after stop"
running "${PIDS[bystander]}" || fail "stop killed a process it did not start"
stop bystander
echo "PASS: start_cluster.sh --ha: PostgreSQL + active + standby, status names the active; kill -9:" \
  "broker2 active (term 2) in status after $took_ms ms, 20 more answered; stop reaps PostgreSQL too"
