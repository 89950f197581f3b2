#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/), kept in git so runs are reproducible.

  /usr/bin/python3 tests/fuzz/make_seeds.py

Seeds are small on purpose (libFuzzer mutates faster and its -max_len follows the largest seed): a few cells and
genes each, written by anndata / h5py the way real files are (CSR, CSC, dense X, categoricals, raw, layers, an
old-style compound obs), safetensors files covering every dtype and the __metadata__ entry, and sweep specs.
tools/fuzz.sh adds ../shared/fixtures/h5ad (real files from other tools) to the dataset corpus when present.
"""
import json
import os
import struct
import sys

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def out(target, name):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def tiny_anndata(n_obs=4, n_vars=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(1.0, size=(n_obs, n_vars)).astype(np.float32)
    obs = pd.DataFrame({"condition": pd.Categorical(["sensitive", "resistant"] * (n_obs // 2)),
                        "sample": [f"s{i % 2}" for i in range(n_obs)],
                        "n_counts": X.sum(1)}, index=[f"c{i}" for i in range(n_obs)])
    var = pd.DataFrame({"gene_ids": [f"ENSG{i:011d}" for i in range(n_vars)]},
                       index=[f"G{i}" for i in range(n_vars)])
    return X, obs, var


def dataset_seeds():
    X, obs, var = tiny_anndata()
    ad.AnnData(sp.csr_matrix(X), obs=obs, var=var).write_h5ad(out("dataset_file", "csr.h5ad"))
    ad.AnnData(sp.csc_matrix(X), obs=obs, var=var).write_h5ad(out("dataset_file", "csc.h5ad"))
    ad.AnnData(X, obs=obs, var=var).write_h5ad(out("dataset_file", "dense.h5ad"))
    a = ad.AnnData(sp.csr_matrix(X), obs=obs, var=var, layers={"counts": sp.csr_matrix(X)})
    a.raw = a
    a.write_h5ad(out("dataset_file", "raw_layers.h5ad"))
    # the pre-0.7 layout: obs/var as compound datasets, categories in uns
    with h5py.File(out("dataset_file", "compound_obs.h5ad"), "w") as f:
        f.create_dataset("X", data=X)
        obs_rec = np.array([(b"c%d" % i, i % 2) for i in range(X.shape[0])],
                           dtype=[("index", "S8"), ("condition", "i1")])
        f.create_dataset("obs", data=obs_rec)
        var_rec = np.array([(b"G%d" % i,) for i in range(X.shape[1])], dtype=[("index", "S8")])
        f.create_dataset("var", data=var_rec)
        f.create_dataset("uns/condition_categories", data=np.array([b"resistant", b"sensitive"]))
    # a 10x v3 layout
    m = sp.csc_matrix(X.T.astype(np.int32))
    with h5py.File(out("dataset_file", "tenx_v3.h5"), "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("data", data=m.data)
        g.create_dataset("indices", data=m.indices.astype(np.int64))
        g.create_dataset("indptr", data=m.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        g.create_dataset("barcodes", data=np.array([b"AAAC-1", b"AAAG-1", b"AAAT-1", b"AACA-1"]))
        fe = g.create_group("features")
        fe.create_dataset("id", data=np.array([b"E%d" % i for i in range(X.shape[1])]))
        fe.create_dataset("name", data=np.array([b"G%d" % i for i in range(X.shape[1])]))
        fe.create_dataset("feature_type", data=np.array([b"Gene Expression"] * X.shape[1]))
        fe.create_dataset("genome", data=np.array([b"GRCh38"] * X.shape[1]))
    # Loom 3.0: genes x cells
    with h5py.File(out("dataset_file", "tiny.loom"), "w") as f:
        f.create_dataset("matrix", data=X.T)
        f.create_dataset("row_attrs/Gene", data=np.array([b"G%d" % i for i in range(X.shape[1])]))
        f.create_dataset("col_attrs/CellID", data=np.array([b"c%d" % i for i in range(X.shape[0])]))
        f.create_dataset("col_attrs/condition", data=np.array([b"sensitive", b"resistant"] * 2))
        f.create_group("layers")
        f.attrs["LOOM_SPEC_VERSION"] = "3.0.0"


def safetensors_bytes(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def safetensors_seeds():
    f32 = np.arange(6, dtype=np.float32).tobytes()
    seeds = {
        "f32.safetensors": [("w", "F32", [2, 3], f32)],
        "mixed.safetensors": [("a", "F16", [2], np.ones(2, np.float16).tobytes()),
                              ("b", "BF16", [3], b"\x80\x3f" * 3),
                              ("c", "I64", [1, 1], np.array([7], np.int64).tobytes()),
                              ("d", "U8", [4], b"\x01\x02\x03\x04"),
                              ("e", "BOOL", [2], b"\x00\x01"),
                              ("f", "F64", [], np.array([2.5]).tobytes()),
                              ("g", "I32", [0, 3], b""),
                              ("h", "I16", [1], b"\x05\x00"),
                              ("i", "I8", [1], b"\xff")],
        "layers.safetensors": [("encoder.layers.0.self_attn.out_proj.weight", "F32", [2, 2], f32[:16]),
                               ("encoder.layers.0.self_attn.out_proj.bias", "F32", [2], f32[:8])],
    }
    for name, tensors in seeds.items():
        meta = {"format": "pt"} if name == "f32.safetensors" else None
        with open(out("safetensors", name), "wb") as f:
            f.write(safetensors_bytes(tensors, meta))
    with open(out("safetensors", "empty.safetensors"), "wb") as f:
        f.write(safetensors_bytes([]))


SPECS = {
    "minimal.yaml": """name: s
store: runs/s/store.h5
data:
  root: data
  datasets: [P01]
  label: {column: condition, sensitive: [sensitive], resistant: [resistant]}
models:
  - {name: logreg}
protocols:
  - {name: pooled, folds: 2, split: cell}
""",
    "full.yaml": """name: full
store: runs/full/store.h5
data:
  root: data
  catalog: data/catalog.yaml
  datasets: [all]
  label: {column: condition, sensitive: [sensitive, S], resistant: [resistant]}
  group_column: sample
  matrix: X
models:
  - {name: scgpt, preset: tiny, weights: ckpt/scgpt, config: {nlayers: 2}}
  - {name: mlp}
strategies: [freeze, lora, zero-shot, few-shot]
strategy_options:
  lora: {r: 8, alpha: 16, dropout: 0.05, targets: [out_proj]}
  few-shot: {k: 5}
protocols:
  - {name: pooled, folds: 5, split: sample}
  - {name: cross-data, select: {therapy: chemotherapy, tissue: [blood]}}
seeds: [0, 1, 2]
train: {epochs: 2, batch_size: 32, lr: 1.0e-4, weight_decay: 0.01, warmup: 0.1, clip_norm: 1.0, patience: 2,
        validation: 0.1, schedule: cosine}
head: {epochs: 10, batch_size: 128, lr: 1.0e-3}
resources: {ranks_per_task: 2, max_attempts: 3, time_per_cell_s: 600}
preprocess: {target_sum: 10000, hvg: 2000, pca: 50}
""",
}


def spec_seeds():
    for name, text in SPECS.items():
        with open(out("sweep_spec", name), "w") as f:
            f.write(text)
    with open(os.path.join(HERE, "..", "..", "jobs", "sweeps", "demo.yaml")) as src, \
         open(out("sweep_spec", "demo.yaml"), "w") as dst:
        dst.write(src.read())


def chunk_index_seeds():
    """Chunked 1-D datasets as h5py writes them (the layout the walk reads), each prefixed with its query: object
    header address, elements (u64), elements per chunk, element size (u32)."""
    cases = {"one_level": (np.arange(300, dtype=np.float32), 10, {}),
             "deep": (np.arange(400, dtype=np.int32), 1, {}),
             "continued": (np.arange(200, dtype=np.float32), 50, {f"a{i}": np.full(60, 1.5) for i in range(6)}),
             "partly_written": (None, 25, {})}
    for name, (values, chunk, attrs) in cases.items():
        path = out("chunk_index", name + ".h5")
        with h5py.File(path, "w", libver="earliest") as f:
            if values is None:
                d = f.create_dataset("x", shape=(200,), dtype=np.float32, chunks=(chunk,))
                d[:60] = np.arange(60, dtype=np.float32)
                n, size = 200, 4
            else:
                d = f.create_dataset("x", data=values, chunks=(chunk,))
                n, size = len(values), values.dtype.itemsize
            for k, v in attrs.items():
                d.attrs[k] = v
            header = h5py.h5o.get_info(d.id).addr
        with open(path, "rb") as src:
            body = src.read()
        os.remove(path)
        with open(out("chunk_index", name + ".bin"), "wb") as dst:
            dst.write(struct.pack("<QQII", header, n, chunk, size) + body)


def main():
    dataset_seeds()
    safetensors_seeds()
    spec_seeds()
    chunk_index_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    sys.exit(main())
