#!/usr/bin/env bash
# What the broker's HTTP port costs: carico-bench's throughput with the broker
# run as users run it with the port on (--http, its loop publishing a snapshot
# every 250 ms) and scraped every second (/metrics and /api/state, as Prometheus
# and an open dashboard do), against the same broker without --http. Rounds
# alternate which goes first; the figure is the median of the per-round ratios
# on/off. Target (issue 19): within 5 %. Not a test: run by hand, record the
# result in docs/benchmarks.md.
#
#   scripts/bench_http.sh [BUILD_DIR]        # ROUNDS=5 DURATION=5 MODE=journal by default
#   ROUNDS=7 DURATION=10 MODE=broker scripts/bench_http.sh build
#
# MODE is carico-bench's: journal (the broker's default, with its SQLite journal)
# or broker (--journal none). Other carico-bench flags: BENCH_ARGS="--clients 8".
# SCRAPE=0 leaves the port on but unscraped (the loop's share of the cost alone).
# CALLGRIND=1 counts the broker loop's instructions per request instead of its
# CPU time (slow: the broker runs under valgrind; throughput is meaningless then).
# Each round prints req/s and a cost per request: broker CPU us, or instructions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
rounds=${ROUNDS:-5}
duration=${DURATION:-5}
mode=${MODE:-journal}
scrape=${SCRAPE:-1}
bench=$build/client/bench/carico-bench
[ -x "$bench" ] || { echo "bench_http.sh: $bench missing (cmake --build $build --target carico-bench carico-broker carico-worker)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/carico-bench-http.XXXXXX")
scraper=""
cleanup() {
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null && wait "$scraper" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# carico-bench puts --broker-prefix before carico-broker's command line: these
# prefixes run the broker as given (off), or plus --http on the port in
# $work/port (on). With CALLGRIND=1 they run it under callgrind, counting the
# instructions of broker::run() (the loop's thread: its work per request sets
# the throughput), which other processes on the machine do not change.
vg=""
if [ "${CALLGRIND:-0}" = 1 ]; then
  command -v valgrind >/dev/null || { echo "bench_http.sh: CALLGRIND=1 needs valgrind" >&2; exit 2; }
  vg="valgrind --tool=callgrind '--toggle-collect=carico::broker::run()' --callgrind-out-file=$work/cg.\$\$"
fi
cat >"$work/prefix_on" <<WRAP
#!/bin/sh
echo \$\$ >'$work/broker.pid'
exec $vg "\$@" --http "127.0.0.1:\$(cat '$work/port')"
WRAP
cat >"$work/prefix_off" <<WRAP
#!/bin/sh
echo \$\$ >'$work/broker.pid'
exec $vg "\$@"
WRAP
chmod +x "$work/prefix_on" "$work/prefix_off"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# run on|off: one carico-bench run; prints its requests per second.
run() {
  local port
  if [ "$1" = on ]; then
    port=$(free_port)
    echo "$port" >"$work/port"
    if [ "$scrape" = 1 ]; then
      # Scrapes every second while the bench runs, as Prometheus and a dashboard would.
      # One long-lived process, as Prometheus is (a curl forked per scrape would
      # measure curl's start-up on these shared cores, not the broker).
      python3 - "$port" <<'PY' &
import http.client, sys, time
port = int(sys.argv[1])
while True:
    for path in ("/metrics", "/api/state"):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path)
            c.getresponse().read()
            c.close()
        except OSError:
            pass
    time.sleep(1)
PY
      scraper=$!
    fi
  fi
  # shellcheck disable=SC2086
  "$bench" --mode "$mode" --duration "$duration" --warmup 1 --json --broker-prefix "$work/prefix_$1" \
    ${BENCH_ARGS:-} \
    2>"$work/bench-$1.err" >"$work/bench-$1.json"
  if [ -n "$scraper" ]; then
    kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null || true
    scraper=""
  fi
  python3 - "$work/bench-$1.json" "$work/cg.$(cat "$work/broker.pid")" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))["results"][0]
# The second figure: the broker's CPU per request (us), or with CALLGRIND=1 the
# instructions of its loop per request. Contention from other processes on
# shared cores moves throughput a lot, these little or not at all.
if os.path.exists(sys.argv[2]):
    totals = [l for l in open(sys.argv[2]) if l.startswith("totals:")]
    print(r["requests_per_s"], int(totals[0].split()[1]) / max(r["requests"], 1))
else:
    print(r["requests_per_s"], r["broker_cpu_percent"] / 100 * 1e6 / max(r["requests_per_s"], 1))
PY
}

echo "mode $mode, $rounds rounds of $duration s each way, scrape=$scrape, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
ratios=(); cpu_ratios=()
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then off=($(run off)); on=($(run on)); else on=($(run on)); off=($(run off)); fi
  ratio=$(python3 -c "print(f'{${on[0]} / ${off[0]}:.4f}')")
  cpu_ratio=$(python3 -c "print(f'{${on[1]} / ${off[1]}:.4f}')")
  ratios+=("$ratio"); cpu_ratios+=("$cpu_ratio")
  printf 'round %d: off %.0f req/s %.2f per req, on %.0f req/s %.2f per req, on/off %s (per req %s)\n' \
    "$r" "${off[0]}" "${off[1]}" "${on[0]}" "${on[1]}" "$ratio" "$cpu_ratio"
done
python3 - "${ratios[*]}" "${cpu_ratios[*]}" <<'PY'
import statistics, sys
for name, text in (("throughput", sys.argv[1]), ("cost per request", sys.argv[2])):
    r = sorted(float(x) for x in text.split())
    m = statistics.median(r)
    print(f"median on/off {name} {m:.4f} ({(m - 1) * 100:+.1f} %), range {r[0]:.4f}..{r[-1]:.4f}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
