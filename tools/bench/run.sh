#!/usr/bin/env bash
# Every benchmark of the project in one command (issue 11). Runs the scripts of tools/bench/, collects the
# `FIGURE name value unit peer better goal notes` lines they print, and prints one line per figure:
#   NAME value unit (peer VALUE, ratio R, goal >= G: met)
# ratio = value / peer where higher is better, peer / value where lower is better: > 1 always means sdm is better.
# A goal applies to the ratio where there is a peer, else to the value. All figures go to a JSON list of
# {name, value, unit, peer, ratio, goal, met, notes} (default file: WORKDIR/results.json); its first entry,
# "machine", carries the header (CPU, cores, memory, date, git sha, mode, load average) in notes. A sub-benchmark that fails prints a FAILED line, gets an entry with value null and
# met false, and makes the command exit 1 after the others have run.
#
#   P1  embed throughput vs the Python reference forward (embed_throughput.sh), sdm-only embed lines per model
#       (embed_models.sh), LoRA training step vs a PyTorch step (lora_step.sh)
#   P2  .h5ad read vs anndata.read_h5ad, peak RSS (read_h5ad.sh)
#   P3  sweep strong scaling at 1, 2, 4 workers (sweep_scaling.sh)
#   P4  orchestration overhead per task, consolidation time (sweep_overhead.sh)
#   P5  bucketed all-reduce vs raw MPI_Allreduce (data_parallel.sh part a); LoRA step speed-up at 2 ranks (part b)
#
# --quick: small sizes and rounds (a smoke test, ~1-3 minutes on 2 cores); default: the settings README's
# Performance section quotes (long: the published-size embeddings and the 100k x 20k reader file).
# usage: tools/bench/run.sh [--quick] [--out results.json] [--only P1,P3,...] [--workdir /tmp/sdm-bench-run]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
QUICK=0 OUT="" ONLY="" WORK=/tmp/sdm-bench-run
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --out) OUT=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --workdir) WORK=$2; shift ;;
    -h|--help) sed -n '2,/^# usage/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (usage: run.sh [--quick] [--out FILE] [--only P1,P2,...] [--workdir DIR])" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$WORK/logs"
OUT=${OUT:-$WORK/results.json}
export SDM=${SDM:-build/sdm}
T0=$(date +%s.%N)

# ---------------------------------------------------------------------------------------------- machine header
cpu=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -1)
fam=$(sed -nE 's/^cpu family\s*:\s*//p' /proc/cpuinfo | head -1)
mod=$(sed -nE 's/^model\s*:\s*//p' /proc/cpuinfo | head -1)
grep -q avx512f /proc/cpuinfo && cpu="$cpu (family $fam model $mod, AVX-512)" || cpu="$cpu (family $fam model $mod)"
cores=$(getconf _NPROCESSORS_ONLN)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && sha="$sha+dirty"
mode=$([ $QUICK = 1 ] && echo quick || echo full)
HEADER="sdm benchmarks ($mode): CPU $cpu, $cores cores, $mem RAM, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), git $sha, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $HEADER"

# ---------------------------------------------------------------------------------------------- binaries
for target in bench_read_h5ad bench_data_parallel; do
  [ -x "build/tools/bench/$target" ] || cmake --build build --target "$target" -j2 > "$WORK/logs/build-$target.log" 2>&1 ||
    echo "# building $target FAILED (see $WORK/logs/build-$target.log)"
done
[ -x "$SDM" ] || cmake --build build --target sdm -j2 > "$WORK/logs/build-sdm.log" 2>&1 || echo "# building sdm FAILED"

# ---------------------------------------------------------------------------------------------- runs
: > "$WORK/figures.txt"
: > "$WORK/failures.txt"
FAILED=0
bench() {  # bench ID NAME command...: runs one sub-benchmark, its output into logs/NAME.log
  local id=$1 name=$2; shift 2
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$id,"* ]]; then return 0; fi
  local log=$WORK/logs/$name.log start end rc n
  start=$(date +%s.%N)
  "$@" > "$log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  n=$(grep -c '^FIGURE ' "$log")
  grep '^FIGURE ' "$log" | sed "s/^FIGURE /$id /" >> "$WORK/figures.txt"
  if [ $rc -ne 0 ] || [ "$n" -eq 0 ]; then
    FAILED=1
    echo "$id $name exit=$rc figures=$n log=$log" >> "$WORK/failures.txt"
    printf "# %-3s %-16s FAILED (exit %d, %d figures) after %5.1f s; log %s:\n" "$id" "$name" "$rc" "$n" \
      "$(echo "$end - $start" | bc)" "$log"
    tail -6 "$log" | sed 's/^/#     | /'
  else
    printf "# %-3s %-16s ok, %2d figures in %5.1f s\n" "$id" "$name" "$n" "$(echo "$end - $start" | bc)"
  fi
}

if [ $QUICK = 1 ]; then
  bench P1 embed_throughput env WORK="$WORK/embed" bash tools/bench/embed_throughput.sh 1 2 "scgpt-tiny geneformer-tiny"
  # a smaller P05 (scale 0.005: ~80 cells) than the README's (scale 0.02, 335 cells)
  [ -f "$WORK/embed-data/P05.h5ad" ] || "$SDM" synth --out "$WORK/embed-data" --scale 0.005 --only P05 > /dev/null
  bench P1 embed_models bash tools/bench/embed_models.sh tiny 2 1 "$WORK/embed-data/P05.h5ad"
  bench P1 lora_step env WORK="$WORK/lora" bash tools/bench/lora_step.sh 2 16 4 128
  bench P2 read_h5ad bash tools/bench/read_h5ad.sh 3 20000 5000
  bench P3 sweep_scaling bash tools/bench/sweep_scaling.sh 0.01 300 1 "P01 P02 P05" "1 2 4" "$WORK/scaling"
  bench P4 sweep_overhead bash tools/bench/sweep_overhead.sh 1000 "$WORK/sweep"
  bench P5 allreduce env PARTS=a bash tools/bench/data_parallel.sh 3
  bench P5 lora_dp env PARTS=b bash tools/bench/data_parallel.sh 3 scgpt tiny 16 3 64
else
  bench P1 embed_throughput env WORK="$WORK/embed" bash tools/bench/embed_throughput.sh 3 2 \
    "scgpt-tiny geneformer-tiny scgpt-published geneformer-v1"
  bench P1 embed_models bash tools/bench/embed_models.sh tiny 2 3
  bench P1 lora_step env WORK="$WORK/lora" bash tools/bench/lora_step.sh 3 64 8 256
  bench P2 read_h5ad bash tools/bench/read_h5ad.sh 11 100000 20000
  bench P3 sweep_scaling bash tools/bench/sweep_scaling.sh 0.05 2000 4 "P01 P02 P05 P08 P10 P12" "1 2 4" "$WORK/scaling"
  bench P4 sweep_overhead bash tools/bench/sweep_overhead.sh 10000 "$WORK/sweep"
  bench P5 allreduce env PARTS=a bash tools/bench/data_parallel.sh 11
  bench P5 lora_dp env PARTS=b bash tools/bench/data_parallel.sh 3 scgpt tiny 64 8 256
fi
T1=$(date +%s.%N)

# ---------------------------------------------------------------------------------------------- report
/usr/bin/python3 - "$WORK/figures.txt" "$WORK/failures.txt" "$OUT" "$HEADER" "$(echo "$T1 - $T0" | bc)" <<'PY'
import json, math, sys

figures_txt, failures_txt, out, header, total = sys.argv[1:6]


def num(s):
    if s in ("-", ""):
        return None
    v = float(s)
    return v if math.isfinite(v) else None


def meets(x, goal):
    for op in (">=", "<=", ">", "<"):
        if goal.startswith(op):
            g = float(goal[len(op):])
            return {">=": x >= g, "<=": x <= g, ">": x > g, "<": x < g}[op]
    raise ValueError(f"goal {goal!r}")


def fmt(x):
    if x is None:
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


rows = [{"name": "machine", "value": None, "unit": None, "peer": None, "ratio": None, "goal": None, "met": None,
         "notes": f"{header}; benchmarks took {float(total):.0f} s"}]
lines = []
for line in open(figures_txt):
    part = line.rstrip("\n").split(" ", 8)
    part += [""] * (9 - len(part))
    bench_id, name, value, unit, peer, better, goal, notes = part[0], part[1], num(part[2]), part[3], num(part[4]), \
        part[5], part[6], part[7] + (" " + part[8] if part[8] else "")
    ratio = None
    if peer is not None and value:
        ratio = value / peer if better == "higher" else peer / value
    met = None
    goal = None if goal in ("-", "") else goal
    if goal is not None:
        x = ratio if peer is not None else value
        met = None if x is None else bool(meets(x, goal))
    rows.append({"name": name, "value": value, "unit": unit, "peer": peer, "ratio": ratio, "goal": goal, "met": met,
                 "notes": f"[{bench_id}] {notes.strip()}"})
    extra = []
    if peer is not None:
        extra.append(f"peer {fmt(peer)}, ratio {fmt(ratio)}")
    if goal is not None:
        on = "ratio" if peer is not None else "value"
        op = goal.rstrip("0123456789.")
        extra.append(f"goal {on} {op} {goal[len(op):]}: {'met' if met else 'NOT met'}")
    lines.append(f"{name} {fmt(value)} {unit}" + (f" ({'; '.join(extra)})" if extra else ""))
for line in open(failures_txt):
    bench_id, name, *rest = line.split()
    rows.append({"name": f"{name}_FAILED", "value": None, "unit": None, "peer": None, "ratio": None, "goal": None,
                 "met": False, "notes": f"[{bench_id}] sub-benchmark failed: {' '.join(rest)}"})
    lines.append(f"FAILED {name} ({' '.join(rest)})")
print("\n".join(lines))
with open(out, "w") as f:
    json.dump(rows, f, indent=1)
    f.write("\n")
goals = [r for r in rows if r["goal"] is not None]
print(f"# {len(rows) - 1} entries, goals met {sum(bool(r['met']) for r in goals)} of {len(goals)}; "
      f"benchmarks took {float(total):.0f} s; JSON: {out}")
PY
rc=$?
[ $rc -ne 0 ] && { echo "# report FAILED (exit $rc)"; exit 1; }
if [ $FAILED -ne 0 ]; then
  echo "# FAILED sub-benchmarks: $(cut -d' ' -f2 "$WORK/failures.txt" | tr '\n' ' ')(logs in $WORK/logs)"
  exit 1
fi
exit 0
