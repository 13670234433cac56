#!/usr/bin/env bash
# The broker's HTTP port with the real programs: after 100 documents, /metrics
# passes `promtool check metrics` and carico_requests_total{code="200"} adds up
# to 100; headless Chromium loads the dashboard and its DOM shows w1 w2 w3
# ready; after SIGUSR1 to w2 (forced overload) it shows w2 in overload, with
# the broker's snapshot saying so within 2 s of the signal (the page polls
# every second: on screen within 3 s). A non-loopback --http without
# --insecure is refused.
# CARICO_DASHBOARD_SCREENSHOT=FILE also saves a 1280x800 screenshot there
# (docs/dashboard.png is made so).
source "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool missing: scripts/test.sh installs it (Debian's prometheus)"
command -v chromium >/dev/null || fail "chromium missing: scripts/test.sh installs it (Debian's chromium)"

fport=$(free_port); bport=$(free_port); hport=$(free_port)
front=tcp://127.0.0.1:$fport; back=tcp://127.0.0.1:$bport; http=127.0.0.1:$hport

# Refused before anything is bound: the dashboard has no authentication.
set +e
"$BROKER" --frontend "$front" --backend "$back" --http "0.0.0.0:$hport" --journal none \
  --log "" >"$WORK/refused.log" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "--http 0.0.0.0 without --insecure exited $rc, expected 2"
grep -q -- "--insecure" "$WORK/refused.log" || fail "the refusal does not say how to get past it"

start broker "$BROKER" --frontend "$front" --backend "$back" --http "$http" \
  --log "$WORK/loadbalancer.log"
start_text_workers 3

# get PATH [OUT]: the body of http://$http/PATH (status must be 200).
get() {
  python3 - "http://$http$1" >"${2:-/dev/stdout}" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.stdout.write(r.read().decode())
PY
}
wait_until 5 get /healthz || fail "/healthz did not answer 200"
[ "$(get /healthz)" = serving ] || fail "/healthz does not say serving"

"$CLIENT" --connect "$front" send --count 100 --files "$CARICO_SOURCE/files" >/dev/null ||
  fail "carico-client send exited non-zero"
ok_total() {
  get /metrics | awk '/^carico_requests_total\{.*code="200"/ { s += $2 } END { print s + 0 }'
}
wait_until 3 test "$(ok_total)" -eq 100 || fail "carico_requests_total{code=\"200\"} adds up to $(ok_total), expected 100"
get /metrics "$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.log" 2>&1 ||
  { cat "$WORK/promtool.log" >&2; fail "promtool check metrics rejected /metrics"; }
grep -q '^carico_request_duration_seconds_count{service="text"} 100$' "$WORK/metrics.txt" ||
  fail "the duration histogram did not count 100 requests"
grep -q '^process_resident_memory_bytes ' "$WORK/metrics.txt" || fail "no process memory"

# dump_dom OUT: the dashboard's DOM after a few (virtual) seconds of polling.
dump_dom() {
  local profile
  profile=$(mktemp -d "$WORK/chromium.XXXXXX")
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=2500 --dump-dom "http://$http/" \
    >"$1" 2>>"$WORK/chromium.log" || fail "chromium failed (exit $?)"
}
shows() { grep -q "data-worker=\"$2\" data-state=\"$3\"" "$1"; }

dump_dom "$WORK/dom1.html"
for w in w1 w2 w3; do
  shows "$WORK/dom1.html" "$w" ready || fail "the dashboard does not show $w ready"
done

signalled=$(date +%s%3N)
kill -USR1 "${PIDS[w2]}"
dump_dom "$WORK/dom2.html"
shows "$WORK/dom2.html" w2 overload || fail "the dashboard does not show w2 in overload"
shows "$WORK/dom2.html" w1 ready || fail "w1 should still be ready"
since=$(grep -o 'data-worker="w2" data-state="overload" data-since="[0-9]*"' "$WORK/dom2.html" |
  grep -o '[0-9]*"$' | tr -d '"' || true)
[ -n "$since" ] || fail "no data-since for w2"
delay=$(( since - signalled ))
[ "$delay" -le 2000 ] || fail "the broker saw w2's overload $delay ms after SIGUSR1 (limit 2000)"

if [ -n "${CARICO_DASHBOARD_SCREENSHOT:-}" ]; then
  "$CLIENT" --connect "$front" send --count 300 --window 4 --files "$CARICO_SOURCE/files" >/dev/null || true
  profile=$(mktemp -d "$WORK/chromium.XXXXXX")
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$profile" --virtual-time-budget=2500 --window-size=1280,800 \
    --screenshot="$CARICO_DASHBOARD_SCREENSHOT" "http://$http/" 2>>"$WORK/chromium.log" ||
    fail "the screenshot failed"
fi

stop broker TERM
echo "PASS: promtool accepts /metrics, 100 answered 200; the dashboard shows w1 w2 w3 ready, then w2 in overload (broker saw it after $delay ms)"
