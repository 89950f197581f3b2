#!/usr/bin/python3
"""End-to-end check of `sdm synth`: byte-reproducible for a seed, readable by anndata with the CONTRACTS §9
layout, sample-level labels, and a signal knob that works (S > 0 separable; S = 0 null under a sample split,
while a cell split still leaks through per-sample batch effects).

usage: check_synth.py SDM WORKDIR
"""
import hashlib
import os
import shutil
import subprocess
import sys
import warnings

import anndata
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold

warnings.simplefilter("ignore")
IDS = ["P05", "P16", "P22", "P33"]
problems = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        problems.append(what)


def synth(sdm, out, seed, signal, genes=300, scale=0.01):
    subprocess.run([sdm, "synth", "--out", out, "--seed", str(seed), "--signal", str(signal), "--genes", str(genes),
                    "--scale", str(scale), "--only", *IDS], check=True, stdout=subprocess.DEVNULL)


def digests(d):
    return {f: hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest() for f in sorted(os.listdir(d))}


def pooled(d):
    parts = [anndata.read_h5ad(os.path.join(d, f"{i}.h5ad")) for i in IDS]
    X = np.vstack([p.X.toarray() for p in parts])
    X = np.log1p(X / X.sum(1, keepdims=True) * 1e4)
    y = np.concatenate([(p.obs["condition"] == "sensitive").to_numpy() for p in parts]).astype(int)
    groups = np.concatenate([p.obs["sample"].astype(str).to_numpy() for p in parts])
    return X, y, groups


def cv_auroc(X, y, splits):
    scores = np.zeros(len(y))
    for train, test in splits:
        model = LogisticRegression(C=0.1, max_iter=2000).fit(X[train], y[train])
        scores[test] = model.predict_proba(X[test])[:, 1]
    return roc_auc_score(y, scores)


def main():
    sdm, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    a, b, c, null = (os.path.join(work, n) for n in ("a", "b", "c", "null"))
    synth(sdm, a, 5, 1.0)
    synth(sdm, b, 5, 1.0)
    synth(sdm, c, 6, 1.0)
    synth(sdm, null, 5, 0.0)
    da, db, dc = digests(a), digests(b), digests(c)
    expect(da == db, "same seed -> byte-identical files and catalog")
    expect(da[f"{IDS[0]}.h5ad"] != dc[f"{IDS[0]}.h5ad"], "another seed -> different data")
    expect(sorted(da) == sorted([f"{i}.h5ad" for i in IDS] + ["catalog.yaml"]), "one file per dataset + catalog.yaml")

    for i in IDS:
        ad = anndata.read_h5ad(os.path.join(a, f"{i}.h5ad"))
        expect(list(ad.obs.columns) == ["condition", "sample", "dataset", "n_counts"], f"{i}: obs columns")
        expect(set(ad.obs["condition"]) == {"sensitive", "resistant"}, f"{i}: both labels")
        per_sample = ad.obs.groupby("sample")["condition"].nunique()
        expect(bool((per_sample == 1).all()), f"{i}: labels are sample-level")
        samples = ad.obs.groupby("condition")["sample"].nunique()
        expect(samples["resistant"] >= 2 and samples["sensitive"] >= 2, f"{i}: at least 2 + 2 samples")
        X = ad.X.toarray()
        expect(bool((X >= 0).all() and (X == np.round(X)).all()), f"{i}: non-negative integer counts")
        expect(np.allclose(ad.obs["n_counts"], X.sum(1)), f"{i}: n_counts = row sums")
        expect(list(ad.var.columns) == ["gene_ids"] and ad.n_vars == 300, f"{i}: var gene_ids, 300 genes")
        expect(ad.uns["dataset_id"] == i and "geo" in ad.uns and "tissue" in ad.uns, f"{i}: catalog metadata in uns")

    X, y, groups = pooled(a)
    strat = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    grouped = list(GroupKFold(10).split(X, y, groups))
    signal_auc = cv_auroc(X, y, grouped)
    Xn, yn, gn = pooled(null)
    null_sample = cv_auroc(Xn, yn, list(GroupKFold(10).split(Xn, yn, gn)))
    null_cell = cv_auroc(Xn, yn, list(StratifiedKFold(5, shuffle=True, random_state=0).split(Xn, yn)))
    print(f"signal 1: sample-split AUROC {signal_auc:.3f}; signal 0: sample-split {null_sample:.3f}, cell-split {null_cell:.3f}")
    expect(signal_auc > 0.8, "signal 1.0 is learnable across samples (AUROC > 0.8)")
    expect(abs(null_sample - 0.5) < 0.12, "signal 0 is null under a sample split (AUROC ~ 0.5)")
    expect(null_cell > null_sample + 0.1, "a cell split leaks sample identity (visible gap)")
    print(f"{len(problems) == 0 and 1 or 0} passed, {len(problems) and 1 or 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
