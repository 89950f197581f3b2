#!/usr/bin/env bash
# Data-parallel benchmarks (issue 6), one compute thread per rank (CONTRACTS §11):
#  (a) bucketed gradient all-reduce of the whole-human scGPT's parameter set (51M float32, 25 MB buckets as DDP)
#      vs one raw MPI_Allreduce of the same bytes, at 2 ranks: both bandwidths and the ratio (goal >= 0.8);
#  (b) LoRA fine-tuning step time at 1 and at 2 ranks for the same global batch, and the speed-up.
# Each part also prints a `FIGURE ...` line for tools/bench/run.sh. PARTS="a" (or "b") runs one part only.
# usage: [PARTS="a b"] tools/bench/data_parallel.sh [ROUNDS=5] [MODEL=scgpt] [PRESET=tiny] [BATCH=64] [STEPS=8] [LENGTH=256]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${1:-5} MODEL=${2:-scgpt} PRESET=${3:-tiny} BATCH=${4:-64} STEPS=${5:-8} LENGTH=${6:-256}
PARTS=${PARTS:-a b}
BIN=${BIN:-build/tools/bench/bench_data_parallel}
source tools/mpi_env.sh
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none -x OPENBLAS_NUM_THREADS=1 -x OMP_NUM_THREADS=1)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [[ " $PARTS " == *" a "* ]]; then
  echo "== (a) gradient all-reduce, 2 ranks"
  out=$("${MPIRUN[@]}" -np 2 "$BIN" allreduce "$ROUNDS" 25)
  echo "$out"
  /usr/bin/python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
raw = float(re.search(r"raw MPI_Allreduce:.* ([0-9.]+) MB/s", out).group(1))
bucketed = float(re.search(r"bucketed all-reduce:.* ([0-9.]+) MB/s", out).group(1))
head = [line for line in out.splitlines() if line.startswith("allreduce ranks=")][0]
# machine-readable (tools/bench/run.sh): FIGURE name value unit peer better goal notes
print(f"FIGURE allreduce_bucketed_bandwidth {bucketed:.0f} MB/s {raw:.0f} higher >=0.8 peer: one raw MPI_Allreduce "
      f"of the same bytes, median; {head.replace('allreduce ', '')}")
PY
fi
if [[ " $PARTS " == *" b "* ]]; then
  echo "== (b) LoRA step, same global batch"
  one=$("${MPIRUN[@]}" -np 1 "$BIN" lora-step "$MODEL" "$PRESET" "$BATCH" "$STEPS" "$LENGTH" | tail -1)
  two=$("${MPIRUN[@]}" -np 2 "$BIN" lora-step "$MODEL" "$PRESET" "$BATCH" "$STEPS" "$LENGTH" | tail -1)
  echo "$one"
  echo "$two"
  /usr/bin/python3 - "$one" "$two" "$MODEL" "$PRESET" "$BATCH" "$LENGTH" "$STEPS" <<'PY'
import re, sys
t = [float(re.search(r"([0-9.]+) s/step", line).group(1)) for line in sys.argv[1:3]]
model, preset, batch, length, steps = sys.argv[3:8]
print(f"speed-up at 2 ranks = {t[0] / t[1]:.2f}x (ideal 2.00x; parallel efficiency {t[0] / t[1] / 2:.0%})")
print(f"FIGURE lora_step_speedup_2ranks_{model}_{preset} {t[0] / t[1]:.3f} x - higher - 1 rank {t[0]:.4f} s/step -> "
      f"2 ranks {t[1]:.4f} s/step, global batch {batch} x {length} tokens, {steps} steps, 1 thread per rank")
PY
fi
