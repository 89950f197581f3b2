#!/usr/bin/env bash
# Data-parallel benchmarks (issue 6), one compute thread per rank (CONTRACTS §11):
#  (a) bucketed gradient all-reduce of the whole-human scGPT's parameter set (51M float32, 25 MB buckets as DDP)
#      vs one raw MPI_Allreduce of the same bytes, at 2 ranks: both bandwidths and the ratio (goal >= 0.8);
#  (b) LoRA fine-tuning step time at 1 and at 2 ranks for the same global batch, and the speed-up.
# usage: tools/bench/data_parallel.sh [ROUNDS=5] [MODEL=scgpt] [PRESET=tiny] [BATCH=64] [STEPS=8] [LENGTH=256]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${1:-5} MODEL=${2:-scgpt} PRESET=${3:-tiny} BATCH=${4:-64} STEPS=${5:-8} LENGTH=${6:-256}
BIN=${BIN:-build/tools/bench/bench_data_parallel}
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none -x OPENBLAS_NUM_THREADS=1 -x OMP_NUM_THREADS=1)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
echo "== (a) gradient all-reduce, 2 ranks"
"${MPIRUN[@]}" -np 2 "$BIN" allreduce "$ROUNDS" 25
echo "== (b) LoRA step, same global batch"
one=$("${MPIRUN[@]}" -np 1 "$BIN" lora-step "$MODEL" "$PRESET" "$BATCH" "$STEPS" "$LENGTH" | tail -1)
two=$("${MPIRUN[@]}" -np 2 "$BIN" lora-step "$MODEL" "$PRESET" "$BATCH" "$STEPS" "$LENGTH" | tail -1)
echo "$one"
echo "$two"
/usr/bin/python3 - "$one" "$two" <<'PY'
import re, sys
t = [float(re.search(r"([0-9.]+) s/step", line).group(1)) for line in sys.argv[1:3]]
print(f"speed-up at 2 ranks = {t[0] / t[1]:.2f}x (ideal 2.00x; parallel efficiency {t[0] / t[1] / 2:.0%})")
PY
