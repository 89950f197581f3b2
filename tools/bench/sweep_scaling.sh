#!/usr/bin/env bash
# Sweep strong scaling (issue 11): one fixed sweep — baselines logreg and mlp, pooled 2-fold cell split +
# cross-data over DATASETS synthetic datasets, seeds 0..SEEDS-1 — run with 1, 2 and 4 workers (mpirun -np 2, 3, 5: rank 0 schedules),
# the same spec each time into a fresh store, one compute thread per worker (OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1,
# --threads 1; CONTRACTS §11). Wall time of each `mpirun ... sdm sweep` (start, expansion, cells, consolidation);
# efficiency at n workers = T1 / (n x Tn). Goal >= 0.9 at 2 workers. Also the engine's own figure: the cells/s
# the sweep reports (cells only, without mpirun's start and the consolidation), as efficiency = Rn / (n x R1). On a machine with fewer cores than ranks the
# point is oversubscribed and labelled so.
# usage: tools/bench/sweep_scaling.sh [SCALE=0.05] [GENES=2000] [SEEDS=4] [DATASETS="P01 P02 P05 P08 P10 P12"]
#        [WORKERS="1 2 4"] [WORKDIR=/tmp/sdm-bench-scaling]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SCALE=${1:-0.05} GENES=${2:-2000} SEEDS=${3:-4} DATASETS=${4:-P01 P02 P05 P08 P10 P12} WORKERS=${5:-1 2 4}
WORK=${6:-/tmp/sdm-bench-scaling}
SDM=${SDM:-build/sdm}
CORES=$(getconf _NPROCESSORS_ONLN)  # before OMP_NUM_THREADS is set: GNU nproc honours it
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
source tools/mpi_env.sh
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none -x OPENBLAS_NUM_THREADS=1 -x OMP_NUM_THREADS=1)
rm -rf "$WORK" && mkdir -p "$WORK"
# shellcheck disable=SC2086
"$SDM" synth --out "$WORK/data" --scale "$SCALE" --genes "$GENES" --only $DATASETS > /dev/null
/usr/bin/python3 - "$WORK" "$DATASETS" "$SEEDS" <<'PY'
import json, sys
work, datasets, seeds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
open(f"{work}/spec.yaml", "w").write(f"""name: scaling
store: STORE
data:
  root: {work}/data
  catalog: {work}/data/catalog.yaml
  datasets: {json.dumps(datasets)}
  label: {{column: condition, sensitive: [sensitive], resistant: [resistant]}}
models: [{{"name": "logreg"}}, {{"name": "mlp"}}]
protocols: [{{"name": "pooled", "folds": 2, "split": "cell"}}, {{"name": "cross-data"}}]
train: {{epochs: 3, batch_size: 64, lr: 1.0e-3}}
preprocess: {{hvg: 200, pca: 20}}
seeds: {list(range(seeds))}
""")
PY
cells=$(sed "s#STORE#$WORK/dry/store.h5#" "$WORK/spec.yaml" > "$WORK/dry.yaml" && "$SDM" sweep "$WORK/dry.yaml" --dry-run | sed -nE 's/^cells: ([0-9]+).*/\1/p')
echo "# sweep: ${cells} cells (logreg, mlp x pooled 2-fold cell + cross-data over: $DATASETS; $SEEDS seeds), scale=$SCALE genes=$GENES, $CORES cores, 1 thread per worker"
times=() rates=()
for w in $WORKERS; do
  run=$WORK/w$w
  mkdir -p "$run"
  sed "s#STORE#$run/store.h5#" "$WORK/spec.yaml" > "$run/spec.yaml"
  start=$(date +%s.%N)
  "${MPIRUN[@]}" -np $((w + 1)) "$SDM" sweep "$run/spec.yaml" --threads 1 > "$run/out.log" 2> "$run/err.log" || {
    echo "sweep with $w workers FAILED (see $run/err.log)"; tail -5 "$run/err.log"; exit 1; }
  end=$(date +%s.%N)
  done_cells=$(grep -c '"status":"done"' "$run/journal.jsonl" || true)
  [ "$done_cells" = "$cells" ] || { echo "sweep with $w workers: $done_cells of $cells cells done"; exit 1; }
  times+=("$(/usr/bin/python3 -c "print(float('$end') - float('$start'))")")
  rates+=("$(sed -nE 's/.*sweep scaling: .* done, .* \| ([0-9.]+) cells\/s.*/\1/p' "$run/err.log" | tail -1)")
done
/usr/bin/python3 - "$cells" "$CORES" "$WORKERS" "${times[*]}" "${rates[*]}" <<'PY'
import sys
cells, cores = int(sys.argv[1]), int(sys.argv[2])
workers = [int(w) for w in sys.argv[3].split()]
times = [float(t) for t in sys.argv[4].split()]
rates = [float(r) for r in sys.argv[5].split()]
t1 = dict(zip(workers, times)).get(1)
r1 = dict(zip(workers, rates)).get(1)
print(f"{'workers':>7} {'ranks':>5} {'wall s':>8} {'cells/s':>8} {'speed-up':>8} {'efficiency':>10} | engine cells/s, efficiency")
for w, t, r in zip(workers, times, rates):
    over = w > cores  # rank 0 sleeps while it waits (probe + backoff): the workers are what needs a core
    label = " (oversubscribed: %d workers + rank 0 on %d cores)" % (w, cores) if over else ""
    if t1 is None:
        print(f"{w:>7} {w + 1:>5} {t:8.2f} {cells / t:8.2f}{label}")
        continue
    eff = t1 / (w * t)
    reff = r / (w * r1)
    print(f"{w:>7} {w + 1:>5} {t:8.2f} {cells / t:8.2f} {t1 / t:7.2f}x {eff:10.2f} | {r:8.2f} {reff:5.2f}{label}")
    goal = ">=0.9" if w == 2 else "-"
    fixed = t - cells / r  # mpirun's launch, loading the binary, planning, consolidation, shutdown
    print(f"{'':>7} {'':>5} fixed part (wall minus the cells' own time) {fixed:.2f} s")
    note = (f"T{w}={t:.2f}s" + (f" T1={t1:.2f}s" if w > 1 else "") + f" fixed {fixed:.2f}s cells={cells} ranks={w + 1} cores={cores}"
            + (" oversubscribed" if over else ""))
    if w > 1:
        tag = f"{w}w{'_oversubscribed' if over else ''}"
        print(f"FIGURE sweep_scaling_efficiency_{tag} {eff:.3f} T1/(n*Tn) - higher {goal} {note}")
        print(f"FIGURE sweep_engine_efficiency_{tag} {reff:.3f} Rn/(n*R1) - higher - engine cells/s R{w}={r:.2f} "
              f"R1={r1:.2f} (cells only: no mpirun start, no consolidation)")
    print(f"FIGURE sweep_wall_{w}w {t:.2f} s - lower - {cells / t:.2f} cells/s, {note}")
PY
