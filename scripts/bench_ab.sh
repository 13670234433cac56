#!/usr/bin/env bash
# Two builds of carico-broker at the key load, alternately, on this machine:
# how a change moves throughput and the broker's CPU time per request when
# the host's speed drifts by ±20 % from one minute to the next. Each pair of
# runs (A then B) is close in time, so compare within pairs; the means follow.
#
#   scripts/bench_ab.sh --a BUILD_A --b BUILD_B [--mode MODE] [--pairs N] [--duration S]
#
# BUILD_A and BUILD_B are build directories (each with broker/carico-broker and
# worker/); carico-bench and its lean workers come from BUILD_B. MODE is a
# carico-bench mode (default shipped; nojournal, quiet, ...), N pairs (default
# 4) of S-second runs (default 3) with a 1 s warm-up, 100 B documents, 8
# clients x window 64, 4 lean workers of capacity 128.
#
# To measure a change: build its parent into a second directory, e.g.
#   git worktree add /tmp/base HEAD~1 && cmake -S /tmp/base -B /tmp/base/build \
#     -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C /tmp/base/build carico-broker
#   scripts/bench_ab.sh --a /tmp/base/build --b build-bench
set -euo pipefail

A=
B=
MODE=shipped
PAIRS=4
DURATION=3
while [ $# -gt 0 ]; do
  case $1 in
    --a) A=$2; shift ;;
    --b) B=$2; shift ;;
    --mode) MODE=$2; shift ;;
    --pairs) PAIRS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "bench_ab.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$A" ] || [ -z "$B" ]; then
  echo "bench_ab.sh: --a and --b are required (build directories)" >&2
  exit 2
fi
for dir in "$A" "$B"; do
  [ -x "$dir/broker/carico-broker" ] || { echo "bench_ab.sh: no $dir/broker/carico-broker" >&2; exit 2; }
done
BENCH=$B/client/bench/carico-bench
[ -x "$BENCH" ] || { echo "bench_ab.sh: no $BENCH" >&2; exit 2; }

runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for pair in $(seq "$PAIRS"); do
  for side in A B; do
    dir=$A
    [ $side = B ] && dir=$B
    "$BENCH" --bin-dir "$dir" --mode "$MODE" --rounds 1 --duration "$DURATION" --warmup 1 \
      --payload 100 --clients 8 --window 64 --workers 4 --worker-kind lean \
      --worker-capacity 128 --json 2>/dev/null |
      python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
print(sys.argv[1], sys.argv[2], round(r["requests_per_s"]), "%.2f" % (r["broker_cpu_percent"] * 1e4 / r["requests_per_s"]), r["errors"])
' "$pair" "$side" >>"$runs"
    tail -n 1 "$runs"
  done
done
python3 - "$runs" "$MODE" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
by = {"A": [], "B": []}
for pair, side, rps, cpu, errors in rows:
    by[side].append((float(rps), float(cpu), int(errors)))
mean = lambda xs: sum(xs) / len(xs)
wins = sum(1 for a, b in zip(by["A"], by["B"]) if b[1] < a[1])
print(f"mode {sys.argv[2]}, {len(by['A'])} pairs (pair, side, req/s, broker CPU us per request, errors above)")
for side in "AB":
    runs = by[side]
    print(f"{side}: {mean([r[0] for r in runs]):.0f} req/s, {mean([r[1] for r in runs]):.2f} us of broker CPU per request, {sum(r[2] for r in runs)} errors")
a_cpu, b_cpu = mean([r[1] for r in by["A"]]), mean([r[1] for r in by["B"]])
print(f"B vs A: {100 * (b_cpu / a_cpu - 1):+.1f} % CPU per request; B used less CPU in {wins} of {len(by['A'])} pairs")
PY
