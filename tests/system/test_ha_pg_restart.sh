#!/usr/bin/env bash
# Issue 21: PostgreSQL itself restarts under load (fast shutdown, as
# `pg_ctl stop -m fast`, then started again on the same port 1 s later) while
# `carico-client --connect a,b send --count 600` runs (default flags, 3 workers
# knowing both backends). The active loses its session: fenced, it exits 1
# (docs/ha.md); the standby reconnects when the server is back, takes the lock
# and a new term, reloads what was unfinished, and serves. Nothing is lost and
# nothing answered twice: 600 replies 200 for 600 distinct request numbers,
# 600 stored files, one journal row per document, all done.
source "$(dirname "$0")/lib.sh"
scale=${CARICO_TIME_SCALE:-1}
n=600

start_ha_pair 3
start_ha_send 23
wait_until 20 answered 100 || fail "no replies before the restart"

stop_postgres INT
t0=$(date +%s%N)
before=$(grep -c '"code":' "$replies" || true)
[ "$before" -lt "$n" ] || fail "every request was answered before the restart: nothing in flight"
sleep 1
start_postgres
restarted_ms=$(ms_since "$t0")

exits_ok client
elapsed_ms=$(ms_since "$t0")
all_answered_once "$replies" "$n" "$WORK/storage"
[ "$elapsed_ms" -le $(( 25000 * scale )) ] || fail "the client finished $elapsed_ms ms after the stop"
rows=$(sql "SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM carico_requests" carico)
[ "$rows" = "$n|$n" ] || fail "journal rows (all|done): $rows, expected $n|$n"
# Who serves now: a recovered in a new term, or b took over (file logs flush every 1 s).
wait_until 3 grep -q "active, term 2" "$WORK/a.file.log" "$WORK/b.file.log" || fail "no broker is active in term 2"
if grep -q "active, term 2" "$WORK/b.file.log"; then
  outcome="b took over (term 2)"
  # a lost its session: fenced, it stopped with status 1 (bash has reaped it:
  # `wait` gives its status at once, and blocks only if a still runs).
  ! kill -0 "${PIDS[a]}" 2>/dev/null || fail "a still runs beside the new active"
  status=0; wait "${PIDS[a]}" || status=$?
  unset "PIDS[a]"
  [ "$status" -eq 1 ] || fail "a exited $status, not 1"
  grep -q "stopped serving" "$WORK/a.log" || fail "a did not say why it stopped"
elif grep -q "active, term 2" "$WORK/a.file.log"; then
  outcome="a recovered (term 2)"
else
  fail "no broker is active in term 2"
fi

echo "PASS: PostgreSQL stopped after $before replies, back in $restarted_ms ms; $outcome;" \
  "all $n answered 200 once ($n distinct, $n files, $n journal rows) ${elapsed_ms} ms after the stop"
