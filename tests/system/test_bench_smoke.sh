#!/usr/bin/env bash
# carico-bench runs every load mode for ~3 s and reports sane figures: requests
# answered, none lost or failed, latencies and broker CPU measured. The targets
# of docs/benchmarks.md are read from full runs (scripts/bench.sh), not here.
source "$(dirname "$0")/lib.sh"
BENCH=$CARICO_BIN/client/bench/carico-bench
[ -x "$BENCH" ] || fail "$BENCH not built"

"$BENCH" --bin-dir "$CARICO_BIN" --work-dir "$WORK/bench" --mode proxy,broker,journal,text \
  --payload 100 --clients 2 --window 4 --workers 2 --worker-capacity 2 \
  --duration 3 --warmup 0.5 --json --cdf >"$WORK/bench.json" 2>"$WORK/bench.log" \
  || { cat "$WORK/bench.log"; fail "carico-bench exited non-zero"; }

python3 - "$WORK/bench.json" <<'PY' || fail "carico-bench output is not sane"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["machine"]["nproc"] >= 1, doc["machine"]
modes = [r["mode"] for r in doc["results"]]
assert modes == ["proxy", "broker", "journal", "text"], modes
for r in doc["results"]:
    name = r["mode"]
    assert r["requests"] > 0, (name, "no requests answered")
    assert r["errors"] == 0 and r["lost"] == 0, (name, r.get("first_error"))
    assert r["requests_per_s"] > 0 and r["mb_per_s"] > 0, name
    lat = r["latency_us"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"], (name, lat)
    assert r["broker_cpu_percent"] > 0, (name, "broker CPU not measured")
    assert r["broker_peak_rss_bytes"] > 0, (name, "broker RSS not measured")
    cdf = r["latency_cdf_us"]
    assert len(cdf) == 201 and all(a[1] <= b[1] for a, b in zip(cdf, cdf[1:])), name
    print(f"{name}: {r['requests_per_s']:.0f} req/s p99 {lat['p99']} us")
PY

# Every child the bench started is gone.
if pgrep -f "$WORK/bench" >/dev/null; then fail "children left running"; fi
echo "PASS: carico-bench smoke (proxy, broker, journal, text)"
