#!/usr/bin/env bash
# Clients and workers that know every broker (--connect LIST), through a
# failover simulated without PostgreSQL: broker A (SQLite journal, the default
# carico-journal.db here) serves on F1/B1; `carico-client --connect F1,F2 send`
# with default flags runs through 3 workers `--connect B1,B2`; A is killed -9
# mid-run and broker B starts on F2/B2 with the same journal file (A's lock
# died with it), as a standby taking over would. Checks: every document
# answered 200 once, distinct request numbers, one stored file each; every
# worker registered with B and says so; the client names the broker it is on.
# Then: no broker at either of two endpoints is said within ~2 s, naming both;
# a malformed list is a usage error.
source "$(dirname "$0")/lib.sh"

f1=tcp://127.0.0.1:$(free_port); b1=tcp://127.0.0.1:$(free_port)
f2=tcp://127.0.0.1:$(free_port); b2=tcp://127.0.0.1:$(free_port)
scale=${CARICO_TIME_SCALE:-1}
n=300

start brokerA "$BROKER" --frontend "$f1" --backend "$b1" --log "$WORK/brokerA.log"
for i in 1 2 3; do
  start "w$i" "$WORKER" --connect "$b1,$b2" --name "w$i" --storage "$WORK/storage"
done
wait_until 10 workers_ready "$f1" 3 || fail "3 workers did not join broker A"
for i in 1 2 3; do
  grep -q "registered with the broker at $b1" "$WORK/w$i.log" || fail "w$i does not say it registered with A"
done

start client "$CLIENT" --connect "$f1,$f2" --json send --count "$n" --files "$CARICO_SOURCE/files" \
  --seed 5
replies=$WORK/client.log
kill_mid_run brokerA "$replies" 30 "$n"
sleep 1  # a standby takes over within about 1 s

took_over=$(date +%s%N)
start brokerB "$BROKER" --frontend "$f2" --backend "$b2" --log "$WORK/brokerB.log"
exits_ok client
elapsed_ms=$(ms_since "$took_over")

all_answered_once "$replies" $n "$WORK/storage"
limit=$(( 10000 * scale ))  # workers notice A's silence (1.5 s), then find B
[ "$elapsed_ms" -le "$limit" ] || fail "the client finished $elapsed_ms ms after B started (limit $limit)"
# The client said it lost A (stderr, default flags) and resent to B.
grep -q "lost the connection to the broker at $f1" "$replies" || fail "the client did not say it lost A"

# Every worker re-registered with B (READY again) and says so at info.
wait_until $(( 10 * scale )) workers_ready "$f2" 3 || fail "3 workers did not join broker B"
for i in 1 2 3; do
  grep -q "registered with the broker at $b2" "$WORK/w$i.log" || fail "w$i does not say it registered with B"
done
# No worker was sent DISCONNECT by B (no reply or heartbeat for a broker it left).
if grep -q "DISCONNECT" "$WORK/brokerB.log" "$WORK"/w?.log; then
  fail "a DISCONNECT after the failover: $(grep -h DISCONNECT "$WORK/brokerB.log" "$WORK"/w?.log | head -3)"
fi
# The client names the broker it is on.
"$CLIENT" --connect "$f1,$f2" workers >"$WORK/workers.out" 2>&1 || fail "workers: $(cat "$WORK/workers.out")"
head -1 "$WORK/workers.out" | grep -qxF "broker $f2" || fail "workers does not name broker B: $(head -2 "$WORK/workers.out")"
"$CLIENT" --connect "$f1,$f2" stats >"$WORK/stats.out" 2>&1 || fail "stats: $(cat "$WORK/stats.out")"
head -1 "$WORK/stats.out" | grep -qxF "broker $f2" || fail "stats does not name broker B"
stop brokerB TERM
for i in 1 2 3; do stop "w$i" TERM; done

# None of two endpoints answers: "no broker" within ~2 s, naming both, exit 1.
e1=tcp://127.0.0.1:$(free_port); e2=tcp://127.0.0.1:$(free_port)
t0=$(date +%s%N)
status=0
"$CLIENT" --connect "$e1,$e2" stats >"$WORK/none.out" 2>&1 || status=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$status" -eq 1 ] || fail "no broker: exit $status, not 1"
[ "$ms" -le $(( 3500 * scale )) ] || fail "no broker: took $ms ms"
grep -qF "no broker at $e1, $e2: nothing answered in 2 s" "$WORK/none.out" ||
  fail "no broker: message does not name both: $(cat "$WORK/none.out")"

# A malformed list is a usage error (exit 2) that says what is wrong.
for bad in "$e1,,$e2" "$e1,$e1" "$e1 $e2"; do
  status=0
  "$CLIENT" --connect "$bad" stats >"$WORK/bad.out" 2>&1 || status=$?
  [ "$status" -eq 2 ] && grep -q "endpoint list" "$WORK/bad.out" || fail "client --connect '$bad': exit $status: $(cat "$WORK/bad.out")"
  status=0
  "$WORKER" --connect "$bad" >"$WORK/bad.out" 2>&1 || status=$?
  [ "$status" -eq 2 ] && grep -q "endpoint list" "$WORK/bad.out" || fail "worker --connect '$bad': exit $status: $(cat "$WORK/bad.out")"
done

echo "PASS: $before answered by A; all $n answered 200 once ($n distinct request numbers, $n files)" \
  "${elapsed_ms} ms after B started; workers re-registered with B; no broker named both in ${ms} ms"
