#!/usr/bin/env bash
# The active broker hangs (SIGSTOP: its TCP connections stay up, it answers
# nothing) and another takes over on other ports: clients and workers with
# both in --connect leave the hung one without waiting for a request timeout.
# The client drops the silent connection by ZMTP heartbeats (3 s) and sends
# what is unanswered to the new broker; workers notice their broker's silence
# and send READY to the new one. No journal (`--journal none`): the hung broker
# holds the SQLite file's lock, so this test is about moving, not exactly-once
# (test_failover_list is).
source "$(dirname "$0")/lib.sh"

f1=tcp://127.0.0.1:$(free_port); b1=tcp://127.0.0.1:$(free_port)
f2=tcp://127.0.0.1:$(free_port); b2=tcp://127.0.0.1:$(free_port)
scale=${CARICO_TIME_SCALE:-1}
n=400  # one at a time: enough that the hang lands mid-run on a fast machine

start brokerA "$BROKER" --frontend "$f1" --backend "$b1" --journal none --log "$WORK/brokerA.log"
for i in 1 2; do
  start "w$i" "$WORKER" --connect "$b1,$b2" --name "w$i" --storage "$WORK/storage" --service echo
done
wait_until 10 workers_ready "$f1" 2 || fail "2 workers did not join broker A"

# One document at a time, so that one is in flight at the hang; default timeout (10 s).
start client "$CLIENT" --connect "$f1,$f2" --json send --count "$n" --window 1 --service echo \
  --files "$CARICO_SOURCE/files" --seed 3
replies=$WORK/client.log
answered() { [ "$(grep -c '"code":200' "$replies" || true)" -ge "$1" ]; }
wait_until 20 answered 20 || fail "no replies before the hang"
kill -STOP "${PIDS[brokerA]}"
took_over=$(date +%s%N)
before=$(grep -c '"code":' "$replies" || true)
[ "$before" -lt "$n" ] || fail "every request was answered before the hang: nothing in flight"
start brokerB "$BROKER" --frontend "$f2" --backend "$b2" --journal none --log "$WORK/brokerB.log"
exits_ok client
elapsed_ms=$(ms_since "$took_over")
ok=$(grep -c '"code":200' "$replies" || true)
[ "$ok" -eq "$n" ] || fail "expected $n replies 200, got $ok"
# Without heartbeats the request in flight would wait out its 10 s timeout.
limit=$(( 8000 * scale ))
[ "$elapsed_ms" -le "$limit" ] || fail "the client finished $elapsed_ms ms after B started (limit $limit)"
for i in 1 2; do
  grep -q "registered with the broker at $b2" "$WORK/w$i.log" || fail "w$i did not move to B"
done
kill -CONT "${PIDS[brokerA]}"
echo "PASS: $n answered 200 through a hung broker; done ${elapsed_ms} ms after B started"
