#!/usr/bin/env bash
# Configures and builds sdm (Release, Ninja, warnings as errors) into ${BUILD_DIR:-build}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSDM_WERROR=ON ${SDM_CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"
