#!/usr/bin/env bash
# Installs every build and run dependency of carico from Debian packages.
# Idempotent: when everything is present it prints nothing and exits 0.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev nlohmann-json3-dev
  catch2 libspdlog-dev libcli11-dev libsqlite3-dev libedit-dev
  python3 procps iproute2
  # The Debian package (cpack -G DEB: dpkg-shlibdeps, file) and its tests
  # (dpkg-deb, systemd-analyze verify/security on the units).
  dpkg-dev file systemd
)

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
