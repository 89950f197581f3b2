#!/usr/bin/env bash
# Builds sdm and runs the whole test suite: unit tests, MPI tests at 2 and 4 ranks, end-to-end CLI tests.
# The README's test command and CI's .ci/run both call exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}
# mpirun refuses root without these, and 4 ranks on 2 cores need oversubscription (CONTRACTS §1).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
bash tools/build.sh
ctest --test-dir "$BUILD_DIR" -j 2 --output-on-failure --timeout 300 "$@"
