#!/usr/bin/env bash
# check_parity.sh SDM VARIANT WEIGHTS DIR: the Python reference makes a tiny model (weights, tokens, expected
# outputs), `sdm embed --tokenized --states` runs it, and the reference compares (1e-5).
# WEIGHTS: safetensors | pt (plain dict) | ordered (OrderedDict .pt, converted by tools/convert_checkpoint.py)
#        | wrong-layer (the reference's deliberately broken output: the comparison must fail).
set -euo pipefail
sdm=$1 variant=$2 weights=$3 dir=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ref="/usr/bin/python3 $here/model_reference.py"
rm -rf "$dir" && mkdir -p "$dir"
$ref make "$variant" "$dir" --seed 3 > /dev/null
model=${variant%%-*}
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
  wrong-layer)
    $ref emulate "$dir" "$dir/out.h5" --bug wrong-layer
    exec $ref compare "$dir" "$dir/out.h5" --states ;;
  *) echo "unknown weights kind $weights"; exit 2 ;;
esac
"$sdm" embed --model "$model" --preset tiny --config "$dir/config.json" --weights "$file" \
  --tokenized "$dir/tokens.h5" --out "$dir/out.h5" --states --batch-size 2 --threads 1
$ref compare "$dir" "$dir/out.h5" --states
