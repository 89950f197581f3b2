#!/usr/bin/env python3
"""Independent Python reference for the scGPT and Geneformer encoders (shared/reference/models.md §1-2).

The models are assembled from torch.nn built-ins under the published parameter names, so the C++ port is
checked against torch's own layers rather than against a second copy of its own logic.

  make VARIANT OUTDIR [--seed N]        VARIANT: scgpt | geneformer-v1 | geneformer-v2
      -> config.json, weights.safetensors, weights.pt, tokens.h5, expected.h5, meta.json
  compare OUTDIR OUT_H5 [--tol 1e-5] [--states]
      -> checks an `sdm embed --tokenized` output against expected.h5; exit 1 on mismatch
  emulate OUTDIR OUT_H5 [--bug NAME]
      -> writes what a correct (or deliberately wrong) float32 port would write, read back from the files
         on disk; used to prove that `compare` can fail
  bench VARIANT_SIZE TOKENS_OUT [--cells N] [--length S] [--batch B] [--threads T] [--seed N]
        [--malloc tuned|default]
      -> writes TOKENS_OUT + config.json + weights.safetensors beside it, times the Python forward and
         prints `python_cells_per_s=<f> n=<cells> batch=<B> seconds=<f>`
"""
import os
import sys

if len(sys.argv) > 1 and sys.argv[1] == "bench":
    # The "strong peer" of peer-baselines.md §2-3. Both variables are read when torch loads OpenBLAS/OpenMP,
    # so they must be set before the import; setdefault lets a caller override them.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with open("/proc/cpuinfo") as f:
        if "avx512f" in f.read():  # forcing SkylakeX kernels on a CPU without AVX-512 would SIGILL
            os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")

import argparse
import ctypes
import json
import math
import struct
import time
from collections import OrderedDict

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SCGPT_CONFIG = {"embsize": 32, "nheads": 4, "d_hid": 48, "nlayers": 2, "n_bins": 51, "pad_value": -2,
                "max_seq_len": 1200, "dropout": 0.2, "ntoken": 300, "pad_token": "<pad>"}
BERT_CONFIG = {"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": 32,
               "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 48, "vocab_size": 300,
               "max_position_embeddings": 64, "layer_norm_eps": 1e-12, "hidden_act": "relu",
               "type_vocab_size": 2, "pad_token_id": 0, "hidden_dropout_prob": 0.02,
               "attention_probs_dropout_prob": 0.02}
LENGTHS = [7, 12, 3, 12, 9]  # real tokens per test cell, specials included; L = max
# name -> (family, config overrides, default sequence length)
BENCH = {
    "scgpt-tiny": ("scgpt", dict(ntoken=60697, embsize=64, nlayers=2, nheads=4, d_hid=128), 256),
    "scgpt-published": ("scgpt", dict(ntoken=60697, embsize=512, nlayers=12, nheads=8, d_hid=512), 1200),
    "geneformer-tiny": ("bert", dict(vocab_size=25426, hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=128), 256),
    "geneformer-v1": ("bert", dict(vocab_size=25426, hidden_size=256, num_hidden_layers=6,
                                   num_attention_heads=4, intermediate_size=512), 2048),
}
# Parameters a checkpoint carries but the encoder never uses; a loader has to skip them.
UNUSED_PREFIXES = ("decoder.", "cls_decoder.", "cls.")
BUGS = ["no-mask", "wrong-layer", "no-l2", "pad-in-mean", "keep-special"]


def bugs_for(cfg):
    """The deliberate bugs that change this variant's output (the others would be silent no-ops)."""
    if not is_bert(cfg):
        return ["no-mask", "wrong-layer", "no-l2"]
    return ["no-mask", "wrong-layer", "pad-in-mean"] + (["keep-special"] if cfg.get("special_tokens") else [])


def is_bert(cfg):
    return cfg.get("model_type") == "bert"


# ---------------------------------------------------------------------------------------------- weights
def manifest(cfg):
    """(name, shape) in published-checkpoint naming (scGPT: flash-attn Wqkv; Geneformer: HF BERT)."""
    if is_bert(cfg):
        V, H, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
        m = [("bert.embeddings.word_embeddings.weight", [V, H]),
             ("bert.embeddings.position_embeddings.weight", [cfg["max_position_embeddings"], H]),
             ("bert.embeddings.token_type_embeddings.weight", [cfg["type_vocab_size"], H]),
             ("bert.embeddings.LayerNorm.weight", [H]), ("bert.embeddings.LayerNorm.bias", [H])]
        for i in range(cfg["num_hidden_layers"]):
            p = f"bert.encoder.layer.{i}."
            for n in ("query", "key", "value"):
                m += [(p + f"attention.self.{n}.weight", [H, H]), (p + f"attention.self.{n}.bias", [H])]
            m += [(p + "attention.output.dense.weight", [H, H]), (p + "attention.output.dense.bias", [H]),
                  (p + "attention.output.LayerNorm.weight", [H]), (p + "attention.output.LayerNorm.bias", [H]),
                  (p + "intermediate.dense.weight", [I, H]), (p + "intermediate.dense.bias", [I]),
                  (p + "output.dense.weight", [H, I]), (p + "output.dense.bias", [H]),
                  (p + "output.LayerNorm.weight", [H]), (p + "output.LayerNorm.bias", [H])]
        return m + [("cls.predictions.transform.dense.weight", [H, H]),
                    ("cls.predictions.transform.dense.bias", [H]), ("cls.predictions.bias", [V])]
    V, d, f = cfg["ntoken"], cfg["embsize"], cfg["d_hid"]
    m = [("encoder.embedding.weight", [V, d]), ("encoder.enc_norm.weight", [d]), ("encoder.enc_norm.bias", [d]),
         ("value_encoder.linear1.weight", [d, 1]), ("value_encoder.linear1.bias", [d]),
         ("value_encoder.linear2.weight", [d, d]), ("value_encoder.linear2.bias", [d]),
         ("value_encoder.norm.weight", [d]), ("value_encoder.norm.bias", [d])]
    for i in range(cfg["nlayers"]):
        p = f"transformer_encoder.layers.{i}."
        m += [(p + "self_attn.Wqkv.weight", [3 * d, d]), (p + "self_attn.Wqkv.bias", [3 * d]),
              (p + "self_attn.out_proj.weight", [d, d]), (p + "self_attn.out_proj.bias", [d]),
              (p + "linear1.weight", [f, d]), (p + "linear1.bias", [f]),
              (p + "linear2.weight", [d, f]), (p + "linear2.bias", [d]),
              (p + "norm1.weight", [d]), (p + "norm1.bias", [d]), (p + "norm2.weight", [d]), (p + "norm2.bias", [d])]
    return m + [("decoder.fc.0.weight", [d, d]), ("decoder.fc.0.bias", [d]), ("cls_decoder._decoder.0.weight", [d, d])]


def random_weights(cfg, seed):
    """Non-trivial values everywhere: LN gains != 1 and biases != 0, so a skipped or swapped tensor shows."""
    g = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for name, shape in manifest(cfg):
        z = torch.randn(shape, generator=g)
        if name.endswith("bias"):
            out[name] = 0.1 * z
        elif "norm" in name.lower():
            out[name] = 1.0 + 0.2 * z
        elif "embedding" in name:
            out[name] = z
        else:
            out[name] = z / math.sqrt(shape[1])
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # keeps the data section 8-byte aligned, as the safetensors library does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, base, out = json.loads(raw[8:8 + n]), 8 + n, OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {e['dtype']} not supported")
        a, b = e["data_offsets"]
        arr = np.frombuffer(raw, "<f4", count=(b - a) // 4, offset=base + a).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def to_module_names(state):
    """Published names -> this module tree: drop heads, and rename Wqkv as scGPT's own non-flash loader does."""
    return OrderedDict((k.replace("self_attn.Wqkv.", "self_attn.in_proj_"), v) for k, v in state.items()
                       if not k.startswith(UNUSED_PREFIXES))


# ---------------------------------------------------------------------------------------------- models
class ScGPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        V, d = cfg["ntoken"], cfg["embsize"]
        self.encoder = nn.ModuleDict({"embedding": nn.Embedding(V, d, padding_idx=V - 3),
                                      "enc_norm": nn.LayerNorm(d, eps=1e-5)})
        self.value_encoder = nn.ModuleDict({"linear1": nn.Linear(1, d), "linear2": nn.Linear(d, d),
                                            "norm": nn.LayerNorm(d, eps=1e-5)})
        layer = nn.TransformerEncoderLayer(d, cfg["nheads"], cfg["d_hid"], dropout=0.0, activation="relu",
                                           layer_norm_eps=1e-5, batch_first=True, norm_first=False)
        self.transformer_encoder = nn.TransformerEncoder(layer, cfg["nlayers"], enable_nested_tensor=False)

    def forward(self, src, values, src_key_padding_mask, bug=None):
        e, ve = self.encoder, self.value_encoder
        v = values.to(e["enc_norm"].weight.dtype).clamp(max=512).unsqueeze(-1)
        x = e["enc_norm"](e["embedding"](src)) + ve["norm"](ve["linear2"](F.relu(ve["linear1"](v))))
        mask = None if bug == "no-mask" else src_key_padding_mask.bool()
        # Layer by layer is exactly TransformerEncoder's classic path, and also yields the per-layer states.
        hidden = [x]
        for layer in self.transformer_encoder.layers:
            hidden.append(layer(hidden[-1], src_key_padding_mask=mask))
        cell = (hidden[-2] if bug == "wrong-layer" else hidden[-1])[:, 0]
        if bug != "no-l2":
            cell = cell / cell.norm(dim=-1, keepdim=True)
        return cell, hidden[-1]


class BertLayer(nn.Module):
    def __init__(self, H, I, heads, eps):
        super().__init__()
        self.heads = heads
        self.attention = nn.ModuleDict({
            "self": nn.ModuleDict({n: nn.Linear(H, H) for n in ("query", "key", "value")}),
            "output": nn.ModuleDict({"dense": nn.Linear(H, H), "LayerNorm": nn.LayerNorm(H, eps=eps)})})
        self.intermediate = nn.ModuleDict({"dense": nn.Linear(H, I)})
        self.output = nn.ModuleDict({"dense": nn.Linear(I, H), "LayerNorm": nn.LayerNorm(H, eps=eps)})

    def forward(self, x, key_padding_mask):
        sa, ao = self.attention["self"], self.attention["output"]
        t = x.transpose(0, 1)  # the functional MHA is sequence-first
        # BERT's attention.output.dense is the MHA out-projection; dropout is 0 at inference.
        a, _ = F.multi_head_attention_forward(
            t, t, t, x.shape[-1], self.heads, None,
            torch.cat([sa["query"].bias, sa["key"].bias, sa["value"].bias]), None, None, False, 0.0,
            ao["dense"].weight, ao["dense"].bias, training=False, key_padding_mask=key_padding_mask,
            need_weights=False, use_separate_proj_weight=True, q_proj_weight=sa["query"].weight,
            k_proj_weight=sa["key"].weight, v_proj_weight=sa["value"].weight)
        h = ao["LayerNorm"](x + a.transpose(0, 1))
        return self.output["LayerNorm"](h + self.output["dense"](F.relu(self.intermediate["dense"](h))))


class Geneformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        H, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.special = bool(cfg.get("special_tokens", False))
        self.bert = nn.ModuleDict({
            "embeddings": nn.ModuleDict({
                "word_embeddings": nn.Embedding(cfg["vocab_size"], H, padding_idx=cfg["pad_token_id"]),
                "position_embeddings": nn.Embedding(cfg["max_position_embeddings"], H),
                "token_type_embeddings": nn.Embedding(cfg["type_vocab_size"], H),
                "LayerNorm": nn.LayerNorm(H, eps=eps)}),
            "encoder": nn.ModuleDict({"layer": nn.ModuleList(
                BertLayer(H, cfg["intermediate_size"], cfg["num_attention_heads"], eps)
                for _ in range(cfg["num_hidden_layers"]))})})

    def forward(self, input_ids, attention_mask, bug=None):
        e, L = self.bert["embeddings"], input_ids.shape[1]
        pos = torch.arange(L)
        x = (e["word_embeddings"](input_ids) + e["position_embeddings"](pos)[None]
             + e["token_type_embeddings"](torch.zeros_like(input_ids)))
        hidden = [e["LayerNorm"](x)]  # hidden_states[0] = embedding output, as in HF
        # A boolean key mask gives -inf where HF adds finfo.min: identical after softmax.
        mask = None if bug == "no-mask" else attention_mask == 0
        for layer in self.bert["encoder"]["layer"]:
            hidden.append(layer(hidden[-1], mask))
        emb_layer = 0 if bug == "wrong-layer" else -1  # Geneformer's default -1 = penultimate layer
        h = hidden[len(hidden) - 1 + emb_layer]
        # Geneformer pools by original length (mask sum), dropping <cls> and <eos> when special tokens exist.
        lens = attention_mask.sum(1, keepdim=True)
        if bug == "pad-in-mean":
            keep = torch.ones_like(input_ids, dtype=torch.bool)
        elif self.special and bug != "keep-special":
            keep = (pos[None] >= 1) & (pos[None] < lens - 1)
        else:
            keep = pos[None] < lens
        keep = keep.to(h.dtype).unsqueeze(-1)
        return (h * keep).sum(1) / keep.sum(1), hidden[-1]


def build_model(cfg, state, dtype=torch.float32):
    model = Geneformer(cfg) if is_bert(cfg) else ScGPT(cfg)
    model.load_state_dict(to_module_names(state), strict=True)
    # train() with every dropout at 0 keeps torch 1.13 off the eval() fast path, which zeroes padded rows
    # (and was also the faster path on the dev machine, peer-baselines.md §2-3).
    return model.to(dtype).train()


def run_model(model, cfg, tok, bug=None):
    if is_bert(cfg):
        return model(tok["input_ids"], tok["attention_mask"], bug=bug)
    return model(tok["src"], tok["values"], tok["src_key_padding_mask"], bug=bug)


# ---------------------------------------------------------------------------------------------- tokens
def make_tokens(cfg, lengths, g):
    """Right-padded batch in the original forward's argument names and mask conventions."""
    B, L = len(lengths), max(lengths)
    if is_bert(cfg):
        V, special = cfg["vocab_size"], cfg.get("special_tokens", False)
        ids = torch.zeros(B, L, dtype=torch.int64)
        mask = torch.zeros(B, L, dtype=torch.int64)
        for b, n in enumerate(lengths):
            if special:  # <cls>=2, genes (ids from 4), <eos>=3
                ids[b, 0], ids[b, n - 1] = 2, 3
                ids[b, 1:n - 1] = 4 + torch.randperm(V - 4, generator=g)[:n - 2]
            else:
                ids[b, :n] = 2 + torch.randperm(V - 2, generator=g)[:n]
            mask[b, :n] = 1
        return {"input_ids": ids, "attention_mask": mask}
    V, pad_value = cfg["ntoken"], float(cfg["pad_value"])
    src = torch.full((B, L), V - 3, dtype=torch.int64)  # <pad>
    values = torch.full((B, L), pad_value, dtype=torch.float32)
    mask = torch.ones(B, L, dtype=torch.uint8)
    for b, n in enumerate(lengths):
        src[b, 0] = V - 2  # <cls>, whose value stays pad_value
        src[b, 1:n] = torch.randperm(V - 3, generator=g)[:n - 1]
        values[b, 1:n] = torch.randint(1, cfg["n_bins"], (n - 1,), generator=g).float()
        mask[b, :n] = 0
    return {"src": src, "values": values, "src_key_padding_mask": mask}


def write_tokens(path, tok, obs_names):
    with h5py.File(path, "w") as f:
        for k, v in tok.items():
            f.create_dataset(k, data=v.numpy())
        f.create_dataset("obs_names", data=obs_names, dtype=h5py.string_dtype())


def read_tokens(path):
    with h5py.File(path, "r") as f:
        tok = {k: torch.from_numpy(f[k][()]) for k in f if k != "obs_names"}
        return tok, list(f["obs_names"].asstr()[()])


def real_positions(tok):
    if "attention_mask" in tok:
        return tok["attention_mask"].numpy() == 1
    return tok["src_key_padding_mask"].numpy() == 0


def variant_config(variant):
    if variant == "scgpt":
        return dict(SCGPT_CONFIG)
    if variant in ("geneformer-v1", "geneformer-v2"):
        return dict(BERT_CONFIG, special_tokens=variant == "geneformer-v2")
    raise SystemExit(f"unknown variant {variant!r}")


# ---------------------------------------------------------------------------------------------- commands
def cmd_make(a):
    cfg = variant_config(a.variant)
    os.makedirs(a.outdir, exist_ok=True)
    state = random_weights(cfg, a.seed)
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(a.outdir, "weights.safetensors"), state)
    model = build_model(cfg, state)
    # scGPT's .pt is a non-flash checkpoint (in_proj names, encoder only); Geneformer's matches the safetensors.
    pt = state if is_bert(cfg) else model.state_dict()
    # weights.pt: a plain dict, which LibTorch's unpickler reads; weights_ordered.pt: module.state_dict()'s
    # OrderedDict, which it cannot (sdm points to tools/convert_checkpoint.py for those).
    torch.save({k: v.detach().clone() for k, v in pt.items()}, os.path.join(a.outdir, "weights.pt"))
    torch.save(OrderedDict((k, v.detach().clone()) for k, v in pt.items()), os.path.join(a.outdir, "weights_ordered.pt"))
    tok = make_tokens(cfg, LENGTHS, torch.Generator().manual_seed(a.seed + 1))
    names = [f"cell_{i}" for i in range(len(LENGTHS))]
    write_tokens(os.path.join(a.outdir, "tokens.h5"), tok, names)
    # float64 reference so the tolerance measures the port's float32 error, not the sum of two.
    with torch.no_grad():
        cell, states = run_model(model.double(), cfg, tok)
    meta = {"variant": a.variant, "seed": a.seed, "lengths": LENGTHS, "reference_dtype": "float64",
            "cell_embedding": ("last layer at position 0 (<cls>), L2-normalized" if not is_bert(cfg) else
                               "hidden_states[num_layers-1] (penultimate), mean over real tokens"
                               + (" excluding position 0 and the last real position" if cfg["special_tokens"]
                                  else "")),
            "token_states": "last layer output, all positions, batch-first"}
    write_expected(a.outdir, meta, cell, states, names)


def compare_outputs(a, names, selections, rel):
    """Checks `sdm embed`'s output a.out_h5 against OUTDIR/expected.h5: obs names equal, and for each
    (dataset, boolean selection or None) |got - expected| <= a.tol + rel * |expected| at the selected positions.
    Exits 1 listing every problem. Shared by model_reference_fm2.py."""
    problems = []
    with h5py.File(os.path.join(a.outdir, "expected.h5"), "r") as fe, h5py.File(a.out_h5, "r") as fg:
        for key in [k for k, _ in selections] + ["obs_names"]:
            if key not in fg:
                raise SystemExit(f"FAIL: {a.out_h5} has no dataset '{key}'")
        got_names = list(fg["obs_names"].asstr()[()])
        if got_names != names:
            problems.append(f"obs_names differ: got {got_names[:6]}, expected {names[:6]}")
        for key, sel in selections:
            exp, got = fe[key][()].astype(np.float64), fg[key][()].astype(np.float64)
            if got.shape != exp.shape:
                problems.append(f"{key} shape {got.shape}, expected {exp.shape}")
                continue
            diff, bound = np.abs(got - exp), a.tol + rel * np.abs(exp)
            if sel is not None:
                diff, bound = diff[sel], bound[sel]  # unspecified (padded) rows are not compared
            finite = bool(np.isfinite(diff).all())
            worst = float(diff.max()) if finite else float("inf")
            print(f"{key}: max_abs_diff={worst:.3e} tol={a.tol:g} (abs)" + (f" + {rel:g}*|expected| (rel)" if rel else ""))
            if not finite or (diff > bound).any():
                problems.append(f"{key}: {int((~(diff <= bound)).sum())} of {diff.size} values out of tolerance, "
                                f"max abs diff {worst:.3e}")
    if problems:
        print("FAIL: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)
    print("OK")


def write_expected(outdir, meta, cell, states, names, state_mask=None):
    """expected.h5 (float32 outputs of the float64 reference, the compared positions) and meta.json."""
    with h5py.File(os.path.join(outdir, "expected.h5"), "w") as f:
        f.create_dataset("cell_embedding", data=cell.float().numpy())
        f.create_dataset("token_states", data=states.float().numpy())
        if state_mask is not None:
            f.create_dataset("state_mask", data=state_mask)
        f.create_dataset("obs_names", data=names, dtype=h5py.string_dtype())
        for k in ("variant", "seed", "reference_dtype"):
            f.attrs[k] = meta[k]
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(f"wrote {meta['variant']} seed={meta['seed']} to {outdir}")


def write_outputs(out_h5, cell, states, names):
    """What a port writes (`sdm embed --states`): used by `emulate`."""
    with h5py.File(out_h5, "w") as f:
        f.create_dataset("cell_embedding", data=cell.numpy())
        f.create_dataset("token_states", data=states.numpy())
        f.create_dataset("obs_names", data=names, dtype=h5py.string_dtype())


def describe_inputs(tok):
    return {k: {"dtype": str(v.numpy().dtype), "shape": list(v.shape)} for k, v in tok.items()}


def write_model_files(outdir, cfg, state):
    """OUTDIR/config.json and OUTDIR/weights.safetensors (published names); returns the weights' path."""
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    path = os.path.join(outdir, "weights.safetensors")
    write_safetensors(path, state)
    return path


def emulate_variant(a, bugs_for, build_model, run_model):
    """`emulate` for the variant references (fm2, fm3): the float32 model from the files on disk, optionally with
    one of the variant's deliberate bugs, written as a port would write it."""
    with open(os.path.join(a.outdir, "meta.json")) as f:
        variant = json.load(f)["variant"]
    with open(os.path.join(a.outdir, "config.json")) as f:
        cfg = json.load(f)
    if a.bug and a.bug not in bugs_for(variant):
        raise SystemExit(f"--bug {a.bug} does not apply to {variant}; choose from {bugs_for(variant)}")
    model = build_model(variant, cfg, read_safetensors(os.path.join(a.outdir, "weights.safetensors")))
    tok, names = read_tokens(os.path.join(a.outdir, "tokens.h5"))
    cell, states = run_model(variant, model, tok, bug=a.bug)
    write_outputs(a.out_h5, cell, states, names)


def compare_with_state_mask(a):
    """`compare` for references whose expected.h5 marks the compared token positions (fm2, fm3): absolute +
    relative tolerance."""
    _, names = read_tokens(os.path.join(a.outdir, "tokens.h5"))
    selections = [("cell_embedding", None)]
    if a.states:
        with h5py.File(os.path.join(a.outdir, "expected.h5"), "r") as fe:
            selections.append(("token_states", fe["state_mask"][()].astype(bool)))
    compare_outputs(a, names, selections, rel=a.tol)


def reference_cli(doc, variants, bugs, make, compare, emulate, extra=None):
    """The command line every reference shares: make VARIANT OUTDIR [--seed], compare OUTDIR OUT_H5 [--tol]
    [--states], emulate OUTDIR OUT_H5 [--bug]; `extra(sub)` may add commands, returning {name: function}."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("variant", choices=variants)
    m.add_argument("outdir")
    m.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("outdir")
    c.add_argument("out_h5")
    c.add_argument("--tol", type=float, default=1e-5)
    c.add_argument("--states", action="store_true")
    e = sub.add_parser("emulate")
    e.add_argument("outdir")
    e.add_argument("out_h5")
    e.add_argument("--bug", choices=bugs)
    commands = {"make": make, "compare": compare, "emulate": emulate}
    if extra:
        commands.update(extra(sub))
    a = p.parse_args()
    commands[a.cmd](a)


def cmd_compare(a):
    tok, names = read_tokens(os.path.join(a.outdir, "tokens.h5"))
    selections = [("cell_embedding", None)] + ([("token_states", real_positions(tok))] if a.states else [])
    compare_outputs(a, names, selections, rel=0.0)  # padded query rows are unspecified


def cmd_emulate(a):
    with open(os.path.join(a.outdir, "config.json")) as f:
        cfg = json.load(f)
    if a.bug and a.bug not in bugs_for(cfg):
        raise SystemExit(f"--bug {a.bug} does not apply here; choose from {bugs_for(cfg)}")
    model = build_model(cfg, read_safetensors(os.path.join(a.outdir, "weights.safetensors")))
    tok, names = read_tokens(os.path.join(a.outdir, "tokens.h5"))
    with torch.no_grad():
        cell, states = run_model(model, cfg, tok, bug=a.bug)
    write_outputs(a.out_h5, cell, states, names)


def cmd_bench(a):
    if a.malloc == "tuned":
        # glibc hands every large freed block (mmap'd, or heap top above the trim threshold) back to the kernel,
        # so each layer's fresh score/FFN tensors are faulted in again page by page: measured here, 2.4-2.5x
        # slower at S=1200/2048 and 2x for geneformer-tiny. A strong peer keeps freed memory in the heap.
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap'd chunks
        libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD: never shrink the heap
    family, over, default_len = BENCH[a.size]
    S = a.length or default_len
    if family == "scgpt":
        cfg = dict(SCGPT_CONFIG, max_seq_len=max(1200, S), **over)
    else:
        cfg = dict(BERT_CONFIG, max_position_embeddings=max(2048, S), special_tokens=False, **over)
    folder = os.path.dirname(os.path.abspath(a.tokens_out))
    os.makedirs(folder, exist_ok=True)
    state = random_weights(cfg, a.seed)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(folder, "weights.safetensors"), state)
    tok = make_tokens(cfg, [S] * a.cells, torch.Generator().manual_seed(a.seed + 1))  # dense: no padding
    write_tokens(a.tokens_out, tok, [f"cell_{i}" for i in range(a.cells)])
    model = build_model(cfg, state)
    torch.set_num_threads(a.threads)

    def batch(s):
        return {k: v[s:s + a.batch] for k, v in tok.items()}

    with torch.inference_mode():
        run_model(model, cfg, batch(0))  # warm-up: allocator, OpenBLAS/OpenMP thread start
        t0 = time.perf_counter()
        for s in range(0, a.cells, a.batch):
            run_model(model, cfg, batch(s))
        dt = time.perf_counter() - t0
    env = " ".join(f"{k}={os.environ.get(k, '')}" for k in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY"))
    print(f"# {a.size} S={S} threads={a.threads} malloc={a.malloc} {env}", file=sys.stderr)
    print(f"python_cells_per_s={a.cells / dt:.4f} n={a.cells} batch={a.batch} seconds={dt:.4f}")


def main():
    def bench_command(sub):
        b = sub.add_parser("bench")
        b.add_argument("size", choices=sorted(BENCH))
        b.add_argument("tokens_out")
        b.add_argument("--cells", type=int, default=64)
        b.add_argument("--length", type=int, default=0, help="sequence length (default: per size)")
        b.add_argument("--batch", type=int, default=8)
        b.add_argument("--threads", type=int, default=2)
        b.add_argument("--seed", type=int, default=0)
        b.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                       help="tuned: glibc keeps freed memory (see cmd_bench); default: glibc as shipped")
        return {"bench": cmd_bench}

    reference_cli(__doc__, ["scgpt", "geneformer-v1", "geneformer-v2"], BUGS, cmd_make, cmd_compare, cmd_emulate,
                  bench_command)


if __name__ == "__main__":
    main()
