#!/usr/bin/env python3
"""The matrix-product bound of an embedding forward (issue 11, P1): times, with the peer's own BLAS (torch's
OpenBLAS, same thread count and environment as the benchmark), every matrix product a transformer forward does
at the benchmark's shapes, and prints the cells/s a forward would reach if those products ran at their measured
speed and everything else (softmax, layer norm, embeddings, copies) were free. No implementation on this BLAS
and these FLOPs gets past it; a goal above it needs fewer FLOPs or a faster kernel than OpenBLAS.

Two bounds: the model as the Python reference computes it (every layer at every position), and as sdm computes
the embedding (scGPT: the last layer at <cls> only; Geneformer: up to the penultimate layer).

usage: gemm_bound.py SIZE [--threads 2] [--python-cells-per-s X] [--sdm-cells-per-s Y]
prints a human line and `FIGURE embed_SIZE_gemm_bound ...` for tools/bench/run.sh.
"""
import argparse
import time

import torch

# size -> (d, heads, feed-forward width, layers, sequence length, batch, layers sdm runs in full, last at <cls>)
SIZES = {
    "scgpt-tiny": (64, 4, 128, 2, 256, 8, 1, True),
    "scgpt-published": (512, 8, 512, 12, 1200, 8, 11, True),
    "geneformer-tiny": (64, 4, 128, 2, 256, 8, 1, False),
    "geneformer-v1": (256, 4, 512, 6, 2048, 4, 5, False),
}


def seconds(fn, reps):
    """The best of `reps` timed calls after two warm-up calls: the speed the product can reach here."""
    fn()
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def layer_seconds(d, heads, ff, S, B, reps):
    """(seconds, flops) of one layer's products for a batch of B cells of S tokens: the q/k/v, output and two
    feed-forward projections over B*S rows, then per cell the two attention products of all heads."""
    dh = d // heads
    x = torch.randn(B * S, d)
    parts = []
    for k, n in ((d, 3 * d), (d, d), (d, ff), (ff, d)):
        a = x if k == d else torch.randn(B * S, ff)
        w = torch.randn(k, n)
        parts.append((seconds(lambda a=a, w=w: torch.mm(a, w), reps), 2.0 * B * S * k * n))
    q, kt, v = torch.randn(heads, S, dh), torch.randn(heads, dh, S), torch.randn(heads, S, dh)
    p = torch.randn(heads, S, S)
    parts.append((B * seconds(lambda: torch.bmm(q, kt), reps), 2.0 * B * heads * S * S * dh))
    parts.append((B * seconds(lambda: torch.bmm(p, v), reps), 2.0 * B * heads * S * S * dh))
    return sum(t for t, _ in parts), sum(f for _, f in parts)


def cls_layer_seconds(d, heads, ff, S, B, reps):
    """The last layer at <cls> only: keys and values over B*S rows, the rest for one row per cell."""
    dh = d // heads
    t_kv = seconds(lambda a=torch.randn(B * S, d), w=torch.randn(d, 2 * d): torch.mm(a, w), reps)
    one, _ = layer_seconds(d, heads, ff, 1, B, reps)  # q, output and feed-forward for one position per cell
    t_att = 2 * B * seconds(lambda k=torch.randn(heads, 1, dh), s=torch.randn(heads, dh, S): torch.bmm(k, s), reps)
    return t_kv + one + t_att, 2.0 * B * S * d * 2 * d + 4.0 * B * heads * S * dh


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("size", choices=sorted(SIZES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--python-cells-per-s", type=float, default=float("nan"))
    ap.add_argument("--sdm-cells-per-s", type=float, default=float("nan"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d, heads, ff, layers, S, B, full_layers, cls_last = SIZES[a.size]
    with torch.inference_mode():
        t_layer, f_layer = layer_seconds(d, heads, ff, S, B, a.reps)
        t_last, f_last = cls_layer_seconds(d, heads, ff, S, B, a.reps) if cls_last else (0.0, 0.0)
    model_bound = B / (layers * t_layer)
    sdm_bound = B / (full_layers * t_layer + t_last)
    flops_cell = layers * f_layer / B
    sdm_flops_cell = (full_layers * f_layer + f_last) / B
    rate = f_layer / t_layer / 1e9

    def achieved(cells_per_s, flops):
        return f"{cells_per_s * flops / 1e9:.0f}" if cells_per_s == cells_per_s else "?"  # nan: not measured
    print(f"{a.size}: {flops_cell / 1e9:.1f} GFLOP per cell in matrix products (full model), OpenBLAS at "
          f"{rate:.0f} GFLOP/s on these shapes with {a.threads} threads; bound {model_bound:.3g} cells/s for the full "
          f"model, {sdm_bound:.3g} cells/s for sdm's embedding path; python {a.python_cells_per_s:.3g} cells/s "
          f"({achieved(a.python_cells_per_s, flops_cell)} GFLOP/s), sdm {a.sdm_cells_per_s:.3g} cells/s "
          f"({achieved(a.sdm_cells_per_s, sdm_flops_cell)} GFLOP/s of its {sdm_flops_cell / 1e9:.1f} GFLOP/cell)")
    # FIGURE name value unit peer better goal notes (ratio = the most any port on this BLAS could reach vs python)
    print(f"FIGURE embed_{a.size}_gemm_bound {sdm_bound:.4g} cells/s {a.python_cells_per_s:.4g} higher - "
          f"approximate ceiling (products timed alone): every matrix product at OpenBLAS's measured speed ({rate:.0f} GFLOP/s, {a.threads} threads), "
          f"all else free; full-model bound {model_bound:.4g} cells/s; {flops_cell / 1e9:.1f} GFLOP/cell")


if __name__ == "__main__":
    main()
