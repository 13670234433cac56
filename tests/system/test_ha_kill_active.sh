#!/usr/bin/env bash
# Issue 21, a user's run through a failover: two brokers share a PostgreSQL
# journal (a real server, start_postgres in lib.sh), `a` active and `b` its
# standby; 3 workers know both backends; `carico-client --connect a,b send
# --count 600` with default flags. kill -9 of the active mid-run: the standby
# takes over (term 2), workers re-register with it, the client resends what was
# unanswered. Checks: 600 replies 200 for 600 distinct request numbers, 600
# stored files (one store), all within 20 s of the kill; b is active in term 2.
source "$(dirname "$0")/lib.sh"
scale=${CARICO_TIME_SCALE:-1}
n=600

start_ha_pair 3
start_ha_send 21
kill_mid_run a "$replies" 100 "$n"
killed=$(date +%s%N)
exits_ok client
elapsed_ms=$(ms_since "$killed")

all_answered_once "$replies" "$n" "$WORK/storage"
limit=$(( 20000 * scale ))
[ "$elapsed_ms" -le "$limit" ] || fail "the client finished $elapsed_ms ms after the kill (limit $limit)"
wait_until 3 grep -q "active, term 2" "$WORK/b.file.log" || fail "broker b is not active in term 2"
grep -q "lost the connection to the broker at $front_a" "$replies" || fail "the client did not say it lost a"
for i in 1 2 3; do
  grep -q "registered with the broker at $back_b" "$WORK/w$i.log" || fail "w$i did not register with b"
done
# The journal has one row per document, every one done.
rows=$(sql "SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM carico_requests" carico)
[ "$rows" = "$n|$n" ] || fail "journal rows (all|done): $rows, expected $n|$n"

stop b TERM
echo "PASS: $before answered by a before kill -9; all $n answered 200 once ($n distinct, $n files)" \
  "${elapsed_ms} ms after the kill; b active in term 2"
