#!/usr/bin/env python3
"""Independent Python reference for the scFoundation, UCE, scBERT and CellLM encoders (shared/reference/models.md
§3, §4, §5, §8).

Each model is assembled from torch.nn built-ins (or, for the Performer, plain torch ops written after
performer-pytorch) under the published parameter names, loaded with load_state_dict(strict=True) from the
random weights written to disk, and run in float64, so that the tolerance measures the C++ port's float32
error only. Same command line and file formats as model_reference.py (scGPT/Geneformer), whose safetensors
and token-file helpers are reused.

  make VARIANT OUTDIR [--seed N]        VARIANT: scfoundation | uce | uce-exclude | scbert | celllm
      -> config.json, weights.safetensors, tokens.h5, expected.h5 (with state_mask), meta.json
  compare OUTDIR OUT_H5 [--tol 1e-5] [--states]
      -> checks a port's output (cell_embedding, obs_names and, with --states, token_states at the positions
         that expected.h5's state_mask marks) against expected.h5; |got - exp| <= tol + tol*|exp|; exit 1 on
         mismatch
  emulate OUTDIR OUT_H5 [--bug NAME]    NAME: wrong-pool | no-mask
      -> writes what a correct (or deliberately wrong) float32 port would write, read back from the files on
         disk; used to prove that `compare` can fail

Tokens (tokens.h5, batch-first, right-padded, 5 cells "c0".."c4" of different real lengths):
  scfoundation  x float32 [B,L] (gathered values, then T, then S; pads 103), position_gene_ids int64 [B,L]
                (gene positions ascending, then seq_len-2, seq_len-1; pads seq_len), x_padding uint8 [B,L] (1 = pad)
  uce*          batch_sentences int64 [B,pad_length] (CLS 3, [chrom-open, genes..., chrom-close 2]..., pads 0),
                mask float32 [B,pad_length] (1 = real)
  scbert        x int64 [B,max_seq_len] (every panel gene's bin 0..bin_num, then the extra token 0; no padding)
  celllm        x int64 [B,max_seq_len] (CLS, nonzero genes' bins 1..bin_num, PAD), gene_pos int64 [B,max_seq_len]
                (gene_num for CLS, gene index, gene_num+1 for PAD), mask uint8 [B,max_seq_len] (1 = real, CLS too)
"""
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_reference import (compare_with_state_mask, describe_inputs, emulate_variant,  # noqa: E402
                             read_safetensors, reference_cli, write_expected, write_model_files, write_tokens)

VARIANTS = ["scfoundation", "uce", "uce-exclude", "scbert", "celllm"]
# The tiny configs, in each model's own config keys (plus ours where the model has none).
CONFIGS = {
    "scfoundation": {"encoder": {"hidden_dim": 32, "depth": 2, "heads": 4, "dim_head": 8}, "seq_len": 66,
                     "gene_num": 64, "bin_num": 10, "bin_alpha": 1.0, "pad_token_id": 103, "mask_token_id": 102,
                     "model": "mae_autobin"},
    "uce": {"token_dim": 24, "d_model": 16, "nhead": 2, "d_hid": 32, "nlayers": 2, "output_dim": 12,
            "dropout": 0.05, "decoder_hidden": 20, "pad_length": 40, "n_tokens": 50, "chrom_token_offset": 40,
            "mask_mode": "additive"},
    "scbert": {"num_tokens": 7, "dim": 16, "depth": 2, "heads": 2, "dim_head": 8, "max_seq_len": 21,
               "nb_features": 12, "ff_mult": 4, "bin_num": 5, "gene_num": 20},
    "celllm": {"num_tokens": 8, "dim": 16, "depth": 2, "heads": 2, "dim_head": 8, "max_seq_len": 10,
               "nb_features": 12, "ff_mult": 4, "bin_num": 5, "gene_num": 20},
}
CONFIGS["uce-exclude"] = dict(CONFIGS["uce"], mask_mode="exclude")
OBS_NAMES = [f"c{i}" for i in range(5)]
# Real tokens per cell (specials included); every variant has one cell of the full padded length and one short.
SCF_GENES = [6, 12, 1, 9, 4]  # nonzero genes per cell; + T + S tokens
UCE_LENGTHS = [17, 40, 9, 28, 23]
CELLLM_LENGTHS = [4, 10, 2, 7, 6]  # CLS + genes
UCE_CLS, UCE_CHROM_CLOSE, UCE_PAD, UCE_FIRST_GENE, UCE_FIRST_CHROM = 3, 2, 0, 4, 40
BUGS = ["wrong-pool", "no-mask"]


def family(variant):
    return "uce" if variant.startswith("uce") else variant


def bugs_for(variant):
    """The deliberate bugs that change this variant's output (scBERT has no padding, so no-mask is a no-op)."""
    return ["wrong-pool"] if variant == "scbert" else list(BUGS)


# ---------------------------------------------------------------------------------------------- weights
# kind: w = randn/sqrt(fan_in), b = 0.1*randn, g = LayerNorm gain 1+0.2*randn, e = randn (embedding tables,
# random-feature projections); special kinds are filled in by random_weights.
def _linear(name, n_out, n_in, bias=True):
    return [(name + ".weight", [n_out, n_in], "w")] + ([(name + ".bias", [n_out], "b")] if bias else [])


def _layernorm(name, n):
    return [(name + ".weight", [n], "g"), (name + ".bias", [n], "b")]


def _torch_encoder_layer(p, d, ff):
    """nn.TransformerEncoderLayer's own parameter names."""
    return ([(p + "self_attn.in_proj_weight", [3 * d, d], "w"), (p + "self_attn.in_proj_bias", [3 * d], "b")]
            + _linear(p + "self_attn.out_proj", d, d) + _linear(p + "linear1", ff, d) + _linear(p + "linear2", d, ff)
            + _layernorm(p + "norm1", d) + _layernorm(p + "norm2", d))


def manifest(variant, cfg):
    """(name, shape, kind) in published-checkpoint naming, the never-used pretraining heads last."""
    fam = family(variant)
    if fam == "scfoundation":
        d, nb = cfg["encoder"]["hidden_dim"], cfg["bin_num"]
        m = (_linear("token_emb.mlp", nb, 1) + _linear("token_emb.mlp2", nb, nb)
             + [("token_emb.emb.weight", [nb, d], "e"), ("token_emb.emb_mask.weight", [1, d], "e"),
                ("token_emb.emb_pad.weight", [1, d], "e"), ("pos_emb.weight", [cfg["seq_len"] + 1, d], "e")])
        for i in range(cfg["encoder"]["depth"]):
            m += _torch_encoder_layer(f"encoder.transformer_encoder.{i}.", d, 4 * d)
        return m + _layernorm("encoder.norm", d) + [("decoder_embed.weight", [16, d], "w"),
                                                   ("to_final.weight", [1, 16], "w")]
    if fam == "uce":
        t, d, o, hd = cfg["token_dim"], cfg["d_model"], cfg["output_dim"], cfg["decoder_hidden"]
        m = ([("pe_embedding.weight", [cfg["n_tokens"], t], "e")] + _linear("encoder.0", d, t)
             + _layernorm("encoder.2", d) + [("pos_encoder.pe", [cfg["pad_length"], 1, d], "sinusoid")])
        for i in range(cfg["nlayers"]):
            m += _torch_encoder_layer(f"transformer_encoder.layers.{i}.", d, cfg["d_hid"])
        for i, (n_in, n_out) in enumerate([(d, hd), (hd, o), (o, o)]):
            m += _linear(f"decoder.{i}.0", n_out, n_in) + _layernorm(f"decoder.{i}.1", n_out)
        return m + _linear("decoder.3", o, o) + [("binary_decoder.3.weight", [1, o], "w"),
                                                 ("gene_embedding_layer.0.weight", [d, t], "w")]
    d, inner, ff = cfg["dim"], cfg["heads"] * cfg["dim_head"], cfg["dim"] * cfg["ff_mult"]
    pos_rows = cfg["max_seq_len"] if fam == "scbert" else cfg["gene_num"] + 2
    m = [("token_emb.weight", [cfg["num_tokens"], d], "e"),
         ("pos_emb.emb.weight", [pos_rows, d], "e" if fam == "scbert" else "gene2vec_cls_pad")]
    for i in range(cfg["depth"]):
        p = f"performer.net.layers.{i}."
        m += (_layernorm(p + "0.norm", d) + _linear(p + "0.fn.to_q", inner, d, bias=False)
              + _linear(p + "0.fn.to_k", inner, d, bias=False) + _linear(p + "0.fn.to_v", inner, d, bias=False)
              + _linear(p + "0.fn.to_out", d, inner)
              + [(p + "0.fn.fast_attention.projection_matrix", [cfg["nb_features"], cfg["dim_head"]], "e")]
              + _layernorm(p + "1.norm", d) + _linear(p + "1.fn.fn.w1", ff, d) + _linear(p + "1.fn.fn.w2", d, ff))
    return m + _layernorm("norm", d) + _linear("to_out", cfg["num_tokens"], d)


# Parameters a checkpoint carries but the encoder never uses; the C++ loader has to skip them.
UNUSED = {"scfoundation": ("decoder_embed.weight", "to_final.weight"),
          "uce": ("binary_decoder.3.weight", "gene_embedding_layer.0.weight"),
          "scbert": ("to_out.weight", "to_out.bias"), "celllm": ("to_out.weight", "to_out.bias")}


def sinusoid_pe(max_len, d):
    """UCE's PositionalEncoding buffer, computed exactly as model.py does (float32)."""
    position = torch.arange(max_len).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, 1, d)
    pe[:, 0, 0::2] = torch.sin(position * div_term)
    pe[:, 0, 1::2] = torch.cos(position * div_term)
    return pe


def random_weights(variant, cfg, seed):
    """Non-trivial values everywhere: LN gains != 1 and biases != 0, so a skipped or swapped tensor shows."""
    g = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for name, shape, kind in manifest(variant, cfg):
        z = torch.randn(shape, generator=g)
        if kind == "w":
            out[name] = z / math.sqrt(shape[-1])
        elif kind == "b":
            out[name] = 0.1 * z
        elif kind == "g":
            out[name] = 1.0 + 0.2 * z
        elif kind == "e":
            out[name] = z
        elif kind == "sinusoid":  # a fixed buffer in the real model too: write the true values
            out[name] = sinusoid_pe(shape[0], shape[2])
        elif kind == "gene2vec_cls_pad":  # CellLM: gene2vec rows, then a CLS row of ones and a PAD row of zeros
            z[-2], z[-1] = 1.0, 0.0
            out[name] = z
        else:
            raise AssertionError(kind)
    return out


def to_module_names(variant, state):
    return OrderedDict((k, v) for k, v in state.items() if k not in UNUSED[family(variant)])


# ---------------------------------------------------------------------------------------------- scFoundation
class AutoDiscretizationEmbedding2(nn.Module):
    """scFoundation's value embedding (mae_autobin.py): a soft assignment of each scalar to bin_num learned bins."""

    def __init__(self, dim, bin_num, bin_alpha, mask_token_id, pad_token_id):
        super().__init__()
        self.mlp, self.mlp2 = nn.Linear(1, bin_num), nn.Linear(bin_num, bin_num)
        self.emb, self.emb_mask, self.emb_pad = nn.Embedding(bin_num, dim), nn.Embedding(1, dim), nn.Embedding(1, dim)
        self.bin_alpha, self.mask_token_id, self.pad_token_id = bin_alpha, mask_token_id, pad_token_id

    def forward(self, x):  # x [B, L] values
        a = F.leaky_relu(self.mlp(x.unsqueeze(-1)), 0.1)
        w = torch.softmax(self.bin_alpha * a + self.mlp2(a), dim=-1)
        e = w @ self.emb.weight
        # Exact-equality overrides: a value of exactly 102 / 103 is the mask / pad token, whatever its position.
        e = torch.where((x == self.mask_token_id).unsqueeze(-1), self.emb_mask.weight[0], e)
        return torch.where((x == self.pad_token_id).unsqueeze(-1), self.emb_pad.weight[0], e)


class ScFoundation(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        enc, d = cfg["encoder"], cfg["encoder"]["hidden_dim"]
        self.token_emb = AutoDiscretizationEmbedding2(d, cfg["bin_num"], cfg["bin_alpha"], cfg["mask_token_id"],
                                                      cfg["pad_token_id"])
        self.pos_emb = nn.Embedding(cfg["seq_len"] + 1, d)
        self.encoder = nn.ModuleDict({
            "transformer_encoder": nn.ModuleList(
                nn.TransformerEncoderLayer(d, enc["heads"], 4 * d, dropout=0.0, activation="relu",
                                           layer_norm_eps=1e-5, batch_first=True, norm_first=False)
                for _ in range(enc["depth"])),
            "norm": nn.LayerNorm(d, eps=1e-5)})

    def forward(self, x, position_gene_ids, x_padding, bug=None):
        dtype = self.pos_emb.weight.dtype
        h = self.token_emb(x.to(dtype)) + self.pos_emb(position_gene_ids)
        mask = None if bug == "no-mask" else x_padding.bool()
        for layer in self.encoder["transformer_encoder"]:
            h = layer(h, src_key_padding_mask=mask)
        states = self.encoder["norm"](h)
        # get_embedding.py pool_type=all, per cell over its own n real tokens (upstream runs one unpadded cell at
        # a time): [S at n-1, T at n-2, max over genes, mean over genes].
        cells = []
        for b, n in enumerate((~x_padding.bool()).sum(1).tolist()):
            o = states[b, :n]
            genes = o[:n - 2]
            mean = genes.mean(0)
            parts = [mean] * 4 if bug == "wrong-pool" else [o[n - 1], o[n - 2], genes.max(0).values, mean]
            cells.append(torch.cat(parts))
        return torch.stack(cells), states


# ---------------------------------------------------------------------------------------------- UCE
class PositionalEncoding(nn.Module):
    def __init__(self, max_len, d):
        super().__init__()
        self.register_buffer("pe", torch.zeros(max_len, 1, d))  # loaded from the state dict


def full_block(n_in, n_out):
    # Dropout(0) keeps UCE's Sequential indices (Linear 0, LayerNorm 1, GELU 2, Dropout 3).
    return nn.Sequential(nn.Linear(n_in, n_out), nn.LayerNorm(n_out, eps=1e-5), nn.GELU(), nn.Dropout(0.0))


class UCE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        t, d, o, hd = cfg["token_dim"], cfg["d_model"], cfg["output_dim"], cfg["decoder_hidden"]
        self.mask_mode, self.d_model = cfg["mask_mode"], d
        self.pe_embedding = nn.Embedding(cfg["n_tokens"], t)
        self.encoder = nn.Sequential(nn.Linear(t, d), nn.GELU(), nn.LayerNorm(d, eps=1e-5))
        self.pos_encoder = PositionalEncoding(cfg["pad_length"], d)
        layer = nn.TransformerEncoderLayer(d, cfg["nhead"], cfg["d_hid"], dropout=0.0, activation="relu",
                                           layer_norm_eps=1e-5, batch_first=True, norm_first=False)
        self.transformer_encoder = nn.TransformerEncoder(layer, cfg["nlayers"], enable_nested_tensor=False)
        self.decoder = nn.Sequential(full_block(d, hd), full_block(hd, o), full_block(o, o), nn.Linear(o, o))

    def key_mask(self, mask, bug):
        """UCE passes the FLOAT tensor (1 - mask): torch adds it to the logits, so pads get +1, not -inf."""
        mode = self.mask_mode
        if bug == "no-mask":  # uce: exclusion instead of the quirk; uce-exclude: no mask at all
            mode = "exclude" if mode == "additive" else "none"
        if mode == "additive":
            return (1.0 - mask).to(self.pe_embedding.weight.dtype)
        return (mask == 0) if mode == "exclude" else None

    def forward(self, batch_sentences, mask, bug=None):
        e = F.normalize(self.pe_embedding(batch_sentences), dim=-1)  # every token, pads included (evaluate.py)
        src = self.encoder(e) * math.sqrt(self.d_model)
        src = src + self.pos_encoder.pe[:src.shape[1], 0]
        kpm = self.key_mask(mask, bug)
        for layer in self.transformer_encoder.layers:  # the classic path, layer by layer
            src = layer(src, src_key_padding_mask=kpm)
        cell = self.decoder(src)[:, 0]  # CLS
        if bug != "wrong-pool":
            cell = F.normalize(cell, dim=1)
        return cell, src


# ---------------------------------------------------------------------------------------------- Performer
def softmax_kernel(data, projection_matrix, is_query, eps=1e-4):
    """FAVOR+ positive random features (performer-pytorch softmax_kernel) for data [B, heads, L, dim_head]."""
    normalizer = data.shape[-1] ** -0.25
    ratio = projection_matrix.shape[0] ** -0.5
    data_dash = (normalizer * data) @ projection_matrix.t()
    diag = (data ** 2).sum(-1, keepdim=True) / 2.0 * normalizer ** 2
    if is_query:
        stab = data_dash.amax(-1, keepdim=True)
    else:
        # Upstream takes torch.max over the whole tensor, i.e. over the batch too; we take it per cell (over its
        # heads, positions and features), which is what upstream computes at batch size 1.
        stab = data_dash.amax(dim=(1, 2, 3), keepdim=True)
    return ratio * (torch.exp(data_dash - diag - stab) + eps)


def linear_attention(q, k, v):
    """Non-causal linear attention: (q (k^T v)) / (q . sum_n k)."""
    d_inv = 1.0 / torch.einsum("...nd,...d->...n", q, k.sum(-2))
    context = torch.einsum("...nd,...ne->...de", k, v)
    return torch.einsum("...de,...nd,...n->...ne", context, q, d_inv)


class FastAttention(nn.Module):
    def __init__(self, nb_features, dim_head):
        super().__init__()
        self.register_buffer("projection_matrix", torch.zeros(nb_features, dim_head))  # from the state dict

    def forward(self, q, k, v):
        return linear_attention(softmax_kernel(q, self.projection_matrix, True),
                                softmax_kernel(k, self.projection_matrix, False), v)


class SelfAttention(nn.Module):
    def __init__(self, dim, heads, dim_head, nb_features):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.fast_attention = FastAttention(nb_features, dim_head)
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner, bias=False) for _ in range(3))
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x, mask=None):
        b, n, _ = x.shape
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (self.to_q(x), self.to_k(x), self.to_v(x)))
        if mask is not None:
            # CellLM: padded VALUES are zeroed; padded keys stay (they enter the key max and sum_n k).
            v = v.masked_fill(~mask[:, None, :, None], 0.0)
        out = self.fast_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    def __init__(self, dim, mult):
        super().__init__()
        self.w1, self.w2 = nn.Linear(dim, dim * mult), nn.Linear(dim * mult, dim)

    def forward(self, x):
        return self.w2(F.gelu(self.w1(x)))  # exact (erf) GELU


class Node(nn.Module):
    """A bare level of the published state-dict path (pos_emb.emb, performer.net.layers)."""


class Wrap(nn.Module):
    """Holds `fn`: stands in for performer-pytorch's Chunk(1, ...), which only adds a name level (fn.fn.w1)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, **kw):
        return self.fn(x, **kw)


class PreLayerNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim, eps=1e-5), fn

    def forward(self, x, **kw):
        return self.fn(self.norm(x), **kw)


class PerformerEncoder(nn.Module):
    """PerformerLM (scBERT) / PerformerLM_CellLM up to the final norm; the to_out head is not built."""

    def __init__(self, cfg, celllm):
        super().__init__()
        d = cfg["dim"]
        self.celllm = celllm
        self.token_emb = nn.Embedding(cfg["num_tokens"], d)
        self.pos_emb = Node()
        self.pos_emb.emb = nn.Embedding(cfg["gene_num"] + 2 if celllm else cfg["max_seq_len"], d)
        layers = nn.ModuleList(
            nn.ModuleList([PreLayerNorm(d, SelfAttention(d, cfg["heads"], cfg["dim_head"], cfg["nb_features"])),
                           PreLayerNorm(d, Wrap(FeedForward(d, cfg["ff_mult"])))])
            for _ in range(cfg["depth"]))
        self.performer = Node()
        self.performer.net = Node()
        self.performer.net.layers = layers
        self.norm = nn.LayerNorm(d, eps=1e-5)

    def forward(self, x, pos, mask=None, bug=None):
        h = self.token_emb(x) + self.pos_emb.emb(pos)
        v_mask = None if bug == "no-mask" else mask
        for attn, ff in self.performer.net.layers:  # pre-LN residual blocks (SequentialSequence)
            h = h + attn(h, mask=v_mask)
            h = h + ff(h)
        h = self.norm(h)
        if self.celllm:
            h = h * mask.unsqueeze(-1).to(h.dtype)
            real = mask.unsqueeze(-1).to(h.dtype)
            cell = (h * real).sum(1) / real.sum(1) if bug == "wrong-pool" else h[:, 0]  # CLS
        else:
            cell = h[:, 0] if bug == "wrong-pool" else h.mean(1)  # mean over all positions, extra token included
        return cell, h


# ---------------------------------------------------------------------------------------------- model plumbing
def build_model(variant, cfg, state, dtype=torch.float32):
    fam = family(variant)
    model = {"scfoundation": lambda: ScFoundation(cfg), "uce": lambda: UCE(cfg),
             "scbert": lambda: PerformerEncoder(cfg, celllm=False),
             "celllm": lambda: PerformerEncoder(cfg, celllm=True)}[fam]()
    model.load_state_dict(to_module_names(variant, state), strict=True)
    # train() with every dropout at 0 keeps torch's TransformerEncoderLayer on its classic (not fast) path.
    return model.to(dtype).train()


def run_model(variant, model, tok, bug=None):
    fam = family(variant)
    with torch.no_grad():
        if fam == "scfoundation":
            return model(tok["x"], tok["position_gene_ids"], tok["x_padding"], bug=bug)
        if fam == "uce":
            return model(tok["batch_sentences"], tok["mask"].to(model.pe_embedding.weight.dtype), bug=bug)
        if fam == "scbert":
            pos = torch.arange(tok["x"].shape[1]).expand_as(tok["x"])
            return model(tok["x"], pos, bug=bug)
        return model(tok["x"], tok["gene_pos"], tok["mask"].bool(), bug=bug)


# ---------------------------------------------------------------------------------------------- tokens
def scfoundation_tokens(cfg, g):
    seq_len, panel = cfg["seq_len"], cfg["gene_num"]
    B, L = len(SCF_GENES), max(SCF_GENES) + 2
    x = torch.full((B, L), float(cfg["pad_token_id"]))
    pos = torch.full((B, L), seq_len, dtype=torch.int64)
    pad = torch.ones(B, L, dtype=torch.uint8)
    for b, n in enumerate(SCF_GENES):
        genes = torch.randperm(panel, generator=g)[:n].sort().values  # gatherData keeps ascending gene order
        x[b, :n] = 0.1 + 3.9 * torch.rand(n, generator=g)  # log1p-like, all > 0
        x[b, n] = 4.0  # T (tgthighres t4)
        x[b, n + 1] = 2.5 + 1.5 * torch.rand(1, generator=g).item()  # S = log10(total count)
        pos[b, :n], pos[b, n], pos[b, n + 1] = genes, seq_len - 2, seq_len - 1
        pad[b, :n + 2] = 0
    return {"x": x, "position_gene_ids": pos, "x_padding": pad}


def uce_tokens(cfg, g):
    """Cell sentences: CLS, then per chromosome [open, genes..., close 2], then pad 0 up to pad_length."""
    B, L = len(UCE_LENGTHS), cfg["pad_length"]
    n_chrom_tokens = cfg["n_tokens"] - UCE_FIRST_CHROM
    ids = torch.full((B, L), UCE_PAD, dtype=torch.int64)
    mask = torch.zeros(B, L)
    for b, n in enumerate(UCE_LENGTHS):
        chroms = max(1, min(4, (n - 1) // 5))
        genes = n - 1 - 2 * chroms
        cuts = sorted(torch.randperm(genes - 1, generator=g)[:chroms - 1].add(1).tolist())
        sizes = [hi - lo for lo, hi in zip([0] + cuts, cuts + [genes])]  # chroms positive parts summing to genes
        sentence = [UCE_CLS]
        for c, k in zip(torch.randperm(n_chrom_tokens, generator=g)[:chroms].tolist(), sizes):
            # genes sampled with replacement, as UCE's np.random.choice does
            sentence += ([UCE_FIRST_CHROM + c]
                         + torch.randint(UCE_FIRST_GENE, UCE_FIRST_CHROM, (k,), generator=g).tolist()
                         + [UCE_CHROM_CLOSE])
        assert len(sentence) == n
        ids[b, :n] = torch.tensor(sentence)
        mask[b, :n] = 1.0
    return {"batch_sentences": ids, "mask": mask}


def scbert_tokens(cfg, g):
    """Every panel gene's bin (many zeros), plus the extra last token 0; no padding."""
    B, L = 5, cfg["max_seq_len"]
    x = torch.randint(1, cfg["bin_num"] + 1, (B, L), generator=g)
    x[torch.rand(B, L, generator=g) < 0.5] = 0
    x[:, -1] = 0
    return {"x": x}


def celllm_tokens(cfg, g):
    B, L, nt, gn = len(CELLLM_LENGTHS), cfg["max_seq_len"], cfg["num_tokens"], cfg["gene_num"]
    x = torch.full((B, L), nt - 1, dtype=torch.int64)  # PAD
    pos = torch.full((B, L), gn + 1, dtype=torch.int64)
    mask = torch.zeros(B, L, dtype=torch.uint8)
    for b, n in enumerate(CELLLM_LENGTHS):
        x[b, 0], pos[b, 0] = nt - 2, gn  # CLS
        x[b, 1:n] = torch.randint(1, cfg["bin_num"] + 1, (n - 1,), generator=g)
        pos[b, 1:n] = torch.randperm(gn, generator=g)[:n - 1].sort().values
        mask[b, :n] = 1
    return {"x": x, "gene_pos": pos, "mask": mask}


def make_tokens(variant, cfg, g):
    return {"scfoundation": scfoundation_tokens, "uce": uce_tokens, "scbert": scbert_tokens,
            "celllm": celllm_tokens}[family(variant)](cfg, g)


def state_mask(variant, tok):
    """Positions whose token_states are specified: real tokens (scFoundation, CellLM, UCE with true exclusion,
    where a padded query's output carries no meaning); all (UCE's +1 quirk attends to pads; scBERT has none)."""
    fam = family(variant)
    if fam == "scfoundation":
        return tok["x_padding"].numpy() == 0
    if fam == "celllm" or variant == "uce-exclude":
        return tok["mask"].numpy() == 1
    key = "batch_sentences" if fam == "uce" else "x"
    return np.ones(tuple(tok[key].shape), dtype=bool)


def real_lengths(variant, tok):
    fam = family(variant)
    real = tok["mask"].numpy() == 1 if fam == "uce" else state_mask(variant, tok)
    return [int(n) for n in real.sum(1)]


# ---------------------------------------------------------------------------------------------- commands
DESCRIPTIONS = {
    "scfoundation": ("concat(out[n-1] (S), out[n-2] (T), max over out[:n-2], mean over out[:n-2]) per cell with n "
                     "real tokens, [B, 4*hidden_dim]; no normalization",
                     "encoder.norm output, batch-first; meaningful at real tokens (state_mask)"),
    "uce": ("L2-normalize(decoder(transformer output)[:, 0]) (CLS), [B, output_dim]",
            "transformer output before the decoder, [B, pad_length, d_model], all positions meaningful"),
    "scbert": ("mean over all max_seq_len positions of the final-norm encodings, [B, dim]",
               "final-norm encodings, [B, max_seq_len, dim], all positions meaningful"),
    "celllm": ("final-norm encodings (times mask) at position 0 (CLS), [B, dim]",
               "final-norm encodings times mask, [B, max_seq_len, dim]; meaningful at real tokens (state_mask)"),
}


def cmd_make(a):
    variant, cfg = a.variant, CONFIGS[a.variant]
    state = random_weights(variant, cfg, a.seed)
    write_model_files(a.outdir, cfg, state)
    if family(variant) == "scfoundation":
        # scFoundation's own layout: models.ckpt = {part: {"config": ..., "state_dict": {"model." + name: tensor}}}
        # with three parts; tools/convert_checkpoint.py scfoundation exports one (weights + config).
        part = {"config": dict(cfg, encoder=dict(cfg["encoder"], module_type="transformer"), decoder={"hidden_dim": 16}),
                "state_dict": OrderedDict(("model." + k, v.clone()) for k, v in state.items())}
        torch.save({"gene": part, "cell": part, "rde": part}, os.path.join(a.outdir, "models.ckpt"))
    tok = make_tokens(variant, cfg, torch.Generator().manual_seed(a.seed + 1))
    write_tokens(os.path.join(a.outdir, "tokens.h5"), tok, OBS_NAMES)
    # Reference from the float32 values on disk, computed in float64.
    model = build_model(variant, cfg, read_safetensors(os.path.join(a.outdir, "weights.safetensors")), torch.float64)
    cell, states = run_model(variant, model, tok)
    sel = state_mask(variant, tok)
    cell_desc, states_desc = DESCRIPTIONS[family(variant)]
    meta = {"variant": variant, "seed": a.seed, "reference_dtype": "float64", "obs_names": OBS_NAMES,
            "real_lengths": real_lengths(variant, tok), "inputs": describe_inputs(tok),
            "unused_weights": list(UNUSED[family(variant)]), "cell_embedding": cell_desc,
            "token_states": states_desc, "state_mask": "bool [B, L]: positions compared by `compare --states`"}
    if family(variant) == "uce":
        meta["mask_mode"] = cfg["mask_mode"]
    write_expected(a.outdir, meta, cell, states, OBS_NAMES, sel)


def cmd_emulate(a):
    emulate_variant(a, bugs_for, build_model, run_model)


def main():
    reference_cli(__doc__, VARIANTS, BUGS, cmd_make, compare_with_state_mask, cmd_emulate)


if __name__ == "__main__":
    main()
