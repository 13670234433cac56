#!/usr/bin/env bash
# Installs every build and run dependency of carico from Debian packages.
# Idempotent: when everything is present it prints nothing and exits 0.
#   scripts/setup.sh           # to build and run (scripts/build.sh, start_cluster.sh)
#   scripts/setup.sh --test    # and what only the tests use (scripts/test.sh)
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev nlohmann-json3-dev
  catch2 libspdlog-dev libcli11-dev libsqlite3-dev libpq-dev libedit-dev libcpp-httplib-dev
  libjemalloc-dev
  python3 procps iproute2
  # The Debian package (cpack -G DEB: dpkg-shlibdeps, file) and its tests
  # (dpkg-deb, systemd-analyze verify/security on the units).
  dpkg-dev file systemd
)
# Test-only: headless Chromium loads the broker's dashboard, promtool (in
# Debian's prometheus package) checks its /metrics (tests/system/test_dashboard.sh);
# a real PostgreSQL server (tests/support/pg_server.cpp) for the PostgreSQL journal.
test_packages=(chromium prometheus postgresql)
[ "${1:-}" = "--test" ] && packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
  command -v sudo >/dev/null || { echo "setup.sh: missing packages (${missing[*]}) and not root" >&2; exit 1; }
else
  sudo=
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The prometheus package enables a Prometheus server on :9090; the tests want
# its promtool only, so a server it just started under systemd is stopped again.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
# Debian's postgresql package starts its own cluster (port 5432); the tests start
# a server of their own in a temporary directory, so that one is stopped again.
if [[ " ${missing[*]} " == *" postgresql "* ]] && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now postgresql.service >/dev/null 2>&1 || true
fi
