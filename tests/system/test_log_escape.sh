#!/usr/bin/env bash
# A title with control characters (files/control-chars.json: tab, newline,
# \u0001, bell) cannot split or forge log lines: exactly one line about it in
# loadbalancer.log and in the worker's log, every line of both starting with
# its timestamp, no byte below 0x20 but the newlines; the journal's table
# shows it on one row.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport

start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer.log"
start worker "$WORKER" --connect "$back" --name w1 --storage "$WORK/storage" --log "$WORK/w1.log"
wait_until 10 workers_ready "$front" 1 || fail "the worker did not join"

"$CLIENT" --connect "$front" send control-chars.json --files "$CARICO_SOURCE/files" \
  >"$WORK/send.txt" || fail "send failed: $(cat "$WORK/send.txt")"
stop worker TERM
stop broker TERM  # flushes both logs

for log in loadbalancer.log w1.log; do
  f=$WORK/$log
  # The title's words, whichever escape a line uses (\t or \x09): one line.
  n=$(grep -c 'tab.*here.*newline.*bell' "$f" || true)
  [ "$n" -eq 1 ] || fail "$log: $n lines carry the title, expected 1"
  ! LC_ALL=C grep -q $'[\x01-\x08\x09\x0b-\x1f\x7f]' "$f" || fail "$log: a raw control byte"
  bad=$(LC_ALL=C grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} ' "$f" || true)
  [ "$bad" -eq 0 ] || fail "$log: $bad lines do not start with a timestamp"
done

"$BROKER" journal --path "$WORK/carico-journal.db" >"$WORK/journal.txt" ||
  fail "carico-broker journal failed"
! LC_ALL=C grep -q $'[\x01-\x08\x09\x0b-\x1f\x7f]' "$WORK/journal.txt" ||
  fail "the journal table has a raw control byte"
[ "$(wc -l <"$WORK/journal.txt")" -eq 2 ] || fail "the journal table is not a header and one row"
# The title is in the row's RESULT (the worker's result map, as JSON text).
grep -q 'tab\\there\\nnewline\\u0001bell\\u0007' "$WORK/journal.txt" ||
  fail "the journal table does not show the escaped title"
echo "PASS: one escaped line per log, every line timestamped, the journal row on one line"
