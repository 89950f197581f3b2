#!/usr/bin/env bash
# LoRA fine-tuning step (issue 11): `bench_data_parallel lora-step` at 1 rank vs the same step in PyTorch
# (tools/bench/lora_step_reference.py: the torch.nn scGPT of tests/worker/model_reference.py, LoRA on the same
# projections with sdm's r / alpha / targets, the study's MLP head, BCE-with-logits, AdamW). Same weights (the
# reference writes weights.safetensors, sdm loads it), same cells (SplitMix64(7) stream), same batch, length and
# steps, one compute thread each, the strong-peer environment on both sides (OPENBLAS_CORETYPE=SkylakeX where the
# CPU has AVX-512, OMP_WAIT_POLICY=PASSIVE, freed memory kept in the heap), interleaved rounds. s/step is each
# side's wall time of all STEPS steps (the first included) / STEPS; ratio = python / sdm (> 1: sdm faster).
# usage: tools/bench/lora_step.sh [ROUNDS=3] [BATCH=64] [STEPS=8] [LENGTH=256] [PRESET=tiny]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${1:-3} BATCH=${2:-64} STEPS=${3:-8} LENGTH=${4:-256} PRESET=${5:-tiny}
SDM=${SDM:-build/sdm}
BIN=${BIN:-build/tools/bench/bench_data_parallel}
WORK=${WORK:-/tmp/sdm-bench-lora}
[ -x "$BIN" ] || cmake --build build --target bench_data_parallel
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}; fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
source tools/mpi_env.sh
MPIRUN=(mpirun --allow-run-as-root --bind-to none -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS -x OMP_WAIT_POLICY)
[ -n "${OPENBLAS_CORETYPE:-}" ] && MPIRUN+=(-x OPENBLAS_CORETYPE)
echo "# scgpt/$PRESET batch=$BATCH length=$LENGTH steps=$STEPS rounds=$ROUNDS threads=1 OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-} OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
py=() cc=()
for ((r = 0; r < ROUNDS; r++)); do
  mkdir -p "$WORK"
  line=$(/usr/bin/python3 -W ignore tools/bench/lora_step_reference.py "$WORK" --sdm "$SDM" --preset "$PRESET" \
           --batch "$BATCH" --steps "$STEPS" --length "$LENGTH" --threads 1 2> "$WORK/python.err") || {
    echo "lora_step_reference.py FAILED:"; tail -5 "$WORK/python.err"; exit 1; }
  echo "python: $line"
  py+=("$(sed -E 's/.*python_lora_step_s=([0-9.]+).*/\1/' <<< "$line")")
  line=$("${MPIRUN[@]}" -np 1 "$BIN" lora-step scgpt "$PRESET" "$BATCH" "$STEPS" "$LENGTH" "$WORK/weights.safetensors" \
           2> "$WORK/sdm.err" | grep '^lora-step') || { echo "bench_data_parallel lora-step FAILED:"; tail -5 "$WORK/sdm.err"; exit 1; }
  echo "sdm:    $line"
  cc+=("$(sed -E 's/.*: ([0-9.]+) s\/step.*/\1/' <<< "$line")")
done
/usr/bin/python3 - "$PRESET" "$BATCH" "$LENGTH" "$STEPS" "${py[*]}" "${cc[*]}" <<'PY'
import statistics, sys
preset, batch, length, steps, py, cc = sys.argv[1:7]
py = [float(x) for x in py.split()]
cc = [float(x) for x in cc.split()]
mp, mc = statistics.median(py), statistics.median(cc)
print(f"lora step s/step min / median: python {min(py):.4f} / {mp:.4f}   sdm {min(cc):.4f} / {mc:.4f}   "
      f"ratio (median, python/sdm) {mp / mc:.2f}x")
# machine-readable (tools/bench/run.sh): FIGURE name value unit peer better goal notes
print(f"FIGURE lora_step_scgpt_{preset} {mc:.4g} s/step {mp:.4g} lower - median of {len(cc)} rounds, 1 rank, "
      f"batch {batch} x {length} tokens, {steps} steps, 1 thread; min sdm {min(cc):.4g} / python {min(py):.4g}")
PY
