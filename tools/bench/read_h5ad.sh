#!/usr/bin/env bash
# Reader benchmark (issue "Data layer", CONTRACTS §11): our .h5ad reader vs anndata.read_h5ad on the peer
# recipe (100k x 20k CSR float32 at 7 %), a fresh process per run, runs interleaved; prints min and median
# cells/s of both, the ratio, and our peak RSS relative to the CSR bytes (and `FIGURE ...` lines for run.sh).
# usage: tools/bench/read_h5ad.sh [ROUNDS=7] [N=100000] [G=20000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${1:-7}; N=${2:-100000}; G=${3:-20000}
BUILD_DIR=${BUILD_DIR:-build}
DIR=${SDM_BENCH_DIR:-/tmp/sdm-bench}
FILE=$DIR/csr_${N}x${G}.h5ad
mkdir -p "$DIR"
[ -x "$BUILD_DIR/tools/bench/bench_read_h5ad" ] || cmake --build "$BUILD_DIR" --target bench_read_h5ad
[ -f "$FILE" ] || /usr/bin/python3 tools/bench/make_csr_h5ad.py "$FILE" "$N" "$G" 0.07
cat "$FILE" > /dev/null   # both sides read from a hot page cache
: > "$DIR/sdm.txt"; : > "$DIR/anndata.txt"
for ((i = 0; i < ROUNDS; i++)); do
  "$BUILD_DIR/tools/bench/bench_read_h5ad" "$FILE" >> "$DIR/sdm.txt"
  /usr/bin/python3 tools/bench/read_anndata.py "$FILE" >> "$DIR/anndata.txt"
done
/usr/bin/python3 - "$DIR/sdm.txt" "$DIR/anndata.txt" "$N" "$G" <<'PY'
import statistics, sys
sdm = [list(map(float, l.split())) for l in open(sys.argv[1])]
ad = [list(map(float, l.split())) for l in open(sys.argv[2])]
n = int(sys.argv[3])
st, at = [r[0] for r in sdm], [r[0] for r in ad]
csr_bytes = sdm[0][3]
rss = max(r[2] for r in sdm) * 1024
print(f"reader: {n} cells, nnz {int(sdm[0][1])}, CSR {csr_bytes / 2**20:.0f} MiB, {len(st)} interleaved rounds")
print(f"READ_SDM      min {n / min(st):10.0f} cells/s   median {n / statistics.median(st):10.0f} cells/s")
print(f"READ_ANNDATA  min {n / min(at):10.0f} cells/s   median {n / statistics.median(at):10.0f} cells/s")
print(f"READ_RATIO    min {min(at) / min(st):.2f}x   median {statistics.median(at) / statistics.median(st):.2f}x   (goal >= 2x)")
print(f"READ_PEAK_RSS {rss / 2**20:.0f} MiB = {rss / csr_bytes:.2f}x CSR bytes   (goal <= 1.5x)")
# machine-readable (tools/bench/run.sh): FIGURE name value unit peer better goal notes
shape = f"{n} cells x {sys.argv[4]} genes, nnz {int(sdm[0][1])}, {len(st)} interleaved rounds, fresh process each"
print(f"FIGURE read_h5ad_min_time {n / min(st):.0f} cells/s {n / min(at):.0f} higher >=2 min time, {shape}")
print(f"FIGURE read_h5ad_median_time {n / statistics.median(st):.0f} cells/s {n / statistics.median(at):.0f} higher >=2 "
      f"median time, {shape}")
print(f"FIGURE read_h5ad_peak_rss {rss / csr_bytes:.3f} x_CSR_bytes - lower <=1.5 sdm peak RSS {rss / 2**20:.0f} MiB, "
      f"CSR {csr_bytes / 2**20:.0f} MiB (anndata: {max(r[2] for r in ad) / 1024:.0f} MiB)")
PY
