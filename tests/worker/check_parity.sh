#!/usr/bin/env bash
# check_parity.sh SDM VARIANT WEIGHTS DIR: the Python reference makes a tiny model (weights, tokens, expected
# outputs), `sdm embed --tokenized --states` runs it, and the reference compares (1e-5).
# WEIGHTS: safetensors | pt (plain dict) | ordered (OrderedDict .pt, converted by tools/convert_checkpoint.py)
#        | wrong-layer | wrong-pool | no-mask (the reference's deliberately broken output: the comparison must fail).
# Variants scfoundation, uce, uce-exclude, scbert, celllm use model_reference_fm2.py (safetensors; scfoundation
# also ckpt: its models.ckpt through tools/convert_checkpoint.py scfoundation); cellplm, tgpt, llama, chatglm use
# model_reference_fm3.py (safetensors, or sharded: three shards + model.safetensors.index.json, read mapped for the
# LLMs), with bugs per-cell | no-causal | no-rope | rope-halves.
set -euo pipefail
sdm=$1 variant=$2 weights=$3 dir=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model=${variant%%-*}
case $model in
  scfoundation|uce|scbert|celllm) ref="/usr/bin/python3 $here/model_reference_fm2.py" ;;  # Foundation models II
  cellplm|tgpt|llama|chatglm) ref="/usr/bin/python3 $here/model_reference_fm3.py" ;;      # Foundation models III
  *) ref="/usr/bin/python3 $here/model_reference.py" ;;
esac
rm -rf "$dir" && mkdir -p "$dir"
$ref make "$variant" "$dir" --seed 3 > /dev/null
case $weights in
  safetensors) file=$dir/weights.safetensors ;;
  pt) file=$dir/weights.pt ;;
  ordered)
    # LibTorch cannot unpickle an OrderedDict: sdm says so and names the converter
    if "$sdm" embed --model "$model" --preset tiny --config "$dir/config.json" --weights "$dir/weights_ordered.pt" \
        --tokenized "$dir/tokens.h5" --out "$dir/out.h5" 2> "$dir/err.txt"; then
      echo "expected a clear error for an OrderedDict checkpoint"; exit 1
    fi
    grep -q "convert_checkpoint.py" "$dir/err.txt" || { cat "$dir/err.txt"; exit 1; }
    /usr/bin/python3 "$here/../../tools/convert_checkpoint.py" weights "$dir/weights_ordered.pt" "$dir/converted.safetensors"
    file=$dir/converted.safetensors ;;
  ckpt)
    # scFoundation's models.ckpt: the converter exports the 'cell' part and its config dict, used as they are
    /usr/bin/python3 "$here/../../tools/convert_checkpoint.py" scfoundation "$dir/models.ckpt" "$dir/cell.safetensors" \
      --part cell --config "$dir/cell_config.json"
    cp "$dir/cell_config.json" "$dir/config.json"
    file=$dir/cell.safetensors ;;
  sharded)
    # a Hugging Face style sharded checkpoint: the weights directory is given, sdm finds the index
    SDM_REF_DIR=$here /usr/bin/python3 - "$dir" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ.get("SDM_REF_DIR", ""))
from model_reference import read_safetensors, write_safetensors
d = sys.argv[1]
state = read_safetensors(os.path.join(d, "weights.safetensors"))
os.makedirs(os.path.join(d, "sharded"))
names = list(state)
weight_map = {}
for k in range(3):
    shard = f"model-{k + 1:05d}-of-00003.safetensors"
    part = {n: state[n] for n in names[k::3]}
    write_safetensors(os.path.join(d, "sharded", shard), part)
    weight_map.update({n: shard for n in part})
json.dump({"metadata": {}, "weight_map": weight_map}, open(os.path.join(d, "sharded", "model.safetensors.index.json"), "w"))
PY
    file=$dir/sharded ;;
  wrong-layer|wrong-pool|no-mask|per-cell|no-causal|no-rope|rope-halves)
    $ref emulate "$dir" "$dir/out.h5" --bug "$weights"
    exec $ref compare "$dir" "$dir/out.h5" --states ;;
  *) echo "unknown weights kind $weights"; exit 2 ;;
esac
"$sdm" embed --model "$model" --preset tiny --config "$dir/config.json" --weights "$file" \
  --tokenized "$dir/tokens.h5" --out "$dir/out.h5" --states --batch-size 2 --threads 1
$ref compare "$dir" "$dir/out.h5" --states
# without --states a model may take its embedding-only path (scGPT and UCE run the last layer at <cls> only)
"$sdm" embed --model "$model" --preset tiny --config "$dir/config.json" --weights "$file" \
  --tokenized "$dir/tokens.h5" --out "$dir/out_cells.h5" --batch-size 2 --threads 1
$ref compare "$dir" "$dir/out_cells.h5"
