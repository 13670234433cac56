#!/usr/bin/env bash
# carico-client send stops on SIGINT/SIGTERM: nothing more is sent, replies in
# flight get at most 2 s, then the summary with the interrupted count and exit
# 128 + signal (130 for Ctrl-C), instead of dying silently or running on.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/broker.log"
# ~200 characters at 4 ms each: about 0.8 s a document, one at a time; so with
# 4 in flight some are still unanswered when the 2 s grace ends.
start w1 "$WORKER" --connect "$back" --name w1 --capacity 1 --work-us-per-char 4000 \
  --storage "$WORK/storage"
wait_until 10 workers_ready "$front" 1 || fail "the worker did not join"

mkdir -p "$WORK/docs"
content=$(printf 'lorem ipsum %.0s' $(seq 16))
for i in 1 2 3; do
  printf '{"title": "slow %s", "content": "%s"}\n' "$i" "$content" >"$WORK/docs/slow-$i.json"
done

# interrupt SIGNAL CODE: 100 documents (~80 s of work), SIGNAL after the first
# reply; the client must exit with CODE within 6 s and print the summary.
interrupt() {
  local sig=$1 code=$2
  local out=$WORK/replies-$sig.txt err=$WORK/client-$sig.log
  "$CLIENT" --connect "$front" send --count 100 --files "$WORK/docs" --window 4 >"$out" 2>"$err" &
  local pid=$!
  PIDS[client]=$pid
  wait_until 20 test -s "$out" || fail "$sig: no reply within 20 s"
  kill "-$sig" "$pid"
  local deadline=$(( $(date +%s) + 6 ))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$sig: carico-client still running 6 s after the signal"
    sleep 0.1
  done
  local rc=0
  wait "$pid" || rc=$?
  unset "PIDS[client]"
  [ "$rc" -eq "$code" ] || { cat "$err"; fail "$sig: exit code $rc, expected $code"; }
  local answered
  answered=$(grep -c '^200 ' "$out" || true)
  [ "$answered" -ge 1 ] && [ "$answered" -lt 100 ] || fail "$sig: $answered replies printed"
  # The summary counts the replies printed; the rest (never sent, or still in
  # flight after the grace) are interrupted.
  grep -q "^carico-client: interrupted by SIG$sig: $answered of 100 documents answered 200, 0 not, $((100 - answered)) interrupted" "$err" \
    || { cat "$err"; fail "$sig: no summary line counting the $answered printed replies"; }
  echo "$sig: $(grep interrupted "$err")"
}

interrupt INT 130
interrupt TERM 143

stop w1 TERM
stop broker TERM
echo "PASS: send stops on SIGINT (130) and SIGTERM (143) with a summary"
