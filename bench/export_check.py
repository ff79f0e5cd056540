"""Check an exported FashionNet ONNX file with the reference tools.

Usage: python bench/export_check.py MODEL.onnx INPUTS.npy [OUT.json]

- runs `onnx.checker.check_model(model, full_check=True)`;
- lists the op types and domains (int8 graphs must use no vendor ops);
- runs the model in onnxruntime on INPUTS ([N,3,S,S] float32) and prints
  (or writes to OUT.json) the five outputs as lists, so the Rust side can
  compare them with tract.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

OUTPUTS = ["landmarks", "visibility", "category", "attributes", "embedding"]


def main():
    path, inputs = sys.argv[1], sys.argv[2]
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in m.graph.node})
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = np.load(inputs).astype(np.float32)
    outs = []
    for i in range(x.shape[0]):  # one by one: batch 1 like the runtime
        outs.append(sess.run(OUTPUTS, {"image": x[i : i + 1]}))
    result = {
        "checker": "ok",
        "opset": [(o.domain or "ai.onnx", o.version) for o in m.opset_import],
        "ops": ops,
        "metadata": {p.key: p.value[:80] for p in m.metadata_props},
        "outputs": {
            name: np.concatenate([o[k] for o in outs]).astype(np.float64).ravel().tolist()
            for k, name in enumerate(OUTPUTS)
        },
        "ort_version": ort.__version__,
    }
    text = json.dumps(result)
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
