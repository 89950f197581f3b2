#!/usr/bin/env bash
# Embedding throughput (issue 5): `sdm embed --tokenized` vs the Python reference forward (torch.nn, classic path,
# tests/worker/model_reference.py) on the same random weights and the same dense tokens, same thread count, in
# interleaved rounds. Both sides get the strong-peer environment of reference/peer-baselines.md
# (OPENBLAS_CORETYPE=SkylakeX where the CPU has AVX-512, OMP_WAIT_POLICY=PASSIVE) and both keep freed memory
# in the heap (the reference's --malloc tuned, sdm's default), so the comparison is like for like. Goal >= 1.3x.
# Each size also prints a `FIGURE ...` line for tools/bench/run.sh.
# usage: tools/bench/embed_throughput.sh [ROUNDS=3] [THREADS=2] [SIZES="scgpt-tiny geneformer-tiny scgpt-published geneformer-v1"]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${1:-3}
THREADS=${2:-2}
SIZES=${3:-scgpt-tiny geneformer-tiny scgpt-published geneformer-v1}
SDM=${SDM:-build/sdm}
WORK=${WORK:-/tmp/sdm-bench-embed}
REF="/usr/bin/python3 -W ignore tests/worker/model_reference.py"
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}; fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
echo "# threads=$THREADS rounds=$ROUNDS OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-} OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
printf "%-16s %5s %5s %4s | %-21s | %-21s | %s\n" size S cells B "python cells/s min/med" "sdm cells/s min/med" "ratio (median)"
for size in $SIZES; do
  case $size in
    scgpt-tiny) cells=256 batch=8 model=scgpt ;;
    geneformer-tiny) cells=256 batch=8 model=geneformer ;;
    scgpt-published) cells=16 batch=8 model=scgpt ;;
    geneformer-v1) cells=8 batch=4 model=geneformer ;;
    *) echo "unknown size $size"; exit 2 ;;
  esac
  dir=$WORK/$size
  mkdir -p "$dir"
  py=() cc=()
  for ((r = 0; r < ROUNDS; r++)); do
    line=$($REF bench "$size" "$dir/tokens.h5" --cells $cells --batch $batch --threads "$THREADS" --seed $r 2>/dev/null)
    py+=("$(sed -E 's/.*python_cells_per_s=([0-9.]+).*/\1/' <<< "$line")")
    line=$("$SDM" embed --model $model --config "$dir/config.json" --weights "$dir/weights.safetensors" \
             --tokenized "$dir/tokens.h5" --out "$dir/out.h5" --batch-size $batch --threads "$THREADS" 2>/dev/null)
    cc+=("$(sed -E 's/.*cells_per_s=([0-9.]+).*/\1/' <<< "$line")")
  done
  S=$(/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(f[list(f.keys())[0]].shape[1] if 'src' not in f else f['src'].shape[1])" "$dir/tokens.h5")
  /usr/bin/python3 - "$size" "$S" "$cells" "$batch" "${py[*]}" "${cc[*]}" "$THREADS" <<'PY'
import statistics, sys
size, S, cells, batch, py, cc, threads = sys.argv[1:8]
py = [float(x) for x in py.split()]
cc = [float(x) for x in cc.split()]
mp, mc = statistics.median(py), statistics.median(cc)
print(f"{size:<16} {S:>5} {cells:>5} {batch:>4} | {min(py):9.2f} / {mp:9.2f} | {min(cc):9.2f} / {mc:9.2f} | {mc / mp:.2f}x")
# machine-readable (tools/bench/run.sh): FIGURE name value unit peer better goal notes
print(f"FIGURE embed_{size} {mc:.4g} cells/s {mp:.4g} higher >=1.3 median of {len(cc)} rounds, S={S} B={batch} "
      f"threads={threads}; min sdm {min(cc):.4g} / python {min(py):.4g}")
PY
  # the ceiling any port reaches on this BLAS with these FLOPs (tools/bench/gemm_bound.py)
  read -r mp mc < <(/usr/bin/python3 -c 'import statistics, sys; print(*(statistics.median(map(float, a.split())) for a in sys.argv[1:]))' "${py[*]}" "${cc[*]}")
  /usr/bin/python3 tools/bench/gemm_bound.py "$size" --threads "$THREADS" --python-cells-per-s "$mp" --sdm-cells-per-s "$mc"
done
