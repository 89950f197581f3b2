#!/usr/bin/env bash
# Builds sdm and runs the whole test suite: unit tests, MPI tests at 2 and 4 ranks, end-to-end CLI tests.
# The README's test command and CI's .ci/run both call exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}
# root, oversubscription, PMIx security: the mpirun environment (tools/mpi_env.sh)
source tools/mpi_env.sh
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
bash tools/build.sh
ctest --test-dir "$BUILD_DIR" -j 2 --output-on-failure --timeout 300 "$@"
