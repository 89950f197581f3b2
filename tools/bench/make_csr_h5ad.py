#!/usr/bin/python3
"""Writes the reader benchmark's input with Python anndata: N cells x G genes, CSR float32, exactly DENSITY
nonzeros per row (peer-baselines.md recipe: 100,000 x 20,000 at 7 %).

usage: make_csr_h5ad.py OUT [N] [G] [DENSITY]
"""
import sys

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
g = int(sys.argv[3]) if len(sys.argv) > 3 else 20_000
density = float(sys.argv[4]) if len(sys.argv) > 4 else 0.07
k = int(round(g * density))
rng = np.random.default_rng(0)
stride = g // k
# One index per stride window: sorted and unique by construction, uniform within each window.
indices = (np.arange(k, dtype=np.int32) * stride)[None, :] + rng.integers(0, stride, size=(n, k), dtype=np.int32)
data = rng.integers(1, 20, size=n * k).astype(np.float32)
indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
X = sp.csr_matrix((data, indices.ravel(), indptr), shape=(n, g))
a = anndata.AnnData(X=X, obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]),
                    var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))
a.write_h5ad(out)
print(f"{out}: {n} x {g}, nnz {X.nnz}")
