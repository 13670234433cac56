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
replies=$WORK/client.log
kill_mid_run broker "$replies" 40 400
sleep 1

restarted=$(date +%s%N)
start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer-2.log"
exits_ok client
elapsed_ms=$(ms_since "$restarted")

all_answered_once "$replies" 400 "$WORK/storage"
limit=$(( 5000 * ${CARICO_TIME_SCALE:-1} ))  # 5 s; scaled in the sanitizer build
[ "$elapsed_ms" -le "$limit" ] || fail "the client finished $elapsed_ms ms after the restart (limit $limit)"

stop broker TERM
echo "PASS: $before answered before kill -9; all 400 answered 200 (400 distinct, 400 files)" \
  "${elapsed_ms} ms after the restart"
