#!/usr/bin/env bash
# Installs, builds and runs every test (serial, MPI on real ranks, end to end): the README's test command.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/.ci/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cd "$root/build"
ctest --output-on-failure -j2 "$@"
