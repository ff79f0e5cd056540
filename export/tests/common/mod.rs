//! Shared test helpers: a tiny checkpoint, and an independent, naive Rust
//! forward pass of FashionNet straight from the contract's text (batch norm
//! applied as batch norm, landmark pooling by direct bilinear sampling), to
//! check the exported graph against.

#![allow(dead_code)]

use deepfashion::contract::{ModelConfig, BATCH_NORM_EPS, NUM_LANDMARKS};
use export::checkpoint::{self, Checkpoint};
use std::path::{Path, PathBuf};

/// Write a random tiny checkpoint into `dir` and load it back.
pub fn tiny_checkpoint(dir: &Path, seed: u64) -> (PathBuf, Checkpoint) {
    let cfg = ModelConfig::tiny();
    let path = dir.join(format!("tiny-{seed}.safetensors"));
    checkpoint::write_random(&cfg, &checkpoint::placeholder_labels(&cfg), seed, &path).unwrap();
    let ck = checkpoint::load(&path).unwrap();
    (path, ck)
}

/// The venv python, when it has `modules` (a missing module fails the test
/// under `FASHION_REQUIRE_SERVICES=1`, as in CI).
pub fn venv_python(modules: &str) -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let ok = std::process::Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(py)
    } else {
        let msg = format!(
            "{} lacks `{modules}` (run `cargo xtask setup`)",
            py.display()
        );
        if std::env::var("FASHION_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{msg}; FASHION_REQUIRE_SERVICES=1 requires the python cross-check");
        }
        eprintln!("NOTICE: {msg}; skipping the python cross-check");
        None
    }
}

/// Write `[n,3,s,s]` f32 inputs as a .npy file.
pub fn write_npy(path: &Path, inputs: &[Vec<f32>], s: usize) {
    let shape = format!("({}, 3, {s}, {s})", inputs.len());
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    for x in inputs {
        for v in x {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, b).unwrap();
}

struct Fm {
    c: usize,
    h: usize,
    w: usize,
    d: Vec<f32>,
}

fn conv_bn_relu(ck: &Checkpoint, name: &str, x: &Fm, cout: usize) -> Fm {
    let wt = ck.get(&format!("{name}.weight")).unwrap();
    let b = ck.get(&format!("{name}.bias")).unwrap();
    let (h, w, cin) = (x.h, x.w, x.c);
    let mut out = vec![0f32; cout * h * w];
    for o in 0..cout {
        for y in 0..h {
            for xx in 0..w {
                let mut acc = b[o] as f64;
                for i in 0..cin {
                    for ky in 0..3 {
                        let sy = y as isize + ky as isize - 1;
                        if sy < 0 || sy >= h as isize {
                            continue;
                        }
                        for kx in 0..3 {
                            let sx = xx as isize + kx as isize - 1;
                            if sx < 0 || sx >= w as isize {
                                continue;
                            }
                            acc += wt[((o * cin + i) * 3 + ky) * 3 + kx] as f64
                                * x.d[(i * h + sy as usize) * w + sx as usize] as f64;
                        }
                    }
                }
                out[(o * h + y) * w + xx] = acc as f32;
            }
        }
    }
    if ck.config.batch_norm {
        let g = ck.get(&format!("{name}.bn.weight")).unwrap();
        let be = ck.get(&format!("{name}.bn.bias")).unwrap();
        let m = ck.get(&format!("{name}.bn.running_mean")).unwrap();
        let v = ck.get(&format!("{name}.bn.running_var")).unwrap();
        for o in 0..cout {
            let k = g[o] as f64 / (v[o] as f64 + BATCH_NORM_EPS).sqrt();
            for p in &mut out[o * h * w..(o + 1) * h * w] {
                *p = ((*p as f64 - m[o] as f64) * k + be[o] as f64) as f32;
            }
        }
    }
    out.iter_mut().for_each(|v| *v = v.max(0.0));
    Fm {
        c: cout,
        h,
        w,
        d: out,
    }
}

fn maxpool(x: &Fm) -> Fm {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut d = vec![0f32; x.c * h * w];
    for c in 0..x.c {
        for y in 0..h {
            for xx in 0..w {
                let mut m = f32::NEG_INFINITY;
                for dy in 0..2 {
                    for dx in 0..2 {
                        m = m.max(x.d[(c * x.h + 2 * y + dy) * x.w + 2 * xx + dx]);
                    }
                }
                d[(c * h + y) * w + xx] = m;
            }
        }
    }
    Fm { c: x.c, h, w, d }
}

fn head_pool(cfg: &ModelConfig, x: &Fm) -> Vec<f32> {
    if cfg.global_pool {
        (0..x.c)
            .map(|c| {
                x.d[c * x.h * x.w..(c + 1) * x.h * x.w].iter().sum::<f32>() / (x.h * x.w) as f32
            })
            .collect()
    } else {
        maxpool(x).d
    }
}

fn linear(ck: &Checkpoint, name: &str, x: &[f32], relu: bool) -> Vec<f32> {
    let wt = ck.get(&format!("{name}.weight")).unwrap();
    let b = ck.get(&format!("{name}.bias")).unwrap();
    let fin = x.len();
    (0..b.len())
        .map(|o| {
            let v = b[o] as f64
                + wt[o * fin..(o + 1) * fin]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum::<f64>();
            if relu {
                (v as f32).max(0.0)
            } else {
                v as f32
            }
        })
        .collect()
}

fn softmax(v: &mut [f32]) {
    let m = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let s: f32 = v.iter().map(|x| (x - m).exp()).sum();
    v.iter_mut().for_each(|x| *x = (*x - m).exp() / s);
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Bilinear sample of channel `c` at feature position `(u, v)` with zero
/// padding (grid_sample, align_corners = false, after the -0.5 shift).
fn bilinear(f: &Fm, c: usize, u: f32, v: f32) -> f32 {
    let (x0, y0) = (u.floor(), v.floor());
    let (fx, fy) = (u - x0, v - y0);
    let mut acc = 0f32;
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (xx, yy) = (x0 as i64 + dx, y0 as i64 + dy);
            if xx >= 0 && yy >= 0 && (xx as usize) < f.w && (yy as usize) < f.h {
                acc += wy * wx * f.d[(c * f.h + yy as usize) * f.w + xx as usize];
            }
        }
    }
    acc
}

/// The five outputs for one `[3,S,S]` input, computed naively.
pub fn reference_forward(ck: &Checkpoint, input: &[f32]) -> [Vec<f32>; 5] {
    let cfg = &ck.config;
    let s = cfg.input_size;
    let mut x = Fm {
        c: 3,
        h: s,
        w: s,
        d: input.to_vec(),
    };
    let convs = cfg.convs();
    let mut it = convs.iter();
    for (block, n) in [(1, 2), (2, 2), (3, 3), (4, 3)] {
        for _ in 0..n {
            let (name, _, cout) = it.next().unwrap();
            x = conv_bn_relu(ck, name, &x, *cout);
        }
        if block < 4 {
            x = maxpool(&x);
        }
    }
    let f4 = x;
    let p4 = maxpool(&f4);
    let branch = |b: &str| {
        let mut y = Fm {
            c: p4.c,
            h: p4.h,
            w: p4.w,
            d: p4.d.clone(),
        };
        for (name, _, cout) in convs.iter().filter(|c| c.0.ends_with(b)) {
            y = conv_bn_relu(ck, name, &y, *cout);
        }
        head_pool(cfg, &y)
    };
    let pose = branch("pose");
    let glob = branch("global");
    let p6 = linear(ck, "fc6_pose", &pose, true);
    let p7 = linear(ck, "fc7_pose", &p6, true);
    let lm: Vec<f32> = linear(ck, "landmarks", &p7, false)
        .into_iter()
        .map(sigmoid)
        .collect();
    let mut vis = linear(ck, "visibility", &p7, false);
    for k in 0..NUM_LANDMARKS {
        softmax(&mut vis[3 * k..3 * k + 3]);
    }
    let g = cfg.pool_grid as i64;
    let r = (g - 1) / 2;
    let mut local = Vec::with_capacity(NUM_LANDMARKS * f4.c);
    for k in 0..NUM_LANDMARKS {
        let u = lm[2 * k] * f4.w as f32 - 0.5;
        let v = lm[2 * k + 1] * f4.h as f32 - 0.5;
        for c in 0..f4.c {
            let mut m = f32::NEG_INFINITY;
            for dy in -r..=r {
                for dx in -r..=r {
                    m = m.max(bilinear(&f4, c, u + dx as f32, v + dy as f32));
                }
            }
            local.push(m * vis[3 * k]);
        }
    }
    let g6 = linear(ck, "fc6_global", &glob, true);
    let l6 = linear(ck, "fc6_local", &local, true);
    let fused: Vec<f32> = g6.into_iter().chain(l6).collect();
    let f7 = linear(ck, "fc7_fusion", &fused, true);
    let mut cat = linear(ck, "category", &f7, false);
    softmax(&mut cat);
    let att: Vec<f32> = linear(ck, "attributes", &f7, false)
        .into_iter()
        .map(sigmoid)
        .collect();
    let emb = linear(ck, "embedding", &f7, false);
    let n = emb.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    let emb = emb.into_iter().map(|v| v / n).collect();
    [lm, vis, cat, att, emb]
}
