#!/usr/bin/env bash
# 40,000 small requests through a broker with --journal-max-bytes 8MiB: the
# journal's files (the database, its WAL and its shared-memory index), sampled
# every 50 ms during the run, never take more than 1.25 x 8 MiB; every request
# is answered 200; the oldest finished requests were pruned, the newest kept.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
journal=$WORK/carico-journal.db
bound=$(( 8 << 20 ))
requests=40000

start broker "$BROKER" --frontend "$front" --backend "$back" --journal "$journal" \
  --journal-max-bytes 8MiB --log "$WORK/loadbalancer.log" --log-level warn --console-level warn
start w1 "$WORKER" --connect "$back" --name w1 --service echo --log-level warn
wait_until 10 workers_ready "$front" 1 || fail "the echo worker did not join"
"$CLIENT" gen --count 100 --size 300 --out "$WORK/docs" >/dev/null

# The journal's size on disk, every 50 ms, the largest in max-bytes.
sample() {
  local most=0 size f
  while :; do
    size=0
    for f in "$journal" "$journal-wal" "$journal-shm"; do
      [ -f "$f" ] && size=$(( size + $(stat -c %s "$f" 2>/dev/null || echo 0) ))
    done
    [ "$size" -gt "$most" ] && { most=$size; echo "$most" >"$WORK/max-bytes"; }
    sleep 0.05
  done
}
sample &
PIDS[sampler]=$!

began=$(date +%s%N)
"$CLIENT" --connect "$front" --client-name bound --timeout-ms 30000 \
  send --count "$requests" --service echo --files "$WORK/docs" --seed 3 --window 200 \
  >"$WORK/client.out" 2>"$WORK/client.err" || fail "carico-client failed: $(tail -n 3 "$WORK/client.err")"
took=$(( ($(date +%s%N) - began) / 1000000 ))
sleep 0.2  # the last commits and a last sample
stop sampler KILL

stats=$("$CLIENT" --connect "$front" --timeout-ms 2000 --json stats)
done_count=$(grep -o '"done":[0-9]*' <<<"$stats" | head -n 1 | cut -d: -f2)
[ "$done_count" -eq "$requests" ] || fail "expected $requests answered 200, mmi.stats says $done_count"
most=$(cat "$WORK/max-bytes")
echo "$requests requests in $took ms; the journal's files took at most $most bytes (bound $bound)"
[ "$most" -le $(( bound * 5 / 4 )) ] || fail "the journal took $most bytes, over 1.25 x $bound"

# Pruned oldest first: the newest request is there, the first is gone.
"$BROKER" journal --path "$journal" --last 1000000 --json >"$WORK/rows.jsonl" ||
  fail "carico-broker journal failed"
rows=$(wc -l <"$WORK/rows.jsonl")
[ "$rows" -lt "$requests" ] || fail "nothing was pruned ($rows rows)"
newest=$(head -n 1 "$WORK/rows.jsonl" | grep -o '"request":[0-9]*' | cut -d: -f2)
oldest=$(tail -n 1 "$WORK/rows.jsonl" | grep -o '"request":[0-9]*' | cut -d: -f2)
[ "$newest" -ge "$requests" ] || fail "the newest request ($newest) is not in the journal"
[ "$oldest" -gt 1 ] || fail "the oldest request is still there"
grep -q '"state":"queued"\|"state":"dispatched"' "$WORK/rows.jsonl" && fail "unfinished rows left"
stop broker TERM
echo "PASS: $requests x 200 in $took ms; at most $most bytes on disk for a bound of $bound;" \
  "$rows rows kept (requests $oldest to $newest)"
