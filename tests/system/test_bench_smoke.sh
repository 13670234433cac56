#!/usr/bin/env bash
# carico-bench runs every load mode for ~3 s and reports sane figures: requests
# answered, none lost or failed, latencies and broker CPU measured. The targets
# of docs/benchmarks.md are read from full runs (scripts/bench.sh), not here.
source "$(dirname "$0")/lib.sh"
BENCH=$CARICO_BIN/client/bench/carico-bench
[ -x "$BENCH" ] || fail "$BENCH not built"

"$BENCH" --bin-dir "$CARICO_BIN" --work-dir "$WORK/bench" --mode proxy,floor,broker,journal,text \
  --payload 100 --clients 2 --window 4 --workers 2 --worker-capacity 2 \
  --duration 3 --warmup 0.5 --json --cdf >"$WORK/bench.json" 2>"$WORK/bench.log" \
  || { cat "$WORK/bench.log"; fail "carico-bench exited non-zero"; }

python3 - "$WORK/bench.json" <<'PY' || fail "carico-bench output is not sane"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["machine"]["nproc"] >= 1, doc["machine"]
modes = [r["mode"] for r in doc["results"]]
assert modes == ["proxy", "floor", "broker", "journal", "text"], modes
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

# --rounds: the modes again in reverse order, and a summary whose ratios are
# the medians of the per-round ratios.
"$BENCH" --bin-dir "$CARICO_BIN" --work-dir "$WORK/bench-rounds" --mode proxy,broker --rounds 3 \
  --payload 100 --clients 2 --window 4 --workers 2 --worker-capacity 2 \
  --duration 0.5 --warmup 0.2 --json >"$WORK/rounds.json" 2>"$WORK/rounds.log" \
  || { cat "$WORK/rounds.log"; fail "carico-bench --rounds exited non-zero"; }
grep -q "medians over rounds" "$WORK/rounds.log" || fail "no summary table with --rounds"
python3 - "$WORK/rounds.json" <<'PY' || fail "carico-bench --rounds output is not sane"
import json, statistics, sys
doc = json.load(open(sys.argv[1]))
runs = [(r["mode"], r["round"]) for r in doc["results"]]
assert runs == [("proxy", 1), ("broker", 1), ("broker", 2), ("proxy", 2), ("proxy", 3), ("broker", 3)], runs
rate = {(r["mode"], r["round"]): r["requests_per_s"] for r in doc["results"]}
p99 = {(r["mode"], r["round"]): r["latency_us"]["p99"] for r in doc["results"]}
summary = {s["mode"]: s for s in doc["summary"]}
assert summary["proxy"]["runs"] == 3 and "vs_proxy" not in summary["proxy"], summary
b = summary["broker"]
want = statistics.median(rate["broker", k] / rate["proxy", k] for k in (1, 2, 3))
assert abs(b["vs_proxy"] - want) < 1e-9, (b, want)
want = statistics.median(p99["broker", k] / max(1, p99["proxy", k]) for k in (1, 2, 3))
assert abs(b["p99_vs_proxy"] - want) < 1e-9, (b, want)
assert b["requests_per_s"] == statistics.median(rate["broker", k] for k in (1, 2, 3)), b
print(f"rounds: broker/proxy median {b['vs_proxy']:.3f}")
PY

# The broker as shipped: keyed requests, only its endpoints (journal file and
# routing log at their defaults, in a directory of its own), then without the
# journal, then without per-request lines; ratios to the proxy and to quiet.
"$BENCH" --bin-dir "$CARICO_BIN" --work-dir "$WORK/bench-shipped" --keep \
  --mode proxy,shipped,nojournal,quiet --rounds 2 \
  --payload 100 --clients 2 --window 4 --workers 2 --worker-kind lean --worker-capacity 4 \
  --duration 0.5 --warmup 0.2 --json >"$WORK/shipped.json" 2>"$WORK/shipped.log" \
  || { cat "$WORK/shipped.log"; fail "carico-bench shipped modes exited non-zero"; }
grep -q "routing log at its defaults: nojournal/quiet" "$WORK/shipped.log" \
  || { cat "$WORK/shipped.log"; fail "no routing log cost in the summary"; }
python3 - "$WORK/shipped.json" <<'PY' || fail "carico-bench shipped modes output is not sane"
import json, os, sys
doc = json.load(open(sys.argv[1]))
runs = [(r["mode"], r["round"]) for r in doc["results"]]
assert runs == [("proxy", 1), ("shipped", 1), ("nojournal", 1), ("quiet", 1),
                ("quiet", 2), ("nojournal", 2), ("shipped", 2), ("proxy", 2)], runs
for r in doc["results"]:
    name = r["mode"]
    assert r["requests"] > 0 and r["errors"] == 0 and r["lost"] == 0, (name, r.get("first_error"))
    if name == "proxy":
        continue
    assert r["keyed"] is True, (name, "requests not keyed")
    d = r["broker_dir"]
    assert os.path.isdir(d) and os.path.basename(d).endswith("-" + name), d
    # One line per request at least in the routing log at its defaults, none in quiet.
    if name == "quiet":
        assert r["log_file_bytes"] < 20 * r["sent"], (name, r["log_file_bytes"], r["sent"])
    else:
        assert r["log_file_bytes"] >= 20 * r["sent"], (name, r["log_file_bytes"], r["sent"])
    assert (r["journal_bytes"] > 0) == (name == "shipped"), (name, r["journal_bytes"])
    assert os.path.exists(os.path.join(d, "carico-journal.db")) == (name == "shipped"), d
    assert os.path.exists(os.path.join(d, "broker.console.log")), d
summary = {s["mode"]: s for s in doc["summary"]}
for mode in ("shipped", "nojournal", "quiet"):
    s = summary[mode]
    lo, hi = s["vs_proxy_range"]
    assert lo <= s["vs_proxy"] <= hi, s
assert "vs_quiet" in summary["nojournal"] and "vs_nojournal" in summary["shipped"], summary
print(f"shipped/proxy {summary['shipped']['vs_proxy']:.3f}, "
      f"nojournal/quiet {summary['nojournal']['vs_quiet']:.3f}")
PY

# Every child the bench started is gone (shipped-style brokers run in a
# directory under $WORK, with no path of it on their command line).
if pgrep -f "$WORK/bench" >/dev/null; then fail "children left running"; fi
for cwd in /proc/[0-9]*/cwd; do
  case $(readlink "$cwd" 2>/dev/null) in
    "$WORK"/bench*) fail "a child left running in $(readlink "$cwd")" ;;
  esac
done
echo "PASS: carico-bench smoke (proxy, broker, journal, text; shipped, nojournal, quiet)"
