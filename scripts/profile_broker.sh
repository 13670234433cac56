#!/usr/bin/env bash
# Where carico-broker spends its time as shipped, counted in instructions (so a
# loaded machine gives the same answer), and what its journal writer costs.
#
#   scripts/profile_broker.sh [--build DIR] [--out DIR] [--mode MODE] [--duration S]
#                             [--skip-callgrind] [--skip-journal]
#
# 1. callgrind: carico-bench drives keyed requests (100 B, 8 clients x window 64,
#    4 lean workers of capacity 128) through the broker started as MODE
#    (default shipped: only its two endpoints) under valgrind --tool=callgrind
#    --separate-threads=yes. Instructions per request = instructions of the whole
#    broker process (start-up included) / requests it answered (warm-up included);
#    then by thread, by area (self cost of each function, classified by name) and
#    the top functions, inclusive and self.
# 2. journal writer at full speed (shipped only): an LD_PRELOAD shim counts the
#    journal's COMMITs (sqlite3_step of "COMMIT") and the time they take; a second
#    run under strace -c -f counts fsync, fdatasync and pwrite64 calls.
#
# Output: OUT (default profile-results/) keeps the raw files (callgrind.out.*,
# JSON of each run, strace summary) and summary.txt, which is also printed.
# valgrind's serialised threads make the broker's batches larger than at full
# speed, so per-pass costs look smaller there than they are; the counts are for
# comparing a change against its parent, run the same way.
# Builds DIR (default build-bench, Release) first: carico-bench and carico-broker.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=$ROOT/profile-results
MODE=shipped
CG_DURATION=12
JOURNAL_DURATION=8
DO_CALLGRIND=1
DO_JOURNAL=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift ;;
    --out) OUT=$2; shift ;;
    --mode) MODE=$2; shift ;;
    --duration) CG_DURATION=$2; shift ;;
    --skip-callgrind) DO_CALLGRIND=0 ;;
    --skip-journal) DO_JOURNAL=0 ;;
    -h|--help) sed -n 2,25p "$0"; exit 0 ;;
    *) echo "profile_broker.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case $MODE in
  shipped|nojournal|quiet|broker|journal) ;;
  *) echo "profile_broker.sh: --mode is one of shipped nojournal quiet broker journal" >&2; exit 2 ;;
esac
for tool in /usr/bin/valgrind /usr/bin/strace /usr/bin/env python3 cc; do
  command -v "$tool" >/dev/null || { echo "profile_broker.sh: $tool not found (scripts/setup.sh installs valgrind and strace)" >&2; exit 2; }
done

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=ON
fi
ninja -C "$BUILD" -j2 carico-bench carico-broker >/dev/null
BENCH=$BUILD/client/bench/carico-bench
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
LOAD=(--bin-dir "$BUILD" --payload 100 --clients 8 --window 64 --workers 4 --worker-kind lean
      --worker-capacity 128 --json --keep)
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/loadavg.txt"

# wrapped NAME MODE SECONDS PREFIX: carico-bench with the broker behind PREFIX;
# scratch files in OUT/NAME, JSON in OUT/NAME.json.
wrapped() {
  local name=$1 mode=$2 seconds=$3 prefix=$4
  rm -rf "${OUT:?}/$name"
  mkdir -p "$OUT/$name"
  echo "== $name: carico-bench --mode $mode, broker behind ${prefix%% *} (${seconds} s)" >&2
  "$BENCH" "${LOAD[@]}" --mode "$mode" --warmup 1 --duration "$seconds" --work-dir "$OUT/$name" \
    --broker-prefix "$prefix" >"$OUT/$name.json" 2>"$OUT/$name.log" ||
    { echo "profile_broker.sh: carico-bench ($name) failed: see $OUT/$name.log" >&2; exit 1; }
}

if [ $DO_CALLGRIND -eq 1 ]; then
  wrapped callgrind "$MODE" "$CG_DURATION" \
    "/usr/bin/valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=$OUT/callgrind/callgrind.out.%p"
fi

if [ $DO_JOURNAL -eq 1 ] && [ "$MODE" = shipped ]; then
  # The shim: counts COMMIT steps and their time, and the syncs, at full speed.
  cat >"$OUT/commit_counter.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
typedef struct sqlite3_stmt sqlite3_stmt;
static unsigned long commits, steps, fsyncs, fdatasyncs;
static double commit_s, sync_s, first_commit, last_commit;
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
int sqlite3_step(sqlite3_stmt* s) {
  static int (*real)(sqlite3_stmt*);
  static const char* (*sql)(sqlite3_stmt*);
  if (!real) { real = dlsym(RTLD_NEXT, "sqlite3_step"); sql = dlsym(RTLD_NEXT, "sqlite3_sql"); }
  const char* text = sql(s);
  if (!text || strcmp(text, "COMMIT") != 0) { __atomic_add_fetch(&steps, 1, __ATOMIC_RELAXED); return real(s); }
  double t0 = now();
  int rc = real(s);
  double t1 = now();
  commits++; commit_s += t1 - t0;
  if (!first_commit) first_commit = t0;
  last_commit = t1;
  return rc;
}
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fsync");
  double t0 = now(); int rc = real(fd);
  __atomic_add_fetch(&fsyncs, 1, __ATOMIC_RELAXED); sync_s += now() - t0; return rc;
}
int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
  double t0 = now(); int rc = real(fd);
  __atomic_add_fetch(&fdatasyncs, 1, __ATOMIC_RELAXED); sync_s += now() - t0; return rc;
}
__attribute__((destructor)) static void report(void) {
  const char* path = getenv("CARICO_COMMIT_COUNTER");
  FILE* f = path ? fopen(path, "w") : NULL;
  if (!f) return;
  fprintf(f, "{\"commits\": %lu, \"other_steps\": %lu, \"commit_seconds\": %.6f, "
             "\"first_to_last_commit_seconds\": %.6f, \"fsyncs\": %lu, \"fdatasyncs\": %lu, "
             "\"sync_seconds\": %.6f}\n",
          commits, steps, commit_s, last_commit - first_commit, fsyncs, fdatasyncs, sync_s);
  fclose(f);
}
C
  cc -O2 -shared -fPIC -o "$OUT/commit_counter.so" "$OUT/commit_counter.c" -ldl
  rm -f "$OUT/commits.json" "$OUT/strace.txt"
  wrapped journal shipped "$JOURNAL_DURATION" \
    "/usr/bin/env CARICO_COMMIT_COUNTER=$OUT/commits.json LD_PRELOAD=$OUT/commit_counter.so"
  wrapped strace shipped "$JOURNAL_DURATION" \
    "/usr/bin/strace -f -c --seccomp-bpf -e trace=fsync,fdatasync,pwrite64,write,writev,sendto,sendmsg,recvfrom,recvmsg,read -o $OUT/strace.txt"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/loadavg.txt"

python3 "$ROOT/scripts/profile_summary.py" "$OUT" | tee "$OUT/summary.txt"
