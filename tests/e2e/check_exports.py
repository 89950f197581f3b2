"""Outputs you can trust (CONTRACTS §8, §19): a real sweep at 3 ranks (logreg, mlp and a tiny scGPT, pooled and
cross-data, a strong signal so scores are near-certain), then every machine-readable output read back as a
reviewer would read it (Python's csv and json, pandas) and compared with the store, and every cell's metrics
recomputed with scikit-learn from the exported predictions.

usage: check_exports.py SDM MPIEXEC WORKDIR
"""
import csv
import io
import json
import math
import os
import re
import shutil
import sys

import h5py
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from e2e_common import expect, make_run

SDM, MPIEXEC, WORK = sys.argv[1:4]
run = make_run(SDM, MPIEXEC, timeout=900)
os.makedirs(WORK, exist_ok=True)
data = os.path.join(WORK, "data")
DATASETS = ["P01", "P02", "P05", "P08"]
if not os.path.exists(os.path.join(data, "catalog.yaml")):
    run(["synth", "--out", data, "--scale", "0.01", "--genes", "300", "--signal", "1.0", "--only", *DATASETS])
store = os.path.join(WORK, "run", "store.h5")
shutil.rmtree(os.path.dirname(store), ignore_errors=True)
spec = os.path.join(WORK, "exports.yaml")
with open(spec, "w") as f:
    f.write(f"""name: exports
store: {store}
data:
  root: {data}
  catalog: {data}/catalog.yaml
  datasets: {json.dumps(DATASETS)}
  label: {{column: condition, sensitive: [sensitive], resistant: [resistant]}}
models: [{{name: logreg}}, {{name: mlp}}, {{name: scgpt, preset: tiny}}]
strategies: [freeze]
protocols: [{{name: pooled, folds: 2, split: cell}}, {{name: pooled, folds: 2, split: sample}}, {{name: cross-data}}]
train: {{epochs: 3, batch_size: 64, lr: 1.0e-3}}
head: {{epochs: 10, lr: 1.0e-3}}
preprocess: {{hvg: 200, pca: 20}}
""")
run(["sweep", spec], np_=3)

with h5py.File(store, "r") as f:
    stored = {g: {k: f[g][k][()] for k in f[g]} for g in ("cells", "predictions", "breakdown")}


def text(col):
    return [v.decode() if isinstance(v, bytes) else v for v in col]


def export(*args):
    return run(["export", store, *args]).stdout


cells = stored["cells"]
n_cells = len(cells["cell_id"])
expect(n_cells == 3 * (2 + 2 + 4) and set(text(cells["status"])) == {"done"}, f"{n_cells} cells, all done")

# --- the store's own groups: exactly the stored values, typed ----------------------------------------------
SCHEMA = {"cells": "cells", "predictions": "predictions", "breakdown": "breakdown"}
for what, group in SCHEMA.items():
    cols = stored[group]
    c = export("--what", what, "--format", "csv")
    j = export("--what", what, "--format", "json")
    reader = list(csv.DictReader(io.StringIO(c)))
    rows = json.loads(j)
    # pandas' default CSV float parser may miss the last bit of a double; its round-trip parser reads what was written
    df_c = pd.read_csv(io.StringIO(c), keep_default_na=False, na_values=["NaN"], float_precision="round_trip")
    df_j = pd.read_json(io.StringIO(j), precise_float=True)
    n = len(next(iter(cols.values())))
    expect(len(reader) == len(rows) == len(df_c) == len(df_j) == n, f"{what}: {n} rows in csv, json and pandas")
    for name, values in cols.items():
        if values.dtype.kind in "SO":  # text
            want = text(values)
            ok = [r[name] for r in reader] == want and [r[name] for r in rows] == want
        elif values.dtype.kind in "iu":
            ok = ([int(r[name]) for r in reader] == values.tolist() and
                  all(isinstance(r[name], int) and r[name] == v for r, v in zip(rows, values.tolist())) and
                  df_c[name].dtype.kind == "i" and df_j[name].dtype.kind == "i")
        else:
            from_csv = np.array([float(r[name]) for r in reader])
            from_json = np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)
            ok = (np.array_equal(from_csv, values, equal_nan=True) and np.array_equal(from_json, values, equal_nan=True) and
                  df_c[name].dtype.kind == "f" and np.array_equal(df_c[name].to_numpy(), values, equal_nan=True) and
                  all(r[name] is None or isinstance(r[name], (int, float)) for r in rows))
        if not ok:
            sys.exit(f"FAILED: export --what {what}: column {name} does not read back as stored")
    expect(True, f"export --what {what}: csv and json read back bit for bit, numeric columns numeric in pandas")

# --- scikit-learn from the exported predictions: every cell's stored metrics within 1e-12 ------------------
preds = pd.read_csv(io.StringIO(export("--what", "predictions", "--format", "csv")), float_precision="round_trip")
cell_table = pd.read_csv(io.StringIO(export("--what", "cells", "--format", "csv")), float_precision="round_trip")
ties = 0
for _, c in cell_table.iterrows():
    p = preds[preds.cell_id == c.cell_id]
    y, s, yp = p.y_true.to_numpy(), p.y_score.to_numpy(), p.y_pred.to_numpy()
    ties += len(s) - len(np.unique(s))
    # scikit-learn's values where the metric is defined; NaN where CONTRACTS §6 says undefined (scikit-learn 1.2
    # would say 0 there, with a warning)
    tp, fp = int(((yp == 1) & (y == 1)).sum()), int(((yp == 1) & (y == 0)).sum())
    fn, tn = int(((yp == 0) & (y == 1)).sum()), int(((yp == 0) & (y == 0)).sum())
    pos, neg = tp + fn, tn + fp
    nan = math.nan
    want = {
        "auroc": skm.roc_auc_score(y, s) if pos and neg else nan,
        "auprc": skm.average_precision_score(y, s) if pos else nan,
        "f1": skm.f1_score(y, yp) if 2 * tp + fp + fn else nan,
        "precision": skm.precision_score(y, yp) if tp + fp else nan,
        "recall": skm.recall_score(y, yp) if pos else nan,
        "accuracy": skm.accuracy_score(y, yp),
        "balanced_accuracy": skm.balanced_accuracy_score(y, yp) if pos and neg else nan,
        "mcc": skm.matthews_corrcoef(y, yp) if (tp + fp) * pos * (tn + fp) * (tn + fn) else nan,
    }
    for m, v in want.items():
        got = c[m]
        if (math.isnan(v) != math.isnan(got)) or (not math.isnan(v) and abs(v - got) > 1e-12):
            sys.exit(f"FAILED: cell {c.cell_id[:12]} ({c.model}, {c.protocol}, {c.test_group}): {m} stored {got!r}, "
                     f"scikit-learn from the export {v!r}")
expect(True, f"scikit-learn recomputes f1 auroc auprc precision recall accuracy balanced_accuracy mcc of all {n_cells} "
             f"cells from the exported predictions within 1e-12 ({ties} tied scores among them)")
expect(preds.y_score.dtype.kind == "f" and (preds.y_score.astype(str).str.len() > 6).any(),
       "y_score exported with more than four decimals")

# --- derived tables: typed, and both machine formats carry the same numbers ---------------------------------
derived = [("cost",), ("cost-summary",), ("overhead",), ("summary",), ("summary", "--by", "model,dataset"),
           ("summary", "--layout", "paper"), ("summary", "--by", "model,strategy,protocol,split", "--ci", "cells",
                                              "--resamples", "50"),
           ("leakage",), ("pivot",), ("pivot", "--ci", "units", "--resamples", "50"), ("curves",)]
for args in derived:
    what = " ".join(args)
    c = export("--what", *args, "--format", "csv")
    j = json.loads(export("--what", *args, "--format", "json"))
    df = pd.read_csv(io.StringIO(c), keep_default_na=False, na_values=["NaN", ""], float_precision="round_trip")
    expect(len(df) == len(j), f"export --what {what}: {len(df)} rows")
    for name in df.columns:
        js = [r[name] for r in j]
        if all(v is None or isinstance(v, (int, float)) for v in js) and any(v is not None for v in js):
            col = df[name].to_numpy(dtype=float)
            # JSON has no NaN or Inf: both are null there (CONTRACTS §19); CSV keeps NaN and inf
            finite = np.isfinite(col)
            ok = (df[name].dtype.kind in "if" and all((v is None) == (not f) for v, f in zip(js, finite)) and
                  np.array_equal(col[finite], np.array([v for v in js if v is not None], dtype=float)))
            if not ok:
                sys.exit(f"FAILED: export --what {what}: {name} is {col.dtype} in pandas or differs between csv and json")
        elif any(isinstance(v, str) and v.replace(".", "", 1).isdigit() for v in js if v):
            sys.exit(f"FAILED: export --what {what}: {name} holds numbers as strings: {js[:3]}")
    expect(True, f"export --what {what}: numbers as numbers, csv and json agree exactly")

# the summary's means are the cells' means at full precision
summary = pd.read_csv(io.StringIO(export("--what", "summary", "--format", "csv")), float_precision="round_trip")
for _, r in summary.iterrows():
    sel = cell_table[(cell_table.model == r.model) & (cell_table.protocol == r.protocol) & (cell_table.split == r.split)]
    f1 = sel.f1.dropna().to_numpy()
    if abs(r.f1 - f1.mean()) > 1e-12 or r.f1_n != len(f1) or (len(f1) > 1 and abs(r.f1_sd - f1.std(ddof=1)) > 1e-12):
        sys.exit(f"FAILED: summary row {dict(r)} != mean {f1.mean()} sd {f1.std(ddof=1)} of {len(f1)}")
expect(True, "export --what summary: mean, sd and n of every group as numpy computes them (1e-12)")
curves = pd.read_csv(io.StringIO(export("--what", "curves", "--format", "csv")), float_precision="round_trip")
one = curves[(curves.cell_id == cell_table.cell_id[0]) & (curves.curve == "roc")].sort_values("point")
p = preds[preds.cell_id == cell_table.cell_id[0]]
fpr, tpr, _ = skm.roc_curve(p.y_true, p.y_score, drop_intermediate=False)
expect(np.allclose(one.x.to_numpy(), fpr, atol=1e-15) and np.allclose(one.y.to_numpy(), tpr, atol=1e-15) and
       np.isinf(one.threshold.iloc[0]), f"export --what curves: the ROC points of a cell are scikit-learn's ({len(one)} points)")

# --- status, compare, stats ------------------------------------------------------------------------------
st = json.loads(run(["status", store, "--json"]).stdout)
expect(isinstance(st["expected"], int) and all(isinstance(v, int) for v in st["counts"].values()) and
       st["counts"]["done"] == n_cells, "status --json: counts are integers")
for fmt in ("csv", "json"):
    out = run(["compare", store, store, "--metric", "auroc", "--format", fmt]).stdout
    df = pd.read_csv(io.StringIO(out)) if fmt == "csv" else pd.read_json(io.StringIO(out), precise_float=True)
    expect(df.auroc_a.dtype.kind == "f" and df.seed.dtype.kind == "i" and (df.verdict == "same").all() and len(df) == n_cells,
           f"compare --format {fmt}: typed columns, every cell the same as itself")
for what, key in (("friedman", "friedman_p"), ("pairs", "p_holm"), ("ranks", "mean_rank")):
    df = pd.read_csv(io.StringIO(run(["stats", store, "--what", what, "--format", "csv"]).stdout), float_precision="round_trip")
    js = pd.read_json(io.StringIO(run(["stats", store, "--what", what, "--format", "json"]).stdout), precise_float=True)
    expect(len(df) > 0 and df[key].dtype.kind == "f" and np.array_equal(df[key].to_numpy(), js[key].to_numpy(), equal_nan=True),
           f"stats --what {what}: one table, {key} numeric, csv = json")
bad = run(["stats", store, "--format", "csv"], check=False)
expect(bad.returncode != 0 and "--what" in bad.stderr, "stats --format csv without --what is refused (one table per file)")
base = os.path.join(WORK, "stats.csv")
run(["stats", store, "--format", "csv", "--out", base])
expect(all(len(pd.read_csv(os.path.join(WORK, f"stats-{w}.csv"))) > 0 for w in ("friedman", "pairs", "ranks")),
       "stats --format csv --out F writes F-friedman.csv, F-pairs.csv and F-ranks.csv, each one table")

# --- display formats default to the study's table -------------------------------------------------------
latex = export("--format", "latex")
expect(latex.startswith("\\begin{tabular}") and "\\textbf{" in latex and "pooled/cell" in latex and
       "cell\\_id" not in latex and latex.count("\\\\\n") == 1 + 3, "export --format latex: the paper table, best in bold")
md = export("--format", "md")
expect(md.startswith("| model |") and "**" in md and "cross-data" in md and "cell_id" not in md,
       "export --format md: the paper table, best in bold")
expect("cell\\_id" in export("--what", "cells", "--format", "latex"), "the cells dump is still there by name")
decimals = {d: {len(x.split(".")[1]) for x in re.findall(r"\d+\.\d+", export("--format", "md", "--digits", str(d)))}
            for d in (1, 6)}
expect(decimals == {1: {1}, 6: {6}}, f"--digits sets the display rounding ({decimals})")
print("check_exports: all passed")
