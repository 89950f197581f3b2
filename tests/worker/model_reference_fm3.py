#!/usr/bin/env python3
"""Independent Python reference for the CellPLM, tGPT, LLaMA and ChatGLM encoders (shared/reference/models.md
§6, §7, §9a, §9b).

Each model is assembled from torch.nn built-ins (nn.Linear, nn.Embedding, nn.LayerNorm, nn.GroupNorm, torch's
multi-head attention) or plain torch ops under the published parameter names, loaded with
load_state_dict(strict=True) from the random weights written to disk, and run in float64, so that the tolerance
measures the C++ port's float32 error only. Same command line and file formats as model_reference_fm2.py, whose
helpers (safetensors, tokens, compare) come from model_reference.py.

  make VARIANT OUTDIR [--seed N]        VARIANT: cellplm | tgpt | llama | chatglm
      -> config.json, weights.safetensors, tokens.h5, expected.h5 (with state_mask), meta.json
  compare OUTDIR OUT_H5 [--tol 1e-5] [--states]
      -> checks a port's output (cell_embedding, obs_names and, with --states, token_states at the positions
         that expected.h5's state_mask marks) against expected.h5; |got - exp| <= tol + tol*|exp|; exit 1 on
         mismatch
  emulate OUTDIR OUT_H5 [--bug NAME]    cellplm: per-cell | tgpt: no-causal | llama: no-rope |
                                        chatglm: rope-halves
      -> writes what a correct (or deliberately wrong) float32 port would write, read back from the files on
         disk; used to prove that `compare` can fail

Model facts the reference follows:
  cellplm (OmicsML/CellPLM 20230926_85M; a cell is one token, attention runs ACROSS cells)
    * Cells are processed in consecutive groups of batch_cells cells in file order (c0,c1,c2 | c3,c4); each
      group is one sequence whose tokens are its cells.
    * Embedder: h = log1p(x) @ embedder.feat_enc.emb (a Parameter [gene_num, enc_hid]), then
      embedder.extra_linear = Linear(0), ReLU, Dropout, GroupNorm(4, enc_hid, eps 1e-5)(3), per cell.
    * enc_layers pre-LN FlowformerLayers encoder.layers.{i}: x += SA(norm1 x); x += _ff_block(norm2 x), with
      _ff_block = Linear(d,2d)(0), exact GELU(1), Dropout(2), Linear(2d,d)(3), Dropout(4); LayerNorm eps 1e-5.
      SA = Flow-Attention (query/key/value/out_projection, enc_head heads, eps 1e-6, L = S = group size):
      sigmoid q and k; sink_incoming = 1/((q+eps).(sum_s k + eps)); source_outgoing = 1/((k+eps).(sum_l q +
      eps)); conserved_sink = (q+eps).(sum_s k*source_outgoing + eps); conserved_source = clamp((k+eps).(sum_l
      q*sink_incoming + eps), -1, 1); allocation = sigmoid(conserved_sink*L/S); competition =
      softmax_over_S(conserved_source)*S; out = ((q*sink_incoming)(k^T (v*competition)))*allocation, heads
      merged, out_projection.
    * pre_latent_norm.norm (LayerNorm, eps 1e-5) -> token_states [B, 1, enc_hid] (state_mask all ones [B,1]).
    * GMVAE inference net latent.layers.1.inference: logits = inference_qyx.0.logits(h); y = one_hot(argmax
      logits) -- the original draws a hard Gumbel-softmax sample (noise even in eval); this deterministic port
      uses the argmax, and `make` keeps every cell's top-1/top-2 logit margin above 1e-3. z =
      inference_qzyx.2.mu(ReLU(inference_qzyx.0(cat[h, y]))) -> cell_embedding [B, post_latent_dim], no norm.
    * Unused (the loader skips them): inference_qzyx.2.var.*, y_mu.*, y_var.*, embedder.norm0.*,
      decoder.dummy.weight.
  tgpt (HF GPT2Model trunk of GPT2LMHeadModel)
    * Pre-LN blocks transformer.h.{i}: x += attn.c_proj(attn(ln_1 x)); x += mlp.c_proj(gelu_new(mlp.c_fc(ln_2 x))).
      Conv1D weights are [in, out] (attention runs through torch's multi_head_attention_forward, the functional
      of nn.MultiheadAttention, with in_proj_weight = c_attn.weight^T, out_proj_weight = c_proj.weight^T).
      gelu_new = 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))). Causal attention + key padding mask, scale
      1/sqrt(head_dim); learned positions wpe[0..L-1]; LayerNorm eps layer_norm_epsilon.
    * token_states = ln_f output [B, L, n_embd]; state_mask = attention_mask.
      cell_embedding = mean of token_states over positions 1..eos_idx-1, eos_idx = attention_mask.sum-1
      (excludes BOS and EOS). lm_head.weight is unused.
  llama (HF LlamaModel)
    * Pre-RMSNorm (x * rsqrt(mean(x^2)+eps) * w) blocks model.layers.{i}; q/k/v/o_proj without biases; GQA with
      num_key_value_heads (kv head j serves query heads j*n_rep..(j+1)*n_rep-1, HF repeat_kv); RoPE rotate_half
      (split halves) with inv_freq = 1/theta^(arange(0,hd,2)/hd), emb = cat(freqs, freqs), positions 0..L-1;
      causal + key padding mask, scale 1/sqrt(hd); MLP = down(silu(gate x) * up x).
    * token_states = model.norm output; state_mask = attention_mask; cell_embedding = mean of token_states
      over the attention_mask tokens (BOS included). lm_head.weight is unused.
  chatglm (ChatGLM2/3 modeling_chatglm.py)
    * Pre-RMSNorm blocks transformer.encoder.layers.{i}, residual = layer input; fused query_key_value (bias)
      split [q: heads*kv_channels | k: groups*kv_channels | v: groups*kv_channels]; multi-query groups, group j
      serves consecutive query heads j*heads/groups..; dense without bias. RoPE on the first kv_channels/2 dims
      of each head only, INTERLEAVED pairs (x[2j], x[2j+1]) rotated by pos*inv_freq[j], inv_freq =
      1/(10000*rope_ratio)^(arange(0, kv_channels/2, 2)/(kv_channels/2)) (the checkpoint buffer
      transformer.rotary_pos_emb.inv_freq, written with its true values); the other dims pass through.
      Causal + key padding mask (ChatGLM lets padded QUERY rows see every key; those rows are unspecified
      here), scale 1/sqrt(kv_channels). MLP: a, b = chunk(dense_h_to_4h x, 2); dense_4h_to_h(silu(a)*b).
    * token_states = final_layernorm output; state_mask = attention_mask; cell_embedding = mean over the
      attention_mask tokens (the [gMASK], sop prefix included). transformer.output_layer.weight is unused.

Tokens (tokens.h5, 5 cells "c0".."c4", batch-first, right-padded, one cell of the full length and one short):
  cellplm  x float32 [B, gene_num] raw integer counts (cell i has CELLPLM_NNZ[i] nonzero genes)
  tgpt     input_ids int64 [B, max_length] (BOS 1, gene ids in [4, vocab), EOS 2, pads 0),
           attention_mask int64 [B, max_length] (1 = real, BOS/EOS included)
  llama    input_ids int64 [B, max_length] (BOS 1, ids in [3, vocab), pads 0), attention_mask int64
  chatglm  input_ids int64 [B, max_length] ([gMASK] 60, sop 61, ids in [3, 60), pads 0), attention_mask int64
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

VARIANTS = ["cellplm", "tgpt", "llama", "chatglm"]
# The tiny configs, in each model's own config keys (plus ours where the model has none).
CONFIGS = {
    "cellplm": {"enc_hid": 16, "enc_layers": 2, "enc_head": 2, "post_latent_dim": 8, "num_clusters": 4,
                "gene_num": 12, "batch_cells": 3, "model_dropout": 0.2},
    "tgpt": {"vocab_size": 40, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_inner": 64, "n_positions": 32,
             "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "bos_token_id": 1, "eos_token_id": 2,
             "pad_token_id": 0, "max_length": 12},
    "llama": {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
              "max_position_embeddings": 64, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
              "max_length": 16},
    "chatglm": {"padded_vocab_size": 64, "hidden_size": 32, "num_layers": 2, "num_attention_heads": 4,
                "kv_channels": 8, "multi_query_attention": True, "multi_query_group_num": 2, "ffn_hidden_size": 24,
                "layernorm_epsilon": 1e-5, "add_qkv_bias": True, "add_bias_linear": False, "rope_ratio": 1.0,
                "seq_length": 64, "max_length": 16},
}
OBS_NAMES = [f"c{i}" for i in range(5)]
# Per cell: CellPLM nonzero genes (c1 has every gene, c2 one); real tokens, specials included, for the others.
CELLPLM_NNZ = [5, 12, 1, 8, 3]
LENGTHS = {"tgpt": [7, 12, 3, 9, 5], "llama": [9, 16, 2, 12, 6], "chatglm": [8, 16, 3, 11, 5]}
TGPT_FIRST_GENE, LLAMA_FIRST_ID, GLM_FIRST_ID, GLM_GMASK, GLM_SOP = 4, 3, 3, 60, 61
BUGS = {"cellplm": ["per-cell"], "tgpt": ["no-causal"], "llama": ["no-rope"], "chatglm": ["rope-halves"]}
ALL_BUGS = [b for v in VARIANTS for b in BUGS[v]]
CELLPLM_MARGIN = 1e-3  # minimum top-1/top-2 cluster-logit gap, so float32 cannot flip the argmax
FLOW_EPS = 1e-6


def bugs_for(variant):
    return list(BUGS[variant])


# ---------------------------------------------------------------------------------------------- weights
# kind: w = randn/sqrt(fan_in), b = 0.1*randn, g = norm gain 1+0.2*randn, e = randn (embedding tables); Conv1D
# ("c", [in, out]) = randn/sqrt(in); special kinds are filled in by random_weights.
def _linear(name, n_out, n_in, bias=True):
    return [(name + ".weight", [n_out, n_in], "w")] + ([(name + ".bias", [n_out], "b")] if bias else [])


def _conv1d(name, n_in, n_out):
    return [(name + ".weight", [n_in, n_out], "c"), (name + ".bias", [n_out], "b")]


def _layernorm(name, n):
    return [(name + ".weight", [n], "g"), (name + ".bias", [n], "b")]


def _rmsnorm(name, n):
    return [(name + ".weight", [n], "g")]


def manifest(variant, cfg):
    """(name, shape, kind) in published-checkpoint naming, the never-used heads included."""
    if variant == "cellplm":
        d, k, p = cfg["enc_hid"], cfg["num_clusters"], cfg["post_latent_dim"]
        m = ([("embedder.feat_enc.emb", [cfg["gene_num"], d], "e")] + _linear("embedder.extra_linear.0", d, d)
             + _layernorm("embedder.extra_linear.3", d) + _layernorm("embedder.norm0", d))
        for i in range(cfg["enc_layers"]):
            q = f"encoder.layers.{i}."
            for proj in ("query", "key", "value", "out"):
                m += _linear(q + f"self_attn.{proj}_projection", d, d)
            m += (_linear(q + "_ff_block.0", 2 * d, d) + _linear(q + "_ff_block.3", d, 2 * d)
                  + _layernorm(q + "norm1", d) + _layernorm(q + "norm2", d))
        inf = "latent.layers.1.inference."
        return (m + _layernorm("pre_latent_norm.norm", d) + _linear(inf + "inference_qyx.0.logits", k, d)
                + _linear(inf + "inference_qzyx.0", p, d + k) + _linear(inf + "inference_qzyx.2.mu", p, p)
                + _linear(inf + "inference_qzyx.2.var", p, p) + _linear(inf + "y_mu", p, k)
                + _linear(inf + "y_var", p, k) + [("decoder.dummy.weight", [4, 4], "w")])
    if variant == "tgpt":
        d, v, ff = cfg["n_embd"], cfg["vocab_size"], cfg["n_inner"]
        m = [("transformer.wte.weight", [v, d], "e"), ("transformer.wpe.weight", [cfg["n_positions"], d], "e")]
        for i in range(cfg["n_layer"]):
            q = f"transformer.h.{i}."
            m += (_layernorm(q + "ln_1", d) + _conv1d(q + "attn.c_attn", d, 3 * d) + _conv1d(q + "attn.c_proj", d, d)
                  + _layernorm(q + "ln_2", d) + _conv1d(q + "mlp.c_fc", d, ff) + _conv1d(q + "mlp.c_proj", ff, d))
        return m + _layernorm("transformer.ln_f", d) + [("lm_head.weight", [v, d], "e")]
    if variant == "llama":
        d, v, ff = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
        hd = d // cfg["num_attention_heads"]
        kv = cfg["num_key_value_heads"] * hd
        m = [("model.embed_tokens.weight", [v, d], "e")]
        for i in range(cfg["num_hidden_layers"]):
            q = f"model.layers.{i}."
            m += (_rmsnorm(q + "input_layernorm", d) + _linear(q + "self_attn.q_proj", d, d, bias=False)
                  + _linear(q + "self_attn.k_proj", kv, d, bias=False)
                  + _linear(q + "self_attn.v_proj", kv, d, bias=False)
                  + _linear(q + "self_attn.o_proj", d, d, bias=False) + _rmsnorm(q + "post_attention_layernorm", d)
                  + _linear(q + "mlp.gate_proj", ff, d, bias=False) + _linear(q + "mlp.up_proj", ff, d, bias=False)
                  + _linear(q + "mlp.down_proj", d, ff, bias=False))
        return m + _rmsnorm("model.norm", d) + [("lm_head.weight", [v, d], "e")]
    if variant == "chatglm":
        h, v, ff, kc = cfg["hidden_size"], cfg["padded_vocab_size"], cfg["ffn_hidden_size"], cfg["kv_channels"]
        proj = cfg["num_attention_heads"] * kc
        qkv = proj + 2 * cfg["multi_query_group_num"] * kc
        m = [("transformer.embedding.word_embeddings.weight", [v, h], "e")]
        for i in range(cfg["num_layers"]):
            q = f"transformer.encoder.layers.{i}."
            m += (_rmsnorm(q + "input_layernorm", h) + _linear(q + "self_attention.query_key_value", qkv, h)
                  + _linear(q + "self_attention.dense", h, proj, bias=False)
                  + _rmsnorm(q + "post_attention_layernorm", h)
                  + _linear(q + "mlp.dense_h_to_4h", 2 * ff, h, bias=False)
                  + _linear(q + "mlp.dense_4h_to_h", h, ff, bias=False))
        return (m + _rmsnorm("transformer.encoder.final_layernorm", h)
                + [("transformer.output_layer.weight", [v, h], "e"),
                   ("transformer.rotary_pos_emb.inv_freq", [kc // 4], "inv_freq")])
    raise AssertionError(variant)


# Parameters a checkpoint carries but the encoder never uses; the C++ loader has to skip them.
_INF = "latent.layers.1.inference."
UNUSED = {"cellplm": tuple(_INF + n for n in ("inference_qzyx.2.var.weight", "inference_qzyx.2.var.bias",
                                              "y_mu.weight", "y_mu.bias", "y_var.weight", "y_var.bias"))
          + ("embedder.norm0.weight", "embedder.norm0.bias", "decoder.dummy.weight"),
          "tgpt": ("lm_head.weight",), "llama": ("lm_head.weight",),
          "chatglm": ("transformer.output_layer.weight",)}
# Buffers the checkpoint carries with their true values; the C++ side recomputes them from the config.
RECOMPUTED = {"chatglm": ("transformer.rotary_pos_emb.inv_freq",)}


def glm_inv_freq(cfg):
    """ChatGLM's RotaryEmbedding(kv_channels // 2) buffer: 1/base^(arange(0, dim, 2)/dim), base 10000*rope_ratio."""
    dim = cfg["kv_channels"] // 2
    base = 10000.0 * cfg["rope_ratio"]
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))


def random_weights(variant, cfg, seed):
    """Non-trivial values everywhere: norm gains != 1 and biases != 0, so a skipped or swapped tensor shows."""
    g = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for name, shape, kind in manifest(variant, cfg):
        z = torch.randn(shape, generator=g)
        if kind == "w":
            out[name] = z / math.sqrt(shape[-1])
        elif kind == "c":  # Conv1D [in, out]
            out[name] = z / math.sqrt(shape[0])
        elif kind == "b":
            out[name] = 0.1 * z
        elif kind == "g":
            out[name] = 1.0 + 0.2 * z
        elif kind == "e":
            out[name] = z
        elif kind == "inv_freq":
            out[name] = glm_inv_freq(cfg).float()
        else:
            raise AssertionError(kind)
    return out


def to_module_names(variant, state):
    return OrderedDict((k, v) for k, v in state.items() if k not in UNUSED[variant])


class Node(nn.Module):
    """A bare level of the published state-dict path."""


def attention(q, k, v, allowed):
    """softmax(q k^T / sqrt(d) masked) v for q [B,H,L,d], k/v [B,H,S,d]; allowed bool broadcastable to [B,H,L,S]."""
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def causal_padding_mask(attention_mask, causal=True):
    """bool [B,1,L,L]: key s visible to query l when s is real (and s <= l if causal)."""
    b, n = attention_mask.shape
    allowed = attention_mask.bool()[:, None, None, :].expand(b, 1, n, n)
    if causal:
        allowed = allowed & torch.ones(n, n, dtype=torch.bool).tril()
    return allowed


def masked_mean(states, sel):
    w = sel.to(states.dtype).unsqueeze(-1)
    return (states * w).sum(1) / w.sum(1)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


# ---------------------------------------------------------------------------------------------- CellPLM
class FlowAttention(nn.Module):
    """Flow_Attention (Flowformer) as CellPLM's FlowformerLayer uses it, over one group of cells."""

    def __init__(self, d, heads):
        super().__init__()
        self.query_projection, self.key_projection = nn.Linear(d, d), nn.Linear(d, d)
        self.value_projection, self.out_projection = nn.Linear(d, d), nn.Linear(d, d)
        self.heads = heads

    def forward(self, x):  # x [N, L, d]
        n, length, d = x.shape
        split = lambda t: t.view(n, length, self.heads, -1).transpose(1, 2)  # noqa: E731  [n, h, l, dh]
        q = torch.sigmoid(split(self.query_projection(x)))
        k = torch.sigmoid(split(self.key_projection(x)))
        v = split(self.value_projection(x))
        big_l = big_s = length
        eps = FLOW_EPS
        sink_incoming = 1.0 / torch.einsum("nhld,nhd->nhl", q + eps, k.sum(dim=2) + eps)
        source_outgoing = 1.0 / torch.einsum("nhld,nhd->nhl", k + eps, q.sum(dim=2) + eps)
        conserved_sink = torch.einsum("nhld,nhd->nhl", q + eps, (k * source_outgoing[..., None]).sum(dim=2) + eps)
        conserved_source = torch.einsum("nhld,nhd->nhl", k + eps,
                                        (q * sink_incoming[..., None]).sum(dim=2) + eps)
        conserved_source = torch.clamp(conserved_source, min=-1.0, max=1.0)
        sink_allocation = torch.sigmoid(conserved_sink * (float(big_l) / float(big_s)))
        source_competition = torch.softmax(conserved_source, dim=-1) * float(big_s)
        out = ((q * sink_incoming[..., None]) @ (k.transpose(-2, -1) @ (v * source_competition[..., None])))
        out = out * sink_allocation[..., None]
        return self.out_projection(out.transpose(1, 2).reshape(n, length, d))


class FlowformerLayer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.self_attn = FlowAttention(d, heads)
        self._ff_block = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(0.0), nn.Linear(2 * d, d),
                                       nn.Dropout(0.0))
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)

    def forward(self, x):  # pre-LN
        x = x + self.self_attn(self.norm1(x))
        return x + self._ff_block(self.norm2(x))


class CellPLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, k, p = cfg["enc_hid"], cfg["num_clusters"], cfg["post_latent_dim"]
        self.batch_cells = cfg["batch_cells"]
        self.embedder = Node()
        self.embedder.feat_enc = Node()
        self.embedder.feat_enc.emb = nn.Parameter(torch.zeros(cfg["gene_num"], d))
        self.embedder.extra_linear = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(0.0),
                                                   nn.GroupNorm(4, d, eps=1e-5))
        self.encoder = Node()
        self.encoder.layers = nn.ModuleList(FlowformerLayer(d, cfg["enc_head"]) for _ in range(cfg["enc_layers"]))
        self.pre_latent_norm = Node()
        self.pre_latent_norm.norm = nn.LayerNorm(d, eps=1e-5)
        inference = Node()
        qyx = Node()
        qyx.logits = nn.Linear(d, k)
        inference.inference_qyx = nn.ModuleList([qyx])
        gaussian = Node()
        gaussian.mu = nn.Linear(p, p)  # .var is unused (the mean is the embedding)
        inference.inference_qzyx = nn.ModuleList([nn.Linear(d + k, p), nn.ReLU(), gaussian])
        gmvae = Node()
        gmvae.inference = inference
        self.latent = Node()
        self.latent.layers = nn.ModuleList([Node(), gmvae])
        self.num_clusters = k

    def cluster_logits(self, h):
        return self.latent.layers[1].inference.inference_qyx[0].logits(h)

    def forward(self, x, bug=None):  # x [B, gene_num] raw counts
        h = torch.log1p(x) @ self.embedder.feat_enc.emb
        h = self.embedder.extra_linear(h)
        group = 1 if bug == "per-cell" else self.batch_cells
        outs = []
        for start in range(0, h.shape[0], group):
            s = h[start:start + group].unsqueeze(0)  # one sequence whose tokens are the group's cells
            for layer in self.encoder.layers:
                s = layer(s)
            outs.append(s[0])
        h = self.pre_latent_norm.norm(torch.cat(outs, 0))  # [B, d]
        inf = self.latent.layers[1].inference
        logits = self.cluster_logits(h)
        y = F.one_hot(logits.argmax(-1), self.num_clusters).to(h.dtype)  # argmax, not a Gumbel sample
        z = inf.inference_qzyx[2].mu(inf.inference_qzyx[1](inf.inference_qzyx[0](torch.cat([h, y], dim=1))))
        return z, h.unsqueeze(1), logits


# ---------------------------------------------------------------------------------------------- tGPT (GPT-2)
class Conv1D(nn.Module):
    """transformers' Conv1D: weight [in, out], y = x W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return F.linear(x, self.weight.t(), self.bias)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.c_attn, self.c_proj = Conv1D(d, 3 * d), Conv1D(d, d)
        self.d, self.heads = d, heads

    def forward(self, x, pad, causal):  # x [B, L, d]; pad bool [B, L] (True = pad)
        n = x.shape[1]
        attn_mask = torch.ones(n, n, dtype=torch.bool).triu(1) if causal else None  # True = not allowed
        xt = x.transpose(0, 1)
        out, _ = F.multi_head_attention_forward(
            xt, xt, xt, self.d, self.heads, self.c_attn.weight.t(), self.c_attn.bias, None, None, False, 0.0,
            self.c_proj.weight.t(), self.c_proj.bias, training=False, key_padding_mask=pad, need_weights=False,
            attn_mask=attn_mask)
        return out.transpose(0, 1)


class GPT2MLP(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.c_fc, self.c_proj = Conv1D(d, ff), Conv1D(ff, d)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, eps = cfg["n_embd"], cfg["layer_norm_epsilon"]
        self.ln_1, self.ln_2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.attn = GPT2Attention(d, cfg["n_head"])
        self.mlp = GPT2MLP(d, cfg["n_inner"])

    def forward(self, x, pad, causal):
        x = x + self.attn(self.ln_1(x), pad, causal)
        return x + self.mlp(self.ln_2(x))


class TGPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["n_embd"]
        self.transformer = Node()
        self.transformer.wte = nn.Embedding(cfg["vocab_size"], d)
        self.transformer.wpe = nn.Embedding(cfg["n_positions"], d)
        self.transformer.h = nn.ModuleList(GPT2Block(cfg) for _ in range(cfg["n_layer"]))
        self.transformer.ln_f = nn.LayerNorm(d, eps=cfg["layer_norm_epsilon"])

    def forward(self, input_ids, attention_mask, bug=None):
        t = self.transformer
        n = input_ids.shape[1]
        x = t.wte(input_ids) + t.wpe(torch.arange(n))[None]
        pad = attention_mask == 0
        for block in t.h:
            x = block(x, pad, causal=bug != "no-causal")
        states = t.ln_f(x)
        eos = attention_mask.sum(1) - 1
        pos = torch.arange(n)[None]
        sel = (pos >= 1) & (pos < eos[:, None])  # between BOS and EOS
        return masked_mean(states, sel), states


# ---------------------------------------------------------------------------------------------- LLaMA
def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_halves(x, inv_freq):
    """HF rotate_half RoPE on all of x's last dim; x [B,H,L,dim], inv_freq [dim/2], positions 0..L-1."""
    pos = torch.arange(x.shape[-2], dtype=x.dtype)
    freqs = torch.outer(pos, inv_freq.to(x.dtype))
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, self.heads, self.kv_heads = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = d // self.heads
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.theta = cfg["rope_theta"]

    def forward(self, x, allowed, bug=None):
        b, n, d = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.kv_heads, self.hd).transpose(1, 2)
        if bug != "no-rope":
            inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
            q, k = rope_halves(q, inv_freq), rope_halves(k, inv_freq)
        rep = self.heads // self.kv_heads  # repeat_kv: kv head j -> query heads j*rep .. (j+1)*rep-1
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = attention(q, k, v, allowed)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, d))


class LlamaMLP(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.gate_proj, self.up_proj = nn.Linear(d, ff, bias=False), nn.Linear(d, ff, bias=False)
        self.down_proj = nn.Linear(ff, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(d, eps), RMSNorm(d, eps)
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(d, cfg["intermediate_size"])

    def forward(self, x, allowed, bug=None):
        x = x + self.self_attn(self.input_layernorm(x), allowed, bug)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.model = Node()
        self.model.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.model.layers = nn.ModuleList(LlamaLayer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.model.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, input_ids, attention_mask, bug=None):
        x = self.model.embed_tokens(input_ids)
        allowed = causal_padding_mask(attention_mask)
        for layer in self.model.layers:
            x = layer(x, allowed, bug)
        states = self.model.norm(x)
        return masked_mean(states, attention_mask.bool()), states


# ---------------------------------------------------------------------------------------------- ChatGLM
def glm_rope(x, inv_freq, halves=False):
    """ChatGLM apply_rotary_pos_emb: rotates the first 2*len(inv_freq) dims of x [B,H,L,hd] as interleaved pairs
    (x[2j], x[2j+1]) by pos*inv_freq[j]; the rest pass through. halves=True: the rotate_half layout instead."""
    rot = 2 * inv_freq.shape[0]
    xr, xp = x[..., :rot], x[..., rot:]
    pos = torch.arange(x.shape[-2], dtype=x.dtype)
    ang = torch.outer(pos, inv_freq.to(x.dtype))  # [L, rot/2]
    cos, sin = ang.cos(), ang.sin()
    if halves:
        a, b = xr[..., :rot // 2], xr[..., rot // 2:]
        out = torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
    else:
        a, b = xr[..., 0::2], xr[..., 1::2]
        out = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(-2)
    return torch.cat([out, xp], dim=-1)


class RotaryEmbedding(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.register_buffer("inv_freq", torch.zeros(n))  # from the state dict (persistent, as in the checkpoint)


class GLMSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, self.kc = cfg["hidden_size"], cfg["kv_channels"]
        self.heads = cfg["num_attention_heads"]
        self.groups = cfg["multi_query_group_num"] if cfg["multi_query_attention"] else self.heads
        self.query_key_value = nn.Linear(h, (self.heads + 2 * self.groups) * self.kc, bias=cfg["add_qkv_bias"])
        self.dense = nn.Linear(self.heads * self.kc, h, bias=cfg["add_bias_linear"])

    def forward(self, x, allowed, inv_freq, bug=None):
        b, n, _ = x.shape
        qkv = self.query_key_value(x)
        nq, nk = self.heads * self.kc, self.groups * self.kc
        q = qkv[..., :nq].view(b, n, self.heads, self.kc).transpose(1, 2)
        k = qkv[..., nq:nq + nk].view(b, n, self.groups, self.kc).transpose(1, 2)
        v = qkv[..., nq + nk:].view(b, n, self.groups, self.kc).transpose(1, 2)
        halves = bug == "rope-halves"
        q, k = glm_rope(q, inv_freq, halves), glm_rope(k, inv_freq, halves)
        rep = self.heads // self.groups  # group j -> query heads j*rep .. (j+1)*rep-1
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = attention(q, k, v, allowed)  # scale 1/sqrt(kv_channels)
        return self.dense(out.transpose(1, 2).reshape(b, n, nq))


class GLMMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, ff = cfg["hidden_size"], cfg["ffn_hidden_size"]
        self.dense_h_to_4h = nn.Linear(h, 2 * ff, bias=cfg["add_bias_linear"])
        self.dense_4h_to_h = nn.Linear(ff, h, bias=cfg["add_bias_linear"])

    def forward(self, x):
        a, b = self.dense_h_to_4h(x).chunk(2, dim=-1)
        return self.dense_4h_to_h(F.silu(a) * b)


class GLMBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["layernorm_epsilon"]
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(h, eps), RMSNorm(h, eps)
        self.self_attention = GLMSelfAttention(cfg)
        self.mlp = GLMMLP(cfg)

    def forward(self, x, allowed, inv_freq, bug=None):
        x = x + self.self_attention(self.input_layernorm(x), allowed, inv_freq, bug)  # residual = layer input
        return x + self.mlp(self.post_attention_layernorm(x))


class ChatGLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.transformer = Node()
        self.transformer.embedding = Node()
        self.transformer.embedding.word_embeddings = nn.Embedding(cfg["padded_vocab_size"], h)
        self.transformer.rotary_pos_emb = RotaryEmbedding(cfg["kv_channels"] // 4)
        self.transformer.encoder = Node()
        self.transformer.encoder.layers = nn.ModuleList(GLMBlock(cfg) for _ in range(cfg["num_layers"]))
        self.transformer.encoder.final_layernorm = RMSNorm(h, cfg["layernorm_epsilon"])

    def forward(self, input_ids, attention_mask, bug=None):
        t = self.transformer
        x = t.embedding.word_embeddings(input_ids)
        allowed = causal_padding_mask(attention_mask)
        for layer in t.encoder.layers:
            x = layer(x, allowed, t.rotary_pos_emb.inv_freq, bug)
        states = t.encoder.final_layernorm(x)
        return masked_mean(states, attention_mask.bool()), states


# ---------------------------------------------------------------------------------------------- model plumbing
def build_model(variant, cfg, state, dtype=torch.float32):
    model = {"cellplm": CellPLM, "tgpt": TGPT, "llama": Llama, "chatglm": ChatGLM}[variant](cfg)
    model.load_state_dict(to_module_names(variant, state), strict=True)
    return model.to(dtype).eval()  # every dropout is built at p=0; eval() changes nothing else here


def run_model(variant, model, tok, bug=None):
    """(cell_embedding, token_states)."""
    with torch.no_grad():
        if variant == "cellplm":
            z, h, _ = model(tok["x"].to(model.embedder.feat_enc.emb.dtype), bug=bug)
            return z, h
        return model(tok["input_ids"], tok["attention_mask"], bug=bug)


# ---------------------------------------------------------------------------------------------- tokens
def cellplm_tokens(cfg, g):
    x = torch.zeros(len(CELLPLM_NNZ), cfg["gene_num"])
    for b, n in enumerate(CELLPLM_NNZ):
        genes = torch.randperm(cfg["gene_num"], generator=g)[:n]
        x[b, genes] = torch.randint(1, 30, (n,), generator=g).float()
    return {"x": x}


def sequence_tokens(variant, cfg, g):
    lengths, n = LENGTHS[variant], cfg["max_length"]
    ids = torch.zeros(len(lengths), n, dtype=torch.int64)
    mask = torch.zeros(len(lengths), n, dtype=torch.int64)
    for b, m in enumerate(lengths):
        if variant == "tgpt":  # BOS, genes, EOS
            row = [cfg["bos_token_id"]] + torch.randint(TGPT_FIRST_GENE, cfg["vocab_size"], (m - 2,),
                                                        generator=g).tolist() + [cfg["eos_token_id"]]
        elif variant == "llama":  # BOS, ids
            row = [cfg["bos_token_id"]] + torch.randint(LLAMA_FIRST_ID, cfg["vocab_size"], (m - 1,),
                                                        generator=g).tolist()
        else:  # [gMASK], sop, ids
            row = [GLM_GMASK, GLM_SOP] + torch.randint(GLM_FIRST_ID, GLM_GMASK, (m - 2,), generator=g).tolist()
        ids[b, :m] = torch.tensor(row)
        mask[b, :m] = 1
    return {"input_ids": ids, "attention_mask": mask}


def make_tokens(variant, cfg, g):
    return cellplm_tokens(cfg, g) if variant == "cellplm" else sequence_tokens(variant, cfg, g)


def state_mask(variant, tok):
    if variant == "cellplm":
        return np.ones((tok["x"].shape[0], 1), dtype=bool)
    return tok["attention_mask"].numpy() == 1


def real_lengths(variant, tok):
    if variant == "cellplm":
        return [int(n) for n in (tok["x"] > 0).sum(1)]
    return [int(n) for n in tok["attention_mask"].sum(1)]


def cluster_margin(model, tok):
    """Smallest top-1 minus top-2 cluster logit over the cells (float64 model)."""
    with torch.no_grad():
        _, _, logits = model(tok["x"].to(torch.float64))
    top = logits.topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).min())


# ---------------------------------------------------------------------------------------------- commands
DESCRIPTIONS = {
    "cellplm": ("GMVAE mean z = inference_qzyx.2.mu(ReLU(inference_qzyx.0([h, one_hot(argmax logits)]))), "
                "[B, post_latent_dim]; cells attend within consecutive groups of batch_cells (file order)",
                "pre_latent_norm output, one token per cell, [B, 1, enc_hid]; all meaningful"),
    "tgpt": ("mean of ln_f output over positions 1..eos_idx-1 (eos_idx = attention_mask.sum-1), [B, n_embd]",
             "ln_f output [B, max_length, n_embd]; meaningful where attention_mask is 1"),
    "llama": ("mean of model.norm output over attention_mask tokens (BOS included), [B, hidden_size]",
              "model.norm output [B, max_length, hidden_size]; meaningful where attention_mask is 1"),
    "chatglm": ("mean of final_layernorm output over attention_mask tokens (prefix included), [B, hidden_size]",
                "final_layernorm output [B, max_length, hidden_size]; meaningful where attention_mask is 1"),
}


def cmd_make(a):
    variant, cfg = a.variant, CONFIGS[a.variant]
    state = random_weights(variant, cfg, a.seed)
    path = write_model_files(a.outdir, cfg, state)
    # Reference from the float32 values on disk, computed in float64.
    model = build_model(variant, cfg, read_safetensors(path), torch.float64)
    token_seed = a.seed + 1
    tok = make_tokens(variant, cfg, torch.Generator().manual_seed(token_seed))
    extra = {}
    if variant == "cellplm":
        # The argmax cluster must not be near a tie, or float32 could pick another one: redraw the counts.
        for attempt in range(1, 1000):
            margin = cluster_margin(model, tok)
            if margin > CELLPLM_MARGIN:
                break
            token_seed = a.seed + 1 + 7919 * attempt
            tok = make_tokens(variant, cfg, torch.Generator().manual_seed(token_seed))
        else:
            raise SystemExit("no token draw with a clear cluster argmax")
        extra = {"cluster_logit_margin": margin, "groups": [OBS_NAMES[i:i + cfg["batch_cells"]]
                                                            for i in range(0, len(OBS_NAMES), cfg["batch_cells"])],
                 "cluster_choice": "argmax of the logits (the original samples a hard Gumbel-softmax)"}
    write_tokens(os.path.join(a.outdir, "tokens.h5"), tok, OBS_NAMES)
    cell, states = run_model(variant, model, tok)
    sel = state_mask(variant, tok)
    cell_desc, states_desc = DESCRIPTIONS[variant]
    meta = {"variant": variant, "seed": a.seed, "token_seed": token_seed, "reference_dtype": "float64",
            "obs_names": OBS_NAMES, "real_lengths": real_lengths(variant, tok), "inputs": describe_inputs(tok),
            "unused_weights": list(UNUSED[variant]), "recomputed_buffers": list(RECOMPUTED.get(variant, ())),
            "bugs": bugs_for(variant), "cell_embedding": cell_desc, "token_states": states_desc,
            "state_mask": f"bool {list(sel.shape)}: positions compared by `compare --states`", **extra}
    write_expected(a.outdir, meta, cell, states, OBS_NAMES, sel)


def cmd_emulate(a):
    emulate_variant(a, bugs_for, build_model, run_model)


def main():
    reference_cli(__doc__, VARIANTS, ALL_BUGS, cmd_make, compare_with_state_mask, cmd_emulate)


if __name__ == "__main__":
    main()
