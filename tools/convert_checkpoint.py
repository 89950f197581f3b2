#!/usr/bin/python3
"""Converts original checkpoint files into what sdm reads natively.

  weights IN.pt OUT.safetensors
      A torch.save state dict (OrderedDict, or wrapped as {"state_dict": ...} / {"model": ...} /
      {"model_state_dict": ...} as scBERT's and CellLM's files are) -> safetensors.
      LibTorch's own unpickler cannot rebuild OrderedDicts, so sdm reads such files after this conversion.
      Loaded with torch.load(weights_only=True), or an allow-listed unpickler where that rejects plain values:
      tensors and containers only, no arbitrary code.
  geneformer-dicts --token-dictionary T.pkl [--gene-median M.pkl] [--ensembl-mapping E.pkl] OUT.json
      Geneformer's pickled dictionaries -> one JSON file for `--vocab` / the spec's `vocab`:
      {"token_dictionary": {...}, "gene_median": {...}, "ensembl_mapping": {...}}.
      The pickles are read with an unpickler that refuses every class (plain dicts, strings, numbers only).
  scfoundation models.ckpt OUT.safetensors [--part cell|rde|gene] [--config OUT.json]
      scFoundation's checkpoint holds three sub-models, each {"config": ..., "state_dict": ...} with "model."
      prefixes: one part's tensors (prefix stripped) -> safetensors, and its config dict -> JSON for `--config`
      (the nested keys the model reads as they are: encoder.hidden_dim, encoder.depth, bin_num, pad_token_id, ...).
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


class TensorsOnly(pickle.Unpickler):
    """What a checkpoint may rebuild: tensors, parameters and ordered dicts. Plain values (dicts, lists, strings,
    numbers) need no class; anything else is refused, so loading runs no code from the file."""
    ALLOWED = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
               ("torch._utils", "_rebuild_parameter"), ("collections", "OrderedDict"), ("torch", "Size")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only tensors and containers are loaded")


def safe_load(path):
    """torch.load restricted to data. Debian's torch 1.13 weights_only unpickler rejects some plain values (floats
    in scFoundation's config), so this falls back to an unpickler with an explicit allow-list."""
    import torch
    import types
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        module = types.SimpleNamespace(Unpickler=TensorsOnly, load=lambda f, **kw: TensorsOnly(f, **kw).load(),
                                       __name__="tensors_only")
        return torch.load(path, map_location="cpu", pickle_module=module)


def convert_weights(a):
    import torch
    state = safe_load(a.input)
    for key in ("state_dict", "model", "model_state_dict"):
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


def plain(value):
    """A config value as JSON can hold it (tensors and other objects become strings)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def convert_scfoundation(a):
    import torch
    ckpt = safe_load(a.input)
    if not isinstance(ckpt, dict) or a.part not in ckpt:
        sys.exit(f"{a.input}: no sub-model '{a.part}' (has: {', '.join(map(str, ckpt)) if isinstance(ckpt, dict) else '-'})")
    part = ckpt[a.part]
    state = part.get("state_dict", part) if isinstance(part, dict) else {}
    tensors = {(k[6:] if k.startswith("model.") else k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        sys.exit(f"{a.input}: sub-model '{a.part}' has no tensors")
    write_safetensors(a.output, tensors)
    print(f"{a.output}: {len(tensors)} tensors of '{a.part}'")
    if a.config:
        with open(a.config, "w") as f:
            json.dump(plain(part.get("config", {})), f, indent=1)
        print(f"{a.config}: config of '{a.part}'")


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
    s = sub.add_parser("scfoundation")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--part", default="cell", choices=["cell", "rde", "gene"])
    s.add_argument("--config")
    a = p.parse_args()
    {"weights": convert_weights, "geneformer-dicts": convert_geneformer, "scfoundation": convert_scfoundation}[a.cmd](a)


if __name__ == "__main__":
    main()
