"""Reports and figures end to end (issue 10): a real sweep at 3 ranks, `sdm export --by`, `sdm plot` and
`sdm report`, then the report in headless Chromium. CONTRACTS §10: the marks each plot renders are counted in the
DOM and compared with what the store says should be drawn.

usage: check_report.py SDM MPIEXEC WORKDIR
Chromium is driven with --dump-dom and --screenshot: the page's own script, opened with #selftest, records the
rendered marks per figure, its error count and a header click's sort in the DOM. Without Chromium the test is
skipped (exit 77), except under CI=true where it fails.
"""
import html.parser
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib

import h5py
import numpy as np
import yaml

from e2e_common import ENV, T0, expect, make_run

SDM, MPIEXEC, WORK = sys.argv[1:4]
SKIP = 77
run = make_run(SDM, MPIEXEC, timeout=300)


def text(col):
    return [v.decode() if isinstance(v, bytes) else v for v in col]


# --- a small real sweep: 4 datasets of 4 tissues, 2 baselines, pooled cell + sample split and cross-data --------
os.makedirs(WORK, exist_ok=True)
data = os.path.join(WORK, "data")
DATASETS = ["P01", "P08", "P16", "P22"]
if not os.path.exists(os.path.join(data, "catalog.yaml")):
    run(["synth", "--out", data, "--scale", "0.01", "--genes", "300", "--signal", "1.0", "--only", *DATASETS])
store = os.path.join(WORK, "run", "store.h5")
shutil.rmtree(os.path.dirname(store), ignore_errors=True)
spec = os.path.join(WORK, "report.yaml")
with open(spec, "w") as f:
    f.write(f"""name: report-e2e
store: {store}
data:
  root: {data}
  catalog: {data}/catalog.yaml
  datasets: {json.dumps(DATASETS)}
  label: {{column: condition, sensitive: [sensitive], resistant: [resistant]}}
models: [{{name: logreg}}, {{name: mlp}}]
protocols:
  - {{name: pooled, folds: 3, split: cell}}
  - {{name: pooled, folds: 3, split: sample}}
  - {{name: cross-data}}
train: {{epochs: 3, batch_size: 64, lr: 1.0e-3}}
preprocess: {{hvg: 200, pca: 20}}
""")
run(["sweep", spec], np_=3)
expect(os.path.exists(store), "the sweep wrote its store")

# --- what the store says should be drawn, computed here independently of sdm -------------------------------
catalog = {e["id"]: e for e in yaml.safe_load(open(os.path.join(data, "catalog.yaml")))["datasets"]}
with h5py.File(store, "r") as f:
    cells = {k: f["cells"][k][()] for k in f["cells"]}
    bd = {k: f["breakdown"][k][()] for k in f["breakdown"]}
    pred_cell = text(f["predictions/cell_id"][()])
    y_true = f["predictions/y_true"][()]
for k in ("cell_id", "model", "strategy", "protocol", "split", "test_group", "status"):
    cells[k] = text(cells[k])
bd["cell_id"], bd["dataset"] = text(bd["cell_id"]), text(bd["dataset"])
done = [i for i, s in enumerate(cells["status"]) if s == "done"]
expect(len(done) == 2 * (3 + 3 + 4), f"{len(done)} cells done")


def series(i):
    return (cells["model"][i], cells["strategy"][i], cells["protocol"][i], cells["split"][i])


def cell_datasets(i, metric="f1"):
    """(dataset, value) pairs of cell i: its held-out dataset (cross-data) or its breakdown rows (pooled)."""
    if cells["protocol"][i] == "cross-data":
        return [(cells["test_group"][i], float(cells[metric][i]))]
    return [(d, float(v)) for c, d, v in zip(bd["cell_id"], bd["dataset"], bd[metric]) if c == cells["cell_id"][i]]


def group_values(field, metric="f1"):
    """(series, group) -> values, one per cell and group (the mean of the cell's datasets in the group)."""
    out = {}
    for i in done:
        per = {}
        for d, v in cell_datasets(i, metric):
            per.setdefault(catalog[d][field], []).append(v)
        for g, vs in per.items():
            finite = [v for v in vs if not math.isnan(v)]
            out.setdefault((series(i), g), []).append(float(np.mean(finite)) if finite else float("nan"))
    return out


def bars(field):
    return sum(1 for vs in group_values(field).values() if any(not math.isnan(v) for v in vs))


heatmap_cells = {(series(i), cells["test_group"][i]) for i in done
                 if cells["protocol"][i] == "cross-data" and not math.isnan(cells["f1"][i])}
roc_curves = pr_curves = 0  # ROC needs both classes, precision-recall a sensitive cell
for s in {series(i) for i in done}:
    ids = {cells["cell_id"][i] for i in done if series(i) == s}
    ys = {int(y) for c, y in zip(pred_cell, y_true) if c in ids}
    roc_curves += ys == {0, 1}
    pr_curves += 1 in ys
leak_configs = {(cells["model"][i], cells["strategy"][i]) for i in done if cells["split"][i] == "sample"}
EXPECTED = {"heatmap": len(heatmap_cells), "bars-tissue": bars("tissue"), "bars-therapy": bars("therapy"),
            "bars-cancer_type": bars("cancer_level1"), "roc": roc_curves, "pr": pr_curves, "leakage": 2 * len(leak_configs)}
expect(all(n > 0 for n in EXPECTED.values()) and EXPECTED["roc"] == 6 and EXPECTED["leakage"] == 4,
       f"the store has something to draw in every figure: {EXPECTED}")

# --- sdm export --by: grouped mean ± s.e.m. against the values computed here --------------------------------
rows = json.loads(run(["export", store, "--what", "summary", "--by", "model,strategy,protocol,split,tissue",
                       "--metric", "f1", "--format", "json"]).stdout)
want = group_values("tissue")
expect(len(rows) == len(want), f"export --by ... tissue: one row per (setting, tissue): {len(rows)}")
for r in rows:
    every = want[((r["model"], r["strategy"], r["protocol"], r["split"]), r["tissue"])]
    vs = [v for v in every if not math.isnan(v)]  # a fold with one class of a dataset has no F1 there
    # JSON is lossless and typed (CONTRACTS §19): numbers, the s.e.m. null for a single value
    sem = float(np.std(vs, ddof=1) / math.sqrt(len(vs))) if len(vs) > 1 else None
    ok = (isinstance(r["n"], int) and r["n"] == len(every) and r["f1_n"] == len(vs) and
          (r["f1"] is None if not vs else abs(r["f1"] - float(np.mean(vs))) <= 1e-12) and
          (r["f1_sem"] is None if sem is None else abs(r["f1_sem"] - sem) <= 1e-12))
    if not ok:
        sys.exit(f"FAILED: export --by row {r} != mean {np.mean(vs)} \u00b1 s.e.m. {sem} (n {len(vs)} of {len(every)})")
expect(True, "export --by model,strategy,protocol,split,tissue: every mean \u00b1 s.e.m. and n as computed here (1e-12)")
bad = run(["export", store, "--what", "summary", "--by", "model,tisue"], check=False)
expect(bad.returncode != 0 and "--by" in bad.stderr and "tissue" in bad.stderr, "an unknown --by field is an error with a suggestion")
bad = run(["export", store, "--what", "summary", "--by", "model", "--metric", "f2"], check=False)
expect(bad.returncode != 0 and "--metric" in bad.stderr, "an unknown metric is an error")
latex = run(["export", store, "--what", "summary", "--layout", "paper", "--by", "therapy", "--format", "latex"]).stdout
expect("\\toprule" in latex and "\\textbf{" in latex and "targeted" in latex, "export --layout paper --by therapy: booktabs LaTeX, best per column in bold")

# --- sdm plot -----------------------------------------------------------------------------------------------
figs = os.path.join(WORK, "figures")
shutil.rmtree(figs, ignore_errors=True)
p = run(["plot", store, "--out", figs, "--format", "svg,pdf"])
manifest = {m["name"]: m for m in json.load(open(os.path.join(figs, "figures.json")))}
expect(set(manifest) == set(EXPECTED) and not any("skipped" in m for m in manifest.values()), f"every figure drawn: {p.stdout}")
for name, n in EXPECTED.items():
    for ext in ("svg", "pdf", "gp", "dat"):
        path = os.path.join(figs, f"{name}.{ext}")
        if not os.path.getsize(path):
            sys.exit(f"FAILED: {path} is empty")
    if open(os.path.join(figs, name + ".pdf"), "rb").read(5) != b"%PDF-":
        sys.exit(f"FAILED: {name}.pdf is not a PDF")
    svg = ET.parse(os.path.join(figs, name + ".svg")).getroot()  # raises on malformed XML
    groups = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if (g.get("id") or "").startswith("gnuplot_plot_")]
    if not groups or manifest[name]["marks"] != n:
        sys.exit(f"FAILED: {name}: {manifest[name].get('marks')} marks, expected {n}")
expect(True, "sdm plot: svg (valid XML) + pdf (%PDF) + .gp + .dat per figure, marks as the store says")
script = open(os.path.join(figs, "heatmap.gp")).read()
expect("mouse" not in script and "standalone" not in script and "http" not in open(os.path.join(figs, "roc.svg")).read().replace(
    'xmlns="http://www.w3.org/2000/svg"', "").replace('xmlns:xlink="http://www.w3.org/1999/xlink"', ""),
       "the SVG terminal has no mouse/standalone JavaScript and the SVG no network reference")
# the .gp rerun by hand, in its directory, redraws the figure
os.remove(os.path.join(figs, "leakage.svg"))
subprocess.run(["gnuplot", "leakage.gp"], cwd=figs, check=True)
expect(os.path.getsize(os.path.join(figs, "leakage.svg")) > 0, "gnuplot leakage.gp in the figures directory redraws it")
nognuplot = run(["plot", store, "--out", figs + "-none"], check=False, env=dict(ENV, PATH="/nonexistent"))
expect(nognuplot.returncode != 0 and "gnuplot" in nognuplot.stderr and "gnuplot-nox" in nognuplot.stderr,
       "without gnuplot on PATH: one clear error naming gnuplot and the Debian package")

# a store without sample-split cells or predictions, moved away from its catalog: those figures are skipped, with
# reasons, not errors; --catalog brings the catalog's figures back
small = os.path.join(WORK, "small.h5")
shutil.copy(store, small)
with h5py.File(small, "a") as f:
    del f["predictions"]
    split = f["cells/split"][()]
    f["cells/split"][...] = np.array([b"cell" if s in (b"sample", "sample") else s for s in split], dtype=split.dtype)
    sweep_yaml = f.attrs["sweep_yaml"]
    sweep_yaml = sweep_yaml.decode() if isinstance(sweep_yaml, bytes) else sweep_yaml
    f.attrs["sweep_yaml"] = sweep_yaml.replace(f"{data}/catalog.yaml", f"{data}/moved-away.yaml")
p = run(["plot", small, "--out", os.path.join(WORK, "figures-small"), "--format", "svg"])
expect("skipped roc: the store has no predictions" in p.stdout and "skipped leakage:" in p.stdout
       and re.search(r"skipped bars-tissue: .*moved-away.yaml.*--catalog", p.stdout) and "heatmap:" in p.stdout,
       "figures without data are skipped with their reason")
p = run(["plot", small, "--out", os.path.join(WORK, "figures-small"), "--format", "svg", "--catalog",
         os.path.join(data, "catalog.yaml")])
expect(re.search(r"^bars-tissue: [1-9][0-9]* marks", p.stdout, re.M), "--catalog names the catalog of a moved store")

# --- sdm report ---------------------------------------------------------------------------------------------
report = os.path.join(WORK, "report.html")
run(["report", store, "-o", report])
page = open(report, encoding="utf-8").read()
n_cd = page.count('<svg xmlns="http://www.w3.org/2000/svg" class="cd-diagram"')
expect(page.startswith("<!DOCTYPE html>") and page.count("<svg") == len(EXPECTED) + n_cd and n_cd >= 1,
       f"report: one inline <svg> per figure, and {n_cd} critical-difference diagram(s)")
expect(not re.search(r"<(img|link|iframe|object|embed)\b|<script[^>]*\bsrc=|@import|url\(\s*['\"]?https?:|(src|href)=['\"]https?:", page),
       "report: self-contained (no img/link/external script, no network URL)")
ids = re.findall(r"\bid=[\"']([^\"']+)[\"']", page)
expect(len(ids) == len(set(ids)), f"report: {len(ids)} ids, none repeated across the inlined SVGs")
with h5py.File(store, "r") as f:
    sha = f.attrs["git_sha"]
expect(str(sha.decode() if isinstance(sha, bytes) else sha) in page and "<details>" in page and "name: report-e2e" in page,
       "report: provenance with git sha and the sweep YAML")
expect(f'<span class="done" data-count="{len(done)}">' in page and '<span class="failed" data-count="0">' in page,
       "report: status counts")


# --- the report in headless Chromium -----------------------------------------------------------------------
class Dom(html.parser.HTMLParser):
    """Figures (with their marks), the body's attributes and the text of each table's cells."""

    def __init__(self):
        super().__init__()
        self.body, self.figures, self.tables = {}, {}, {}
        self.table = None
        self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "figure" and "plot" in (a.get("class") or ""):
            self.figures[a["id"]] = a
        elif tag == "table" and a.get("id"):
            self.table = a["id"]
            self.tables[self.table] = {"attrs": a, "header": [], "rows": []}
        elif self.table and tag == "tr":
            self.tables[self.table]["rows"].append([])
        elif self.table and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
        elif self.table and tag in ("td", "th") and self.cell is not None:
            self.tables[self.table]["rows"][-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, d):
        if self.cell is not None:
            self.cell += d


def parse(text_):
    d = Dom()
    d.feed(text_)
    for t in d.tables.values():
        t["header"], t["rows"] = t["rows"][0], t["rows"][1:]
    return d


chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
if not chromium:
    if os.environ.get("CI") == "true":
        sys.exit("FAILED: chromium is not installed (tools/install-deps.sh installs it); under CI=true this test does not skip")
    print("SKIP: no chromium on PATH")
    sys.exit(SKIP)

profile = os.path.join(WORK, "chromium-profile")
shutil.rmtree(profile, ignore_errors=True)
# --enable-logging=stderr: the page's console messages come out on stderr as INFO:CONSOLE lines
flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
         "--window-size=1280,2400", "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"]


def console(stderr):
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


static = parse(page)
cost = static.tables["table-cost"]
col = cost["header"].index("wall_s")
before = [float(r[col]) for r in cost["rows"]]
expect(before != sorted(before), "precondition: the cost table is not already in wall_s order")
url = "file://" + os.path.abspath(report) + "#selftest=table-cost:wall_s"
dump = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
if dump.returncode != 0 or "<body" not in dump.stdout:
    sys.exit(f"FAILED: chromium --dump-dom ({dump.returncode}): {dump.stderr[-2000:]}")
dom = parse(dump.stdout)
expect(dom.body.get("data-selftest") == "done", "the page's script ran its self-test")
expect(dom.body.get("data-errors") == "0" and not console(dump.stderr),
       f"no script errors or console messages (data-errors={dom.body.get('data-errors')}, {console(dump.stderr)})")
for name, n in EXPECTED.items():
    fig = dom.figures.get("plot-" + name)
    if fig is None:
        sys.exit(f"FAILED: no figure plot-{name} in the rendered report")
    rendered = int(fig.get("data-rendered-marks", "-1"))
    if rendered != n or n == 0:
        sys.exit(f"FAILED: plot-{name} renders {rendered} marks, the store says {n}")
    print(f"   plot-{name}: {rendered} marks rendered")
expect(True, "every figure renders the marks the store says (heatmap cells, bars, curves)")
cds = {k: v for k, v in dom.figures.items() if k.startswith("plot-cd-")}
expect(cds and all(int(f.get("data-rendered-marks", "-1")) == int(f["data-expected-marks"]) >= 2 for f in cds.values()),
       f"critical-difference diagrams render a mark per model: {sorted(cds)}")
pairs, models_cost = dom.tables.get("table-stats-pairs"), dom.tables.get("table-cost-models")
expect(pairs and pairs["rows"] and "p (Holm)" in pairs["header"], f"pairwise tests table ({len(pairs['rows'])} pairs)")
expect(models_cost and sorted(r[0] for r in models_cost["rows"]) == ["logreg", "mlp"]
       and all(float(r[models_cost["header"].index("CPU h")]) > 0 for r in models_cost["rows"]),
       "cost per model: both models, positive CPU hours")
cpu_h = {r[0]: float(r[models_cost["header"].index("CPU h")]) for r in models_cost["rows"]}
expect(cpu_h["mlp"] > cpu_h["logreg"], f"cost ordered as expected: the MLP's epochs cost more CPU than LBFGS logreg {cpu_h}")
after_table = dom.tables["table-cost"]
after = [float(r[col]) for r in after_table["rows"]]
expect(after_table["attrs"].get("data-sorted-by") == "wall_s" and after == sorted(before) and after != before,
       "clicking the wall_s header sorts the cost table numerically")
# negative control: an error in the page (the self-test asked for a table that does not exist) is counted
bad = subprocess.run(flags + ["--dump-dom", "file://" + os.path.abspath(report) + "#selftest=no-such-table:x"],
                     capture_output=True, text=True, timeout=120)
expect(parse(bad.stdout).body.get("data-errors") == "1" and any("Uncaught" in line for line in console(bad.stderr)),
       "a script error in the page shows as data-errors=1 and on the console")
shot = os.path.join(WORK, "report.png")
if os.path.exists(shot):
    os.remove(shot)
subprocess.run(flags + [f"--screenshot={shot}", "file://" + os.path.abspath(report)], capture_output=True, timeout=120)
png = open(shot, "rb").read() if os.path.exists(shot) else b""
expect(png[:8] == b"\x89PNG\r\n\x1a\n", f"screenshot {shot} is a PNG")
width, height = struct.unpack(">II", png[16:24])
raw, at = b"", 8
while at < len(png):
    length, kind = struct.unpack(">I4s", png[at:at + 8])
    if kind == b"IDAT":
        raw += png[at + 8:at + 8 + length]
    at += 12 + length
pixels = zlib.decompress(raw)
expect(width >= 1000 and height >= 1000 and len(set(pixels)) > 32,
       f"the screenshot ({width}x{height}) is not blank ({len(set(pixels))} distinct byte values)")
print(f"check_report: all checks passed in {time.time() - T0:.1f} s")
