#!/usr/bin/env bash
# The broker as shipped (journal and logs at their defaults) answers 200 keyed
# echo requests of a 1 MiB document, in two halves: each answered 200, and the
# second half does not raise the broker's peak resident memory by more than
# 40 MiB. The replies it keeps for resends are bounded in bytes (64 MiB) as
# well as in count (100,000); before that bound every reply was kept, and the
# peak rose by the ~100 MiB the second half answered. Then, a pause in the
# traffic gives freed memory back to the system.
source "$(dirname "$0")/lib.sh"

n=200
doc=$CARICO_SOURCE/files/grande-1mib.json
fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
# ASan keeps freed memory in a quarantine (256 MiB by default): a small one
# here, so that the sanitizer build measures what the broker itself holds.
ASAN_OPTIONS="quarantine_size_mb=8:${ASAN_OPTIONS:-}" \
  start broker "$BROKER" --frontend "$front" --backend "$back"
start w1 "$WORKER" --connect "$back" --name w1 --service echo --log-level warn
wait_until 10 workers_ready "$front" 1 || fail "the echo worker did not join"

peak_mib() { echo $(( $(awk '/^VmHWM:/ {print $2}' "/proc/${PIDS[broker]}/status") / 1024 )); }
# send_all K: K more keyed requests of the document, each answered 200.
send_all() {
  local files=() i
  for (( i = 0; i < $1; i++ )); do files+=("$doc"); done
  "$CLIENT" --connect "$front" --json send --service echo --window 4 "${files[@]}" \
    >"$WORK/sent.jsonl" || fail "carico-client send exited non-zero"
  [ "$(grep -c '"code":200' "$WORK/sent.jsonl")" -eq "$1" ] ||
    fail "expected $1 replies 200, got $(grep -c '"code":200' "$WORK/sent.jsonl")"
}

# The first half fills the 64 MiB of kept replies; the second half must not
# raise the peak by much (unbounded, it rose by the ~100 MiB it answered). A
# growth, not an absolute figure: the sanitizer build's allocator has its own.
send_all $(( n / 2 ))
half=$(peak_mib)
send_all $(( n / 2 ))
full=$(peak_mib)
echo "broker peak RSS: $half MiB after $(( n / 2 )) replies of 1 MiB, $full MiB after $n"
[ $(( full - half )) -lt 40 ] ||
  fail "broker peak RSS grew from $half to $full MiB over the last $(( n / 2 )) replies: the kept replies are not bounded"

# Traffic over, the broker gives back what its allocator kept (allocator.hpp:
# jemalloc keeps freed pages until the broker releases them, a second into a
# pause): its resident memory falls below the peak. The sanitizer build's
# allocator has no such release.
if [ "${CARICO_ALLOCATOR:-}" = jemalloc ]; then
  rss_mib() { echo $(( $(awk '/^VmRSS:/ {print $2}' "/proc/${PIDS[broker]}/status") / 1024 )); }
  released() { [ "$(rss_mib)" -le $(( full - 8 )) ]; }
  wait_until 6 released ||
    fail "broker RSS still $(rss_mib) MiB 6 s after the traffic stopped (peak $full MiB): freed memory not released"
  echo "broker RSS after the pause: $(rss_mib) MiB"
fi
stop broker INT
