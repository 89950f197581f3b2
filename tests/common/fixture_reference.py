#!/usr/bin/python3
"""Independent reference values for a single-cell file, computed with anndata / h5py.

usage: fixture_reference.py FILE [MATRIX]   (MATRIX: X | raw | layer:<name>; h5ad only)
Prints JSON: shape, nonzero count, float64 sum, row sums of the first rows, names, obs/var column types.
"""
import json
import sys
import warnings

import h5py
import numpy as np
import scipy.sparse as sp

warnings.simplefilter("ignore")


def column_type(series):
    kind = str(series.dtype)
    if kind == "category":
        return "categorical"
    if kind == "Int64" or kind.startswith("Int") or kind.startswith("UInt"):
        return "nullable-int"
    if kind == "boolean":
        return "nullable-bool"
    if kind == "string":
        return "nullable-string"
    if kind == "bool":
        return "bool"
    if kind.startswith("int") or kind.startswith("uint"):
        return "int"
    if kind.startswith("float"):
        return "float"
    return "string"


def describe_columns(df):
    out = []
    for name in df.columns:
        entry = {"name": str(name), "type": column_type(df[name])}
        if entry["type"] == "categorical":
            entry["categories"] = [str(c) for c in df[name].cat.categories]
            entry["head"] = ["" if v != v else str(v) for v in list(df[name].astype(object))[:5]]
        out.append(entry)
    return out


def matrix_summary(X):
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)
    dense_rows = X[:5].toarray() if sp.issparse(X) else X[:5]
    nonzero = int(X.count_nonzero()) if sp.issparse(X) else int(np.count_nonzero(X))
    return {
        "nonzero": nonzero,
        "sum": float(X.sum(dtype=np.float64)),
        "row_sums": [float(r.sum(dtype=np.float64)) for r in dense_rows],
    }


def h5ad(path, matrix):
    import anndata

    a = anndata.read_h5ad(path)
    if matrix == "raw":
        X, var_names, var = a.raw.X, a.raw.var_names, a.raw.var
    elif matrix.startswith("layer:"):
        X, var_names, var = a.layers[matrix[6:]], a.var_names, a.var
    else:
        X, var_names, var = a.X, a.var_names, a.var
    out = {"n_obs": a.n_obs, "n_vars": len(var_names), "obs_names": list(map(str, a.obs_names[:3])),
           "var_names": list(map(str, var_names[:3])), "obs_columns": describe_columns(a.obs),
           "var_columns": describe_columns(var), "layers": sorted(a.layers.keys())}
    if X is not None:
        out.update(matrix_summary(X))
    return out


def tenx(path):
    with h5py.File(path, "r") as f:
        g = f["matrix"] if "matrix" in f else f[next(k for k in f if "barcodes" in f[k])]
        shape = [int(v) for v in g["shape"][:]]
        names = g["features/name"] if "features" in g else g["gene_names"]
        X = sp.csc_matrix((g["data"][:], g["indices"][:], g["indptr"][:]), shape=shape).T
        out = {"n_obs": shape[1], "n_vars": shape[0], "obs_names": [b.decode() for b in g["barcodes"][:3]],
               "var_names": [b.decode() for b in names[:3]]}
        out.update(matrix_summary(X))
        return out


def loom(path):
    with h5py.File(path, "r") as f:
        X = f["matrix"][:].T
        genes = f["row_attrs/Gene"][:]
        out = {"n_obs": X.shape[0], "n_vars": X.shape[1],
               "var_names": [g.decode() if isinstance(g, bytes) else str(g) for g in genes[:3]]}
        out.update(matrix_summary(X))
        return out


def main():
    path = sys.argv[1]
    matrix = sys.argv[2] if len(sys.argv) > 2 else "X"
    if path.endswith(".loom"):
        out = loom(path)
    elif path.endswith(".h5ad"):
        out = h5ad(path, matrix)
    else:
        out = tenx(path)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
