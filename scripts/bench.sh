#!/usr/bin/env bash
# The standard benchmark of docs/benchmarks.md: carico-broker held against a raw
# zmq::proxy with the same clients, on this machine, in the same run. The broker
# as shipped (keyed requests, journal and routing log at their defaults) first,
# then carico-bench's other configurations.
#
#   scripts/bench.sh [--quick] [--build DIR] [--out DIR]
#
# Writes one JSON file per run to OUT (default bench-results/), a summary
# (OUT/summary.md) and two SVG plots (OUT/rps_vs_clients.svg,
# OUT/latency_cdf.svg). --quick: 2 s runs, fewer points, 100k queued requests.
# Builds DIR (default build-bench, Release) first.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=$ROOT/bench-results
QUICK=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --build) BUILD=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=ON
fi
ninja -C "$BUILD" -j2 carico-bench carico-broker carico-worker >/dev/null
BENCH=$BUILD/client/bench/carico-bench
mkdir -p "$OUT"

# The key load's ratios come from ROUNDS interleaved rounds (carico-bench
# --rounds: per-round ratios, then their median), as this host's speed drifts
# by up to ±20 % over seconds.
if [ $QUICK -eq 1 ]; then
  ROUNDS=2; DURATION=2; WARMUP=0.5; QUEUE=100000; CLIENTS="1 8 64"; PAYLOADS="100 4KiB 256KiB 4MiB"; WORKERS="1 4 16"
else
  ROUNDS=5; DURATION=5; WARMUP=1; QUEUE=1000000; CLIENTS="1 8 64"; PAYLOADS="100 4KiB 256KiB 4MiB"; WORKERS="1 4 16"
fi

# run NAME ARGS... : one carico-bench invocation, JSON to OUT/NAME.json.
run() {
  local name=$1; shift
  echo "== $name: carico-bench $*" >&2
  "$BENCH" --bin-dir "$BUILD" --duration "$DURATION" --warmup "$WARMUP" --json --cdf "$@" \
    >"$OUT/$name.json" || echo "   ($name: carico-bench exit $?, errors in the JSON)" >&2
}

# Outstanding bytes (clients x window x payload) stay under 512 MiB.
window_for() {
  case $1 in
    4MiB) echo 2 ;;
    256KiB) echo 16 ;;
    *) echo "$2" ;;
  esac
}

# First, the broker as users run it (issue 18's key load): keyed requests, 100 B,
# 8 clients x window 64, 4 lean workers of capacity 128. shipped: only the two
# endpoints (journal file and routing log at their defaults, stderr to a file);
# nojournal: --journal none; quiet: --journal none and no per-request line. Each
# against the raw proxy in the same rounds; nojournal/quiet is the routing log's cost.
run key-shipped --mode proxy,shipped,nojournal,quiet --rounds "$ROUNDS" --payload 100 --clients 8 \
  --window 64 --workers 4 --worker-kind lean --worker-capacity 128

# Then carico-bench's own configurations (unkeyed, --log-level warn).
# Key load: 100 B, 8 clients x window 64, 4 workers; twice, interleaved, so
# that noise from the machine shows. Broker workers: carico-worker (the real
# one) and the lean one-thread MDP worker (the broker's own cost). The floor
# (the least broker that speaks the protocol) splits broker/proxy into what
# the protocol costs and what carico's bookkeeping costs.
run key-carico --mode proxy,floor,broker,journal --rounds "$ROUNDS" --payload 100 --clients 8 \
  --window 64 --workers 4 --worker-kind carico --worker-capacity 64
run key-lean --mode proxy,broker,journal --rounds "$ROUNDS" --payload 100 --clients 8 \
  --window 64 --workers 4 --worker-kind lean --worker-capacity 64
run key-text --mode text --payload 100 --clients 8 --window 64 --workers 4 --worker-capacity 8

# 4 MiB payloads: bytes/s against the raw proxy.
run big-4MiB --mode proxy,broker,proxy,broker --payload 4MiB --clients 4 --window 2 --workers 4 \
  --worker-kind lean --worker-capacity 4

# Queue: requests with no worker, then the workers arrive.
run queue --mode queue --queue-requests "$QUEUE" --payload 100 --clients 8 --workers 4 \
  --worker-kind lean --worker-capacity 64

# Failover: a worker killed with SIGKILL halfway through the interval.
DURATION_SAVED=$DURATION; [ "$DURATION" -lt 4 ] && DURATION=4
run failover --mode failover --payload 100 --clients 8 --window 16 --workers 4 \
  --worker-kind carico --worker-capacity 8
DURATION=$DURATION_SAVED

# Reduced cross product: one axis at a time around the key load.
for c in $CLIENTS; do
  for w in 1 64; do
    run "clients-$c-window-$w" --mode proxy,broker --payload 100 --clients "$c" --window "$w" \
      --workers 4 --worker-kind lean --worker-capacity 64
  done
done
for p in $PAYLOADS; do
  run "payload-$p" --mode proxy,broker --payload "$p" --clients 8 --window "$(window_for "$p" 64)" \
    --workers 4 --worker-kind lean --worker-capacity 64
done
for n in $WORKERS; do
  run "workers-$n" --mode proxy,broker --payload 100 --clients 8 --window 64 --workers "$n" \
    --worker-kind lean --worker-capacity 64
done

python3 - "$OUT" <<'PY'
import glob, json, math, os, sys

out = sys.argv[1]
runs = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    try:
        runs[os.path.basename(path)[:-5]] = json.load(open(path))
    except ValueError:
        print(f"skipping {path}: not JSON", file=sys.stderr)

def rows(name):
    return runs.get(name, {}).get("results", [])

def fmt_row(name, r):
    lat = r["latency_us"]
    if runs[name].get("options", {}).get("rounds", 1) > 1:
        name = f"{name} #{r['round']}"
    return (f"| {name} | {r['mode']} | {r['payload_bytes']} | {r['clients']}x{r['window']} | "
            f"{r['workers']} | {r['requests_per_s']:.0f} | {r['mb_per_s']:.1f} | {lat['p50']} | "
            f"{lat['p99']} | {lat['p999']} | {r['broker_cpu_percent']:.0f} | "
            f"{r['broker_peak_rss_bytes'] / 2**20:.1f} | {r['errors']} |")

lines = []
machine = next(iter(runs.values()), {}).get("machine", {})
lines.append(f"Machine: {machine.get('nproc')} CPUs, {machine.get('cpu')}, "
             f"{machine.get('memory_bytes', 0) / 2**30:.1f} GiB")
lines.append("")
lines.append("| run | mode | payload B | clients x window | workers | req/s | MB/s | p50 us | p99 us | p999 us | broker CPU % | broker peak RSS MiB | errors |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in runs:
    for r in rows(name):
        lines.append(fmt_row(name, r))

def by_mode(name):
    return {r["mode"]: r for r in rows(name)}

lines.append("")
lines.append("Targets (ratios within one invocation):")
shipped = {s["mode"]: s for s in runs.get("key-shipped", {}).get("summary", [])}
def ratio_text(s, key):
    lo, hi = s.get(key + "_range", [s[key], s[key]])
    return f"{s[key]:.2f} [{lo:.2f}-{hi:.2f}]"
if "vs_proxy" in shipped.get("shipped", {}):
    n = shipped["shipped"]["runs"]
    lines.append(f"- key-shipped, as shipped (keyed, journal file, routing log at its defaults; "
                 f"median [range] of {n} rounds): shipped/proxy req/s = "
                 f"{ratio_text(shipped['shipped'], 'vs_proxy')} (>= 0.4)")
    for mode, target in (("nojournal", " (>= 0.7)"), ("quiet", "")):
        if "vs_proxy" in shipped.get(mode, {}):
            lines.append(f"- key-shipped, {mode}: {mode}/proxy req/s = "
                         f"{ratio_text(shipped[mode], 'vs_proxy')}{target}")
    if "vs_quiet" in shipped.get("nojournal", {}):
        cost = 1 - shipped["nojournal"]["vs_quiet"]
        lines.append(f"- key-shipped, routing log: nojournal/quiet req/s = "
                     f"{ratio_text(shipped['nojournal'], 'vs_quiet')}, it costs {100 * cost:.0f} % (<= 10 %)")
    if "vs_nojournal" in shipped.get("shipped", {}):
        cost = 1 - shipped["shipped"]["vs_nojournal"]
        lines.append(f"- key-shipped, journal: shipped/nojournal req/s = "
                     f"{ratio_text(shipped['shipped'], 'vs_nojournal')}, it costs {100 * cost:.0f} %")
for name in sorted(runs):
    m = by_mode(name)
    summary = {s["mode"]: s for s in runs[name].get("summary", [])}
    if name.startswith("key-") and "vs_proxy" in summary.get("broker", {}):
        b = summary["broker"]
        s = (f"- {name} (median of {b['runs']} rounds): broker/proxy req/s = {b['vs_proxy']:.2f} "
             f"(>= 0.7), p99 broker/proxy = {b['p99_vs_proxy']:.2f} (<= 2)")
        if "vs_broker" in summary.get("journal", {}):
            s += f", journal/broker req/s = {summary['journal']['vs_broker']:.2f} (>= 0.5)"
        if "vs_proxy" in summary.get("floor", {}):
            f = summary["floor"]
            s += (f"; floor/proxy req/s = {f['vs_proxy']:.2f}, "
                  f"floor/broker req/s = {f['vs_broker']:.2f} (no target)")
        lines.append(s)
    elif name.startswith("key-") and "proxy" in m and "broker" in m:
        p, b = m["proxy"], m["broker"]
        s = (f"- {name}: broker/proxy req/s = {b['requests_per_s'] / p['requests_per_s']:.2f} (>= 0.7), "
             f"p99 broker/proxy = {b['latency_us']['p99'] / max(1, p['latency_us']['p99']):.2f} (<= 2)")
        if "journal" in m:
            s += f", journal/broker req/s = {m['journal']['requests_per_s'] / b['requests_per_s']:.2f} (>= 0.5)"
        lines.append(s)
big = rows("big-4MiB")
if big:
    px = [r["mb_per_s"] for r in big if r["mode"] == "proxy"]
    bx = [r["mb_per_s"] for r in big if r["mode"] == "broker"]
    if px and bx:
        lines.append(f"- 4 MiB: broker {sum(bx)/len(bx):.0f} MB/s vs proxy {sum(px)/len(px):.0f} MB/s "
                     f"= {sum(bx)/len(bx) / (sum(px)/len(px)):.2f} (>= 0.7)")
for r in rows("queue"):
    lines.append(f"- queue: {r['queued']} queued, broker RSS {r['rss_queued_bytes'] / 2**20:.0f} MiB "
                 f"vs limit {r['rss_limit_bytes'] / 2**20:.0f} MiB (met: {r['rss_met']}); drained at "
                 f"{r['requests_per_s']:.0f} req/s, {r['errors']} errors")
for r in rows("failover"):
    lines.append(f"- failover: longest wait after the kill {r.get('event_delay_us', -1) / 1000:.0f} ms "
                 f"(bound {r.get('failover_bound_us', 0) / 1000:.0f} ms), {r['lost']} lost, "
                 f"{r['errors']} errors (met: {r.get('failover_met')})")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))

# ---- SVG plots, written by hand (no plotting package needed).
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

def svg_plot(path, title, xlabel, ylabel, series, xlog=False, ylog=False):
    W, H, L, R, T, B = 720, 440, 80, 180, 40, 60
    pts = [p for _, s in series for p in s]
    if not pts:
        return
    tx = (lambda v: math.log10(v)) if xlog else (lambda v: v)
    ty = (lambda v: math.log10(v)) if ylog else (lambda v: v)
    xs = [tx(x) for x, _ in pts]; ys = [ty(y) for _, y in pts]
    x0, x1 = min(xs), max(xs); y0, y1 = (min(ys) if ylog else 0), max(ys)
    if x1 == x0: x1 = x0 + 1
    if y1 == y0: y1 = y0 + 1
    sx = lambda v: L + (tx(v) - x0) / (x1 - x0) * (W - L - R)
    sy = lambda v: H - B - (ty(v) - y0) / (y1 - y0) * (H - T - B)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
         f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
         f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
         f'<text x="{(L+W-R)/2}" y="{H-15}" text-anchor="middle">{xlabel}</text>',
         f'<text x="18" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 18 {(T+H-B)/2})">{ylabel}</text>']
    for i in range(6):
        fx = x0 + (x1 - x0) * i / 5; fy = y0 + (y1 - y0) * i / 5
        vx = 10 ** fx if xlog else fx; vy = 10 ** fy if ylog else fy
        px = L + (W - L - R) * i / 5; py = H - B - (H - T - B) * i / 5
        o.append(f'<text x="{px}" y="{H-B+16}" text-anchor="middle">{vx:.3g}</text>')
        o.append(f'<text x="{L-6}" y="{py+4}" text-anchor="end">{vy:.3g}</text>')
        o.append(f'<line x1="{L}" y1="{py}" x2="{W-R}" y2="{py}" stroke="#ddd"/>')
    for k, (label, s) in enumerate(series):
        c = COLORS[k % len(COLORS)]
        path_d = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(s))
        o.append(f'<path d="{path_d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in s:
            o.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{c}"/>')
        o.append(f'<rect x="{W-R+10}" y="{T+18*k}" width="12" height="12" fill="{c}"/>')
        o.append(f'<text x="{W-R+28}" y="{T+18*k+10}">{label}</text>')
    o.append("</svg>")
    open(path, "w").write("\n".join(o) + "\n")

series = []
for mode in ["proxy", "broker"]:
    for w in [1, 64]:
        s = []
        for name in runs:
            if name.startswith("clients-") and name.endswith(f"-window-{w}"):
                for r in rows(name):
                    if r["mode"] == mode:
                        s.append((r["clients"], r["requests_per_s"]))
        if s:
            series.append((f"{mode} window {w}", sorted(s)))
svg_plot(os.path.join(out, "rps_vs_clients.svg"), "requests/s vs clients (100 B, 4 workers)",
         "clients", "requests/s", series, xlog=True)

series = []
for mode in ["shipped"]:
    r = by_mode("key-shipped").get(mode)
    if r and r.get("latency_cdf_us"):
        series.append((f"{mode} (lean workers, keyed)", [(max(1, us), q) for q, us in r["latency_cdf_us"]]))
for mode in ["proxy", "broker", "journal"]:
    r = by_mode("key-lean").get(mode)
    if r and r.get("latency_cdf_us"):
        series.append((f"{mode} (lean workers)", [(max(1, us), q) for q, us in r["latency_cdf_us"]]))
r = by_mode("key-carico").get("broker")
if r and r.get("latency_cdf_us"):
    series.append(("broker (carico-worker)", [(max(1, us), q) for q, us in r["latency_cdf_us"]]))
svg_plot(os.path.join(out, "latency_cdf.svg"), "latency CDF (100 B, 8 clients x window 64, 4 workers)",
         "latency (us, log)", "fraction of requests", series, xlog=True)
print(f"plots: {out}/rps_vs_clients.svg {out}/latency_cdf.svg", file=sys.stderr)
PY
