#!/usr/bin/env bash
# scripts/start_cluster.sh end to end, on free ports with its own run dir: a port in
# use is refused before anything starts; 3 workers + add-worker a 4th; 40 documents
# reach every worker; kill -9 of a worker while 200 are in flight loses none and
# stores none twice; `stop` leaves no process behind.
source "$(dirname "$0")/lib.sh"

SCRIPT=$CARICO_SOURCE/scripts/start_cluster.sh
export CARICO_NO_BUILD=1  # the binaries of $CARICO_BIN, as built
run=$WORK/run
fport=$(free_port); bport=$(free_port); hport=$(free_port)
front=tcp://127.0.0.1:$fport
cluster() { "$SCRIPT" "$@" --run-dir "$run"; }
# Whatever happens, the cluster is stopped (by the script, by PID), then lib.sh cleans up.
trap 'rc=$?; [ -f "$run/cluster.env" ] && cluster stop >/dev/null 2>&1; (exit $rc); cleanup' EXIT

# running PID: alive and not a zombie.
running() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat; stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }; [ "${stat%% *}" != Z ]
}

# A port in use: a clear error, and nothing started.
start holder python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$bport)); s.listen(); time.sleep(60)"
wait_until 5 python3 -c "import socket; socket.create_connection(('127.0.0.1',$bport)).close()" || fail "holder did not listen"
if cluster --no-client --frontend-port "$fport" --backend-port "$bport" 2>"$WORK/busy.err"; then
  fail "started although port $bport is in use"
fi
grep -q "port $bport on 127.0.0.1 is already in use" "$WORK/busy.err" || fail "no clear port-in-use error"
[ -z "$(ls "$run/pids" 2>/dev/null)" ] || fail "pid files left by the refused start"
pgrep -f -- "--frontend tcp://127.0.0.1:$fport" >/dev/null && fail "a broker started although the port was taken"
stop holder

# Documents that take a while: about 2000 characters each, 20 us per character.
"$CLIENT" gen --count 60 --size 2000 --out "$WORK/corpus" >/dev/null || fail "gen"
[ "$(find "$WORK/corpus" -name '*.json' | wc -l)" -eq 60 ] || fail "gen did not write 60 documents"

cluster --no-client --workers 3 --frontend-port "$fport" --backend-port "$bport" --http-port "$hport" --work-us-per-char 20 \
  >"$WORK/start.out" || fail "start_cluster.sh --no-client failed"
grep -q "clients connect to   tcp://127.0.0.1:$fport" "$WORK/start.out" || fail "start did not say where"
grep -q "dashboard            http://127.0.0.1:$hport/" "$WORK/start.out" || fail "start did not print the dashboard's URL"
python3 -c "import urllib.request; assert urllib.request.urlopen('http://127.0.0.1:$hport/healthz', timeout=5).status == 200" ||
  fail "the dashboard's port does not answer /healthz"
[ "$(ls "$run"/pids/*.pid | wc -l)" -eq 4 ] || fail "expected 4 pid files (broker + 3 workers)"

cluster add-worker >"$WORK/add.out" || fail "add-worker failed"
grep -q "worker w4 joined" "$WORK/add.out" || fail "add-worker did not report w4"
cluster status >"$WORK/status.out" || fail "status failed"
[ "$(grep -c ' running$' "$WORK/status.out")" -eq 5 ] || fail "status: expected 5 processes running"

# 40 documents: all 200, every one of the 4 workers got work.
"$CLIENT" --connect "$front" send --count 40 --files "$WORK/corpus" --json >"$WORK/forty.jsonl" ||
  fail "send --count 40 failed"
[ "$(grep -c '"code":200' "$WORK/forty.jsonl")" -eq 40 ] || fail "not all 40 replies are 200"
for w in w1 w2 w3 w4; do
  grep -q "\"worker\":\"$w\"" "$WORK/forty.jsonl" || fail "$w got no work"
done

# 200 documents; kill -9 w2 while they are in flight.
victim=$(cat "$run/pids/worker-w2.pid")
start send200 "$CLIENT" --connect "$front" --timeout-ms 30000 send --count 200 --window 200 \
  --files "$WORK/corpus" --json
replies() { [ "$(wc -l <"$WORK/send200.log")" -ge "$1" ]; }
wait_until 20 replies 20 || fail "the 200 did not start flowing"
kill -9 "$victim"
wait "${PIDS[send200]}" || fail "send --count 200 exited non-zero after kill -9"
unset "PIDS[send200]"
grep -q '^{' "$WORK/send200.log" || fail "no replies"
[ "$(grep -c '"code":200' "$WORK/send200.log")" -eq 200 ] || fail "not all 200 replies are 200"

# Every reply's document is in the cluster's store, exactly once: a request the
# killed worker held was re-dispatched and overwrote its own file.
python3 - "$WORK/send200.log" "$run/storage" <<'PY' || fail "storage check"
import json, os, sys, collections
replies = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
storage = sys.argv[2]
assert len(replies) == 200, len(replies)
files = [f for f in os.listdir(storage) if f.endswith(".json")]
per_request = collections.Counter(int(f.split("-", 1)[0]) for f in files)
twice = [r for r, n in per_request.items() if n > 1]
assert not twice, "stored twice: %s" % twice
requests = set()
for r in replies:
    req, name = r["request"], r["result"]["stored_as"]
    assert req not in requests, "request %d answered twice" % req
    requests.add(req)
    assert os.path.exists(os.path.join(storage, name)), "%s not stored" % name
ours = [f for f in files if int(f.split("-", 1)[0]) in requests]  # the 40 before share the store
assert len(ours) == 200, "%d files for 200 documents" % len(ours)
print("200 documents stored once each, %d re-dispatched from the killed worker" %
      sum(1 for r in replies if r.get("attempts", 1) > 1))
PY

cluster status >"$WORK/status2.out" || fail "status after kill failed"
grep -q '^w2 .* not running$' "$WORK/status2.out" || fail "status does not show w2 gone"

# stop: every process it started is gone, and nothing else was touched.
pids=$(cat "$run"/pids/*.pid)
start bystander sleep 60  # an unrelated process: stop must leave it alone
cluster stop >"$WORK/stop.out" || fail "stop failed"
for pid in $pids; do
  running "$pid" && fail "process $pid is still running after stop"
done
[ -z "$(ls "$run/pids")" ] || fail "pid files left after stop"
running "${PIDS[bystander]}" || fail "stop killed a process it did not start"
stop bystander
echo "PASS: start_cluster.sh: port check, 3+1 workers, 40 spread, kill -9 during 200, clean stop"
