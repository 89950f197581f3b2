#!/usr/bin/env bash
# The unit and MPI tests under AddressSanitizer + UndefinedBehaviorSanitizer (issue 12): a second build in
# build-asan (-DSDM_SANITIZE=address,undefined), then ctest on the `unit` and `mpi` labels (end-to-end, parity and
# Slurm tests are left to the normal build: they run the same code much longer). Leak detection is off: OpenMPI
# and HDF5 keep global allocations until exit by design. Any sanitizer report fails the test it occurs in.
# usage: tools/test-sanitized.sh [ctest args...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BUILD_DIR=${BUILD_DIR:-build-asan}
export SDM_CMAKE_ARGS="${SDM_CMAKE_ARGS:-} -DSDM_SANITIZE=address,undefined"
source tools/mpi_env.sh
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
bash tools/build.sh
ctest --test-dir "$BUILD_DIR" -j 2 --output-on-failure --timeout 600 -L "unit|mpi" -LE "e2e|parity|slurm" "$@"
