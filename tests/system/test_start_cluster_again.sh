#!/usr/bin/env bash
# scripts/start_cluster.sh as a user lives with it, on a copy of the script in a
# scratch source tree (its default run dir is that tree's run/, not the real
# one): --help is the header only; status and stop before any start create no
# directory; started from another directory, the run dir is still the tree's
# run/ and the banner's commands work as printed; add-worker picks the first
# free name whatever old logs say; stopped (from yet another directory) while a
# client is connected, which leaves the broker's side in TIME-WAIT, it starts
# again at once on the same ports.
source "$(dirname "$0")/lib.sh"

export CARICO_NO_BUILD=1 CARICO_BIN  # the binaries of $CARICO_BIN, as built
tree=$WORK/tree
mkdir -p "$tree/scripts" "$WORK/elsewhere" "$WORK/another"
cp "$CARICO_SOURCE/scripts/start_cluster.sh" "$tree/scripts/"
ln -s "$CARICO_SOURCE/files" "$tree/files"
script=$tree/scripts/start_cluster.sh
run=$tree/run
fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport
# Whatever happens, the cluster is stopped (by the script, by PID), then lib.sh cleans up.
trap 'rc=$?; [ -f "$run/cluster.env" ] && "$script" stop >/dev/null 2>&1; (exit $rc); cleanup' EXIT

# --help: the header comment, nothing of the code after it.
"$script" --help >"$WORK/help.out" || fail "--help exited non-zero"
grep -q "add-worker" "$WORK/help.out" || fail "--help does not list the subcommands"
grep -q "set -euo" "$WORK/help.out" && fail "--help shows code: $(tail -n 2 "$WORK/help.out")"

# Read-only subcommands with no cluster: a clear answer, no directory made.
if (cd "$WORK/elsewhere" && "$script" status) >"$WORK/status0.out" 2>&1; then
  fail "status without a cluster exited 0"
fi
grep -q "no cluster in $run" "$WORK/status0.out" || fail "status: $(cat "$WORK/status0.out")"
(cd "$WORK/elsewhere" && "$script" stop) >"$WORK/stop0.out" 2>&1 || fail "stop without a cluster failed"
grep -q "nothing was running in $run" "$WORK/stop0.out" || fail "stop: $(cat "$WORK/stop0.out")"
(cd "$WORK/elsewhere" && "$script" add-worker) >/dev/null 2>&1 && fail "add-worker without a cluster exited 0"
[ ! -e "$run" ] || fail "a read-only subcommand created $run"
[ -z "$(ls -A "$WORK/elsewhere")" ] || fail "a read-only subcommand wrote into the current directory"

# Started from another directory: the run dir is the tree's run/.
(cd "$WORK/elsewhere" && "$script" --no-client --workers 2 --frontend-port "$fport" --backend-port "$bport") \
  >"$WORK/start.out" 2>&1 || fail "start from another directory failed: $(cat "$WORK/start.out")"
[ "$(ls "$run"/pids/*.pid | wc -l)" -eq 3 ] || fail "expected 3 pid files in $run/pids"
[ -z "$(ls -A "$WORK/elsewhere")" ] || fail "start wrote into the current directory"
# The banner's commands, run as printed from where it was printed.
banner() { sed -n "s/^  $1  *//p" "$WORK/start.out"; }
status_cmd=$(banner "what runs")
[ -n "$status_cmd" ] || fail "the banner has no status command: $(cat "$WORK/start.out")"
(cd "$WORK/elsewhere" && eval "$status_cmd") >"$WORK/status1.out" 2>&1 ||
  fail "'$status_cmd' as printed failed: $(cat "$WORK/status1.out")"
[ "$(grep -c ' running$' "$WORK/status1.out")" -eq 3 ] || fail "status: $(cat "$WORK/status1.out")"

# A log left by an earlier run does not take a name: w3 is free.
touch "$run/logs/w3.log" "$run/logs/w4.log"
add_cmd=$(banner "more workers")
(cd "$WORK/elsewhere" && eval "$add_cmd") >"$WORK/add.out" 2>&1 || fail "'$add_cmd' failed: $(cat "$WORK/add.out")"
grep -q "^worker w3 joined" "$WORK/add.out" || fail "add-worker: $(cat "$WORK/add.out"), expected w3"

# A client that stays connected: a piped REPL waiting for more input on a FIFO
# (opened read-write here, so that neither end blocks and input never ends).
mkfifo "$WORK/client.in"
exec 3<>"$WORK/client.in"
# (Not lib.sh's start: a background job's stdin would be /dev/null.)
"$CARICO_BIN/client/carico-client" --connect "$front" <&3 >"$WORK/client.log" 2>&1 &
PIDS[client]=$!
echo workers >&3
wait_until 10 grep -q '^w3 ' "$WORK/client.log" || fail "the connected client did not list w3"

# stop from yet another directory, with the client still connected.
stop_cmd=$(banner "stop it")
(cd "$WORK/another" && eval "$stop_cmd") >"$WORK/stop.out" 2>&1 || fail "'$stop_cmd' failed: $(cat "$WORK/stop.out")"
grep -q "^stopped: broker ([0-9]*) w1 ([0-9]*) w2 ([0-9]*) w3 ([0-9]*)" "$WORK/stop.out" ||
  fail "stop from another directory: $(cat "$WORK/stop.out")"
# The broker's end of the client's connection waits in TIME-WAIT: a port check
# that binds without SO_REUSEADDR would call the port taken for a minute.
[ -n "$(ss -Htan state time-wait "( sport = :$fport )")" ] ||
  fail "no TIME-WAIT on port $fport after stop: the test would prove nothing"

# ... and started again at once, on the same ports.
(cd "$WORK/another" && "$script" --no-client --workers 1 --frontend-port "$fport" --backend-port "$bport") \
  >"$WORK/again.out" 2>&1 || fail "start right after stop failed: $(cat "$WORK/again.out")"
grep -q "carico is running: a broker and 1 worker(s) (w1)" "$WORK/again.out" || fail "again: $(cat "$WORK/again.out")"
"$script" stop >"$WORK/stop2.out" || fail "the second stop failed"
grep -q "^stopped: broker" "$WORK/stop2.out" || fail "second stop: $(cat "$WORK/stop2.out")"
stop client
echo "PASS: start_cluster.sh: --help, read-only subcommands, run dir from the script, banner commands, names, restart through TIME-WAIT"
