#!/usr/bin/env bash
# SIGTERM stops the broker cleanly with its default flags: new requests are
# answered 503 "shutting down", a request a worker holds is finished and
# answered, the broker exits 0, and a request still queued is reloaded from the
# journal at the next start and served then.
source "$(dirname "$0")/lib.sh"

front=$(free_port)
back=$(free_port)
FE=tcp://127.0.0.1:$front
BE=tcp://127.0.0.1:$back
scale=${CARICO_TIME_SCALE:-1}
# The default grace (5 s), scaled in the sanitizer build as the work below is.
start broker "$BROKER" --frontend "$FE" --backend "$BE" --shutdown-grace-ms $(( 5000 * scale ))
# A slow worker: the document below takes it about 3 s, well inside the 5 s grace.
start w1 "$WORKER" --connect "$BE" --name w1 --storage "$WORK/store" --work-us-per-char 30000
wait_until 10 workers_ready "$FE" 1 || fail "worker did not join"

doc=$WORK/slow.json
python3 -c "import json; print(json.dumps({'title': 'slow', 'content': 'a' * (100 * $scale)}))" >"$doc"
queued=$WORK/queued.json
python3 -c 'import json; print(json.dumps({"title": "queued", "content": "b"}))' >"$queued"

# One request in the worker's hands, one waiting behind it (capacity 1).
"$CLIENT" --connect "$FE" --timeout-ms $(( 8000 * scale )) --retries 0 --json send "$doc" >"$WORK/held.out" 2>&1 &
held=$!
held_one() { "$CLIENT" --connect "$FE" --timeout-ms 2000 --json stats | grep -q '"in_flight":1'; }
wait_until 10 held_one || fail "the worker never got the first request"
# Its timeout_ms (20 s) outlives the restart below; its client is stopped first.
"$CLIENT" --connect "$FE" --timeout-ms 20000 --retries 0 --json send "$queued" >"$WORK/queued.out" 2>&1 &
waiting=$!
queued_one() { "$CLIENT" --connect "$FE" --timeout-ms 2000 --json stats | grep -q '"queued":1'; }
wait_until 10 queued_one || fail "the second request never reached the queue"

pid=${PIDS[broker]}
kill -TERM "$pid"
sleep 0.2
# While it finishes, a new request is refused at once.
set +e
"$CLIENT" --connect "$FE" --timeout-ms 3000 --retries 0 --json send "$queued" >"$WORK/refused.out" 2>&1
set -e
grep -q '"code":503' "$WORK/refused.out" || fail "no 503 during the stop: $(cat "$WORK/refused.out")"
grep -q 'shutting down' "$WORK/refused.out" || fail "503 without its reason: $(cat "$WORK/refused.out")"

set +e
wait "$pid"
status=$?
set -e
unset "PIDS[broker]"
[ "$status" -eq 0 ] || fail "broker exited $status, not 0"
wait "$held" || fail "the held request was not answered 200: $(cat "$WORK/held.out")"
grep -q '"code":200' "$WORK/held.out" || fail "held request: $(cat "$WORK/held.out")"
grep -q "shutting down" "$WORK/loadbalancer.log" || fail "no shutdown line in loadbalancer.log"
kill "$waiting" 2>/dev/null || true  # its client leaves: the broker stopped before serving it
wait "$waiting" 2>/dev/null || true

# The queued request is in the journal, unfinished, and runs after a restart.
start broker2 "$BROKER" --frontend "$FE" --backend "$BE"
wait_until 15 bash -c "ls '$WORK/store' | grep -q queued" || fail "the queued request was not served after the restart"
echo "PASS clean stop"
