#!/usr/bin/env bash
# A damaged journal: `carico-broker journal --path` says so and exits non-zero,
# for a file that is not SQLite and for a real journal with pages overwritten;
# the broker refuses to start on either, saying why. A sound journal is printed.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport
journal=$WORK/carico-journal.db
start broker "$BROKER" --frontend "$front" --backend "tcp://127.0.0.1:$bport" \
  --journal "$journal" --log ""
wait_until 10 "$CLIENT" --connect "$front" --timeout-ms 500 stats || fail "the broker did not answer"
stop broker TERM
"$BROKER" journal --path "$journal" >"$WORK/sound.out" 2>&1 || fail "a sound journal: $(cat "$WORK/sound.out")"

# expect_refused FILE WORDS: `journal --path FILE` exits 1 naming FILE and WORDS; so does a start.
expect_refused() {
  local status=0
  "$BROKER" journal --path "$1" >"$WORK/report.out" 2>"$WORK/report.err" || status=$?
  [ "$status" -eq 1 ] || fail "journal --path $1 exited $status, expected 1"
  [ ! -s "$WORK/report.out" ] || fail "journal --path $1 printed rows: $(head -n 2 "$WORK/report.out")"
  grep -q "$1" "$WORK/report.err" && grep -q "$2" "$WORK/report.err" ||
    fail "journal --path $1 said: $(cat "$WORK/report.err")"
  status=0
  timeout 10 "$BROKER" --frontend "$front" --backend "tcp://127.0.0.1:$bport" --journal "$1" \
    --log "" >"$WORK/start.err" 2>&1 || status=$?
  [ "$status" -eq 1 ] || fail "the broker on $1 exited $status, expected 1"
  grep -q "$2" "$WORK/start.err" || fail "the broker on $1 said: $(cat "$WORK/start.err")"
}

head -c 20000 /dev/urandom >"$WORK/junk.db"
expect_refused "$WORK/junk.db" "not a usable SQLite database"

# Pages 2 to 4 of a real journal overwritten (its header, page 1, intact).
cp "$journal" "$WORK/damaged.db"
dd if=/dev/urandom of="$WORK/damaged.db" bs=4096 seek=1 count=3 conv=notrunc 2>/dev/null
expect_refused "$WORK/damaged.db" "integrity check\|corrupt\|malformed"
echo "PASS: junk and damaged journals are reported (exit 1) by journal --path and at start"
