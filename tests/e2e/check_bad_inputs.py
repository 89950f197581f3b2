"""The bad-input matrix (issue 12): every case gets one clear error naming the file / field / value and a non-zero
exit, or a failed-cell record — never a crash, a hang or a made-up metric.

usage: check_bad_inputs.py SDM MPIEXEC WORKDIR

Cases are built from one small synthetic dataset (h5py edits), a valid sweep spec and a tiny safetensors file.
Each runs with a timeout; a signal exit, "terminate called", "Segmentation fault" or a core dump fails the case.
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np

from e2e_common import ENV, command

SDM, MPIEXEC, WORK = sys.argv[1:4]
CRASH = ("terminate called", "Segmentation fault", "core dumped", "Aborted", "AddressSanitizer", "std::bad_alloc")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures, passed = [], 0


def sdm(args, np_=None, timeout=120):
    cmd = command(SDM, MPIEXEC, args, np_)
    try:
        return subprocess.run(cmd, env=ENV, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, -999, "", "TIMEOUT (hang)")


def case(name, args, needles, np_=None):
    """A command that must fail cleanly: non-zero exit (not a signal), every needle in its stderr."""
    global passed
    p = sdm(args, np_)
    err = p.stderr
    bad = []
    if p.returncode == 0:
        bad.append("exit 0")
    if p.returncode < 0 or p.returncode > 128:
        bad.append(f"exit {p.returncode} (signal, crash or hang)")
    bad += [f"crash marker {c!r}" for c in CRASH if c in err]
    bad += [f"message lacks {n!r}" for n in needles if n not in err]
    last = err.strip().splitlines()[-1] if err.strip() else "(no message)"
    if bad:
        failures.append(f"{name}: {'; '.join(bad)} | {last[:300]}")
        print(f"FAIL {name}: {'; '.join(bad)}\n     {last[:300]}")
    else:
        passed += 1
        print(f"ok   {name}: exit {p.returncode}: {last[:160]}")


# --- one good dataset, then damaged copies of it ------------------------------------------------------------
data = os.path.join(WORK, "data")
p = sdm(["synth", "--out", data, "--scale", "0.005", "--genes", "100", "--only", "P01", "P02"])
assert p.returncode == 0, p.stderr
GOOD = os.path.join(data, "P01.h5ad")


def variant(name, edit):
    path = os.path.join(WORK, name + ".h5ad")
    shutil.copy(GOOD, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def set_data(value):
    def edit(f):
        d = f["X/data"][()]
        d[0] = value
        del f["X/data"]
        f["X/data"] = d
    return edit


def embed(path):
    return ["embed", "--model", "geneformer", "--preset", "tiny", "--input", path, "--out", os.path.join(WORK, "e.h5")]


garbage = os.path.join(WORK, "garbage.h5ad")
open(garbage, "wb").write(os.urandom(4096))
case("random bytes as .h5ad", ["inspect", garbage], ["garbage.h5ad"])
half = os.path.join(WORK, "truncated.h5ad")
open(half, "wb").write(open(GOOD, "rb").read()[: os.path.getsize(GOOD) // 2])
case("truncated .h5ad", embed(half), ["truncated.h5ad"])
empty = os.path.join(WORK, "empty.h5ad")
open(empty, "wb").close()
case("empty (0-byte) file", ["inspect", empty], ["empty.h5ad"])
case("missing file", ["inspect", os.path.join(WORK, "nope.h5ad")], ["nope.h5ad"])
case("a directory instead of a file", ["inspect", WORK], [os.path.basename(WORK)])
case("HDF5 without X", embed(variant("no_x", lambda f: f.__delitem__("X"))), ["no_x.h5ad", "X"])
case("X shape disagrees with obs", embed(variant("x_shape", lambda f: f["X"].attrs.__setitem__(
    "shape", np.array([f["obs/_index"].shape[0] + 5, f["var/_index"].shape[0]])))), ["x_shape.h5ad"])


def short_indptr(f):
    v = f["X/indptr"][()][:-3]
    del f["X/indptr"]
    f["X/indptr"] = v


case("CSR indptr too short", embed(variant("indptr", short_indptr)), ["indptr.h5ad"])


def oob(f):
    v = f["X/indices"][()]
    v[0] = 10 ** 6
    del f["X/indices"]
    f["X/indices"] = v


case("CSR column index out of range", embed(variant("indices", oob)), ["indices.h5ad"])
case("NaN counts", embed(variant("nan", set_data(np.nan))), ["nan.h5ad", "NaN"])
case("Inf counts", embed(variant("inf", set_data(np.inf))), ["inf.h5ad"])
case("negative counts", embed(variant("negative", set_data(-3.0))), ["negative.h5ad"])
case("non-integer counts for a count model", embed(variant("fraction", set_data(0.5))), ["fraction.h5ad"])
case("var without its index", embed(variant("no_var_index", lambda f: f["var"].__delitem__("_index"))),
     ["no_var_index.h5ad"])


def dup_genes(f):
    names = f["var/_index"][()]
    names[1] = names[0]
    del f["var/_index"]
    f["var/_index"] = names


case("duplicate gene names", embed(variant("dup_genes", dup_genes)), ["dup_genes.h5ad", "duplicate"])


def bad_utf8(f):
    names = [bytes(n) for n in f["obs/_index"][()]]
    names[0] = b"cell\xff\xfe"
    del f["obs/_index"]
    f.create_dataset("obs/_index", data=np.array(names, dtype=object), dtype=h5py.string_dtype("utf-8"))


case("non-UTF-8 cell names", embed(variant("bad_utf8", bad_utf8)), ["bad_utf8.h5ad", "UTF-8"])


def no_cells(f):
    n_var = f["var/_index"].shape[0]
    for k in ("data", "indices"):
        dt = f["X/" + k].dtype
        del f["X/" + k]
        f.create_dataset("X/" + k, shape=(0,), dtype=dt)
    del f["X/indptr"]
    f["X/indptr"] = np.zeros(1, dtype=np.int64)
    f["X"].attrs["shape"] = np.array([0, n_var])
    for k in list(f["obs"]):
        del f["obs/" + k]
    f.create_dataset("obs/_index", shape=(0,), dtype=h5py.string_dtype("utf-8"))
    f["obs"].attrs["column-order"] = np.array([], dtype=np.float64)


case("empty dataset (no cells)", embed(variant("no_cells", no_cells)), ["no_cells.h5ad"])

def huge_claim(f):
    # a chunked dataset with no chunk written: 8 TB claimed by a header of a few bytes
    f.create_dataset("obs/huge", shape=(10 ** 12,), dtype="i8", chunks=(1024,))
    order = [bytes(c).decode() if not isinstance(c, str) else c for c in f["obs"].attrs["column-order"]]
    f["obs"].attrs["column-order"] = np.array(order + ["huge"], dtype=object)
    f["obs/huge"].attrs["encoding-type"] = "array"
    f["obs/huge"].attrs["encoding-version"] = "0.2.0"


case("a column claiming 8 TB (allocation bound)", ["inspect", variant("huge_claim", huge_claim)],
     ["huge_claim.h5ad", "obs/huge", "more than one read may allocate"])


def csc_bad_indptr(f):
    n_obs, n_var = (int(v) for v in f["X"].attrs["shape"])
    rng = np.random.default_rng(0)
    dense = rng.poisson(1.0, size=(n_obs, n_var)).astype(np.float32)
    cols = [np.nonzero(dense[:, j])[0] for j in range(n_var)]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int64)
    indptr[1] = indptr[-1] + 50  # column 0 claims entries past the end
    del f["X"]
    g = f.create_group("X")
    g.attrs["encoding-type"] = "csc_matrix"
    g.attrs["encoding-version"] = "0.1.0"
    g.attrs["shape"] = np.array([n_obs, n_var])
    g["indptr"] = indptr
    g["indices"] = np.concatenate(cols).astype(np.int32)
    g["data"] = np.concatenate([dense[c, j] for j, c in enumerate(cols)])


case("CSC indptr not monotone", embed(variant("csc_indptr", csc_bad_indptr)), ["csc_indptr.h5ad", "indptr"])


def tenx_bad_indptr(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"] = np.ones(4, dtype=np.int32)
        g["indices"] = np.arange(4, dtype=np.int64)
        g["indptr"] = np.array([0, 100, 4], dtype=np.int64)  # cell 0 claims 100 entries of 4
        g["shape"] = np.array([5, 2], dtype=np.int32)
        g["barcodes"] = np.array([b"AAAC-1", b"AAAG-1"])
        fe = g.create_group("features")
        fe["id"] = np.array([b"E%d" % i for i in range(5)])
        fe["name"] = np.array([b"G%d" % i for i in range(5)])
        fe["feature_type"] = np.array([b"Gene Expression"] * 5)
        fe["genome"] = np.array([b"GRCh38"] * 5)
    return path


case("10x indptr past the end", ["embed", "--model", "geneformer", "--preset", "tiny", "--input",
                                 tenx_bad_indptr(os.path.join(WORK, "tenx_indptr.h5")), "--out",
                                 os.path.join(WORK, "e.h5")], ["tenx_indptr.h5", "indptr"])



# --- `sdm inspect` validates what it describes (issue 22): the files the reading commands refuse -------------
def inspect_case(name, path, needle):
    """`sdm inspect --json` of a damaged file: still a description, with `problems` naming the fault, exit 1."""
    global passed
    p = sdm(["inspect", "--json", path])
    bad = []
    try:
        problems = json.loads(p.stdout)["problems"]
    except (ValueError, KeyError):
        problems = None
        bad.append("no JSON with a problems list on stdout")
    if p.returncode != 1:
        bad.append(f"exit {p.returncode} (want 1)")
    if problems is not None and not any(needle in q for q in problems):
        bad.append(f"problems {problems} lack {needle!r}")
    if needle not in p.stderr or os.path.basename(path) not in p.stderr:
        bad.append("stderr does not name the file and the fault")
    if bad:
        failures.append(f"inspect: {name}: {'; '.join(bad)}")
        print(f"FAIL inspect: {name}: {'; '.join(bad)}")
    else:
        passed += 1
        print(f"ok   inspect: {name}: {problems}")


def no_indptr(f):
    del f["X/indptr"]


def claims_terabytes(f):
    # X/data and X/indices as chunked datasets with no chunk written: 10^12 nonzeros in a header of a few bytes
    n = 10 ** 12
    for k, dt in (("data", "f4"), ("indices", "i4")):
        del f["X/" + k]
        f.create_dataset("X/" + k, shape=(n,), dtype=dt, chunks=(1024,))
    ip = f["X/indptr"][()]
    ip[-1] = n
    del f["X/indptr"]
    f["X/indptr"] = ip


inspect_case("X without indptr", variant("inspect_no_indptr", no_indptr), "X/indptr is missing")
inspect_case("X shape not obs x var", variant("inspect_shape", lambda f: f["X"].attrs.__setitem__(
    "shape", np.array([f["obs/_index"].shape[0] + 5, f["var/_index"].shape[0]]))), "does not match obs x var")
inspect_case("X claiming terabytes", variant("inspect_huge", claims_terabytes), "more than one read may allocate")
inspect_case("X indptr too short", variant("inspect_indptr", short_indptr), "X/indptr has")
inspect_case("10x indptr past the end", tenx_bad_indptr(os.path.join(WORK, "inspect_tenx.h5")), "indptr")
p = sdm(["inspect", "--json", GOOD])
if p.returncode == 0 and json.loads(p.stdout)["problems"] == []:
    passed += 1
    print("ok   inspect: a sound file: exit 0, problems []")
else:
    failures.append(f"inspect of a sound file: exit {p.returncode}: {p.stderr[-200:]}")

vocab = os.path.join(WORK, "mouse_vocab.tsv")
open(vocab, "w").write("<pad>\t0\n<mask>\t1\n<cls>\t2\n<eos>\t3\n" + "".join(f"Zfp{i}\t{4 + i}\n" for i in range(20)))
case("genes with 0 % overlap with the model's vocabulary", embed(GOOD) + ["--vocab", vocab], ["P01.h5ad", "0 % overlap"])

# --- sweep specs ---------------------------------------------------------------------------------------------
BASE = f"""name: bad
store: {WORK}/run/store.h5
data:
  root: {data}
  catalog: {data}/catalog.yaml
  datasets: [P01, P02]
  label: {{column: condition, sensitive: [sensitive], resistant: [resistant]}}
models: [{{name: logreg}}]
protocols: [{{name: pooled, folds: 2, split: cell}}]
"""


def spec_case(name, text, needles):
    path = os.path.join(WORK, name.replace(" ", "_") + ".yaml")
    open(path, "wb" if isinstance(text, bytes) else "w").write(text)
    case(name, ["sweep", path, "--dry-run"], [os.path.basename(path)] + needles)


spec_case("unknown top-level YAML key", BASE + "colour: blue\n", ["colour"])
spec_case("unknown nested key", BASE + "train: {epoch: 3}\n", ["epoch"])
spec_case("wrong YAML type", BASE.replace("folds: 2", "folds: two"), ["folds"])
spec_case("non-UTF-8 byte in a spec (Latin-1 editor)", BASE.encode() + b"# caf\xe9 au lait\n",
          ["not valid UTF-8", "0xE9"])
groups = os.path.join(WORK, "two_rank_groups.yaml")
open(groups, "w").write(BASE + "resources: {ranks_per_task: 2}\n")
case("mpirun with too few ranks for the spec's rank groups", ["sweep", groups], ["two_rank_groups.yaml", "ranks_per_task",
     "this run has 1"], np_=1)
spec_case("YAML syntax error", BASE + "models: [{name: logreg\n", [])
spec_case("unknown model", BASE.replace("name: logreg", "name: scgtp"), ["scgtp"])
spec_case("unknown strategy", BASE + "strategies: [freeze, unfreeze]\n", ["unfreeze"])
spec_case("folds below 2", BASE.replace("folds: 2", "folds: 1"), ["folds"])
spec_case("dataset not in the catalog", BASE.replace("[P01, P02]", "[P01, P99]"), ["P99"])
spec_case("missing catalog file", BASE.replace(f"{data}/catalog.yaml", f"{data}/nope.yaml"), ["nope.yaml"])
escape = BASE.replace(f"  catalog: {data}/catalog.yaml\n", "").replace("[P01, P02]", "[P01.h5ad, ../../etc/passwd]")
spec_case("dataset path escaping the data root", escape, ["../../etc/passwd"])
evil = os.path.join(WORK, "evil_catalog.yaml")
cat = open(os.path.join(data, "catalog.yaml")).read()
assert "file: P02.h5ad" in cat
open(evil, "w").write(cat.replace("file: P02.h5ad", "file: ../../../etc/passwd"))
spec_case("catalog file escaping the data root", BASE.replace(f"{data}/catalog.yaml", evil), ["evil_catalog.yaml", "data root"])

# --- checkpoints -----------------------------------------------------------------------------------------------


def safetensors(path, header, payload=b""):
    raw = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(raw)) + raw + payload)
    return path


def weights_case(name, path, needles):
    case(name, ["embed", "--model", "scgpt", "--preset", "tiny", "--input", GOOD, "--weights", path,
                "--out", os.path.join(WORK, "w.h5")], [os.path.basename(path)] + needles)


huge = os.path.join(WORK, "huge_header.safetensors")
open(huge, "wb").write(struct.pack("<Q", 1 << 60) + b"{}")
weights_case("safetensors header size lies", huge, [])
weights_case("safetensors offsets out of range",
             safetensors(os.path.join(WORK, "offsets.safetensors"),
                         {"encoder.embedding.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 4096]}},
                         b"\0" * 16), ["encoder.embedding.weight"])
weights_case("safetensors unknown dtype",
             safetensors(os.path.join(WORK, "dtype.safetensors"),
                         {"encoder.embedding.weight": {"dtype": "F31", "shape": [2, 2], "data_offsets": [0, 16]}},
                         b"\0" * 16), ["F31"])
weights_case("checkpoint with a wrong shape",
             safetensors(os.path.join(WORK, "shape.safetensors"),
                         {"encoder.embedding.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}},
                         b"\0" * 16), ["encoder.embedding.weight"])
trunc = os.path.join(WORK, "truncated.safetensors")
safetensors(trunc, {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 16)
open(trunc, "r+b").truncate(os.path.getsize(trunc) - 8)
weights_case("truncated safetensors", trunc, [])

# --- data that reaches a sweep: failed-cell records (or a clear refusal), never a made-up metric ---------------


def sweep_case(name, dataset_edit, needle, label_column="condition"):
    """The sweep over P01 (damaged) must end with its cells failed and the error naming the problem."""
    global passed
    root = os.path.join(WORK, "sweep_" + name.replace(" ", "_"))
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    shutil.copy(os.path.join(data, "catalog.yaml"), root)
    for d in ("P01", "P02"):
        shutil.copy(os.path.join(data, d + ".h5ad"), root)
    with h5py.File(os.path.join(root, "P01.h5ad"), "r+") as f:
        dataset_edit(f)
    spec = os.path.join(root, "spec.yaml")
    open(spec, "w").write(BASE.replace(f"{WORK}/run", f"{root}/run").replace(data, root)
                          .replace("column: condition", f"column: {label_column}")
                          .replace("datasets: [P01, P02]", "datasets: [P01]"))
    p = sdm(["sweep", spec], np_=2, timeout=180)
    store = os.path.join(root, "run", "store.h5")
    errors, status, f1 = [], [], []
    if os.path.exists(store):
        with h5py.File(store, "r") as f:
            status = [s.decode() for s in f["cells/status"][()]]
            errors = [s.decode() for s in f["cells/error"][()]]
            f1 = list(f["cells/f1"][()])
    crashed = p.returncode < 0 or p.returncode > 128 or any(c in p.stderr for c in CRASH)
    clean_refusal = p.returncode not in (0,) and needle in p.stderr and not status
    failed_cells = status and all(s == "failed" for s in status) and all(needle in e for e in errors) \
        and all(np.isnan(v) for v in f1)
    if not crashed and (failed_cells or clean_refusal):
        passed += 1
        print(f"ok   {name}: {'failed cells: ' + errors[0][:140] if failed_cells else p.stderr.strip().splitlines()[-1][:140]}")
    else:
        failures.append(f"{name}: exit {p.returncode}, status {status}, errors {[e[:80] for e in errors]}")
        print(f"FAIL {name}: exit {p.returncode}, status {status}, errors {[e[:120] for e in errors]}\n{p.stderr[-600:]}")


sweep_case("missing label column", lambda f: None, "response", label_column="response")


def one_class(f):
    codes = f["obs/condition/codes"][()]
    cats = [c.decode() if isinstance(c, bytes) else c for c in f["obs/condition/categories"][()]]
    codes[:] = cats.index("sensitive")
    del f["obs/condition/codes"]
    f["obs/condition/codes"] = codes


sweep_case("labels all one class", one_class, "one class")
sweep_case("NaN counts reaching a sweep", set_data(np.nan), "NaN")

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
