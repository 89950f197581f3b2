#!/usr/bin/env bash
# check_parity.sh SDM VARIANT WEIGHTS DIR: the Python reference makes a tiny model (weights, tokens, expected
# outputs), `sdm embed --tokenized --states` runs it, and the reference compares (1e-5).
# WEIGHTS: safetensors | pt (plain dict) | ordered (OrderedDict .pt, converted by tools/convert_checkpoint.py)
#        | wrong-layer | wrong-pool | no-mask (the reference's deliberately broken output: the comparison must fail).
# Variants scfoundation, uce, uce-exclude, scbert, celllm use model_reference_fm2.py (safetensors; scfoundation
# also ckpt: its models.ckpt through tools/convert_checkpoint.py scfoundation).
set -euo pipefail
sdm=$1 variant=$2 weights=$3 dir=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model=${variant%%-*}
case $model in
  scfoundation|uce|scbert|celllm) ref="/usr/bin/python3 $here/model_reference_fm2.py" ;;  # Foundation models II
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
  wrong-layer|wrong-pool|no-mask)
    $ref emulate "$dir" "$dir/out.h5" --bug "$weights"
    exec $ref compare "$dir" "$dir/out.h5" --states ;;
  *) echo "unknown weights kind $weights"; exit 2 ;;
esac
"$sdm" embed --model "$model" --preset tiny --config "$dir/config.json" --weights "$file" \
  --tokenized "$dir/tokens.h5" --out "$dir/out.h5" --states --batch-size 2 --threads 1
$ref compare "$dir" "$dir/out.h5" --states
