#!/usr/bin/env bash
# The journal's disk fills while the broker runs (default flags; the journal on
# a small tmpfs this test mounts, filled by a filler file):
#  - every request answered 200 is `done` in the journal;
#  - while the disk is full, new requests get 503 "journal unavailable", and
#    mmi.stats says so; the state is logged once when it begins, once when it ends;
#  - the filler deleted, requests are served again without a restart, within ~1 s;
#  - after kill -9 and a restart, nothing answered runs again: the same requests
#    sent again are answered from the journal, the store gains no file for them.
# Needs root for the mount; without it the test is skipped (exit 77) and says so.
source "$(dirname "$0")/lib.sh"

disk=$WORK/disk
mkdir -p "$disk"
if ! mount -t tmpfs -o size=8M tmpfs "$disk" 2>"$WORK/mount.err"; then
  echo "SKIP: cannot mount a tmpfs for the journal ($(cat "$WORK/mount.err")); run as root"
  exit 77
fi
# Unmounted first (lazily: the broker may still hold its files), then lib.sh's cleanup.
unmount_and_cleanup() {
  local status=$?
  umount -l "$disk" 2>/dev/null || true
  (exit "$status")
  cleanup
}
trap unmount_and_cleanup EXIT

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
journal=$disk/carico-journal.db
broker_args=(--frontend "$front" --backend "$back" --journal "$journal")

start broker "$BROKER" "${broker_args[@]}" --log "$WORK/loadbalancer-1.log"
for i in 1 2; do
  start "w$i" "$WORKER" --connect "$back" --name "w$i" --storage "$WORK/storage"
done
wait_until 10 workers_ready "$front" 2 || fail "2 workers did not join"
"$CLIENT" gen --count 50 --size 400 --out "$WORK/docs" >/dev/null

# send NAME COUNT [TIMEOUT_MS]: COUNT documents, one at a time, as client NAME
# (ids 1..COUNT), one JSON reply a line in NAME.jsonl (appended).
send() {
  "$CLIENT" --connect "$front" --client-name "$1" --timeout-ms "${3:-3000}" --retries 0 --json \
    send --count "$2" --files "$WORK/docs" --seed 1 --window 1 >>"$WORK/$1.jsonl" 2>/dev/null || true
}
count() { grep -c "$1" "$2" 2>/dev/null || true; }
files() { find "$WORK/storage" -name '*.json' | wc -l; }
stats() { "$CLIENT" --connect "$front" --timeout-ms 2000 --json stats; }

send before 30
[ "$(count '"code":200' "$WORK/before.jsonl")" -eq 30 ] || fail "before the fill: not 30 x 200"

# A slow worker joins, and six documents go at once: one of them is at w3 (about
# 2 s of work) when the disk fills, so its outcome cannot be committed: its
# reply must wait, and leave once the space is back.
start w3 "$WORKER" --connect "$back" --name w3 --storage "$WORK/storage" --work-us-per-char 20000
wait_until 10 workers_ready "$front" 3 || fail "the slow worker did not join"
"$CLIENT" --connect "$front" --client-name slow --timeout-ms 20000 --retries 0 --json \
  send --count 6 --files "$WORK/docs" --seed 4 --window 6 >"$WORK/slow.jsonl" 2>/dev/null &
PIDS[slow]=$!
at_w3() {
  "$CLIENT" --connect "$front" --timeout-ms 1000 --json workers | python3 -c '
import json, sys
text = sys.stdin.read()
workers = json.loads(text).get("workers", []) if text.strip().startswith("{") else []
sys.exit(0 if any(w.get("name") == "w3" and w.get("in_flight") == 1 for w in workers) else 1)'
}
wait_until 5 at_w3 || fail "the slow worker got nothing"
# No more work for w3 (SIGUSR1: overload): the requests after healing go to
# the quick workers, not behind the slow job (seen under ASan on a loaded host).
kill -USR1 "${PIDS[w3]}"

# Fill the disk: the filler takes every free byte.
dd if=/dev/zero of="$disk/filler" bs=64K 2>/dev/null || true
[ "$(df --output=avail -B1 "$disk" | tail -n 1)" -lt 8192 ] || fail "the filler left space"

send full 40
[ "$(count '"code":' "$WORK/slow.jsonl")" -lt 6 ] || fail "every slow reply left while the disk was full"
ok=$(count '"code":200' "$WORK/full.jsonl")
refused=$(count 'journal unavailable' "$WORK/full.jsonl")
echo "disk full: $ok answered 200, $refused refused 503 (journal unavailable) of 40"
[ "$refused" -ge 30 ] || fail "expected most of 40 requests refused while full, got $refused"
grep '"code":503' "$WORK/full.jsonl" | grep -vq 'journal unavailable' &&
  fail "a 503 for another reason while the disk was full"
stats | grep -q '"state":"unavailable"' || fail "mmi.stats does not say the journal is unavailable"

# Space again: served without a restart.
rm -f "$disk/filler"
freed=$(date +%s%N)
healed=""
for i in $(seq 1 50); do
  out=$("$CLIENT" --connect "$front" --client-name "heal-$i" --timeout-ms 1000 --retries 0 --json \
        send --count 1 --files "$WORK/docs" --seed 2 2>/dev/null || true)
  if grep -q '"code":200' <<<"$out"; then
    healed=$(( ($(date +%s%N) - freed) / 1000000 ))
    break
  fi
  sleep 0.05
done
[ -n "$healed" ] || fail "not served again within 50 tries after the space came back"
echo "served again ${healed} ms after the filler was deleted"
[ "$healed" -le 3000 ] || fail "took ${healed} ms to heal (expected about 1 s)"
stats | grep -q '"state":"ok"' || fail "mmi.stats does not say the journal is ok again"
wait "${PIDS[slow]}" || fail "the slow client failed"
unset "PIDS[slow]"
[ "$(count '"code":200' "$WORK/slow.jsonl")" -eq 6 ] || fail "the held replies: not 6 x 200"
stop w3
send after 10
[ "$(count '"code":200' "$WORK/after.jsonl")" -eq 10 ] || fail "after healing: not 10 x 200"

log=$WORK/loadbalancer-1.log
[ "$(count 'unavailable: cannot write' "$log")" -eq 1 ] || fail "the outage is not logged exactly once"
[ "$(count 'available again' "$log")" -eq 1 ] || fail "the recovery is not logged exactly once"

# Every request answered 200 is done in the journal.
"$BROKER" journal --path "$journal" --last 100000 --state done --json >"$WORK/done.jsonl" ||
  fail "carico-broker journal failed"
cat "$WORK"/before.jsonl "$WORK"/slow.jsonl "$WORK"/full.jsonl "$WORK"/after.jsonl | grep '"code":200' |
  grep -o '"request":[0-9]*' | sort -u >"$WORK/answered"
grep -o '"request":[0-9]*' "$WORK/done.jsonl" | sort -u >"$WORK/done-numbers"
missing=$(comm -23 "$WORK/answered" "$WORK/done-numbers" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing requests answered 200 are not done in the journal"

# kill -9 and restart: the same requests again run nothing twice.
kill -9 "${PIDS[broker]}"; wait "${PIDS[broker]}" 2>/dev/null || true; unset "PIDS[broker]"
files_before=$(files)
start broker "$BROKER" "${broker_args[@]}" --log "$WORK/loadbalancer-2.log"
wait_until 10 workers_ready "$front" 2 || fail "workers did not join the restarted broker"
reloaded=$(count 'reloaded from the journal' "$WORK/loadbalancer-2.log")
rm -f "$WORK/before.jsonl" "$WORK/after.jsonl"
send before 30
send after 10
"$CLIENT" --connect "$front" --client-name slow --timeout-ms 5000 --retries 0 --json \
  send --count 6 --files "$WORK/docs" --seed 4 --window 6 >"$WORK/slow-again.jsonl" 2>/dev/null || true
again=$(( $(count '"code":200' "$WORK/before.jsonl") + $(count '"code":200' "$WORK/after.jsonl") +
          $(count '"code":200' "$WORK/slow-again.jsonl") ))
[ "$again" -eq 46 ] || fail "resent after the restart: $again of 46 answered 200"
[ "$(files)" -eq "$files_before" ] ||
  fail "resent answered requests ran again: $files_before files before, $(files) after"
# The requests sent while the disk was full, again: those answered 200 then
# get the same request (from the journal); those never run then (refused, or
# expired waiting for their row) run now, once each: one new file apiece.
mv "$WORK/full.jsonl" "$WORK/full-1.jsonl"
send full 40
[ "$(count '"code":200' "$WORK/full.jsonl")" -eq 40 ] || fail "the full-disk requests again: not 40 x 200"
ran_now=$(python3 - "$WORK/full-1.jsonl" "$WORK/full.jsonl" <<'EOF2'
import json, sys
first = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
again = {r["id"]: r["request"] for r in map(json.loads, open(sys.argv[2])) if "id" in r}
answered = {r["id"]: r["request"] for r in first if r.get("code") == 200 and "id" in r}
changed = [i for i, n in answered.items() if again.get(i) != n]
if changed:
    sys.exit("answered 200 before, a new request now: ids %s" % changed)
print(sum(1 for i in again if i not in answered))
EOF2
) || fail "$ran_now"
added=$(( $(files) - files_before ))
[ "$added" -eq "$ran_now" ] || fail "$added files added for $ran_now requests run for the first time"
stop broker TERM
echo "PASS: $ok answered while full, $refused refused 503; healed in ${healed} ms;" \
  "nothing answered missing from the journal; $reloaded reloaded; after kill -9 nothing" \
  "answered ran again ($added new files, for the $ran_now requests never run before)"
