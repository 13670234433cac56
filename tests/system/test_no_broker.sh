#!/usr/bin/env bash
# No broker at --connect: each carico-client command says so within about 2 s
# (not after its 10 s timeout) and exits non-zero.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
endpoint=tcp://127.0.0.1:$port
expected="no broker at $endpoint: nothing answered in 2 s"

# check NAME ARGS...: runs carico-client ARGS, wants exit != 0 within 3.5 s and
# the message on stderr or stdout.
check() {
  local name=$1; shift
  local t0 t1 status=0
  t0=$(date +%s%N)
  "$CLIENT" --connect "$endpoint" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || status=$?
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  [ "$status" -ne 0 ] || fail "$name: exit 0 with no broker"
  # The client gives up at 2 s; the rest is process start and exit, which the
  # sanitizer build (-O0, ASan) slows down.
  [ "$ms" -le 6000 ] || fail "$name: took $ms ms (limit 6000)"
  grep -qF "$expected" "$WORK/$name.out" "$WORK/$name.err" ||
    fail "$name: no '$expected' in its output: $(cat "$WORK/$name.err" "$WORK/$name.out" | head -5)"
  echo "$name: exit $status after $ms ms"
}

check stats stats
check workers workers
check send send --count 200 --files "$CARICO_SOURCE/files"
# Every one of the 200 documents is reported, none as a timeout.
[ "$(grep -c "503 error=\"$expected\"" "$WORK/send.out")" -eq 200 ] ||
  fail "send: not every document reported the missing broker"
echo "PASS: stats, workers and send each said '$expected' within 3.5 s"
