#!/usr/bin/env bash
# A broker, 3 workers and carico-client over tcp: 30 documents go round robin,
# 10 per worker, every one stored.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer.log"
start_text_workers 3

"$CLIENT" --connect "$front" --json send --count 30 --files "$CARICO_SOURCE/files" --window 1 \
  >"$WORK/replies.jsonl" || fail "carico-client send exited non-zero"

[ "$(wc -l <"$WORK/replies.jsonl")" -eq 30 ] || fail "expected 30 replies"
[ "$(grep -c '"code":200' "$WORK/replies.jsonl")" -eq 30 ] || fail "not every reply is 200"
for i in 1 2 3; do
  n=$(grep -c "\"worker\":\"w$i\"" "$WORK/replies.jsonl" || true)
  [ "$n" -eq 10 ] || fail "w$i answered $n requests, expected 10"
  files=$(find "$WORK/storage/w$i" -name '*.json' | wc -l)
  [ "$files" -eq 10 ] || fail "w$i stored $files files, expected 10"
done
# The routing log's thread writes a line just after its reply went out.
wait_until 5 grep -q "done code=200 service=text worker=w1" "$WORK/loadbalancer.log" ||
  fail "routing decisions not logged"

# Workers drain on SIGTERM and leave the ring; the broker exits 0 on SIGTERM.
stop w3 TERM
wait_until 5 workers_ready "$front" 2 || fail "w3 did not leave the ring"
stop broker TERM
echo "PASS: 30 documents, 10 per worker, all stored"
