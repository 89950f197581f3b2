#!/usr/bin/env python3
"""Validate the dataset catalog (jobs/catalog/primary.yaml, jobs/catalog/external.yaml).

Asserts the schema, id sequence, allowed values and count arithmetic; prints the per-tissue,
per-therapy and per-cancer totals next to the paper's Supp. Table 2 figures (printed, not
asserted: the paper's own figures may be inconsistent). Exits non-zero on any failure.

Usage: python3 tools/check_catalog.py [CATALOG_DIR]   (default: jobs/catalog next to this script)
"""
import os
import sys
from collections import OrderedDict

import yaml

TOP_KEYS = {"collection", "total_cells", "datasets"}
KEYS = [
    "id", "name", "geo", "tissue", "tissue_detail", "cancer_level1", "cancer_level2", "therapy",
    "regimen", "samples", "cells", "count_source", "count_group", "group_cells",
]
TISSUES = {"bone marrow", "cell line", "PBMC", "tumor", "organoid"}
THERAPIES = {"targeted", "immunotherapy", "chemotherapy"}
SOURCES = {"exact", "group_total", "derived"}
COLLECTIONS = {"primary": ("P", 36, 326751), "external": ("E", 24, 168486)}

# Supp. Table 2 (primary) and the external group totals, as given in the reference.
PAPER = {
    "primary": {
        "tissue": {"bone marrow": 73896, "cell line": 132447, "PBMC": 50533, "tumor": 69875},
        "therapy": {"targeted": 243856, "immunotherapy": 6303, "chemotherapy": 76592},
        "cancer_level1": {
            "MM": 72010, "breast": 20009, "lung": 72431, "pancreatic": 6136, "prostate": 10982,
            "neuroblastoma": 11790, "melanoma": 48125, "CLL": 25699, "ALL": 27912, "liver": 6823,
            "AML": 24834,
        },
    },
    "external": {
        "tissue": {"cell line": 3494, "organoid": 1258, "tumor": 163734},
        "therapy": {"chemotherapy": 1814, "immunotherapy": 153543, "targeted": 13129},
    },
}

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def validate(path, expected_collection):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    where = os.path.basename(path)
    if not check(isinstance(doc, dict), f"{where}: top level is not a mapping"):
        return None
    check(set(doc) == TOP_KEYS, f"{where}: top-level keys {sorted(doc)} != {sorted(TOP_KEYS)}")
    check(doc.get("collection") == expected_collection,
          f"{where}: collection {doc.get('collection')!r} != {expected_collection!r}")
    prefix, n_expected, total_expected = COLLECTIONS[expected_collection]
    check(doc.get("total_cells") == total_expected,
          f"{where}: total_cells {doc.get('total_cells')} != {total_expected}")
    ds = doc.get("datasets")
    if not check(isinstance(ds, list), f"{where}: datasets is not a list"):
        return None

    ids = [d.get("id") if isinstance(d, dict) else None for d in ds]
    check(len(ids) == len(set(ids)), f"{where}: duplicate ids")
    want = ["%s%02d" % (prefix, i) for i in range(1, n_expected + 1)]
    check(ids == want, f"{where}: ids are not {want[0]}..{want[-1]} in order (got {ids})")

    by_id = {}
    for d in ds:
        if not check(isinstance(d, dict), f"{where}: a dataset entry is not a mapping"):
            continue
        i = d.get("id")
        by_id[i] = d
        check(list(d) == KEYS or set(d) == set(KEYS),
              f"{where}:{i}: keys {sorted(d)} != schema {sorted(KEYS)}")
        if set(d) != set(KEYS):
            continue
        check(isinstance(d["name"], str) and d["name"], f"{where}:{i}: name must be a non-empty string")
        check(d["geo"] is None or (isinstance(d["geo"], str) and d["geo"].startswith("GSE")),
              f"{where}:{i}: geo {d['geo']!r} is neither null nor a GSE accession")
        check(d["tissue"] in TISSUES, f"{where}:{i}: tissue {d['tissue']!r} not in {sorted(TISSUES)}")
        check(d["therapy"] in THERAPIES, f"{where}:{i}: therapy {d['therapy']!r} not in {sorted(THERAPIES)}")
        for k in ("tissue_detail", "cancer_level2", "regimen"):
            check(d[k] is None or isinstance(d[k], str), f"{where}:{i}: {k} must be a string or null")
        check(isinstance(d["cancer_level1"], str) and d["cancer_level1"],
              f"{where}:{i}: cancer_level1 must be a non-empty string")
        s = d["samples"]
        if check(isinstance(s, dict) and set(s) == {"resistant", "sensitive"},
                 f"{where}:{i}: samples must have exactly resistant and sensitive"):
            for k, v in s.items():
                check(v is None or (is_int(v) and v >= 0), f"{where}:{i}: samples.{k} = {v!r}")
            if expected_collection == "primary":
                check(is_int(s["resistant"]) and is_int(s["sensitive"]),
                      f"{where}:{i}: primary samples must be known integers")
        check(is_int(d["cells"]) and d["cells"] > 0, f"{where}:{i}: cells {d['cells']!r} not a positive int")
        check(d["count_source"] in SOURCES, f"{where}:{i}: count_source {d['count_source']!r}")
        g = d["count_group"]
        check(isinstance(g, list) and i in g, f"{where}:{i}: count_group must be a list containing the id")
        check(is_int(d["group_cells"]), f"{where}:{i}: group_cells must be an int")
        if d["count_source"] in ("exact", "derived"):
            check(g == [i] and d["group_cells"] == d["cells"],
                  f"{where}:{i}: {d['count_source']} count must be its own group with group_cells == cells")
        else:
            check(isinstance(g, list) and len(g) >= 2, f"{where}:{i}: group_total needs >= 2 members")

    # count groups: members exist, agree on the group and its total, and sum to it
    seen = set()
    for i, d in by_id.items():
        if set(d) != set(KEYS) or not isinstance(d["count_group"], list):
            continue
        g = tuple(d["count_group"])
        if g in seen:
            continue
        seen.add(g)
        check(list(g) == sorted(g), f"{where}:{i}: count_group {list(g)} not in id order")
        members = [by_id.get(m) for m in g]
        if not check(all(m is not None for m in members), f"{where}:{i}: count_group {list(g)} has unknown ids"):
            continue
        check(all(tuple(m["count_group"]) == g for m in members),
              f"{where}: members of {list(g)} do not all list the same group")
        check(all(m["group_cells"] == d["group_cells"] for m in members),
              f"{where}: members of {list(g)} disagree on group_cells")
        check(all(m["count_source"] == d["count_source"] for m in members),
              f"{where}: members of {list(g)} disagree on count_source")
        tot = sum(m["cells"] for m in members if is_int(m["cells"]))
        check(tot == d["group_cells"], f"{where}: group {list(g)} cells sum {tot} != group_cells {d['group_cells']}")
        if len(g) > 1:
            cs = [m["cells"] for m in members]
            check(max(cs) - min(cs) <= 1 and cs == sorted(cs, reverse=True),
                  f"{where}: group {list(g)} is not an even split with the remainder first: {cs}")

    total = sum(d["cells"] for d in ds if isinstance(d, dict) and is_int(d.get("cells")))
    check(total == doc.get("total_cells"), f"{where}: cells sum {total} != total_cells {doc.get('total_cells')}")
    return doc


def print_totals(doc):
    name = doc["collection"]
    ds = doc["datasets"]
    print(f"{name}: {len(ds)} datasets, {sum(d['cells'] for d in ds):,} cells (total_cells {doc['total_cells']:,})")
    for key in ("tissue", "therapy", "cancer_level1"):
        sums = OrderedDict()
        for d in ds:
            sums[d[key]] = sums.get(d[key], 0) + d["cells"]
        paper = PAPER.get(name, {}).get(key)
        print(f"  by {key}:")
        for k in list(sums) + [k for k in (paper or {}) if k not in sums]:
            got = sums.get(k, 0)
            if paper is None:
                print(f"    {k:<16} {got:>9,}")
            else:
                ref = paper.get(k)
                ref_s = f"{ref:>9,}" if ref is not None else f"{'-':>9}"
                mark = "" if ref == got else "   <-- differs"
                print(f"    {k:<16} {got:>9,}   paper {ref_s}{mark}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    cat_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, os.pardir, "jobs", "catalog")
    docs = []
    for coll in ("primary", "external"):
        path = os.path.join(cat_dir, coll + ".yaml")
        if not check(os.path.isfile(path), f"missing {path}"):
            continue
        try:
            doc = validate(path, coll)
        except yaml.YAMLError as e:
            check(False, f"{path}: YAML error: {e}")
            doc = None
        if doc is not None:
            docs.append(doc)
    if not failures:
        for doc in docs:
            print_totals(doc)
    if failures:
        for f in failures:
            print("FAIL:", f, file=sys.stderr)
        print(f"check_catalog: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("check_catalog: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
