#!/usr/bin/env bash
# Builds carico's libFuzzer targets with clang (in build-fuzz) and runs each for
# SECONDS (default 60), two at a time, on a working copy of its seed corpus.
#   scripts/fuzz.sh            # every target, 60 s each
#   scripts/fuzz.sh 10         # what CI runs (scripts/test.sh: a smoke run of every target)
#   scripts/fuzz.sh 600 fuzz_header fuzz_document   # chosen targets
# Installs clang and libclang-rt-14-dev first when they are missing (only
# fuzzing needs them). Crashes land in build-fuzz/findings/<target>/; the
# corpus grown by a run stays in build-fuzz/corpus/<target>/.
# Prints one "fuzz: <target> PASS|FAIL" line per target; exit 0 only when all pass.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CARICO_FUZZ_BUILD:-$root/build-fuzz}
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_client_codec fuzz_worker_codec fuzz_header fuzz_document fuzz_safe_file_name)

need=()
command -v clang++ >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "fuzz.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
"$root/scripts/setup.sh"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  # Unity build and line tables only (-g1), for build speed as in scripts/test.sh.
  CXX=clang++ cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_UNITY_BUILD=ON "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
    -DCARICO_FUZZ=ON -DCARICO_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target fuzz_targets -j "$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs one target; its log is build-fuzz/logs/<target>.log.
run_target() {
  local target=$1
  local corpus=$build/corpus/$target findings=$build/findings/$target log=$build/logs/$target.log
  mkdir -p "$corpus" "$findings" "$build/logs"
  cp -n "$root/tests/fuzz/corpus/$target/"* "$corpus/" 2>/dev/null || true
  "$build/tests/fuzz/$target" "$corpus" -max_total_time="$seconds" -timeout=30 -max_len=16384 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1
}

status=0
pids=()
names=()
report() {
  local i=$1 rc=$2 target=${names[$1]}
  local log=$build/logs/$target.log
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $target PASS ($runs runs in ${seconds}s)"
  else
    echo "fuzz: $target FAIL (exit $rc; see $log and $build/findings/$target/)"
    grep -m5 -E 'ERROR|SUMMARY|runtime error|deadly signal' "$log" || true
    status=1
  fi
}
flush() {
  for i in "${!pids[@]}"; do
    rc=0; wait "${pids[$i]}" || rc=$?
    report "$i" "$rc"
  done
  pids=(); names=()
}
for target in "${targets[@]}"; do
  run_target "$target" &
  pids+=($!); names+=("$target")
  [ ${#pids[@]} -ge 2 ] && flush
done
flush
[ "$status" -eq 0 ] && echo "fuzz: all targets passed" || echo "fuzz: FAILED"
exit "$status"
