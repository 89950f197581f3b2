#!/usr/bin/env bash
# Fuzzes the readers that take bytes from strangers (issue 12): the single-cell file reader (.h5ad / 10x / Loom,
# file-level), the safetensors reader and the sweep spec parser. libFuzzer targets (tests/fuzz/fuzz_*.cpp) are built
# with clang, ASan and UBSan in build-fuzz/ (only common/ and jobs/), then each runs for --time seconds from its
# seed corpus (tests/fuzz/corpus/<target>, plus ../shared/fixtures/h5ad for the file reader). New coverage is kept in
# build-fuzz/corpus/<target>; crashing inputs land in build-fuzz/crashes/<target>/, and one in our code fails the run.
#
# usage: tools/fuzz.sh [--time S] [--only dataset_file,safetensors,sweep_spec,chunk_index] [--strict]
#   CI runs a 60 s smoke run per target; the long run (docs/reliability.md) is --time 600 --strict.
# Crashes inside libhdf5 on a hostile file are upstream bugs (tests/fuzz/triage.py sorts them); a signature not yet
# reviewed in tests/fuzz/known_upstream.txt is reported, and fails the run only with --strict.
# A crash: reproduce with `build-fuzz/tests/fuzz/fuzz_<target> <crash file>`, fix it, then keep the file in
# tests/fuzz/regressions/<target>/ so the normal test suite replays it from then on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TIME=60
ONLY="dataset_file,safetensors,sweep_spec,chunk_index"
STRICT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --time) TIME=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --strict) STRICT=--strict; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "tools/fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSDM_FUZZ=ON \
  -DSDM_BUILD_TESTS=OFF -DSDM_WITH_CUDA=OFF -DSDM_WERROR=ON >/dev/null
IFS=, read -r -a targets <<<"$ONLY"
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}"

failed=()
for t in "${targets[@]}"; do
  work="$BUILD_DIR/corpus/$t" crashes="$BUILD_DIR/crashes/$t"
  mkdir -p "$work" "$crashes"
  seeds=("tests/fuzz/corpus/$t")
  [ -d "tests/fuzz/regressions/$t" ] && seeds+=("tests/fuzz/regressions/$t")
  # fork mode keeps going past a crash, so one known libhdf5 bug does not end a long run; triage sorts them after
  opts=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$TIME" -timeout=5
        -rss_limit_mb=4096 -artifact_prefix="$crashes/")
  [ -n "${FUZZ_SEED:-}" ] && opts+=(-seed="$FUZZ_SEED")
  leaks=1
  case "$t" in
    dataset_file)
      [ -d ../shared/fixtures/h5ad ] && seeds+=(../shared/fixtures/h5ad)
      opts+=(-max_len=262144)  # real files run to 2 MB; longer inputs would slow every mutation
      leaks=0 ;;  # HDF5 keeps its free lists and open-object tables until exit
    sweep_spec) opts+=(-dict=tests/fuzz/sweep_spec.dict) ;;
  esac
  echo "=== fuzz $t for ${TIME} s (seeds: ${seeds[*]})"
  ASAN_OPTIONS="detect_leaks=$leaks:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$BUILD_DIR/tests/fuzz/fuzz_$t" "${opts[@]}" "$work" "${seeds[@]}" >"$BUILD_DIR/fuzz_$t.log" 2>&1 || true
  grep -E "^#[0-9]+: cov:" "$BUILD_DIR/fuzz_$t.log" | tail -n 1 || true
  if /usr/bin/python3 tests/fuzz/triage.py "$BUILD_DIR/tests/fuzz/fuzz_$t" "$crashes" tests/fuzz/known_upstream.txt ${STRICT} \
      >"$BUILD_DIR/triage_$t.log" 2>&1; then
    grep -E "^(upstream|triage)" "$BUILD_DIR/triage_$t.log" || true
    echo "=== fuzz $t: nothing of ours (corpus $work: $(ls "$work" | wc -l) inputs)"
  else
    cat "$BUILD_DIR/triage_$t.log"
    echo "=== fuzz $t: FOUND A CRASH (inputs in $crashes, log $BUILD_DIR/fuzz_$t.log)"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]}" >&2
  exit 1
fi
