#!/usr/bin/env python3
"""Independent reference for `deepfashion score` (numpy only).

Usage: score_reference.py ROOT BENCHMARK SPLIT PREDICTIONS.jsonl
Prints the same JSON metrics as `deepfashion score --json` (the metric keys
only). Written from DESIGN.md section 7 and the released file formats,
without looking at the Rust code paths: annotation parsing, joins and
metrics are re-implemented here.

Conventions (the documented ones): stable descending ranking (ties by
index), cosine similarity, NE over visible landmarks normalized by the bbox
width/height, detection = distance strictly below the threshold. Scores are
rounded to float32 first, as the Rust reader stores them.
"""
import json
import os
import sys

import numpy as np

FOLDERS = {
    "category-attribute": "Category and Attribute Prediction Benchmark",
    "fine": "Category and Attribute Prediction Benchmark",
    "inshop": "In-shop Clothes Retrieval Benchmark",
    "consumer2shop": "Consumer-to-shop Clothes Retrieval Benchmark",
    "landmarks": "Fashion Landmark Detection Benchmark",
}
COARSE_GROUPS = ["texture", "fabric", "shape", "part", "style"]
FINE_GROUPS = ["texture", "sleeve", "length", "neckline", "fabric", "fit"]
SLOTS = {1: [0, 1, 2, 3, 6, 7], 2: [4, 5, 6, 7], 3: list(range(8))}


def rows(path, header=True):
    with open(path) as f:
        lines = [l.split() for l in f.read().splitlines() if l.strip()]
    return lines[2:] if header else lines


def plain(path):
    with open(path) as f:
        return [l.split() for l in f.read().splitlines() if l.strip()]


def f32(x):
    return float(np.float32(float(x)))


def landmarks_of(tok):
    ct = int(tok[1])
    k = len(SLOTS[ct])
    rest = tok[2:]
    if len(rest) in (3 * k + 1, 25):
        rest = rest[1:]
    lm = [None] * 8  # (state, x, y); state 0 visible 1 occluded 2 truncated
    for i, s in enumerate(SLOTS[ct]):
        lm[s] = (int(rest[3 * i]), f32(rest[3 * i + 1]), f32(rest[3 * i + 2]))
    return lm


def load(root, bench):
    folder = os.path.join(root, FOLDERS[bench])
    if not os.path.isdir(folder):
        folder = root
    img = {}  # name -> dict
    cats, groups = [], []
    if bench in ("category-attribute", "landmarks"):
        anno = os.path.join(folder, "Anno")
        if not os.path.isdir(anno):
            anno = os.path.join(folder, "Anno_coarse")
        for t in rows(os.path.join(folder, "Eval", "list_eval_partition.txt")):
            img[t[0]] = {"split": t[1]}
        if bench == "category-attribute":
            cats = [t[-1] for t in rows(os.path.join(anno, "list_category_cloth.txt"))]
            groups = [COARSE_GROUPS[int(t[-1]) - 1] for t in rows(os.path.join(anno, "list_attr_cloth.txt"))]
            for t in rows(os.path.join(anno, "list_category_img.txt")):
                img[t[0]]["cat"] = int(t[1]) - 1
            for t in rows(os.path.join(anno, "list_attr_img.txt")):
                img[t[0]]["attr"] = np.array([int(v) for v in t[1:]])
        for t in rows(os.path.join(anno, "list_bbox.txt")):
            img[t[0]]["bbox"] = [f32(v) for v in t[1:5]]
        for t in rows(os.path.join(anno, "list_landmarks.txt")):
            img[t[0]]["lm"] = landmarks_of(t)
    elif bench == "fine":
        anno = os.path.join(folder, "Anno_fine")
        cats = [t[-1] for t in rows(os.path.join(anno, "list_category_cloth.txt"))]
        groups = [FINE_GROUPS[int(t[-1]) - 1] for t in rows(os.path.join(anno, "list_attr_cloth.txt"))]
        for split in ("train", "val", "test"):
            p = os.path.join(anno, split + ".txt")
            if not os.path.exists(p):
                continue
            names = [t[0] for t in plain(p)]
            attr = plain(os.path.join(anno, split + "_attr.txt"))
            cate = plain(os.path.join(anno, split + "_cate.txt"))
            bbox = plain(os.path.join(anno, split + "_bbox.txt"))
            lms = plain(os.path.join(anno, split + "_landmarks.txt"))
            for i, n in enumerate(names):
                lm = []
                for s in range(8):
                    x, y = f32(lms[i][2 * s]), f32(lms[i][2 * s + 1])
                    lm.append(None if (x == 0 and y == 0) else (0, x, y))
                img[n] = {
                    "split": split,
                    "attr": np.array([int(v) for v in attr[i]]),
                    "cat": int(cate[i][0]) - 1,
                    "bbox": [f32(v) for v in bbox[i]],
                    "lm": lm,
                }
    else:
        anno = os.path.join(folder, "Anno")
        suffix = "inshop" if bench == "inshop" else "consumer2shop"
        for t in rows(os.path.join(folder, "Eval", "list_eval_partition.txt")):
            if bench == "inshop":
                img[t[0]] = {"split": t[2], "item": t[1]}
            else:
                img.setdefault(t[0], {"split": t[3], "item": t[2], "src": "consumer"})
                img.setdefault(t[1], {"split": t[3], "item": t[2], "src": "shop"})
        for t in rows(os.path.join(anno, "list_bbox_%s.txt" % suffix)):
            img[t[0]]["bbox"] = [f32(v) for v in t[3:7]]
        for t in rows(os.path.join(anno, "list_landmarks_%s.txt" % suffix)):
            img[t[0]]["lm"] = landmarks_of(t)
    return img, cats, groups


def stable_order(s):
    # descending, ties by index: argsort of -s with a stable sort
    return np.argsort(-s, kind="stable")


def main():
    root, bench, split, pred_path = sys.argv[1:5]
    img, cats, groups = load(root, bench)
    preds = {}
    with open(pred_path) as f:
        for line in f:
            if line.strip():
                p = json.loads(line)
                preds[p["image"]] = p
    ev = "query" if (bench == "inshop" and split == "test") else split
    names = [n for n in img if img[n]["split"] == ev]
    out = {}
    anyp = lambda k: any(k in p for p in preds.values())
    arr = lambda v: np.array(v, dtype=np.float32).astype(np.float64)

    if cats and anyp("category"):
        sel = [n for n in names if "cat" in img[n]]
        hits = {1: 0, 3: 0, 5: 0}
        for n in sel:
            order = stable_order(arr(preds[n]["category"]))
            r = int(np.where(order == img[n]["cat"])[0][0])
            for k in hits:
                hits[k] += r < k
        out["category"] = {"top%d" % k: hits[k] / len(sel) for k in hits}

    if groups and anyp("attributes"):
        sel = [n for n in names if "attr" in img[n]]
        gnames = list(dict.fromkeys(groups))
        garr = np.array(groups)
        tot = {3: 0, 5: 0}
        pos = 0
        gh = {g: {3: 0, 5: 0} for g in gnames}
        gp = {g: 0 for g in gnames}
        for n in sel:
            s = arr(preds[n]["attributes"])
            t = img[n]["attr"] == 1
            pos += int(t.sum())
            order = stable_order(s)
            for k in tot:
                tot[k] += int(t[order[:k]].sum())
            for g in gnames:
                idx = np.where(garr == g)[0]
                gp[g] += int(t[idx].sum())
                o = idx[stable_order(s[idx])]
                for k in (3, 5):
                    gh[g][k] += int(t[o[:k]].sum())
        if pos:
            out["attributes"] = {
                "top3": tot[3] / pos,
                "top5": tot[5] / pos,
                "by_group": {g: {"top3": gh[g][3] / gp[g], "top5": gh[g][5] / gp[g]} for g in gnames if gp[g]},
            }

    if anyp("embedding"):
        q = g = None
        if bench == "inshop" and ev == "query":
            q = names
            g = [n for n in img if img[n]["split"] == "gallery"]
        elif bench == "consumer2shop":
            q = [n for n in names if img[n]["src"] == "consumer"]
            g = [n for n in img if img[n]["src"] == "shop" and img[n]["split"] in ("val", "test")]
        if q and g:
            def unit(v):
                v = arr(v)
                nrm = np.sqrt((v * v).sum())
                return v / nrm if nrm > 0 else v * 0
            G = np.stack([unit(preds[n]["embedding"]) for n in g])
            gi = np.array([img[n]["item"] for n in g])
            ks = [1, 5, 10, 20, 30, 40, 50]
            hits = dict.fromkeys(ks, 0)
            for n in q:
                sims = G @ unit(preds[n]["embedding"])
                order = stable_order(sims)
                match = np.where(gi[order] == img[n]["item"])[0]
                if len(match):
                    for k in ks:
                        hits[k] += int(match[0] < k)
            out["retrieval"] = {"top%d" % k: hits[k] / len(q) for k in ks}

    if anyp("landmarks"):
        sel = [n for n in names if "lm" in img[n] and "bbox" in img[n]]
        d_by = [[] for _ in range(8)]
        for n in sel:
            x1, y1, x2, y2 = img[n]["bbox"]
            w, h = x2 - x1, y2 - y1
            if not (w > 0 and h > 0):
                continue
            p = arr(preds[n]["landmarks"])
            for s, l in enumerate(img[n]["lm"]):
                if l is None or l[0] != 0:
                    continue
                d_by[s].append(np.hypot((p[s][0] - l[1]) / w, (p[s][1] - l[2]) / h))
        alld = np.concatenate([np.array(d) for d in d_by if d]) if any(d_by) else np.array([])
        if len(alld):
            means = [float(np.mean(d)) if d else None for d in d_by]
            out["landmarks"] = {
                "ne": float(np.mean([m for m in means if m is not None])),
                "ne_by_slot": means,
                "detection_rate": {str(t): float((alld < t).mean()) for t in (0.05, 0.1, 0.15, 0.2)},
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
