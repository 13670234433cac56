#!/usr/bin/env bash
# Sets everything up and runs every test: the normal build, then the
# AddressSanitizer + UBSan build, then each fuzz target for 30 s (scripts/fuzz.sh).
# Exit 0 only when all pass.
#   scripts/test.sh            # both builds and the fuzzers
#   scripts/test.sh --fast     # normal build only (no ASan, no fuzzing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fast=0
[ "${1:-}" = "--fast" ] && fast=1

run_suite() {
  local dir=$1; shift
  echo "== build $dir"
  "$root/scripts/build.sh" "$dir" "$@"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j 2)
}

run_suite "$root/build"
if [ "$fast" = 0 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp
  run_suite "$root/build-asan" -DCARICO_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  # Every libFuzzer target for 30 s (clang); prints "fuzz: <target> PASS|FAIL".
  echo "== fuzz (30 s per target)"
  "$root/scripts/fuzz.sh" 30
fi
echo "== all tests passed"
