"""FAISS peer of the shop-table search benchmark (`cargo xtask bench export`).

Usage: python bench/export_faiss_bench.py VECTORS.f32 QUERIES.f32 DIM K
VECTORS.f32 / QUERIES.f32: raw little-endian float32, row-major.
Times exact top-K search one query at a time on one thread with
IndexFlatIP (float) and IndexScalarQuantizer (8-bit, inner product) and
prints one JSON object with median milliseconds per query.
"""
import json
import sys
import time

import numpy as np
import faiss


def bench(index, q, k):
    for i in range(min(5, len(q))):
        index.search(q[i : i + 1], k)
    ts = []
    for i in range(len(q)):
        t = time.perf_counter()
        index.search(q[i : i + 1], k)
        ts.append((time.perf_counter() - t) * 1000.0)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    vp, qp, dim, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    faiss.omp_set_num_threads(1)
    x = np.fromfile(vp, dtype="<f4").reshape(-1, dim)
    q = np.fromfile(qp, dtype="<f4").reshape(-1, dim)
    flat = faiss.IndexFlatIP(dim)
    flat.add(x)
    sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(x)
    sq.add(x)
    print(json.dumps({
        "flat_ip_ms": bench(flat, q, k),
        "sq8_ms": bench(sq, q, k),
        "items": int(x.shape[0]),
        "dim": dim,
        "faiss": faiss.__version__,
    }))


if __name__ == "__main__":
    main()
