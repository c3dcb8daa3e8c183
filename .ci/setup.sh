#!/usr/bin/env bash
# Installs every Debian package astroclear needs (idempotent; quick when all are there) and builds
# it with ccache into build/. Usage: .ci/setup.sh [extra cmake -D options]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(build-essential cmake pkg-config ccache libtorch-dev libopenmpi-dev openmpi-bin libcfitsio-dev
          libhdf5-dev hdf5-tools libpng-dev libspdlog-dev libcli11-dev libtoml11-dev libgtest-dev nlohmann-json3-dev source-extractor
          wcslib-dev swarp psfex)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache} CCACHE_BASEDIR=$root
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "$@" >/dev/null
cmake --build "$root/build" -j"$(nproc)"
