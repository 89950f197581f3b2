#!/usr/bin/python3
"""One timed anndata.read_h5ad in a fresh process: prints 'seconds nnz peak_rss_kib'."""
import resource
import sys
import time

import anndata

t = time.perf_counter()
a = anndata.read_h5ad(sys.argv[1])
dt = time.perf_counter() - t
print(f"{dt:.6f} {a.X.nnz} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
