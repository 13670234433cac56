#!/usr/bin/env bash
# kill -9 the broker while 500 documents are in flight, restart it on the same
# journal and ports: the client (retrying with the same client name and ids)
# ends with 500 distinct requests answered 200, the workers' store holds 500
# files and none twice, and every request answered 200 before the kill is
# `done` in the journal afterwards.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
journal=$WORK/journal.db
broker_args=(--frontend "$front" --backend "$back" --journal "$journal" --heartbeat-ms 200)

start broker "$BROKER" "${broker_args[@]}" --log "$WORK/loadbalancer-1.log"
# One store shared by the three workers: a request run again after the restart
# (its outcome was not in the journal yet) may go to another worker, and must
# overwrite its file (named after the request number), not add a second one.
for i in 1 2 3; do
  start "w$i" "$WORKER" --connect "$back" --name "w$i" --storage "$WORK/storage" \
    --heartbeat-ms 200
done
wait_until 10 workers_ready "$front" 3 || fail "3 workers did not join"

# A timeout longer than the restart takes (a timeout while the connection is
# down is final: the client then gives up rather than wait on).
start client "$CLIENT" --connect "$front" --client-name journal-test \
  --timeout-ms $(( 3000 * ${CARICO_TIME_SCALE:-1} )) \
  --retries 8 --json send --count 500 --files "$CARICO_SOURCE/files" --seed 7 --window 32
client_pid=${PIDS[client]}
# The client prints replies as they arrive (flushed per batch) to client.log.
replies=$WORK/client.log

some_answered() { [ "$(grep -c '"code":200' "$replies" || true)" -ge "$1" ]; }
wait_until 20 some_answered 60 || fail "no replies before the kill"
kill -9 "${PIDS[broker]}"
wait "${PIDS[broker]}" 2>/dev/null || true
unset "PIDS[broker]"
cp "$replies" "$WORK/before-kill.jsonl"
before=$(grep -c '"code":200' "$WORK/before-kill.jsonl" || true)
[ "$before" -lt 500 ] || fail "every request was answered before the kill: nothing in flight"
echo "killed the broker after $before replies"

start broker "$BROKER" "${broker_args[@]}" --log "$WORK/loadbalancer-2.log"
status=0
wait "$client_pid" || status=$?
unset "PIDS[client]"
[ "$status" -eq 0 ] || fail "carico-client exited $status"

total=$(grep -c '"code":' "$replies" || true)
ok=$(grep -c '"code":200' "$replies" || true)
[ "$total" -eq 500 ] || fail "expected 500 replies, got $total"
[ "$ok" -eq 500 ] || fail "expected 500 replies 200, got $ok"
distinct=$(grep -o '"request":[0-9]*' "$replies" | sort -u | wc -l)
[ "$distinct" -eq 500 ] || fail "expected 500 distinct request numbers, got $distinct"

files=$(find "$WORK/storage" -name '*.json' | wc -l)
[ "$files" -eq 500 ] || fail "expected 500 stored files, got $files"
numbers=$(find "$WORK/storage" -name '*.json' -printf '%f\n' | cut -d- -f1 | sort -u | wc -l)
[ "$numbers" -eq 500 ] || fail "some request stored twice: $files files for $numbers requests"

# Every request answered 200 before the kill is in the journal as done.
"$BROKER" journal --path "$journal" --last 100000 --state done --json >"$WORK/done.jsonl" ||
  fail "carico-broker journal failed"
grep -o '"request":[0-9]*' "$WORK/done.jsonl" | sort -u >"$WORK/done-numbers"
grep '"code":200' "$WORK/before-kill.jsonl" | grep -o '"request":[0-9]*' | sort -u \
  >"$WORK/before-numbers"
missing=$(comm -23 "$WORK/before-numbers" "$WORK/done-numbers" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing requests answered before the kill are not done in the journal"
reloaded=$(grep -c "reloaded from the journal" "$WORK/loadbalancer-2.log" || true)
resent=$(grep -c "sent again by" "$WORK/loadbalancer-2.log" || true)

stop broker TERM
echo "PASS: $before answered before kill -9, $reloaded reloaded, $resent resends;" \
  "500 distinct requests answered 200, 500 files, none twice"
