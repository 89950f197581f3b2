#!/usr/bin/env bash
# One embedding-throughput line per foundation model and LLM (issues 7, 8): `sdm embed --input` of one synthetic dataset
# (tokenizing included, as a sweep's embed task runs it) with each model's preset, THREADS compute threads.
# The Python peer comparison at published sizes is tools/bench/embed_throughput.sh (scGPT, Geneformer); the
# other models' references are tiny parity models only, so these lines are sdm's own figures. Each model also prints
# a `FIGURE ...` line for tools/bench/run.sh.
# usage: tools/bench/embed_models.sh [PRESET=tiny] [THREADS=2] [ROUNDS=3] [DATASET=data/synthetic/P05.h5ad]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PRESET=${1:-tiny} THREADS=${2:-2} ROUNDS=${3:-3} DATASET=${4:-data/synthetic/P05.h5ad}
SDM=${SDM:-build/sdm}
[ -f "$DATASET" ] || "$SDM" synth --out "$(dirname "$DATASET")" > /dev/null
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
echo "# preset=$PRESET threads=$THREADS rounds=$ROUNDS dataset=$DATASET"
printf "%-13s %6s %5s %9s | %s\n" model cells dim tokens "cells/s min / median (forward only)"
for model in scgpt geneformer scfoundation uce scbert celllm cellplm tgpt llama chatglm; do
  rates=()
  for ((r = 0; r < ROUNDS; r++)); do
    line=$("$SDM" embed --model $model --preset "$PRESET" --input "$DATASET" --out /tmp/sdm-bench-embed-models.h5 \
             --threads "$THREADS" 2>/dev/null)
    rates+=("$(sed -E 's/.*cells_per_s=([0-9.]+).*/\1/' <<< "$line")")
  done
  cells=$(sed -E 's/.*cells=([0-9]+).*/\1/' <<< "$line")
  dim=$(sed -E 's/.*dim=([0-9]+).*/\1/' <<< "$line")
  tokens=$(sed -E 's/.*tokens=([0-9]+).*/\1/' <<< "$line")
  /usr/bin/python3 - "$model" "$cells" "$dim" "$tokens" "$PRESET" "$THREADS" "${rates[@]}" <<'PY'
import statistics, sys
model, cells, dim, tokens, preset, threads = sys.argv[1:7]
v = [float(x) for x in sys.argv[7:]]
print(f"{model:<13} {cells:>6} {dim:>5} {tokens:>9} | {min(v):9.1f} / {statistics.median(v):9.1f}")
# machine-readable (tools/bench/run.sh): FIGURE name value unit peer better goal notes
print(f"FIGURE embed_model_{model}_{preset} {statistics.median(v):.4g} cells/s - higher - median of {len(v)} rounds, "
      f"sdm only (forward, tokenizing excluded), {cells} cells, dim {dim}, {tokens} tokens, threads={threads}")
PY
done
