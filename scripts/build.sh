#!/usr/bin/env bash
# Configures and builds carico. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Installs dependencies first (scripts/setup.sh). Incremental: a second run only rebuilds.
# CARICO_BUILD_TARGETS="carico-broker carico-worker ..." builds only those targets
# (scripts/start_cluster.sh: the programs, not the tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
"$root/scripts/setup.sh"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  # A unity build (CMake merges each target's sources into a few files) compiles
  # in about half the time: every small source parses cppzmq, msgpack-c, spdlog
  # and nlohmann_json again otherwise. Pass -DCMAKE_UNITY_BUILD=OFF to undo it.
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_UNITY_BUILD=ON "$@" >/dev/null
fi
targets=()
for t in ${CARICO_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
