#!/usr/bin/env bash
# A user's run, default flags: `carico-client send --count 400` while the broker
# (its default journal, carico-journal.db in the working folder) is killed -9
# and started again 1 s later on the same journal and ports. The client rides
# through on its own (reconnect resends, default --retries): 400 replies 200 for
# 400 distinct requests, all within 5 s of the restart, 400 files stored.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport

start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer-1.log"
# One store for the three workers: a request run again after the restart (not
# yet answered when the broker died) overwrites its own file, named after its number.
for i in 1 2 3; do
  start "w$i" "$WORKER" --connect "$back" --name "w$i" --storage "$WORK/storage"
done
wait_until 10 workers_ready "$front" 3 || fail "3 workers did not join"

start client "$CLIENT" --connect "$front" --json send --count 400 --files "$CARICO_SOURCE/files" \
  --seed 11
client_pid=${PIDS[client]}
replies=$WORK/client.log
some_answered() { [ "$(grep -c '"code":200' "$replies" || true)" -ge "$1" ]; }
wait_until 20 some_answered 40 || fail "no replies before the kill"
kill -9 "${PIDS[broker]}"
wait "${PIDS[broker]}" 2>/dev/null || true
unset "PIDS[broker]"
before=$(grep -c '"code":' "$replies" || true)
[ "$before" -lt 400 ] || fail "every request was answered before the kill: nothing in flight"
sleep 1

restarted=$(date +%s%N)
start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer-2.log"
status=0
wait "$client_pid" || status=$?
finished=$(date +%s%N)
unset "PIDS[client]"
elapsed_ms=$(( (finished - restarted) / 1000000 ))
[ "$status" -eq 0 ] || fail "carico-client exited $status"

total=$(grep -c '"code":' "$replies" || true)
ok=$(grep -c '"code":200' "$replies" || true)
[ "$total" -eq 400 ] || fail "expected 400 replies, got $total"
[ "$ok" -eq 400 ] || fail "expected 400 replies 200, got $ok"
distinct=$(grep -o '"request":[0-9]*' "$replies" | sort -u | wc -l)
[ "$distinct" -eq 400 ] || fail "expected 400 distinct request numbers, got $distinct"
files=$(find "$WORK/storage" -name '*.json' | wc -l)
[ "$files" -eq 400 ] || fail "expected 400 stored files, got $files"
limit=$(( 5000 * ${CARICO_TIME_SCALE:-1} ))  # 5 s; scaled in the sanitizer build
[ "$elapsed_ms" -le "$limit" ] || fail "the client finished $elapsed_ms ms after the restart (limit $limit)"

stop broker TERM
echo "PASS: $before answered before kill -9; all 400 answered 200 (400 distinct, 400 files)" \
  "${elapsed_ms} ms after the restart"
