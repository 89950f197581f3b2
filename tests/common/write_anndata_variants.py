#!/usr/bin/python3
"""Writes .h5ad files with Python anndata in several X encodings and dtypes, and obs columns of every kind,
so the C++ reader is tested against what anndata itself writes (not only against the fixtures).

usage: write_anndata_variants.py OUT_DIR   -> prints the written file names, one per line
"""
import os
import sys
import warnings

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.simplefilter("ignore")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    n, g = 37, 23
    counts = rng.negative_binomial(2, 0.6, size=(n, g)).astype(np.float64)
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(rng.choice(["resistant", "sensitive"], n)),
            "stage": pd.Categorical(rng.choice(["I", "II", "III"], n), categories=["I", "II", "III"], ordered=True),
            "donor": [f"d{i % 5}" for i in range(n)],
            "n_counts": counts.sum(1),
            "batch": rng.integers(0, 4, n).astype(np.int32),
            "is_doublet": rng.random(n) < 0.1,
            "maybe_int": pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
            "maybe_bool": pd.array([None if i % 5 == 0 else bool(i % 2) for i in range(n)], dtype="boolean"),
        },
        index=[f"cell{i:03d}" for i in range(n)],
    )
    var = pd.DataFrame({"gene_ids": [f"ENSG{i:011d}" for i in range(g)]}, index=[f"G{i}" for i in range(g)])
    variants = {
        "dense_f64": counts,
        "dense_f32": counts.astype(np.float32),
        "dense_i32": counts.astype(np.int32),
        "csr_f32": sp.csr_matrix(counts.astype(np.float32)),
        "csr_i64": sp.csr_matrix(counts.astype(np.int64)),
        "csc_f64": sp.csc_matrix(counts),
        "csr_u16": sp.csr_matrix(counts.astype(np.uint16)),
    }
    for name, X in variants.items():
        a = anndata.AnnData(X=X, obs=obs.copy(), var=var.copy())
        a.layers["counts"] = sp.csr_matrix(counts)
        a.uns["note"] = "written by anndata " + anndata.__version__
        path = os.path.join(out, f"{name}.h5ad")
        a.write_h5ad(path, compression="gzip" if name.startswith("csr") else None)
        print(os.path.basename(path))


if __name__ == "__main__":
    main()
