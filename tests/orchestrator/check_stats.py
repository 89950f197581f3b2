"""`sdm stats` against SciPy on a fixed small store (issue 13).

usage: check_stats.py SDM WORKDIR

Writes a store.h5 with h5py (the /cells and /breakdown schema, values chosen to exercise the exact and the
normal-approximation Wilcoxon paths, ties, zero differences, a unit missing for one model, pooled cells with a
per-dataset breakdown), runs `sdm stats --format json` and checks every p-value against
scipy.stats.wilcoxon(zero_method='wilcox', correction=False, mode='auto') and friedmanchisquare within 1e-6, the
Holm adjustment, the Nemenyi critical difference (Demšar's table), the pairwise dropping, and the CD diagram.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np
from scipy import stats

SDM, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
TEXT = ["cell_id", "model", "preset", "weights_sha256", "strategy", "protocol", "split", "test_group", "train_groups",
        "status", "error", "device", "host", "started_utc", "finished_utc", "metric_notes", "artifact_path"]
INTS = ["fold", "seed", "attempts", "rank", "n_test"]
METRICS = ["f1", "auroc", "auprc", "precision", "recall", "accuracy", "balanced_accuracy", "mcc"]
REALS = ["wall_s", "cpu_s", "peak_rss_mb", "gpu_s"] + METRICS
Q05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}


def expect(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)
    print("ok:", what)


rng = np.random.default_rng(5)
models = ["alpha", "beta", "gamma", "delta"]
cells, breakdown = [], []
# cross-data: 30 held-out datasets; beta ties alpha on 3 (zero differences -> normal approximation),
# delta lacks 2 datasets (dropped pairwise), gamma is clearly worse
base = rng.uniform(0.5, 0.8, 30)
cross = {"alpha": base + rng.normal(0.03, 0.02, 30), "beta": base + rng.normal(0.0, 0.03, 30),
         "gamma": base - 0.1 + rng.normal(0, 0.02, 30), "delta": base + rng.normal(0.01, 0.05, 30)}
cross["beta"][:3] = cross["alpha"][:3]
cross = {m: np.round(v, 4) for m, v in cross.items()}
for m in models:
    for i in range(30):
        if m == "delta" and i in (4, 9):
            continue
        cells.append({"model": m, "strategy": "freeze", "protocol": "cross-data", "split": "cell", "fold": 0, "seed": 0,
                      "test_group": f"D{i:02d}", "f1": cross[m][i]})
# pooled: 2 folds x 6 datasets from the breakdown (12 units, exact path); the cell-level f1 must not be used
pooled = {m: np.round(rng.uniform(0.4, 0.9, 12) + (0.05 if m == "alpha" else 0), 4) for m in models}
for m in models:
    for fold in range(2):
        cid = f"{m}-pooled-{fold}"
        cells.append({"cell_id": cid, "model": m, "strategy": "freeze", "protocol": "pooled", "split": "cell", "fold": fold,
                      "seed": 0, "test_group": "pooled", "f1": 0.5})
        for d in range(6):
            breakdown.append({"cell_id": cid, "dataset": f"D{d:02d}", "f1": pooled[m][fold * 6 + d]})
# a failed cell never counts
cells.append({"model": "gamma", "strategy": "freeze", "protocol": "cross-data", "split": "cell", "fold": 0, "seed": 0,
              "test_group": "D99", "f1": 0.99, "status": "failed"})

store = os.path.join(WORK, "store.h5")
with h5py.File(store, "w") as f:
    f.attrs["sdm_schema_version"] = 1
    g, b = f.create_group("cells"), f.create_group("breakdown")
    for i, c in enumerate(cells):
        c.setdefault("cell_id", f"cell{i:03d}")
        c.setdefault("status", "done")
    for k in TEXT:
        g[k] = np.array([str(c.get(k, "")).encode() for c in cells])
    for k in INTS:
        g[k] = np.array([int(c.get(k, 1)) for c in cells], dtype=np.int64)
    for k in REALS:
        g[k] = np.array([float(c.get(k, 0.5)) for c in cells])
    b["cell_id"] = np.array([r["cell_id"].encode() for r in breakdown])
    b["dataset"] = np.array([r["dataset"].encode() for r in breakdown])
    b["n_test"] = np.array([10] * len(breakdown), dtype=np.int64)
    for k in METRICS:
        b[k] = np.array([float(r.get(k, 0.5)) for r in breakdown])

svg = os.path.join(WORK, "cd.svg")
p = subprocess.run([SDM, "stats", store, "--format", "json", "--diagram", svg], capture_output=True, text=True)
if p.returncode != 0:
    sys.exit(f"FAILED: sdm stats exited {p.returncode}\n{p.stderr}")
out = json.loads(p.stdout)
groups = {g["within"]: g for g in out["groups"]}
expect(set(groups) == {"freeze / cross-data", "freeze / pooled"}, f"two groups {sorted(groups)}")


def holm(ps):
    order = np.argsort(ps, kind="stable")
    adj, running = [0.0] * len(ps), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - j) * ps[i]))
        adj[i] = running
    return adj


for within, values, units in (("freeze / cross-data", cross, [f"D{i:02d}" for i in range(30)]),
                              ("freeze / pooled", pooled, list(range(12)))):
    g = groups[within]
    expect(sorted(g["names"]) == sorted(models) and g["units"] == len(units), f"{within}: {len(units)} units of {len(models)} models")
    present = {m: [i for i in range(len(units)) if not (within.endswith("cross-data") and m == "delta" and i in (4, 9))]
               for m in models}
    ps = []
    for pr in g["pairs"]:
        common = [i for i in present[pr["a"]] if i in present[pr["b"]]]
        x, y = values[pr["a"]][common], values[pr["b"]][common]
        ref = stats.wilcoxon(x, y, zero_method="wilcox", correction=False, mode="auto")
        ps.append(ref.pvalue)
        dropped = len(set(present[pr["a"]]) ^ set(present[pr["b"]]))
        med = float(np.median(x - y))
        expect(pr["n"] == len(common) and pr["dropped"] == dropped and abs(pr["p"] - ref.pvalue) < 1e-6
               and abs(pr["statistic"] - ref.statistic) < 1e-9 and abs(pr["median_diff"] - med) < 1e-12
               and pr["ci_low"] <= med <= pr["ci_high"],
               f"{within} {pr['a']}-{pr['b']}: n {pr['n']}, dropped {pr['dropped']}, p {pr['p']:.6g} = scipy "
               f"{ref.pvalue:.6g} ({'exact' if pr['exact'] else 'normal approx.'})")
    expect(np.allclose([pr["p_holm"] for pr in g["pairs"]], holm(ps), atol=1e-12), f"{within}: Holm-adjusted p")
    complete = [i for i in range(len(units)) if all(i in present[m] for m in models)]
    fr = stats.friedmanchisquare(*[values[m][complete] for m in models])
    cd = Q05[len(models)] * np.sqrt(len(models) * (len(models) + 1) / (6 * len(complete)))
    expect(g["complete_units"] == len(complete) and abs(g["friedman_p"] - fr.pvalue) < 1e-6
           and abs(g["friedman_statistic"] - fr.statistic) < 1e-9 and abs(g["critical_difference"] - cd) < 1e-12,
           f"{within}: Friedman chi2 {g['friedman_statistic']:.4f} p {g['friedman_p']:.3g} = scipy; CD {cd:.4f} (Demšar q)")
    ranks = np.mean([stats.rankdata(-np.array([values[m][i] for m in models])) for i in complete], axis=0)
    expect(np.allclose([g["mean_ranks"][m] for m in models], ranks), f"{within}: mean ranks (1 = best)")
exact = [pr["exact"] for g in out["groups"] for pr in g["pairs"]]
expect(any(exact) and not all(exact), "both the exact and the normal-approximation paths were exercised")
verdict = {(pr["a"], pr["b"]): pr["verdict"] for pr in groups["freeze / cross-data"]["pairs"]}
expect(verdict[("alpha", "gamma")] == "alpha better", "a clearly better model is called better")

# the diagrams: one per group, one labelled mark per model, the CD bar, cliques joining close models
for within in groups:
    path = os.path.join(WORK, "cd-" + within.replace(" / ", "_").replace("-", "-") + ".svg")
    expect(os.path.exists(path), f"diagram {os.path.basename(path)}")
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    marks = [e for e in root.iter(ns + "g") if "model" in (e.get("class") or "").split()]
    names = sorted(e.get("data-name") for e in marks)
    expect(names == sorted(models) and len([e for e in root.iter(ns + "g") if e.get("class") == "cd"]) == 1,
           f"{within}: a mark per model and the CD bar")
    g = groups[within]
    order = sorted(models, key=lambda m: g["mean_ranks"][m])
    rk = [g["mean_ranks"][m] for m in order]
    cliques, reach = [], 0
    for i in range(len(rk)):
        j = i
        while j + 1 < len(rk) and rk[j + 1] - rk[i] < g["critical_difference"]:
            j += 1
        if j > i and (not cliques or j > reach):
            cliques.append((i, j))
        reach = max(reach, j)
    drawn = [e for e in root.iter(ns + "line") if e.get("class") == "clique"]
    expect(len(drawn) == len(cliques), f"{within}: {len(cliques)} clique bar(s) for ranks {np.round(rk, 3).tolist()}")
p = subprocess.run([SDM, "stats", store, "--metric", "f2"], capture_output=True, text=True)
expect(p.returncode == 2 and "--metric" in p.stderr, "an unknown metric is one clear error")
p = subprocess.run([SDM, "stats", store, "--within", "strategy,colour"], capture_output=True, text=True)
expect(p.returncode == 2 and "colour" in p.stderr, "an unknown --within field is one clear error")
print("PASS")
