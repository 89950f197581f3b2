"""End-to-end sweep tests (issue 4 / CONTRACTS §7-§10), real MPI ranks and real files.

usage: check_sweep.py SDM MPIEXEC WORKDIR CASE
CASE: basic | kill | drain | corrupt | lock | signal | freeze | strategies | dataparallel | models2 | models3 | predict | verify | faults
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np

from e2e_common import ENV, expect, make_run

SDM, MPIEXEC, WORK, CASE = sys.argv[1:5]
run = make_run(SDM, MPIEXEC, timeout=600)


def synth(out, signal_=1.0, scale=0.01, seed=0, extra=()):
    if not os.path.exists(os.path.join(out, "catalog.yaml")):
        run(["synth", "--out", out, "--scale", str(scale), "--genes", "300", "--signal", str(signal_), "--seed", str(seed),
             *extra])


def write_spec(path, store, data, datasets, models, protocols, extra=""):
    with open(path, "w") as f:
        f.write(f"""name: test
store: {store}
data:
  root: {data}
  catalog: {data}/catalog.yaml
  datasets: {json.dumps(datasets)}
  label: {{column: condition, sensitive: [sensitive], resistant: [resistant]}}
models: {json.dumps(models)}
protocols: {json.dumps(protocols)}
train: {{epochs: 3, batch_size: 64, lr: 1.0e-3}}
preprocess: {{hvg: 200, pca: 20}}
{extra}""")


def dry_run_ids(spec):
    out = json.loads(run(["sweep", spec, "--dry-run", "--json"]).stdout)
    return [c["cell_id"] for c in out["cells"]]


def start_sweep(spec, store, status, count, extra=()):
    """`mpirun -np 3 sdm sweep SPEC` in the background, returned once the journal has `count` events of `status`."""
    cmd = [MPIEXEC, "-np", "3", "--oversubscribe", "--allow-run-as-root", SDM, "sweep", spec, *extra]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = os.path.join(os.path.dirname(store), "journal.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(journal) and sum(f'"status":"{status}"' in line for line in open(journal)) >= count:
            break
        time.sleep(0.05)
    return proc


def store_rows(store):
    with h5py.File(store, "r") as f:
        return {g: {k: f[g][k][()] for k in f[g]} for g in ("cells", "predictions", "breakdown", "provenance")}


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def records(store):
    d = os.path.join(os.path.dirname(store), "records")
    return {f[:-3]: sha(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".h5") and ".tmp" not in f} if os.path.isdir(d) else {}


FIXTURE_H5AD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "h5ad",
                            "legacy07_lzf_anndata_v0.7.8.h5ad")  # written by anndata 0.7.8, lzf-compressed


def check_embed(dims, sources):
    """`sdm embed` of real .h5ad files with each tiny model: float32 [n_obs, d], finite, obs names in file order."""
    import anndata
    for model, d in dims.items():
        for src in sources:
            out = os.path.join(WORK, model + ".h5")
            run(["embed", "--model", model, "--preset", "tiny", "--input", src, "--out", out, "--threads", "1"])
            ref = anndata.read_h5ad(src)
            with h5py.File(out, "r") as f:
                emb = f["cell_embedding"][()]
                expect(emb.dtype == np.float32 and emb.shape == (ref.n_obs, d) and np.all(np.isfinite(emb)),
                       f"sdm embed {model} {os.path.basename(src)}: float32 [{ref.n_obs}, {d}]")
                expect(text(f["obs_names"][()]) == list(ref.obs_names), f"sdm embed {model}: obs names in file order")


def text(col):
    return [v.decode() if isinstance(v, bytes) else v for v in col]


os.makedirs(WORK, exist_ok=True)
data = os.path.join(WORK, "data")

if CASE == "basic":
    synth(data)
    store = os.path.join(WORK, "basic", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "basic.yaml")
    write_spec(spec, store, data, ["P01", "P02", "P05", "P08", "P10", "P12"], [{"name": "logreg"}, {"name": "mlp"}],
               [{"name": "pooled", "folds": 3, "split": "cell"}, {"name": "pooled", "folds": 3, "split": "sample"},
                {"name": "cross-data"}], "strategies: [freeze, lora]\n")
    dry = run(["sweep", spec, "--dry-run"]).stdout
    ids = dry_run_ids(spec)
    expect(f"cells: {len(ids)}" in dry and len(ids) == 2 * (3 + 3 + 6), f"dry run lists {len(ids)} cells")
    expect("dropped: lora x logreg" in dry, "dry run lists the dropped lora x baseline combinations")
    p = run(["sweep", spec], np_=3)
    cells = store_rows(store)["cells"]
    got = text(cells["cell_id"])
    expect(sorted(got) == sorted(ids) and len(set(got)) == len(got), "store has exactly the dry run's cells, once each")
    expect(set(text(cells["status"])) == {"done"}, "every cell is done")
    with h5py.File(store, "r") as f:
        expect(f.attrs["sdm_schema_version"] == 1 and "name: test" in f.attrs["sweep_yaml"], "root attributes")
        expect(list(f["predictions"].keys()) == sorted(["cell_id", "obs_name", "dataset", "y_true", "y_pred", "y_score"]),
               "prediction columns")
        n_pred = f["predictions/y_true"].shape[0]
        expect(n_pred == int(np.sum(f["cells/n_test"][()])), f"{n_pred} predictions = sum of n_test")
        ranks = set(f["cells/rank"][()].tolist())
        expect(ranks == {1, 2}, f"both workers ran cells (ranks {sorted(ranks)})")
    f1 = cells["f1"][(np.array(text(cells["model"])) == "logreg") & (np.array(text(cells["split"])) == "cell")]
    expect(np.all(f1 >= 0.8), f"signal 1.0: logreg cell-split F1 >= 0.8 ({np.round(f1, 3).tolist()})")
    st = json.loads(run(["status", store, "--json"]).stdout)
    expect(st["counts"]["done"] == len(ids) and st["expected"] == len(ids) and st["failed"] == [], "status --json counts")
    csv = run(["export", store, "--what", "cells", "--format", "csv"]).stdout.splitlines()
    expect(csv[0].startswith("cell_id,model,preset,weights_sha256,strategy,protocol,split,fold,test_group") and
           len(csv) == len(ids) + 1, "export cells csv: schema-ordered header and one row per cell")
    md = run(["export", store, "--what", "summary", "--format", "md"]).stdout
    expect(md.startswith("| model |") and "cross-data" in md, "export summary md")
    preds = run(["export", store, "--what", "predictions", "--format", "csv"]).stdout.splitlines()
    expect(preds[0] == "cell_id,obs_name,dataset,y_true,y_pred,y_score" and len(preds) == n_pred + 1, "export predictions")
    before = store_rows(store)
    os.remove(store)
    run(["consolidate", store], np_=2)
    after = store_rows(store)
    same = all(np.array_equal(before[g][k], after[g][k], equal_nan=before[g][k].dtype.kind == "f")
               for g in before for k in before[g])
    expect(same and before["cells"].keys() == after["cells"].keys(), "consolidate from records reproduces every store row")
    again = run(["sweep", spec], np_=3, check=False)
    expect(again.returncode == 2 and "--resume" in again.stderr, "a second run without --resume is refused")
    resumed = run(["sweep", spec, "--resume"], np_=2)
    expect("0 to run" in resumed.stderr, "--resume of a finished sweep runs nothing")

elif CASE == "kill":
    synth(data)
    store = os.path.join(WORK, "kill", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "kill.yaml")
    write_spec(spec, store, data, ["P01", "P02", "P03"], [{"name": "noop", "config": {"sleep_ms": 250}}, {"name": "logreg"}],
               [{"name": "pooled", "folds": 5, "split": "cell"}], "seeds: [0, 1, 2, 3]\n")
    ids = dry_run_ids(spec)
    proc = start_sweep(spec, store, "done", 3)
    lock = json.load(open(store + ".lock"))
    pids = [int(x) for x in subprocess.run(["pgrep", "-f", f"{SDM} sweep {spec}"], capture_output=True, text=True).stdout.split()]
    workers = [p for p in pids if p != lock["pid"] and p != proc.pid]
    expect(len(workers) >= 1, f"found worker processes {workers} (rank 0 is {lock['pid']})")
    os.kill(workers[0], signal.SIGKILL)
    proc.communicate(timeout=120)
    committed = records(store)
    expect(proc.returncode != 0, f"the sweep died with the worker (exit {proc.returncode})")
    expect(1 <= len(committed) < len(ids), f"at kill time {len(committed)} of {len(ids)} cells were committed")
    p = run(["sweep", spec, "--resume"], np_=3, check=False)
    if p.returncode != 0:
        expect(p.returncode == 2 and "--force-unlock" in p.stderr, "a stale lock is reported with the way out")
        p = run(["sweep", spec, "--resume", "--force-unlock"], np_=3)
    cells = store_rows(store)["cells"]
    got = text(cells["cell_id"])
    expect(sorted(got) == sorted(ids) and len(set(got)) == len(got), "after --resume every cell exists exactly once")
    expect(set(text(cells["status"])) == {"done"}, "every cell is done after resume")
    now = records(store)
    expect(all(now[k] == v for k, v in committed.items()), "records committed before the kill are byte-identical")
    expect(f"{len(committed)} already committed" in p.stderr, "resume skipped exactly the committed cells")

elif CASE == "drain":
    # Issue 9: the pre-timeout signal. SIGUSR1 to mpirun (forwarded to every rank, as Slurm's --signal=B:USR1 to the
    # batch script that forwards it) makes rank 0 stop handing out cells, let the running ones finish, consolidate
    # and exit 75; --resume then finishes with every cell exactly once. A time limit drains the same way.
    synth(data)
    store = os.path.join(WORK, "drain", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "drain.yaml")
    write_spec(spec, store, data, ["P01", "P02", "P03"], [{"name": "noop", "config": {"sleep_ms": 300}}],
               [{"name": "pooled", "folds": 5, "split": "cell"}], "seeds: [0, 1, 2, 3]\n")
    ids = dry_run_ids(spec)
    proc = start_sweep(spec, store, "done", 3, ["--drain-grace", "60"])
    journal = os.path.join(os.path.dirname(store), "journal.jsonl")
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=120)
    committed = records(store)
    expect(proc.returncode == 75, f"a drained sweep exits 75 (got {proc.returncode})")
    expect("draining (SIGUSR1)" in err, "rank 0 logs the drain and its cause")
    expect(1 <= len(committed) < len(ids), f"{len(committed)} of {len(ids)} cells committed at the drain")
    journal_events = [json.loads(l) for l in open(journal)]
    started = {e["cell_id"] for e in journal_events if e["status"] == "running"}
    finished = {e["cell_id"] for e in journal_events if e["status"] == "done"}
    expect(started == finished, f"every started cell finished within the grace ({len(started)} started)")
    expect(os.path.exists(store) and not os.path.exists(store + ".lock"), "the store was consolidated and the lock released")
    p = run(["sweep", spec, "--resume"], np_=3)
    cells = store_rows(store)["cells"]
    got = text(cells["cell_id"])
    expect(sorted(got) == sorted(ids) and len(set(got)) == len(got), "after --resume every cell exists exactly once")
    expect(set(text(cells["status"])) == {"done"}, "every cell is done after resume")
    expect(all(records(store)[k] == v for k, v in committed.items()), "records committed before the drain are unchanged")
    # the time limit: noop cells take ~0.3 s; with 1.5 s allowed the sweep stops starting cells before the end
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    p = run(["sweep", spec, "--time-left", "1.5"], np_=3, check=False)
    n = len(records(store))
    expect(p.returncode == 75 and "draining (time limit)" in p.stderr and 1 <= n < len(ids),
           f"--time-left 1.5: exit {p.returncode}, {n} of {len(ids)} cells committed before the limit")
    # a grace too short for the running cells: rank 0 releases the lock and ends the job (exit 75); the cells it
    # gave up on are interrupted (journal: running, no record) and the next --resume runs them
    slow = os.path.join(WORK, "drain_slow.yaml")
    write_spec(slow, store, data, ["P01"], [{"name": "noop", "config": {"sleep_ms": 4000}}],
               [{"name": "pooled", "folds": 2, "split": "cell"}], "")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    proc = start_sweep(slow, store, "running", 2, ["--drain-grace", "0.5"])
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=60)
    expect(proc.returncode == 75 and "grace expired" in err and not os.path.exists(store + ".lock"),
           f"grace expired: exit {proc.returncode}, lock released, running cells left interrupted")
    p = run(["sweep", slow, "--resume"], np_=3)
    cells = store_rows(store)["cells"]
    expect(len(cells["cell_id"]) == 2 and set(text(cells["status"])) == {"done"}, "the interrupted cells ran on --resume")
elif CASE == "corrupt":
    synth(data)
    bad = os.path.join(WORK, "corrupt-data")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(data, bad)
    victim = os.path.join(bad, "P02.h5ad")
    size = os.path.getsize(victim)
    with open(victim, "r+b") as f:
        f.truncate(size // 2)
    store = os.path.join(WORK, "corrupt", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "corrupt.yaml")
    write_spec(spec, store, bad, ["P01", "P02", "P03"], [{"name": "logreg"}],
               [{"name": "pooled", "folds": 2, "split": "cell", "per_dataset": True}], "resources: {max_attempts: 2}\n")
    p = run(["sweep", spec], np_=3, check=False)
    expect(p.returncode == 3, f"exit code 3 when cells failed (got {p.returncode})")
    cells = store_rows(store)["cells"]
    status = dict(zip(text(cells["test_group"]), text(cells["status"])))
    errors = dict(zip(text(cells["test_group"]), text(cells["error"])))
    attempts = dict(zip(text(cells["test_group"]), cells["attempts"].tolist()))
    expect(all(status[g] == "failed" for g in status if g.startswith("P02")), "P02 cells failed")
    expect(all(status[g] == "done" for g in status if not g.startswith("P02")), "the other datasets' cells finished")
    msg = errors["P02:fold-1/2"]
    expect("P02.h5ad" in msg and ("truncated" in msg or "signature" in msg or "unable" in msg), f"failed record carries the reader's message: {msg}")
    expect(attempts["P02:fold-1/2"] == 2, "failed cells were retried up to max_attempts")
    st = json.loads(run(["status", store, "--json"]).stdout)
    expect(st["counts"]["failed"] == 2 and len(st["failed"]) == 2 and "P02.h5ad" in st["failed"][0]["error"], "status lists failed cells with errors")

elif CASE == "lock":
    synth(data)
    store = os.path.join(WORK, "lock", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    os.makedirs(os.path.dirname(store))
    spec = os.path.join(WORK, "lock.yaml")
    write_spec(spec, store, data, ["P01"], [{"name": "noop"}], [{"name": "pooled", "folds": 2}])
    host = socket.gethostname()
    json.dump({"host": host, "pid": os.getpid(), "job_id": "", "started_utc": "now"}, open(store + ".lock", "w"))
    p = run(["sweep", spec], np_=2, check=False)
    expect(p.returncode == 2 and "locked by a running sweep" in p.stderr and f"pid {os.getpid()}" in p.stderr,
           "a live lock refuses a second sweep, naming its holder")
    dead = subprocess.Popen(["true"])
    dead.wait()
    json.dump({"host": host, "pid": dead.pid, "job_id": "", "started_utc": "then"}, open(store + ".lock", "w"))
    p = run(["sweep", spec], np_=2, check=False)
    expect(p.returncode == 2 and "stale lock" in p.stderr and "--force-unlock" in p.stderr, "a stale lock is reported")
    run(["sweep", spec, "--force-unlock"], np_=2)
    expect(not os.path.exists(store + ".lock") and os.path.exists(store), "--force-unlock breaks it; the lock is released at the end")

elif CASE == "signal":
    # CONTRACTS §10: with no signal, sample-split AUROC ~ 0.5; per-sample batch effects make cell split leak.
    null = os.path.join(WORK, "null-data")
    synth(null, signal_=0.0, scale=0.01, seed=5)
    store = os.path.join(WORK, "signal", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "signal.yaml")
    write_spec(spec, store, null, ["all"], [{"name": "logreg"}],
               [{"name": "pooled", "folds": 5, "split": "cell"}, {"name": "pooled", "folds": 5, "split": "sample"}])
    run(["sweep", spec], np_=3)
    cells = store_rows(store)["cells"]
    split = np.array(text(cells["split"]))
    auroc_cell = float(np.mean(cells["auroc"][split == "cell"]))
    auroc_sample = float(np.mean(cells["auroc"][split == "sample"]))
    print(f"null collection: cell-split AUROC {auroc_cell:.3f}, sample-split AUROC {auroc_sample:.3f}")
    expect(abs(auroc_sample - 0.5) <= 0.05, f"S=0: sample-split AUROC within 0.5 +- 0.05 ({auroc_sample:.3f})")
    expect(auroc_cell > auroc_sample + 0.04, "cell split scores above sample split (the leakage gap is visible)")
elif CASE == "freeze":
    # Frozen foundation models (issue 5): embed tasks first, one cache file per (model, dataset), reused by
    # every cell and by a resumed sweep; a checkpoint that does not fit fails the embed task and, with the
    # reason, every cell that needed it.
    synth(data)
    store = os.path.join(WORK, "freeze", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "freeze.yaml")
    datasets = ["P01", "P02", "P05"]
    models = [{"name": "scgpt", "preset": "tiny"}, {"name": "geneformer", "preset": "tiny"}]
    write_spec(spec, store, data, datasets, models,
               [{"name": "pooled", "folds": 3, "split": "cell"}, {"name": "cross-data"}], "head: {epochs: 20, lr: 1.0e-3}\n")
    ids = dry_run_ids(spec)
    expect(len(ids) == 2 * (3 + 3), f"dry run lists {len(ids)} cells")
    p = run(["sweep", spec], np_=3)
    expect("after 6 embedding tasks" in p.stderr, "6 embed tasks (2 models x 3 datasets) scheduled before the cells")
    cache = os.path.join(os.path.dirname(store), "cache", "embeddings")
    files = sorted(os.listdir(cache))
    expect(len(files) == 6 and all(f.endswith(".h5") for f in files), f"one cache file per model and dataset ({len(files)})")
    with h5py.File(os.path.join(cache, files[0]), "r") as f:
        n, d = f["cell_embedding"].shape
        expect(d in (64,) and n == f["y"].shape[0] == len(f["obs_names"]), f"cache holds [{n}, {d}] embeddings with labels")
    cells = store_rows(store)["cells"]
    expect(set(text(cells["status"])) == {"done"} and sorted(text(cells["cell_id"])) == sorted(ids), "every cell is done")
    expect(set(text(cells["model"])) == {"scgpt", "geneformer"}, "both models in the store")
    auroc = cells["auroc"][np.array(text(cells["split"])) == "cell"]
    expect(np.all(np.isfinite(auroc)) and np.all((auroc >= 0) & (auroc <= 1)),
           f"metrics computed for every fold (random tiny encoders: mean cell-split AUROC {np.mean(auroc):.3f})")
    mtimes = {f: os.path.getmtime(os.path.join(cache, f)) for f in files}
    for f in files[:2]:
        os.remove(os.path.join(cache, f))
    for r in list(records(store))[:3]:
        os.remove(os.path.join(os.path.dirname(store), "records", r + ".h5"))
    resumed = run(["sweep", spec, "--resume"], np_=2)
    expect("3 to run" in resumed.stderr, "--resume reruns only the removed cells")
    again = sorted(os.listdir(cache))
    expect(again == files and all(os.path.getmtime(os.path.join(cache, f)) == mtimes[f] for f in files[2:]),
           "kept cache files are reused, removed ones rebuilt only when a cell needs them")
    # a checkpoint that does not fit: the embed task fails, and every dependent cell fails with that reason
    bad = os.path.join(WORK, "bad.safetensors")
    header = json.dumps({"encoder.embedding.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    with open(bad, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header + bytes(16))
    store2 = os.path.join(WORK, "freeze_bad", "store.h5")
    shutil.rmtree(os.path.dirname(store2), ignore_errors=True)
    spec2 = os.path.join(WORK, "freeze_bad.yaml")
    write_spec(spec2, store2, data, datasets[:2], [{"name": "scgpt", "preset": "tiny", "weights": bad}],
               [{"name": "cross-data"}], "resources: {max_attempts: 1}\n")
    p = run(["sweep", spec2], np_=3, check=False)
    expect(p.returncode == 3, f"exit 3 when cells failed (got {p.returncode})")
    cells = store_rows(store2)["cells"]
    errors = text(cells["error"])
    expect(set(text(cells["status"])) == {"failed"} and all("embedding" in e and "mis-shaped" in e for e in errors),
           "dependent cells are failed records naming the embedding and the mis-shaped parameter")
    # sdm embed on real anndata files: the anndata 0.7.8 fixture and a synthetic dataset
    check_embed({"scgpt": 64, "geneformer": 64}, [FIXTURE_H5AD, os.path.join(data, "P01.h5ad")])
elif CASE == "strategies":
    # Issue 6: every strategy x protocol combination runs in one sweep; nonsense is dropped and listed; few-shot
    # moves k target cells per class into training; LoRA cells leave adapters + a training log.
    import yaml
    datasets = ["P01", "P02", "P05", "E01"]
    data = os.path.join(WORK, "mixed")  # primary and external datasets in one catalog
    synth(data, extra=["--collection", "all", "--only", *datasets])
    entries = yaml.safe_load(open(os.path.join(data, "catalog.yaml")))["datasets"]
    tissue = {e["id"]: e["tissue"] for e in entries}
    expect({e["id"]: e["collection"] for e in entries} == {"P01": "primary", "P02": "primary", "P05": "primary",
                                                            "E01": "external"}, "synth --collection all: one mixed catalog")
    store = os.path.join(WORK, "strategies", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "strategies.yaml")
    protocols = [{"name": "pooled", "folds": 2, "split": "cell"}, {"name": "pooled", "folds": 2, "split": "sample"},
                 {"name": "pooled", "folds": 2, "split": "cell", "per_dataset": True, "select": {"tissue": [tissue["P01"]]}},
                 {"name": "cross-data"}, {"name": "cross-data", "mode": "primary-to-external"}, {"name": "paper"}]
    k = 3
    write_spec(spec, store, data, datasets, [{"name": "logreg"}, {"name": "scgpt", "preset": "tiny"}], protocols,
               "strategies: [freeze, lora, zero-shot, few-shot]\n"
               f"strategy_options: {{lora: {{r: 4, dropout: 0.0}}, few-shot: {{k: {k}}}}}\n")
    dry = json.loads(run(["sweep", spec, "--dry-run", "--json"]).stdout)
    dropped = " | ".join(dry["dropped"])
    for text_ in ("lora x logreg", "zero-shot x pooled", "few-shot x paper"):
        expect(text_ in dropped, f"dropped and listed: {text_}")
    subgroup = sum(1 for d in datasets if tissue[d] == tissue["P01"])
    # per model: freeze/lora on pooled cell 2 + sample 2 + subgroup 2*n + LOO 4 + p2e 1 + paper 1; zs/fs: LOO 4 + p2e 1
    per_fit = 2 + 2 + 2 * subgroup + 4 + 1 + 1
    expect(len(dry["cells"]) == 2 * per_fit + per_fit + 4 * 5, f"{len(dry['cells'])} cells = the documented grid")
    p = run(["sweep", spec], np_=3, timeout=900)
    cells = store_rows(store)["cells"]
    expect(set(text(cells["status"])) == {"done"}, "every strategy x protocol cell is done")
    combos = set(zip(text(cells["model"]), text(cells["strategy"]), text(cells["protocol"]), text(cells["split"])))
    for strategy in ("freeze", "lora"):
        for protocol, split in (("pooled", "cell"), ("pooled", "sample"), ("cross-data", "dataset"), ("paper", "cell")):
            expect(("scgpt", strategy, protocol, split) in combos, f"scgpt {strategy} x {protocol}/{split} ran")
    for strategy in ("zero-shot", "few-shot"):
        for model in ("scgpt", "logreg"):
            expect((model, strategy, "cross-data", "dataset") in combos, f"{model} {strategy} x cross-data ran")
    preds = store_rows(store)["predictions"]
    pred_cell, pred_ds = text(preds["cell_id"]), text(preds["dataset"])
    cid, strat, model_, group = text(cells["cell_id"]), text(cells["strategy"]), text(cells["model"]), text(cells["test_group"])
    n_test = {(model_[i], strat[i], group[i]): int(cells["n_test"][i]) for i in range(len(cid)) if text(cells["protocol"])[i] == "cross-data"}
    for i, c in enumerate(cid):
        if strat[i] in ("zero-shot", "few-shot"):
            held = set(pred_ds[j] for j in range(len(pred_cell)) if pred_cell[j] == c)
            expect(held == {group[i]} and group[i] not in text(cells["train_groups"])[i].split(","),
                   f"{model_[i]} {strat[i]} {group[i]}: tested on the held-out dataset only, never trained on it")
    for (m, st, g), n in n_test.items():
        if st == "few-shot":
            zs = n_test[(m, "zero-shot", g)]
            expect(zs - n == 2 * k, f"{m} few-shot {g}: {2 * k} target cells moved into training ({zs} -> {n} test cells)")
    lora = [c for i, c in enumerate(cid) if strat[i] == "lora"]
    art = os.path.join(os.path.dirname(store), "artifacts")
    for c in lora:
        log = json.load(open(os.path.join(art, c, "train_log.json")))
        names = open(os.path.join(art, c, "adapters.safetensors"), "rb").read(4096)
        expect(log["ranks"] == 1 and len(log["epoch_loss"]) == log["epochs_run"] > 0 and all(np.isfinite(log["step_loss"])),
               f"lora {c[:12]}: training log with {log['steps']} steps")
        expect(b"self_attn.out_proj.lora_A.weight" in names and b"head.4.weight" in names,
               f"lora {c[:12]}: adapters saved under the original module names, with the head")
    paper_lora = [i for i, c in enumerate(cid) if strat[i] == "lora" and text(cells["protocol"])[i] == "paper"]
    log = json.load(open(os.path.join(art, cid[paper_lora[0]], "train_log.json")))
    expect(log["epochs_run"] == 3 and log["global_batch"] == 256, "paper x lora trains as the released FT script (3 epochs, batch 256)")
    leak = run(["export", store, "--what", "leakage", "--format", "csv"]).stdout.splitlines()
    expect(leak[0].startswith("model,preset,strategy,protocol,f1_cell,f1_sample,f1_gap") and len(leak) >= 4,
           "export --what leakage puts cell and sample split side by side")
    expect("cell split vs sample split" in p.stdout, "the sweep's closing summary shows the leakage table")
elif CASE == "dataparallel":
    # Issue 6 / CONTRACTS §10: LoRA training on a group of 2 ranks (mpirun -np 3: orchestrator + one group) gives
    # the loss curve and final weights of 1 rank with the same global batch; shards are disjoint, bytes move.
    synth(data)
    models = [{"name": "scgpt", "preset": "tiny"}, {"name": "geneformer", "preset": "tiny"}]
    protocols = [{"name": "pooled", "folds": 2, "split": "cell"}, {"name": "cross-data"}]
    extra = "strategies: [lora]\nstrategy_options: {lora: {dropout: 0.0}}\n"
    stores = {}
    for ranks, np_ in ((1, 2), (2, 3)):
        stores[ranks] = os.path.join(WORK, f"dp{ranks}", "store.h5")
        shutil.rmtree(os.path.dirname(stores[ranks]), ignore_errors=True)
        spec = os.path.join(WORK, f"dp{ranks}.yaml")
        write_spec(spec, stores[ranks], data, ["P01", "P02", "P05"], models, protocols,
                   extra + f"resources: {{ranks_per_task: {ranks}}}\n")
        p = run(["sweep", spec], np_=np_)
        if ranks == 2:
            expect("1 worker groups of 2 ranks" in p.stderr, "rank 0 + one group of 2 worker ranks")
    bad = os.path.join(WORK, "dp_bad.yaml")
    write_spec(bad, os.path.join(WORK, "dp_bad", "store.h5"), data, ["P01", "P02"], models, protocols,
               extra + "resources: {ranks_per_task: 2}\n")
    p = run(["sweep", bad], np_=4, check=False)
    expect(p.returncode == 2 and "ranks_per_task" in p.stderr and "multiple of 2" in p.stderr,
           "3 workers cannot form groups of 2: one clear error, exit 2 on every rank")

    def tensors(path):
        raw = open(path, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        out = {}
        for name, v in header.items():
            if name != "__metadata__":
                b, e = v["data_offsets"]
                out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.float32).reshape(v["shape"])
        return out

    one, two = (os.path.join(os.path.dirname(stores[r]), "artifacts") for r in (1, 2))
    ids = sorted(os.listdir(one))
    expect(len(ids) == 2 * (2 + 3) and sorted(os.listdir(two)) == ids, f"{len(ids)} LoRA cells at both rank counts")
    worst_loss = worst_w = 0.0
    for c in ids:
        a, b = (json.load(open(os.path.join(d, c, "train_log.json"))) for d in (one, two))
        expect(a["ranks"] == 1 and b["ranks"] == 2 and a["steps"] == b["steps"] > 0, f"{c[:12]}: same steps at 1 and 2 ranks")
        per_rank = b["shards"]["samples_per_rank"]
        expect(b["shards"]["disjoint_cover"] and len(per_rank) == 2 and min(per_rank) > 0 and sum(per_rank) == b["n_train"],
               f"{c[:12]}: disjoint shards {per_rank} cover the {b['n_train']} training cells once")
        expect(b["allreduce_bytes"] > 0 and a["allreduce_bytes"] == 0, f"{c[:12]}: {b['allreduce_bytes']:.0f} gradient bytes all-reduced")
        la, lb = np.array(a["step_loss"]), np.array(b["step_loss"])
        worst_loss = max(worst_loss, float(np.max(np.abs(la - lb) / np.abs(la))))
        ta, tb = (tensors(os.path.join(d, c, "adapters.safetensors")) for d in (one, two))
        va = np.concatenate([ta[k].ravel() for k in sorted(ta)])
        vb = np.concatenate([tb[k].ravel() for k in sorted(ta)])
        worst_w = max(worst_w, float(np.linalg.norm(va - vb) / np.linalg.norm(va)))
    expect(worst_loss <= 1e-5, f"loss curves agree within 1e-5 relative (worst {worst_loss:.2e})")
    expect(worst_w <= 1e-5, f"final adapters + head agree within 1e-5 relative (worst {worst_w:.2e})")
    sa, sb = (store_rows(stores[r])["predictions"] for r in (1, 2))
    order_a = np.lexsort((text(sa["obs_name"]), text(sa["cell_id"])))
    order_b = np.lexsort((text(sb["obs_name"]), text(sb["cell_id"])))
    diff = float(np.max(np.abs(sa["y_score"][order_a] - sb["y_score"][order_b])))
    expect(diff <= 1e-4, f"test predictions agree (max |y_score difference| {diff:.1e})")
    # sdm compare: the two stores' cells pair up one to one and score the same
    p = run(["compare", stores[1], stores[2], "--metric", "auroc", "--tolerance", "1e-3", "--format", "json"])
    verdicts = [r["verdict"] for r in json.loads(p.stdout)]
    expect(len(verdicts) == len(ids) and set(verdicts) == {"same"} and f"{len(ids)} same" in p.stderr,
           f"sdm compare: {len(verdicts)} cells paired, all the same AUROC at 1 and 2 ranks")
elif CASE in ("models2", "models3"):
    # Issue 7: scFoundation, UCE, scBERT and CellLM; issue 8: CellPLM, tGPT and the LLM path (tiny LLaMA-3 and
    # ChatGLM on cell sentences, byte tokens). Tiny, random weights: each set embeds real .h5ad files and runs
    # freeze and lora cells in a sweep. models3 runs with groups of 2 ranks: LoRA trains data-parallel, except
    # CellPLM, whose cells attend to each other and so run on the group leader alone (CONTRACTS §10).
    synth(data)
    dims = ({"scfoundation": 256, "uce": 64, "scbert": 64, "celllm": 64} if CASE == "models2"  # scFoundation: 4 x 64
            else {"cellplm": 32, "tgpt": 64, "llama": 64, "chatglm": 64})
    models = [{"name": m, "preset": "tiny"} for m in dims]
    store = os.path.join(WORK, CASE, "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, CASE + ".yaml")
    extra = "strategies: [freeze, lora]\n"
    if CASE == "models3":
        extra += "strategy_options: {lora: {dropout: 0.0}}\nresources: {ranks_per_task: 2}\n"
    write_spec(spec, store, data, ["P01", "P02", "P05"], models,
               [{"name": "pooled", "folds": 2, "split": "cell"}, {"name": "cross-data"}], extra)
    p = run(["sweep", spec], np_=3, timeout=900)
    cells = store_rows(store)["cells"]
    expect(len(cells["cell_id"]) == 4 * 2 * (2 + 3) and set(text(cells["status"])) == {"done"},
           f"{len(cells['cell_id'])} freeze and lora cells of the four models are done")
    combos = set(zip(text(cells["model"]), text(cells["strategy"])))
    expect(combos == {(m["name"], s) for m in models for s in ("freeze", "lora")}, "every model ran both strategies")
    expect(np.all(np.isfinite(np.array(cells["auroc"]))), "metrics computed for every cell")
    if CASE == "models3":
        artifacts = os.path.join(os.path.dirname(store), "artifacts")
        by_id = dict(zip(text(cells["cell_id"]), text(cells["model"])))
        ranks = {}
        for c in os.listdir(artifacts):
            if not os.path.exists(os.path.join(artifacts, c, "train_log.json")):
                continue  # a freeze cell's predictor
            ranks.setdefault(by_id[c], set()).add(json.load(open(os.path.join(artifacts, c, "train_log.json")))["ranks"])
        expect(ranks == {"cellplm": {1}, "tgpt": {2}, "llama": {2}, "chatglm": {2}},
               f"LoRA ranks per model {ranks}: data-parallel, CellPLM excluded from sharding")
    # the anndata 0.7.8 fixture and a synthetic dataset
    check_embed(dims, [FIXTURE_H5AD, os.path.join(data, "P05.h5ad")])
elif CASE == "predict":
    # Issue 10: every trained cell keeps what it needs to predict again. `sdm predict` on a cell's own test file
    # must give back the scores the sweep stored (baselines: genes, normalization and PCA basis; frozen encoder:
    # embeddings + head; LoRA: adapters merged + head), as CSV and as obs columns of an .h5ad copy; an input that
    # lacks most of the genes is refused with its coverage.
    import anndata
    synth(data)
    store = os.path.join(WORK, "predict", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "predict.yaml")
    write_spec(spec, store, data, ["P01", "P02", "P05"],
               [{"name": "logreg"}, {"name": "mlp"}, {"name": "scgpt", "preset": "tiny"}],
               [{"name": "cross-data"}], "strategies: [freeze, lora]\nstrategy_options: {lora: {dropout: 0.0}}\n")
    run(["sweep", spec], np_=3, timeout=900)
    rows = store_rows(store)
    cells, preds = rows["cells"], rows["predictions"]
    cid, model_, strat, group = (text(cells[k]) for k in ("cell_id", "model", "strategy", "test_group"))
    expect(len(cid) == 3 * 4 and set(text(cells["status"])) == {"done"}, f"{len(cid)} cells done")
    pcell, pobs = text(preds["cell_id"]), text(preds["obs_name"])
    stored = {}
    for c, o, y in zip(pcell, pobs, preds["y_score"]):
        stored.setdefault(c, {})[o] = float(y)
    out_dir = os.path.join(WORK, "predict", "out")
    os.makedirs(out_dir, exist_ok=True)
    for i, c in enumerate(cid):
        manifest = json.load(open(os.path.join(os.path.dirname(store), "artifacts", c, "predictor.json")))
        expect(manifest["cell_id"] == c and manifest["model"]["name"] == model_[i], f"{model_[i]} {strat[i]} {c[:12]}: predictor.json")
        src = os.path.join(data, group[i] + ".h5ad")
        csv = os.path.join(out_dir, c[:12] + ".csv")
        p = run(["predict", "--store", store, "--cell", c[:16], "--input", src, "--out", csv])
        lines = open(csv).read().splitlines()
        expect(lines[0] == "obs_name,p_sensitive,prediction", "CSV header")
        got = {ln.split(",")[0]: (float(ln.split(",")[1]), ln.split(",")[2]) for ln in lines[1:]}
        want = stored[c]
        expect(set(got) == set(want), f"{model_[i]} {strat[i]} {group[i]}: one prediction per cell ({len(got)})")
        worst = max(abs(got[o][0] - want[o]) for o in want)
        expect(worst < 2e-5 and all((got[o][0] >= 0.5) == (got[o][1] == "sensitive") for o in got),
               f"{model_[i]} {strat[i]} {group[i]}: predict reproduces the sweep's scores (max |diff| {worst:.2e})")
        expect("gene coverage 100.0%" in p.stderr and "labelled by obs 'condition'" in p.stderr,
               f"{model_[i]} {strat[i]}: coverage and the input's own labels reported")
    # .h5ad out: a copy of the input with two obs columns, readable by anndata
    lora = cid[strat.index("lora")]
    h5 = os.path.join(out_dir, "with_preds.h5ad")
    run(["predict", "--store", store, "--cell", lora, "--input", os.path.join(data, "P05.h5ad"), "--out", h5])
    a = anndata.read_h5ad(h5)
    ref = anndata.read_h5ad(os.path.join(data, "P05.h5ad"))
    expect(list(a.obs.columns) == list(ref.obs.columns) + ["sdm_p_sensitive", "sdm_prediction"]
           and str(a.obs["sdm_prediction"].dtype) == "category"
           and np.array_equal((a.obs["sdm_p_sensitive"] >= 0.5), a.obs["sdm_prediction"] == "sensitive")
           and (a.X != ref.X).nnz == 0, "h5ad output: the input plus sdm_p_sensitive and sdm_prediction, read by anndata")
    # an input with a fifth of the genes: refused, with the coverage
    few = os.path.join(out_dir, "few_genes.h5ad")
    import scipy.sparse
    k = ref.n_vars // 5
    anndata.AnnData(X=scipy.sparse.csr_matrix(ref.X.toarray()[:, :k]), obs=ref.obs.copy(), var=ref.var.iloc[:k].copy()).write_h5ad(few)
    base = cid[model_.index("logreg")]
    p = run(["predict", "--store", store, "--cell", base, "--input", few, "--out", os.path.join(out_dir, "x.csv")], check=False)
    expect(p.returncode != 0 and "coverage" in p.stderr and "%" in p.stderr and "few_genes.h5ad" in p.stderr
           and not os.path.exists(os.path.join(out_dir, "x.csv")), "too few genes: refused with the coverage, no output")
    p = run(["predict", "--store", store, "--cell", base, "--input", few, "--out", os.path.join(out_dir, "x.csv"),
             "--min-coverage", "0.1"])
    expect(len(open(os.path.join(out_dir, "x.csv")).read().splitlines()) == ref.n_obs + 1, "--min-coverage lowers the floor")
    p = run(["predict", "--store", store, "--cell", "ffffffffffff", "--input", few, "--out", os.path.join(out_dir, "y.csv")],
            check=False)
    expect(p.returncode != 0 and "--cell" in p.stderr, "an unknown cell id is one clear error")
elif CASE == "verify":
    # Issue 12: `sdm verify` passes a fresh store and names each kind of damage: a record edited after commit,
    # a store row that disagrees with its record, a missing record, a lost prediction row, another schema version.
    synth(data)
    store = os.path.join(WORK, "verify", "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, "verify.yaml")
    write_spec(spec, store, data, ["P01", "P02", "P05"], [{"name": "logreg"}],
               [{"name": "pooled", "folds": 2, "split": "cell"}, {"name": "cross-data"}])
    run(["sweep", spec], np_=3)
    p = run(["verify", store])
    expect("verify: OK (5 cells, 5 records" in p.stdout, "a fresh store verifies: " + p.stdout.strip().splitlines()[-1])
    ids = text(store_rows(store)["cells"]["cell_id"])
    rec = os.path.join(os.path.dirname(store), "records", ids[0] + ".h5")
    keep = rec + ".orig"
    shutil.copy(rec, keep)

    def verify_fails(what, *needles):
        p = run(["verify", store, "--json"], check=False)
        out = json.loads(p.stdout)
        problems = " | ".join(out["problems"])
        expect(p.returncode == 1 and not out["ok"] and all(n in problems for n in needles), f"{what}: {problems[:160]}")

    with h5py.File(rec, "r+") as f:
        f.attrs["f1"] = 0.123
    verify_fails("a record edited after commit", "changed since it was committed", "differ in f1")
    shutil.copy(keep, rec)
    with h5py.File(store, "r+") as f:
        f["cells/auroc"][1] = 0.5 if f["cells/auroc"][1] != 0.5 else 0.25
    verify_fails("a store row unlike its record", ids[1][:12], "differ in auroc")
    run(["consolidate", store], np_=2)
    expect(run(["verify", store]).returncode == 0, "consolidate repairs the store")
    os.rename(rec, keep + "2")
    verify_fails("a missing record", "no record file")
    os.rename(keep + "2", rec)
    with h5py.File(store, "r+") as f:
        for k in list(f["predictions"]):
            v = f["predictions/" + k][()]
            del f["predictions/" + k]
            f["predictions/" + k] = v[1:]
    verify_fails("a lost prediction row", "prediction rows, n_test")
    run(["consolidate", store], np_=2)
    with h5py.File(store, "r+") as f:
        f.attrs["sdm_schema_version"] = 2
    verify_fails("another schema version", "schema version 2")
elif CASE == "faults":
    # Issue 12, fault injection with real ranks: 10 seeded trials of kill -9 of a random rank (rank 0 or a worker)
    # at a random point, SIGTERM mid-sweep, a truncated and an altered record, the store deleted, and a full disk
    # while committing. After each, --resume / consolidate finishes with every cell exactly once, no cell
    # committed before the fault is lost or redone, and `sdm verify` passes.
    import random
    synth(data)
    spec = os.path.join(WORK, "faults.yaml")
    store = os.path.join(WORK, "faults", "store.h5")
    write_spec(spec, store, data, ["P01", "P02"], [{"name": "noop", "config": {"sleep_ms": 300}}, {"name": "logreg"}],
               [{"name": "pooled", "folds": 5, "split": "cell"}], "seeds: [0, 1, 2]\n")
    ids = dry_run_ids(spec)

    def resume(extra=()):
        p = run(["sweep", spec, "--resume", *extra], np_=3, check=False)
        if p.returncode == 2 and "--force-unlock" in p.stderr:
            p = run(["sweep", spec, "--resume", "--force-unlock", *extra], np_=3, check=False)
        return p

    def intact(committed, what):
        cells = store_rows(store)["cells"]
        got = text(cells["cell_id"])
        now = records(store)
        v = run(["verify", store], check=False)
        expect(sorted(got) == sorted(ids) and set(text(cells["status"])) == {"done"}
               and all(now.get(k) == h for k, h in committed.items()) and v.returncode == 0,
               f"{what}: {len(ids)} cells once each, all done, {len(committed)} earlier records untouched, verify OK")

    rng = random.Random(2026)
    for trial in range(10):
        shutil.rmtree(os.path.dirname(store), ignore_errors=True)
        proc = start_sweep(spec, store, "done", rng.randint(1, len(ids) // 2))
        lock = json.load(open(store + ".lock"))
        pids = [int(x) for x in subprocess.run(["pgrep", "-f", f"{SDM} sweep {spec}"], capture_output=True,
                                               text=True).stdout.split()]
        ranks = [lock["pid"]] + [q for q in pids if q not in (lock["pid"], proc.pid)]
        victim = rng.choice(ranks)
        os.kill(victim, signal.SIGKILL)
        proc.communicate(timeout=120)
        committed = records(store)
        expect(1 <= len(committed) < len(ids), f"trial {trial}: kill -9 of {'rank 0' if victim == lock['pid'] else 'a worker'}"
                                               f" with {len(committed)} of {len(ids)} committed")
        p = resume()
        expect(p.returncode == 0 and f"{len(committed)} already committed" in p.stderr, f"trial {trial}: resumed")
        intact(committed, f"trial {trial}")

    # SIGTERM to the launcher mid-sweep: ranks end now; resume finishes
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    proc = start_sweep(spec, store, "done", 4)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    committed = records(store)
    expect(proc.returncode != 0 and 1 <= len(committed) < len(ids), f"SIGTERM: {len(committed)} committed")
    expect(resume().returncode == 0, "resumed after SIGTERM")
    intact(committed, "SIGTERM")

    # damaged records: one truncated, one altered but readable; both are found and only their cells redone
    full = records(store)
    rec_dir = os.path.join(os.path.dirname(store), "records")
    victims = sorted(full)[:2]
    with open(os.path.join(rec_dir, victims[0] + ".h5"), "r+b") as f:
        f.truncate(os.path.getsize(f.name) // 2)
    with h5py.File(os.path.join(rec_dir, victims[1] + ".h5"), "r+") as f:
        f.attrs["f1"] = 0.5
    expect(run(["verify", store], check=False).returncode == 1, "verify reports the damaged records")
    p = resume()
    expect(p.returncode == 0 and f"{len(ids) - 2} already committed" in p.stderr, "resume redoes exactly the 2 damaged cells")
    intact({k: v for k, v in full.items() if k not in victims}, "damaged records")

    # the store deleted after the records exist: consolidate rebuilds it
    before = store_rows(store)["cells"]
    os.remove(store)
    run(["consolidate", store], np_=2)
    after = store_rows(store)["cells"]
    expect(sorted(text(after["cell_id"])) == sorted(text(before["cell_id"])) and run(["verify", store], check=False).returncode == 0,
           "a deleted store is rebuilt from the records")

    # a full disk while committing (injected write failures on every rank): failed cells, nothing lost; after
    # space returns, --rerun-failed finishes the sweep
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    env = dict(ENV, SDM_FAULT_WRITE_FAILURES="1000000")
    p = subprocess.run([MPIEXEC, "-np", "3", "--oversubscribe", "--allow-run-as-root", "-x", "SDM_FAULT_WRITE_FAILURES",
                        SDM, "sweep", spec], env=env, capture_output=True, text=True, timeout=300)
    expect(p.returncode == 3 and "No space left on device" in p.stderr,
           f"disk full: the sweep ends with failed cells and says why (exit {p.returncode})")
    committed = records(store)
    p = resume(["--rerun-failed"])
    expect(p.returncode == 0, "after space returns, --resume --rerun-failed finishes")
    intact({k: v for k, v in committed.items()
            if k in set(text(store_rows(store)["cells"]["cell_id"]))}, "disk full")
else:
    sys.exit("unknown case " + CASE)
print("PASS", CASE)
