"""How many bits per component an item needs for its top-20 to equal float
search's, for the shop table's question (export issue: >= 99% of queries).

Reads the float embeddings `cargo test -p e2e-tests --test table_agreement`
dumps with TABLE_AGREEMENT_DUMP=DIR (trained demo model, synthetic In-shop),
and random unit vectors (100,000 x 128, queries = item + 0.7 x a random unit vector, as in
`cargo xtask bench export`), quantizes the items in several ways and prints
the share of queries whose top-20 set is unchanged. Queries stay float (the
table rescores its shortlist with the float query).

    .venv/bin/python bench/table_precision.py [DIR [DIM]]     (DIM: 64, the demo model's)
"""
import sys

import numpy as np

K = 20


def agreement(q, g, g_hat):
    exact = q @ g.T
    approx = q @ g_hat.T
    same = 0
    for e, a in zip(exact, approx):
        same += set(np.argsort(-e, kind="stable")[:K]) == set(np.argsort(-a, kind="stable")[:K])
    return same / len(q)


def symmetric(x, bits):
    m = 2 ** (bits - 1) - 1
    s = np.abs(x).max(1, keepdims=True) / m
    return np.round(x / s) * s


def minmax(x, bits):
    lo, hi = x.min(1, keepdims=True), x.max(1, keepdims=True)
    s = (hi - lo) / (2 ** bits - 1)
    return np.round((x - lo) / s) * s + lo


def principal(g, mu, refined=12):
    """Table format 3's principal-axes encoding: the centred items on the
    gallery's principal axes, 8 bits per axis over the gallery's range on it,
    16 bits on the first `refined` axes (largest variance)."""
    d = g - mu
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    z = d @ vt.T
    lo, hi = z.min(0), z.max(0)
    s = np.where(hi > lo, (hi - lo) / 255, 1.0)
    c = np.round((z - lo) / s)
    zh = lo + s * c
    zh[:, :refined] += np.clip(np.round((z - zh)[:, :refined] / s[:refined] * 256), -128, 127) \
        * s[:refined] / 256
    return zh @ vt + mu


def report(name, g, q):
    mu = g.mean(0)
    rot, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((g.shape[1],) * 2))
    exact = -np.sort(-(q @ g.T), 1)
    gap = np.median(exact[:, K - 1] - exact[:, K])
    print(f"{name}: {len(g)} items x {g.shape[1]}, {len(q)} queries, "
          f"median score gap between ranks {K} and {K + 1}: {gap:.2e}")
    rows = [
        ("8-bit symmetric, scale per item (table format 1)", lambda b: symmetric(g, b), 8),
        ("8-bit, centred on the gallery mean + min/max per item (table format 2)",
         lambda b: minmax(g - mu, b) + mu, 8),
        ("8-bit, centred on the gallery mean + random rotation + min/max per item",
         lambda b: minmax((g - mu) @ rot, b) @ rot.T + mu, 8),
        ("8-bit principal axes, gallery range per axis, 16 bits on the first 12 "
         "(table format 3, D + 16 bytes)", lambda b: principal(g, mu), 8),
        ("9-bit symmetric", lambda b: symmetric(g, b), 9),
        ("9-bit centred + rotation + min/max", lambda b: minmax((g - mu) @ rot, b) @ rot.T + mu, 9),
        ("10-bit symmetric", lambda b: symmetric(g, b), 10),
        ("12-bit symmetric", lambda b: symmetric(g, b), 12),
    ]
    for label, f, bits in rows:
        print(f"  {label:75s} {100 * agreement(q, g, f(bits)):5.1f}%")


def main():
    if len(sys.argv) > 1:
        d = sys.argv[1]
        g = np.fromfile(f"{d}/gallery.f32", dtype=np.float32).astype(np.float64)
        q = np.fromfile(f"{d}/queries.f32", dtype=np.float32).astype(np.float64)
        dim = int(sys.argv[2]) if len(sys.argv) > 2 else 64
        report("trained demo model", g.reshape(-1, dim), q.reshape(-1, dim))
    rng = np.random.default_rng(1)
    g = rng.standard_normal((100_000, 128))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    idx = rng.integers(0, len(g), 200)
    noise = rng.standard_normal((200, 128))
    q = g[idx] + 0.7 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    report("random unit vectors", g, q)


if __name__ == "__main__":
    main()
