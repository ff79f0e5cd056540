"""onnxruntime peer of `cargo xtask bench export`: per-inference latency of
an ONNX file, batch 1, a given number of threads.

Usage: python bench/export_ort_bench.py MODEL.onnx THREADS RUNS [INPUT.f32 OUTPUTS.json]
Prints one JSON object: {"median_ms", "mean_ms", "min_ms", "runs", "threads", "ort"}.
With INPUT.f32 (raw little-endian f32, as `export-bench model --save` writes
it) runs on that input and writes every output to OUTPUTS.json (name -> flat
list), for the cross-build correctness check.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    path, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    size = s.get_inputs()[0].shape[2]
    x = np.random.RandomState(0).randn(1, 3, size, size).astype(np.float32)
    if len(sys.argv) > 5:
        x = np.fromfile(sys.argv[4], dtype="<f4").reshape(1, 3, size, size)
        names = [o.name for o in s.get_outputs()]
        outs = s.run(None, {"image": x})
        with open(sys.argv[5], "w") as f:
            json.dump({n: o.astype(np.float64).ravel().tolist() for n, o in zip(names, outs)}, f)
    for _ in range(3):
        s.run(None, {"image": x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, {"image": x})
        ts.append((time.perf_counter() - t) * 1000.0)
    ts.sort()
    print(json.dumps({
        "median_ms": ts[len(ts) // 2],
        "mean_ms": sum(ts) / len(ts),
        "min_ms": ts[0],
        "runs": runs,
        "threads": threads,
        "ort": ort.__version__,
    }))


if __name__ == "__main__":
    main()
