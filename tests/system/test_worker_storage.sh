#!/usr/bin/env bash
# A worker whose --storage cannot be written (a file where its directory's
# parent should be: root writes through chmod, not through that) joins as
# overload with the reason, shown by `carico-client workers`; its two healthy
# peers answer every request 200. Once the path is fixed it is ready again,
# with no restart.
source "$(dirname "$0")/lib.sh"

fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport

start broker "$BROKER" --frontend "$front" --backend "$back" --log "$WORK/loadbalancer.log"
start good1 "$WORKER" --connect "$back" --name good1 --storage "$WORK/good1"
start good2 "$WORKER" --connect "$back" --name good2 --storage "$WORK/good2"
echo "not a directory" >"$WORK/blocker"
start sick "$WORKER" --connect "$back" --name sick --storage "$WORK/blocker/store"

sick_overloaded() {
  "$CLIENT" --connect "$front" --json workers >"$WORK/workers.json" &&
    python3 - "$WORK/workers.json" <<'PY'
import json, sys
ws = json.load(open(sys.argv[1]))["workers"]
sick = [w for w in ws if w["name"] == "sick"]
ready = [w for w in ws if w["state"] == "ready"]
ok = len(sick) == 1 and sick[0]["state"] == "overload" \
    and "cannot create storage directory" in sick[0]["reason"] and len(ready) == 2
sys.exit(0 if ok else 1)
PY
}
wait_until 10 sick_overloaded || fail "sick did not join as overload with its reason: $(cat "$WORK/workers.json")"
"$CLIENT" --connect "$front" workers >"$WORK/workers.txt"
grep "^sick " "$WORK/workers.txt" | grep -q "overload.*cannot create storage directory" ||
  fail "the workers table does not show why sick is overload: $(cat "$WORK/workers.txt")"
grep -q "sick overloaded: cannot create storage directory" "$WORK/loadbalancer.log" ||
  fail "the broker did not log sick's reason"

"$CLIENT" --connect "$front" --json send --count 60 --files "$CARICO_SOURCE/files" \
  >"$WORK/send.jsonl" || fail "send: not every request was answered 200"
[ "$(grep -c '"code":200' "$WORK/send.jsonl")" -eq 60 ] || fail "expected 60 replies 200"
! grep -q '"worker":"sick"' "$WORK/send.jsonl" || fail "sick answered a request"
[ ! -e "$WORK/blocker/store" ] || fail "sick stored something"

rm "$WORK/blocker"  # the operator fixes the path
sick_ready() { "$CLIENT" --connect "$front" --json workers | grep -q '"name":"sick"[^}]*"state":"ready"'; }
wait_until 5 sick_ready || fail "sick did not become ready once its storage worked"
grep -q "health check passed" "$WORK/sick.log" || fail "sick did not log its recovery"

stop sick TERM; stop good1 TERM; stop good2 TERM; stop broker TERM
echo "PASS: sick joined as overload (its reason in workers and the broker log), 60 x 200 by" \
  "the others, ready again once fixed"
