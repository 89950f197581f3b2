#!/usr/bin/python3
"""PyTorch peer of `bench_data_parallel lora-step` at 1 rank: one LoRA fine-tuning step (forward, backward,
AdamW) of the same scGPT-like model on the same cells, timed the same way.

The model is tests/worker/model_reference.py's torch.nn scGPT (nn.TransformerEncoderLayer, post-LN, classic path,
no dropout in the base model: sdm's training forward has none either) loaded from WEIGHTS_DIR/weights.safetensors,
which this script writes (random, published names) and the sdm side then loads too. LoRA adapters (r, alpha,
targets as sdm runs them; A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0) sit on the same projections, as PEFT adapts
nn.MultiheadAttention: the adapted weight W + (alpha / r) B A is formed in the forward (torch.nn.utils.parametrize),
since MultiheadAttention reads out_proj.weight / in_proj_weight directly. Head: the study's
Linear(d, 512) ReLU Linear(512, 512) ReLU Linear(512, 2) on the L2-normalized <cls> state; loss BCE-with-logits on
one-hot targets (mean), AdamW(lr 1e-4, weight decay 0.01) over adapters + head. Cells: exactly LENGTH tokens each,
ids and values drawn with data_parallel.cpp's SplitMix64(7) stream, labels i % 2, a fresh random order per epoch,
BATCH cells per step, STEPS steps.

Timing as sdm's `train_s / steps`: wall time of all STEPS steps (the first included) divided by STEPS. The strong-peer
environment (peer-baselines.md: OPENBLAS_CORETYPE=SkylakeX where AVX-512 exists, OMP_WAIT_POLICY=PASSIVE, freed
memory kept in the heap) and THREADS compute threads (default 1, as the sdm bench) are set before torch loads.

usage: lora_step_reference.py WEIGHTS_DIR [--sdm build/sdm] [--model scgpt] [--preset tiny] [--batch 64]
         [--steps 8] [--length 256] [--threads 1] [--r 8] [--alpha 8] [--targets out_proj,...] [--foreach]
prints: python_lora_step_s=<f> cells_per_s=<f> batch=<B> length=<L> steps=<n> threads=<t> trainable=<n>
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("weights_dir")
p.add_argument("--sdm", default="build/sdm", help="sdm binary: the preset's config and LoRA targets come from it")
p.add_argument("--model", default="scgpt", choices=["scgpt"])
p.add_argument("--preset", default="tiny")
p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=8)
p.add_argument("--length", type=int, default=256)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--r", type=int, default=8)
p.add_argument("--alpha", type=float, default=8.0)
p.add_argument("--targets", default="", help="comma-separated; default: the model's lora_targets from `sdm models`")
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--weight-decay", type=float, default=0.01)
p.add_argument("--foreach", action="store_true", help="AdamW(foreach=True) (default: torch's CPU default)")
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

# Environment before torch loads OpenBLAS / OpenMP (setdefault: a caller may override).
for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(k, str(a.threads))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
with open("/proc/cpuinfo") as f:
    if "avx512f" in f.read():
        os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "worker"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

import model_reference as ref  # noqa: E402

libc = ctypes.CDLL("libc.so.6")  # keep freed memory in the heap (model_reference's --malloc tuned; sdm's default)
libc.mallopt(-4, 0)
libc.mallopt(-1, 2**31 - 1)

info = [m for m in json.loads(subprocess.run([a.sdm, "models", "--json"], check=True, capture_output=True,
                                             text=True).stdout) if m["name"] == a.model][0]
cfg = [pr for pr in info["presets"] if pr["name"] == a.preset][0]["config"]
targets = a.targets.split(",") if a.targets else info["lora_targets"]
d, L, B = cfg["embsize"], a.length, a.batch

# The same weights on both sides: written here, loaded by `bench_data_parallel lora-step ... WEIGHTS`.
os.makedirs(a.weights_dir, exist_ok=True)
state = ref.random_weights(cfg, a.seed)
with open(os.path.join(a.weights_dir, "config.json"), "w") as f:
    json.dump(cfg, f, indent=2)
ref.write_safetensors(os.path.join(a.weights_dir, "weights.safetensors"), state)

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
model = ref.build_model(cfg, state)  # train() mode, dropout 0: the classic MultiheadAttention path
for t in model.parameters():
    t.requires_grad_(False)


class LoRA(nn.Module):
    """W -> W + scaling * B @ A (B zero at the start), differentiable in A and B."""

    def __init__(self, rows, cols, r, alpha):
        super().__init__()
        bound = 1.0 / cols ** 0.5
        self.A = nn.Parameter(torch.empty(r, cols).uniform_(-bound, bound))
        self.B = nn.Parameter(torch.zeros(rows, r))
        self.scaling = alpha / r

    def forward(self, w):
        return w + self.scaling * (self.B @ self.A)


adapters = []
for layer in model.transformer_encoder.layers:
    for target in targets:
        owner, name = {"out_proj": (layer.self_attn.out_proj, "weight"), "Wqkv": (layer.self_attn, "in_proj_weight"),
                       "linear1": (layer.linear1, "weight"), "linear2": (layer.linear2, "weight")}[target]
        w = getattr(owner, name)
        lora = LoRA(w.shape[0], w.shape[1], a.r, a.alpha)
        parametrize.register_parametrization(owner, name, lora, unsafe=True)
        getattr(owner.parametrizations, name).original.requires_grad_(False)
        adapters += [lora.A, lora.B]
layers = [512, 512]
mods, width = [], d
for w in layers:
    mods += [nn.Linear(width, w), nn.ReLU()]
    width = w
head = nn.Sequential(*mods, nn.Linear(width, 2)).train()
trainable = adapters + list(head.parameters())
opt_kw = {"foreach": True} if a.foreach else {}
opt = torch.optim.AdamW(trainable, lr=a.lr, weight_decay=a.weight_decay, **opt_kw)

# Cells as data_parallel.cpp draws them: SplitMix64(7), per cell per token one draw for the id, one for the value.
n = B * a.steps
vocab = cfg["ntoken"] - 3
M = (1 << 64) - 1
k = np.arange(1, 2 * n * L + 1, dtype=np.uint64)
with np.errstate(over="ignore"):
    z = np.uint64(7) + k * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
u = (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
u = u.reshape(n, L, 2)
src = torch.from_numpy(4 + (u[..., 0] * (vocab - 4)).astype(np.int64))
values = torch.from_numpy((u[..., 1] * 51).astype(np.int64).astype(np.float32))
pad = torch.zeros(n, L, dtype=torch.uint8)
y = torch.tensor([i % 2 for i in range(n)], dtype=torch.float32)
target_all = torch.stack([1 - y, y], 1)
gen = torch.Generator().manual_seed(a.seed + 1)

t0 = time.perf_counter()
step_s = []
order = torch.randperm(n, generator=gen)
for s in range(0, n, B):
    ts = time.perf_counter()
    rows = order[s:s + B]
    opt.zero_grad(set_to_none=True)
    cell, _ = model(src[rows], values[rows], pad[rows])
    loss = F.binary_cross_entropy_with_logits(head(cell), target_all[rows])
    loss.backward()
    opt.step()
    loss.item()
    step_s.append(time.perf_counter() - ts)
dt = time.perf_counter() - t0
per = dt / a.steps
env = " ".join(f"{k}={os.environ.get(k, '')}" for k in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS"))
print(f"# {a.model}/{a.preset} d={d} targets={','.join(targets)} r={a.r} alpha={a.alpha} foreach={a.foreach} "
      f"steps after the first: min {min(step_s[1:] or step_s):.4f} s; {env}", file=sys.stderr)
print(f"python_lora_step_s={per:.5f} cells_per_s={B / per:.2f} batch={B} length={L} steps={a.steps} "
      f"threads={a.threads} trainable={sum(t.numel() for t in trainable)} loss={loss.item():.5f}")
