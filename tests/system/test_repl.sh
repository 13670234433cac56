#!/usr/bin/env bash
# carico-client's REPL: through a pseudo-terminal (tests/system/repl_driver.py:
# send 5 (its status line naming the broker), FTP then 3, list, workers (after
# the broker line), errors, completion, help within 80 columns, Ctrl-C clearing
# the line, Ctrl-C stopping a batch, exit), then piped (plain lines, no control
# characters, status with dates, help within 80 columns), the one-shot
# `workers` (the REPL's table) and `send` (bare names, the summary), and
# against a broker that does not answer.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport
start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer.log"
start_text_workers 2

# On a terminal. HOME is the scratch folder: the history file lands there.
HOME=$WORK timeout 50 python3 "$CARICO_SOURCE/tests/system/repl_driver.py" "$WORK/repl.transcript" \
  "$CLIENT" --connect "$front" --files "$CARICO_SOURCE/files" || fail "the REPL on a pty"
grep -q '^send\\0405$' "$WORK/.carico_history" || fail "history not saved to ~/.carico_history"

# Ctrl-D on an empty line leaves with 0.
HOME=$WORK timeout 10 python3 - "$CLIENT" "$front" <<'PY' || fail "Ctrl-D did not leave the REPL with 0"
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execve(sys.argv[1], [sys.argv[1], "--connect", sys.argv[2]], dict(os.environ, TERM="xterm"))
out = b""
while b"carico> " not in out:
    select.select([fd], [], [], 5)
    out += os.read(fd, 4096)
os.write(fd, b"\x04")
_, status = os.waitpid(pid, 0)
sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)
PY

# Piped: commands one at a time, plain lines, errors on stderr, exit status 0.
# The control-character document is sent last on purpose: history shows its title.
printf 'send 4\nsned\nsend 0\nFTP\n2\nworkers\nsend %s\nhistory 3\nhistory x\nstored 2\nstored 1 2\nstatus 1\nexit\n' \
  "$CARICO_SOURCE/files/control-chars.json" |
  "$CLIENT" --connect "$front" --files "$CARICO_SOURCE/files" >"$WORK/piped.out" 2>"$WORK/piped.err" ||
  fail "piped REPL exited non-zero"
[ "$(grep -c '^200 request=' "$WORK/piped.out")" -eq 7 ] || fail "piped: expected 7 replies 200 (4 + 2 + 1)"
grep -q '^batch 2: 2 documents' "$WORK/piped.out" || fail "piped: no summary of the FTP batch"
grep -q '^w1 ' "$WORK/piped.out" || fail "piped: no workers table"
# The REPL's workers, as carico-client workers, opens with the broker that answered.
grep -B1 '^NAME ' "$WORK/piped.out" | head -n 1 | grep -qxF "broker $front" ||
  fail "piped: workers does not name its broker first: $(grep -B1 '^NAME ' "$WORK/piped.out" | head -n 1)"
grep -q '^REQUEST  *STATE' "$WORK/piped.out" || fail "piped: no history table"
[ "$(grep -cE '^[0-9]+ +done +200 ' "$WORK/piped.out")" -eq 3 ] || fail "piped: history 3 shows 3 done rows"
grep -q "positive integer, not 'x'" "$WORK/piped.err" || fail "piped: history x is not an error"
grep -q '^REQUEST  *TITLE  *WORKER  *BYTES' "$WORK/piped.out" || fail "piped: no stored table"
grep -q "usage: stored \[N\]" "$WORK/piped.err" || fail "piped: stored 1 2 is not a usage error"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$WORK/piped.out" "$WORK/piped.err"; then
  fail "piped output holds control characters"
fi
grep -q 'carico>' "$WORK/piped.out" && fail "piped output shows a prompt"
grep -q "unknown command 'sned'. Did you mean 'send'?" "$WORK/piped.err" || fail "piped: no unknown-command error"
grep -q "N must be a positive integer, not '0'" "$WORK/piped.err" || fail "piped: no bad-number error"
# status N: the journal's times as dates, not epoch milliseconds.
grep -qE '^received +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}$' "$WORK/piped.out" ||
  fail "piped: status 1 shows no received time"
grep -qE '^completed +[0-9]{4}-[0-9-]{5} [0-9:.]{12} \(\+[0-9.]+ (us|ms|s)\)$' "$WORK/piped.out" ||
  fail "piped: status 1 shows no completed time"
grep -q '_ms ' "$WORK/piped.out" && fail "piped: status shows raw milliseconds"

# help within 80 columns, the list and one command.
printf 'help\nhelp send\n' | "$CLIENT" --connect "$front" --files "$CARICO_SOURCE/files" >"$WORK/help.out" ||
  fail "piped help failed"
grep -q '^  send N | send FILE\.\.\. .*e\.g\. send 10' "$WORK/help.out" || fail "help lacks send"
if awk 'length > 80 { found = 1 } END { exit !found }' "$WORK/help.out"; then
  fail "help wider than 80 columns: $(awk 'length > 80' "$WORK/help.out" | head -n 1)"
fi

# One table: `carico-client workers` has the REPL's columns and headings.
"$CLIENT" --connect "$front" workers >"$WORK/workers.out" || fail "carico-client workers failed"
# It opens with the broker that answered.
[ "$(head -n 1 "$WORK/workers.out")" = "broker $front" ] ||
  fail "carico-client workers does not name its broker first: $(head -n 1 "$WORK/workers.out")"
[ "$(sed -n 2p "$WORK/workers.out")" = "$(grep '^NAME ' "$WORK/piped.out")" ] ||
  fail "carico-client workers and the REPL's workers differ: $(sed -n 2p "$WORK/workers.out")"

# One-shot send: a bare name found in --files, and the REPL's summary after the replies.
(cd "$WORK" && "$CLIENT" --connect "$front" send hello.json haiku.json --files "$CARICO_SOURCE/files") \
  >"$WORK/oneshot.out" || fail "send hello.json haiku.json --files failed"
[ "$(grep -c '^200 request=' "$WORK/oneshot.out")" -eq 2 ] || fail "one-shot send: $(cat "$WORK/oneshot.out")"
grep -q '^batch: 2 documents in .*: 2 ok, 0 failed$' "$WORK/oneshot.out" || fail "one-shot send: no summary"
grep -qE '^  latency +p50 ' "$WORK/oneshot.out" || fail "one-shot send: no latency line"
(cd "$WORK" && "$CLIENT" --connect "$front" send nothing.json --files "$CARICO_SOURCE/files") \
  >/dev/null 2>"$WORK/nothing.err" && fail "send of a missing file exited 0"
grep -q "no such file: nothing.json (looked in . and $CARICO_SOURCE/files/)" "$WORK/nothing.err" ||
  fail "send of a missing file: $(cat "$WORK/nothing.err")"

# A broker that does not answer: said within the timeout, and the REPL goes on.
dead=tcp://127.0.0.1:$(free_port)
start_s=$(date +%s)
printf 'workers\nlist\nexit\n' |
  "$CLIENT" --connect "$dead" --timeout-ms 500 --files "$CARICO_SOURCE/files" >"$WORK/dead.out" 2>"$WORK/dead.err" ||
  fail "REPL against a dead broker exited non-zero"
[ $(( $(date +%s) - start_s )) -le 5 ] || fail "the dead broker took too long to report"
grep -q "did not answer mmi.workers within 500 ms" "$WORK/dead.err" || fail "no 'did not answer' error"
grep -q '^hello\.json ' "$WORK/dead.out" || fail "the REPL did not go on after the timeout"

# A missing folder is an error, not a crash.
printf 'list\nsend 3\nexit\n' | "$CLIENT" --connect "$front" --files "$WORK/no-such-folder" \
  >/dev/null 2>"$WORK/nofolder.err" || fail "REPL with a missing folder exited non-zero"
[ "$(grep -c 'no-such-folder' "$WORK/nofolder.err")" -eq 2 ] || fail "missing folder not reported twice"

echo "PASS: REPL on a pty, piped, against a dead broker, with a missing folder"
