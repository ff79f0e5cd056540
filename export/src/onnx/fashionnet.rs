//! The FashionNet topology written as ONNX nodes, once for both precisions:
//! every layer asks the [`Net`] to wire a conv or a linear layer, and the net
//! writes it in float (`Conv`, `Gemm`) or in operator-form int8
//! (`QLinearConv`; `QuantizeLinear`/`DequantizeLinear` only where the graph
//! leaves or enters the int8 part).

use super::builder::{attr_int, attr_ints, GraphBuilder};
use super::{Int8Plan, Weights};
use deepfashion::contract::{tensor_names as tn, ModelConfig, NUM_LANDMARKS};

/// What to build.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    /// The fp32 graph.
    Float,
    /// The fp32 graph with every quantizable activation as an extra output.
    Calibrate,
    /// Operator-form int8 with the given plan.
    Int8(&'a Int8Plan),
}

#[derive(Debug, Clone)]
enum Val {
    /// A float tensor.
    F(String),
    /// A uint8 tensor with its scale and zero-point initializers.
    Q {
        name: String,
        scale: String,
        zp: String,
        s: f32,
        z: u8,
    },
}

/// Builds the graph; `calib` collects tensors a calibration run reads.
pub struct Net<'a> {
    /// The graph under construction.
    pub g: GraphBuilder,
    cfg: &'a ModelConfig,
    w: &'a Weights,
    mode: Mode<'a>,
    /// Names of the activations that calibration must observe.
    pub calib: Vec<String>,
}

impl<'a> Net<'a> {
    /// A net for `cfg` with folded weights `w`.
    pub fn new(cfg: &'a ModelConfig, w: &'a Weights, mode: Mode<'a>) -> Self {
        Self {
            g: GraphBuilder::default(),
            cfg,
            w,
            mode,
            calib: vec![tn::IMAGE.to_string()],
        }
    }

    fn plan(&self) -> Option<&'a Int8Plan> {
        match self.mode {
            Mode::Int8(p) => Some(p),
            _ => None,
        }
    }

    fn quantized(&self, layer: &str) -> bool {
        self.plan().is_some_and(|p| !p.keep_float.contains(layer))
    }

    fn float_out(&mut self, name: String) -> Val {
        self.calib.push(name.clone());
        Val::F(name)
    }

    fn float_of(&mut self, v: &Val) -> String {
        match v {
            Val::F(n) => n.clone(),
            Val::Q {
                name, scale, zp, ..
            } => {
                let out = format!("{name}/dq");
                if !self.g.nodes.iter().any(|n| n.output.first() == Some(&out)) {
                    self.g
                        .op("DequantizeLinear", &out, &[name, scale, zp], vec![]);
                }
                out
            }
        }
    }

    /// Scale/zero-point initializers for tensor `t` from the plan.
    fn qparams(&mut self, t: &str) -> (String, String, f32, u8) {
        let (s, z) = self.plan().map(|p| p.params(t)).unwrap_or((1.0, 0));
        let sn = self.g.scalar(&format!("{t}/scale"), s);
        let zn = self.g.u8s(&format!("{t}/zp"), &[], &[z]);
        (sn, zn, s, z)
    }

    fn quantized_of(&mut self, v: &Val) -> Val {
        match v {
            Val::Q { .. } => v.clone(),
            Val::F(n) => {
                let (scale, zp, s, z) = self.qparams(n);
                let name = format!("{n}/q");
                self.g
                    .op("QuantizeLinear", &name, &[n, &scale, &zp], vec![]);
                Val::Q {
                    name,
                    scale,
                    zp,
                    s,
                    z,
                }
            }
        }
    }

    /// Per-output-channel symmetric int8 weights, scales, and int32 bias for
    /// an input scale `xs`.
    fn qweights(&mut self, layer: &str, rows: usize, dims: &[usize], xs: f32) -> [String; 4] {
        let w = &self.w[&format!("{layer}.weight")];
        let b = &self.w[&format!("{layer}.bias")];
        let per = w.len() / rows;
        let mut q = vec![0i8; w.len()];
        let mut scales = vec![0f32; rows];
        let mut bias = vec![0i32; rows];
        for r in 0..rows {
            let row = &w[r * per..(r + 1) * per];
            let m = row.iter().fold(0f32, |a, v| a.max(v.abs()));
            let s = if m > 0.0 { m / 127.0 } else { 1e-8 };
            scales[r] = s;
            for (o, v) in q[r * per..(r + 1) * per].iter_mut().zip(row) {
                *o = (v / s).round().clamp(-127.0, 127.0) as i8;
            }
            let bq = (b[r] as f64 / (xs as f64 * s as f64)).round();
            bias[r] = bq.clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        }
        [
            self.g.i8s(&format!("{layer}.weight_q"), dims, &q),
            self.g
                .f32s(&format!("{layer}.weight_scale"), &[rows], &scales),
            self.g.i8s(&format!("{layer}.weight_zp"), &[], &[0]),
            self.g.i32s(&format!("{layer}.bias_q"), &[rows], &bias),
        ]
    }

    /// `QLinearConv` of `x` (quantized on the way in) into tensor `out`.
    fn qconv(
        &mut self,
        layer: &str,
        x: &Val,
        rows: usize,
        wdims: &[usize],
        k: i64,
        out: &str,
    ) -> Val {
        let Val::Q {
            name, scale, zp, s, ..
        } = self.quantized_of(x)
        else {
            unreachable!("quantized_of returns Q")
        };
        let [wq, ws, wz, bq] = self.qweights(layer, rows, wdims, s);
        let (ys, yz, s2, z2) = self.qparams(out);
        let p = (k - 1) / 2;
        self.g.op(
            "QLinearConv",
            &format!("{out}/qconv"),
            &[&name, &scale, &zp, &wq, &ws, &wz, &ys, &yz, &bq],
            vec![
                attr_ints("kernel_shape", &[k, k]),
                attr_ints("pads", &[p, p, p, p]),
                attr_ints("strides", &[1, 1]),
            ],
        );
        Val::Q {
            name: format!("{out}/qconv"),
            scale: ys,
            zp: yz,
            s: s2,
            z: z2,
        }
    }

    /// 3x3 conv + ReLU (batch norm already folded into the weights).
    fn conv(&mut self, layer: &str, cin: usize, cout: usize, x: &Val) -> Val {
        let out = format!("{layer}/out");
        if self.quantized(layer) {
            // ReLU is the saturation of a zero-point-0 uint8 output.
            self.calib.push(out.clone());
            return self.qconv(layer, x, cout, &[cout, cin, 3, 3], 3, &out);
        }
        let xf = self.float_of(x);
        let c = self.g.op(
            "Conv",
            &format!("{layer}/conv"),
            &[&xf, &format!("{layer}.weight"), &format!("{layer}.bias")],
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_ints("strides", &[1, 1]),
            ],
        );
        self.add_float_weights(layer, &[cout, cin, 3, 3]);
        self.g.op("Relu", &out, &[&c], vec![]);
        self.float_out(out)
    }

    fn add_float_weights(&mut self, layer: &str, dims: &[usize]) {
        let wn = format!("{layer}.weight");
        let bn = format!("{layer}.bias");
        let w = self.w[&wn].clone();
        let b = self.w[&bn].clone();
        self.g.f32s(&wn, dims, &w);
        self.g.f32s(&bn, &[dims[0]], &b);
    }

    /// Linear layer (weights `[out,in]`), optionally followed by ReLU.
    fn linear(&mut self, layer: &str, fin: usize, fout: usize, relu: bool, x: &Val) -> Val {
        let out = format!("{layer}/out");
        if self.quantized(layer) {
            self.calib.push(out.clone());
            let xq = self.quantized_of(x);
            let Val::Q {
                name,
                scale,
                zp,
                s,
                z,
            } = xq
            else {
                unreachable!("quantized_of returns Q")
            };
            let r = self
                .g
                .reshape(&name, &[-1, fin as i64, 1, 1], &format!("{layer}/in4d"));
            let x4 = Val::Q {
                name: r,
                scale,
                zp,
                s,
                z,
            };
            let Val::Q {
                name,
                scale,
                zp,
                s,
                z,
            } = self.qconv(layer, &x4, fout, &[fout, fin, 1, 1], 1, &out)
            else {
                unreachable!("qconv returns Q")
            };
            let flat = self
                .g
                .reshape(&name, &[-1, fout as i64], &format!("{out}/q2d"));
            return Val::Q {
                name: flat,
                scale,
                zp,
                s,
                z,
            };
        }
        let xf = self.float_of(x);
        self.add_float_weights(layer, &[fout, fin]);
        let gemm = if relu {
            format!("{layer}/gemm")
        } else {
            out.clone()
        };
        self.g.op(
            "Gemm",
            &gemm,
            &[&xf, &format!("{layer}.weight"), &format!("{layer}.bias")],
            vec![attr_int("transB", 1)],
        );
        if relu {
            self.g.op("Relu", &out, &[&gemm], vec![]);
        }
        self.float_out(out)
    }

    fn maxpool(&mut self, name: &str, x: &Val) -> Val {
        let attrs = || {
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
            ]
        };
        let out = format!("{name}/out");
        match x {
            Val::Q {
                name: xn,
                scale,
                zp,
                s,
                z,
            } => {
                self.g.op("MaxPool", &out, &[xn], attrs());
                Val::Q {
                    name: out,
                    scale: scale.clone(),
                    zp: zp.clone(),
                    s: *s,
                    z: *z,
                }
            }
            Val::F(xn) => {
                let xn = xn.clone();
                self.g.op("MaxPool", &out, &[&xn], attrs());
                self.float_out(out)
            }
        }
    }

    /// pool5 + flatten, or global average pooling, into `[N, head_features]`.
    fn head_pool(&mut self, name: &str, x: &Val) -> Val {
        let out = format!("{name}/out");
        if self.cfg.global_pool {
            let xf = self.float_of(x);
            let gp = self
                .g
                .op("GlobalAveragePool", &format!("{name}/gap"), &[&xf], vec![]);
            self.g
                .op("Flatten", &out, &[&gp], vec![attr_int("axis", 1)]);
            self.float_out(out)
        } else {
            let p = self.maxpool(&format!("{name}/pool5"), x);
            match p {
                Val::Q {
                    name: pn,
                    scale,
                    zp,
                    s,
                    z,
                } => {
                    self.g
                        .op("Flatten", &out, &[&pn], vec![attr_int("axis", 1)]);
                    Val::Q {
                        name: out,
                        scale,
                        zp,
                        s,
                        z,
                    }
                }
                Val::F(pn) => {
                    self.g
                        .op("Flatten", &out, &[&pn], vec![attr_int("axis", 1)]);
                    self.float_out(out)
                }
            }
        }
    }

    /// Landmark pooling in the tent/matmul form of the contract (float).
    fn landmark_pool(&mut self, f4: &Val, landmarks: &str, visibility: &str) -> Val {
        let cfg = self.cfg;
        let (s4, c4, g) = (cfg.f4_side(), cfg.f4_channels(), cfg.pool_grid);
        let gg = g * g;
        let r = (g as i64 - 1) / 2;
        let l = NUM_LANDMARKS as i64;
        let f4f = self.float_of(f4);
        let xs = self.g.slice(landmarks, 2, 0, 1, "local_pool/x");
        let ys = self.g.slice(landmarks, 2, 1, 2, "local_pool/y");
        let side = self.g.scalar("local_pool/side", s4 as f32);
        let mut dx = Vec::new();
        let mut dy = Vec::new();
        for iy in 0..g as i64 {
            for ix in 0..g as i64 {
                dx.push((ix - r) as f32 - 0.5);
                dy.push((iy - r) as f32 - 0.5);
            }
        }
        let dxn = self.g.f32s("local_pool/dx", &[1, 1, gg], &dx);
        let dyn_ = self.g.f32s("local_pool/dy", &[1, 1, gg], &dy);
        let cells: Vec<f32> = (0..s4).map(|i| i as f32).collect();
        let cols = self.g.f32s("local_pool/cols", &[1, 1, 1, s4], &cells);
        let one = self.g.scalar("local_pool/one", 1.0);
        let tent = |g: &mut GraphBuilder, c: &str, d: &str, tag: &str| -> String {
            let m = g.op(
                "Mul",
                &format!("local_pool/{tag}_scaled"),
                &[c, &side],
                vec![],
            );
            let u = g.op("Add", &format!("local_pool/{tag}_pos"), &[&m, d], vec![]);
            let u4 = g.reshape(
                &u,
                &[-1, l, gg as i64, 1],
                &format!("local_pool/{tag}_pos4"),
            );
            let dist = g.op(
                "Sub",
                &format!("local_pool/{tag}_dist"),
                &[&u4, &cols],
                vec![],
            );
            let a = g.op("Abs", &format!("local_pool/{tag}_abs"), &[&dist], vec![]);
            let t = g.op("Sub", &format!("local_pool/{tag}_1m"), &[&one, &a], vec![]);
            g.op("Relu", &format!("local_pool/{tag}_tent"), &[&t], vec![])
        };
        let wx = tent(&mut self.g, &xs, &dxn, "x");
        let wy = tent(&mut self.g, &ys, &dyn_, "y");
        let (s4i, ggi) = (s4 as i64, gg as i64);
        let wy5 = self.g.reshape(&wy, &[-1, l, ggi, s4i, 1], "local_pool/y5");
        let wx5 = self.g.reshape(&wx, &[-1, l, ggi, 1, s4i], "local_pool/x5");
        let wt = self
            .g
            .op("Mul", "local_pool/weights5", &[&wy5, &wx5], vec![]);
        let wt3 = self
            .g
            .reshape(&wt, &[-1, l * ggi, s4i * s4i], "local_pool/weights");
        let f3 = self
            .g
            .reshape(&f4f, &[-1, c4 as i64, s4i * s4i], "local_pool/f4_flat");
        let ft = self.g.op(
            "Transpose",
            "local_pool/f4_t",
            &[&f3],
            vec![attr_ints("perm", &[0, 2, 1])],
        );
        let mm = self
            .g
            .op("MatMul", "local_pool/sampled", &[&wt3, &ft], vec![]);
        let m4 = self
            .g
            .reshape(&mm, &[-1, l, ggi, c4 as i64], "local_pool/sampled4");
        let mx = self.g.op(
            "ReduceMax",
            "local_pool/max",
            &[&m4],
            vec![attr_ints("axes", &[2]), attr_int("keepdims", 0)],
        );
        let pv = self.g.slice(visibility, 2, 0, 1, "local_pool/p_visible");
        let gated = self.g.op("Mul", "local_pool/gated", &[&mx, &pv], vec![]);
        let out = self
            .g
            .reshape(&gated, &[-1, l * c4 as i64], "local_pool/out");
        self.float_out(out)
    }

    /// Wire the whole network; the graph's outputs are the contract's
    /// five tensors (plus, in calibration mode, [`Self::calib`]).
    pub fn build(&mut self) {
        let cfg = self.cfg;
        let convs = cfg.convs();
        let mut x = Val::F(tn::IMAGE.to_string());
        let mut it = convs.iter();
        for (block, n) in [(1, 2), (2, 2), (3, 3), (4, 3)] {
            for _ in 0..n {
                let (name, cin, cout) = it.next().expect("contract has the backbone convs");
                x = self.conv(name, *cin, *cout, &x);
            }
            if block < 4 {
                x = self.maxpool(&format!("pool{block}"), &x);
            }
        }
        let f4 = x;
        let pool4 = self.maxpool("pool4", &f4);
        let mut heads = Vec::new();
        for branch in ["pose", "global"] {
            let mut y = pool4.clone();
            for (name, cin, cout) in convs.iter().filter(|c| c.0.ends_with(branch)) {
                y = self.conv(name, *cin, *cout, &y);
            }
            heads.push(self.head_pool(&format!("{branch}_pool"), &y));
        }
        let hf = cfg.head_features();
        let fc = cfg.fc_size;
        let l = NUM_LANDMARKS;
        let p6 = self.linear("fc6_pose", hf, fc, true, &heads[0]);
        let p7 = self.linear("fc7_pose", fc, fc, true, &p6);
        let lm = self.linear("landmarks", fc, 2 * l, false, &p7);
        let lmf = self.float_of(&lm);
        let sig = self.g.op("Sigmoid", "landmarks/sigmoid", &[&lmf], vec![]);
        self.g.reshape(&sig, &[-1, l as i64, 2], tn::LANDMARKS);
        let vis = self.linear("visibility", fc, 3 * l, false, &p7);
        let visf = self.float_of(&vis);
        let v3 = self
            .g
            .reshape(&visf, &[-1, l as i64, 3], "visibility/logits3");
        self.g
            .op("Softmax", tn::VISIBILITY, &[&v3], vec![attr_int("axis", 2)]);
        let local = self.landmark_pool(&f4, tn::LANDMARKS, tn::VISIBILITY);
        let g6 = self.linear("fc6_global", hf, fc, true, &heads[1]);
        let l6 = self.linear("fc6_local", l * cfg.f4_channels(), fc, true, &local);
        let fused = match (&g6, &l6) {
            (
                Val::Q {
                    name: a,
                    scale,
                    zp,
                    s,
                    z,
                },
                Val::Q {
                    name: b,
                    s: s2,
                    z: z2,
                    ..
                },
            ) if s == s2 && z == z2 => {
                let n = self.g.op(
                    "Concat",
                    "fusion/concat",
                    &[a, b],
                    vec![attr_int("axis", 1)],
                );
                Val::Q {
                    name: n,
                    scale: scale.clone(),
                    zp: zp.clone(),
                    s: *s,
                    z: *z,
                }
            }
            _ => {
                let (a, b) = (self.float_of(&g6), self.float_of(&l6));
                let n = self.g.op(
                    "Concat",
                    "fusion/concat",
                    &[&a, &b],
                    vec![attr_int("axis", 1)],
                );
                self.float_out(n)
            }
        };
        let f7 = self.linear("fc7_fusion", 2 * fc, fc, true, &fused);
        let cat = self.linear("category", fc, cfg.num_categories, false, &f7);
        let catf = self.float_of(&cat);
        self.g
            .op("Softmax", tn::CATEGORY, &[&catf], vec![attr_int("axis", 1)]);
        let att = self.linear("attributes", fc, cfg.num_attributes, false, &f7);
        let attf = self.float_of(&att);
        self.g.op("Sigmoid", tn::ATTRIBUTES, &[&attf], vec![]);
        let emb = self.linear("embedding", fc, cfg.embedding_dim, false, &f7);
        let embf = self.float_of(&emb);
        let ss = self.g.op(
            "ReduceSumSquare",
            "embedding/sumsq",
            &[&embf],
            vec![attr_ints("axes", &[1]), attr_int("keepdims", 1)],
        );
        let eps = self.g.scalar("embedding/eps", 1e-24);
        let cl = self.g.op("Max", "embedding/clamped", &[&ss, &eps], vec![]);
        let norm = self.g.op("Sqrt", "embedding/norm", &[&cl], vec![]);
        self.g.op("Div", tn::EMBEDDING, &[&embf, &norm], vec![]);
        self.calib.dedup();
    }
}
