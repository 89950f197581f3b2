"""Independent reference for common/preprocess: writes a negative-binomial count matrix with anndata, then
computes with numpy what scanpy's normalize_total(1e4) + log1p and highly_variable_genes(flavor='seurat_v3')
compute, using a brute-force exact loess (every point sorts all distances; no sliding window).
Usage: preprocess_reference.py OUT.h5ad N_TOP  -> JSON on stdout."""
import json
import sys

import anndata
import numpy as np
import scipy.sparse as sp


def loess_exact(x, y, span):
    n = len(x)
    q = max(1, min(n, int(np.floor(span * n))))
    fitted = np.empty(n)
    for i in range(n):
        d = np.abs(x - x[i])
        idx = np.argsort(d, kind="stable")[:q]
        dmax = d[idx].max()
        w = (1 - np.clip(d[idx] / dmax, 0, 1) ** 3) ** 3 if dmax > 0 else np.ones(q)
        u = x[idx] - x[i]
        A = np.stack([np.ones(q), u, u * u], axis=1)
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(A * sw[:, None], y[idx] * sw, rcond=None)
        fitted[i] = coef[0]
    return fitted


def main():
    out, n_top = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(7)
    n_cells, n_genes = 400, 300
    mu = np.exp(rng.normal(-0.5, 1.3, n_genes))
    disp = rng.uniform(0.2, 3.0, n_genes)
    lib = rng.lognormal(0, 0.4, n_cells)[:, None]
    lam = rng.gamma(1 / disp, (mu * lib) * disp)
    counts = rng.poisson(lam).astype(np.float32)
    counts[:, 5] = 0  # a constant gene
    X = sp.csr_matrix(counts)
    ad = anndata.AnnData(X=X)
    ad.obs_names = [f"c{i}" for i in range(n_cells)]
    ad.var_names = [f"G{i:03d}" for i in range(n_genes)]
    ad.write_h5ad(out)

    # normalize_total(target_sum=1e4) + log1p
    totals = counts.sum(1, keepdims=True).astype(np.float64)
    norm = np.log1p(np.where(totals > 0, counts / np.maximum(totals, 1e-300) * 1e4, 0))

    # seurat_v3 (one batch), as in scanpy.pp._highly_variable_genes._highly_variable_genes_seurat_v3
    c = counts.astype(np.float64)
    mean = c.mean(0)
    var = c.var(0, ddof=1)
    not_const = var > 0
    est = np.zeros(n_genes)
    est[not_const] = loess_exact(np.log10(mean[not_const]), np.log10(var[not_const]), 0.3)
    reg_std = np.sqrt(10 ** est)
    clip = reg_std * np.sqrt(n_cells) + mean
    clipped = np.minimum(c, clip[None, :])
    nv = (n_cells * mean ** 2 + (clipped ** 2).sum(0) - 2 * clipped.sum(0) * mean) / ((n_cells - 1) * reg_std ** 2)
    top = np.sort(np.argsort(-nv, kind="stable")[:n_top])
    json.dump({"row_sums_log1p": norm.sum(1).tolist(), "norm_var": nv.tolist(), "hvg": top.tolist(),
               "mean": mean.tolist(), "var": var.tolist()}, sys.stdout)


main()
