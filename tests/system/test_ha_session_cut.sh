#!/usr/bin/env bash
# Issue 21: the active broker's PostgreSQL session is cut by the server
# (pg_terminate_backend of the session that holds the leadership lock) while
# `carico-client --connect a,b send --count 600` runs (default flags, 3 workers
# knowing both backends). The active is fenced: it stops serving and exits 1;
# the standby takes the lock and a new term, reloads what was unfinished, and
# serves. Nothing is answered twice: 600 replies 200 for 600 distinct request
# numbers, 600 stored files, one journal row per document, all done.
source "$(dirname "$0")/lib.sh"
scale=${CARICO_TIME_SCALE:-1}
n=600

start_ha_pair 3
start_ha_send 22
wait_until 20 answered 100 || fail "no replies before the cut"

# The leadership lock's holder is the active's writer session.
leader="SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
cut=$(sql "SELECT pg_terminate_backend(pid) FROM ($leader) AS l" carico)
[ "$cut" = t ] || fail "no active session to cut: '$cut'"
t0=$(date +%s%N)
before=$(grep -c '"code":' "$replies" || true)
[ "$before" -lt "$n" ] || fail "every request was answered before the cut: nothing in flight"

# The fenced active stops at once with status 1 and says why.
status=0; wait "${PIDS[a]}" || status=$?
unset "PIDS[a]"
stopped_ms=$(ms_since "$t0")
[ "$status" -eq 1 ] || fail "the fenced active exited $status, not 1"
[ "$stopped_ms" -le $(( 2000 * scale )) ] || fail "the fenced active took $stopped_ms ms to stop"
grep -q "stopped serving" "$WORK/a.log" || fail "the fenced active did not say why it stopped"

exits_ok client
elapsed_ms=$(ms_since "$t0")
all_answered_once "$replies" "$n" "$WORK/storage"
[ "$elapsed_ms" -le $(( 20000 * scale )) ] || fail "the client finished $elapsed_ms ms after the cut"
wait_until 3 grep -q "active, term 2" "$WORK/b.file.log" || fail "broker b is not active in term 2"
rows=$(sql "SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM carico_requests" carico)
[ "$rows" = "$n|$n" ] || fail "journal rows (all|done): $rows, expected $n|$n"

stop b TERM
echo "PASS: session cut after $before replies; a exited 1 in $stopped_ms ms; b took over (term 2);" \
  "all $n answered 200 once ($n distinct, $n files, $n journal rows) ${elapsed_ms} ms after the cut"
