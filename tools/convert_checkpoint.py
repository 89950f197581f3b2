#!/usr/bin/python3
"""Converts original checkpoint files into what sdm reads natively.

  weights IN.pt OUT.safetensors
      A torch.save state dict (OrderedDict, or wrapped as {"state_dict": ...} / {"model": ...}) -> safetensors.
      LibTorch's own unpickler cannot rebuild OrderedDicts, so sdm reads such files after this conversion.
      Loaded with torch.load(weights_only=True): tensors and containers only, no arbitrary code.
  geneformer-dicts --token-dictionary T.pkl [--gene-median M.pkl] [--ensembl-mapping E.pkl] OUT.json
      Geneformer's pickled dictionaries -> one JSON file for `--vocab` / the spec's `vocab`:
      {"token_dictionary": {...}, "gene_median": {...}, "ensembl_mapping": {...}}.
      The pickles are read with an unpickler that refuses every class (plain dicts, strings, numbers only).
"""
import argparse
import io
import json
import os
import pickle
import struct
import sys

DTYPES = {"torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16", "torch.float64": "F64",
          "torch.int64": "I64", "torch.int32": "I32", "torch.int16": "I16", "torch.int8": "I8", "torch.uint8": "U8",
          "torch.bool": "BOOL"}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes() if str(t.dtype) != "torch.bfloat16" else \
            t.detach().contiguous().cpu().view(dtype=__import__("torch").int16).numpy().tobytes()
        header[name] = {"dtype": DTYPES[str(t.dtype)], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def convert_weights(a):
    import torch
    state = torch.load(a.input, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        sys.exit(f"{a.input}: no tensors found")
    write_safetensors(a.output, tensors)
    print(f"{a.output}: {len(tensors)} tensors")


class DataOnly(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only plain dictionaries are converted")


def read_dict(path):
    with open(path, "rb") as f:
        d = DataOnly(io.BytesIO(f.read())).load()
    if not isinstance(d, dict):
        sys.exit(f"{path}: expected a dict, got {type(d).__name__}")
    return d


def convert_geneformer(a):
    out = {"token_dictionary": {str(k): int(v) for k, v in read_dict(a.token_dictionary).items()}}
    if a.gene_median:
        out["gene_median"] = {str(k): float(v) for k, v in read_dict(a.gene_median).items()}
    if a.ensembl_mapping:
        out["ensembl_mapping"] = {str(k): str(v) for k, v in read_dict(a.ensembl_mapping).items()}
    with open(a.output, "w") as f:
        json.dump(out, f)
    print(f"{a.output}: {len(out['token_dictionary'])} tokens, {len(out.get('gene_median', {}))} medians")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("weights")
    w.add_argument("input")
    w.add_argument("output")
    g = sub.add_parser("geneformer-dicts")
    g.add_argument("--token-dictionary", required=True)
    g.add_argument("--gene-median")
    g.add_argument("--ensembl-mapping")
    g.add_argument("output")
    a = p.parse_args()
    convert_weights(a) if a.cmd == "weights" else convert_geneformer(a)


if __name__ == "__main__":
    main()
