//! FashionNet in tch, built from [`ModelConfig`] with the exact parameter
//! names of [`ModelConfig::parameters`] (see the module docs of
//! [`deepfashion::contract`] for the topology and the landmark pooling).

use deepfashion::contract::{ModelConfig, BATCH_NORM_EPS, NUM_LANDMARKS};
use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

/// Variable group of the backbone (conv1_1 .. conv4_3); stage 2 can give it
/// a lower learning rate.
pub const BACKBONE_GROUP: usize = 0;
/// Variable group of everything after conv4_3 (branches, fc layers, heads).
pub const HEAD_GROUP: usize = 1;

/// One 3x3 conv (+ optional batch norm) + ReLU.
#[derive(Debug)]
struct ConvBlock {
    conv: nn::Conv2D,
    bn: Option<nn::BatchNorm>,
}

impl ConvBlock {
    fn new(p: &nn::Path, cin: usize, cout: usize, batch_norm: bool) -> Self {
        let cfg = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let conv = nn::conv2d(p, cin as i64, cout as i64, 3, cfg);
        let bn = batch_norm.then(|| {
            let bcfg = nn::BatchNormConfig {
                eps: BATCH_NORM_EPS,
                momentum: 0.1,
                ..Default::default()
            };
            nn::batch_norm2d(p / "bn", cout as i64, bcfg)
        });
        Self { conv, bn }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.conv.forward(x);
        let y = match &self.bn {
            Some(bn) => bn.forward_t(&y, train),
            None => y,
        };
        y.relu()
    }
}

/// Outputs of the model in evaluation mode: exactly the ONNX outputs.
#[derive(Debug)]
pub struct Outputs {
    /// `[N,8,2]` landmark coordinates in [0,1] of the crop (sigmoid).
    pub landmarks: Tensor,
    /// `[N,8,3]` visibility probabilities (softmax).
    pub visibility: Tensor,
    /// `[N,C]` category probabilities (softmax).
    pub category: Tensor,
    /// `[N,A]` attribute probabilities (sigmoid).
    pub attributes: Tensor,
    /// `[N,D]` L2-normalized embedding.
    pub embedding: Tensor,
}

/// Outputs of the training forward pass (logits where a loss wants them).
#[derive(Debug)]
pub struct TrainOutputs {
    /// `[N,8,2]` landmark coordinates in [0,1] (after the sigmoid).
    pub landmarks: Tensor,
    /// `[N,8,3]` visibility logits.
    pub visibility_logits: Tensor,
    /// `[N,C]` category logits.
    pub category_logits: Tensor,
    /// `[N,A]` attribute logits.
    pub attribute_logits: Tensor,
    /// `[N,D]` L2-normalized embedding.
    pub embedding: Tensor,
}

/// The FashionNet model; its variables live in the `VarStore` it was built
/// on, named as [`ModelConfig::parameters`].
#[derive(Debug)]
pub struct FashionNet {
    cfg: ModelConfig,
    backbone: Vec<(String, ConvBlock)>,
    conv5_pose: Vec<ConvBlock>,
    conv5_global: Vec<ConvBlock>,
    fc6_pose: nn::Linear,
    fc7_pose: nn::Linear,
    landmarks: nn::Linear,
    visibility: nn::Linear,
    fc6_global: nn::Linear,
    fc6_local: nn::Linear,
    fc7_fusion: nn::Linear,
    category: nn::Linear,
    attributes: nn::Linear,
    embedding: nn::Linear,
}

/// Options of the training forward pass.
#[derive(Debug, Clone, Copy)]
pub struct ForwardOptions {
    /// Training mode (batch statistics, dropout).
    pub train: bool,
    /// Detach the landmark coordinates and visibility used by the landmark
    /// pooling (stage 2: the pose branch is trained by its own losses only).
    pub detach_pool: bool,
}

impl FashionNet {
    /// Build the model under `root` (normally `vs.root()`). The config must
    /// be valid ([`ModelConfig::validate`]).
    pub fn new(root: &nn::Path, cfg: &ModelConfig) -> Self {
        let bb = root.set_group(BACKBONE_GROUP);
        let hd = root.set_group(HEAD_GROUP);
        let bn = cfg.batch_norm;
        let mut backbone = Vec::new();
        let mut conv5_pose = Vec::new();
        let mut conv5_global = Vec::new();
        for (name, cin, cout) in cfg.convs() {
            if name.ends_with("_pose") {
                conv5_pose.push(ConvBlock::new(&(&hd / name.as_str()), cin, cout, bn));
            } else if name.ends_with("_global") {
                conv5_global.push(ConvBlock::new(&(&hd / name.as_str()), cin, cout, bn));
            } else {
                let block = ConvBlock::new(&(&bb / name.as_str()), cin, cout, bn);
                backbone.push((name, block));
            }
        }
        let lin = |name: &str, fin: usize, fout: usize| {
            nn::linear(&hd / name, fin as i64, fout as i64, Default::default())
        };
        let l = cfg.linears();
        let get = |name: &str| {
            let (n, fin, fout) = l.iter().find(|x| x.0 == name).expect("contract linear");
            lin(n, *fin, *fout)
        };
        Self {
            cfg: cfg.clone(),
            backbone,
            conv5_pose,
            conv5_global,
            fc6_pose: get("fc6_pose"),
            fc7_pose: get("fc7_pose"),
            landmarks: get("landmarks"),
            visibility: get("visibility"),
            fc6_global: get("fc6_global"),
            fc6_local: get("fc6_local"),
            fc7_fusion: get("fc7_fusion"),
            category: get("category"),
            attributes: get("attributes"),
            embedding: get("embedding"),
        }
    }

    /// The configuration this model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn head_pool(&self, x: &Tensor) -> Tensor {
        if self.cfg.global_pool {
            x.mean_dim(&[2i64, 3][..], false, Kind::Float)
                .to_kind(x.kind())
        } else {
            x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
                .flatten(1, -1)
        }
    }

    fn fc(&self, layer: &nn::Linear, x: &Tensor, train: bool) -> Tensor {
        layer
            .forward(x)
            .relu()
            .dropout(self.cfg.dropout as f64, train)
    }

    /// The training forward pass.
    pub fn forward_train(&self, image: &Tensor, opt: ForwardOptions) -> TrainOutputs {
        let train = opt.train;
        let mut x = image.shallow_clone();
        for (name, block) in &self.backbone {
            x = block.forward(&x, train);
            if name == "conv1_2" || name == "conv2_2" || name == "conv3_3" {
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
        }
        let f4 = x;
        let p4 = f4.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let n = image.size()[0];

        let mut pose = p4.shallow_clone();
        for b in &self.conv5_pose {
            pose = b.forward(&pose, train);
        }
        let pose = self.head_pool(&pose);
        let pose = self.fc(&self.fc6_pose, &pose, train);
        let pose = self.fc(&self.fc7_pose, &pose, train);
        let landmarks = self
            .landmarks
            .forward(&pose)
            .sigmoid()
            .view([n, NUM_LANDMARKS as i64, 2]);
        let visibility_logits = self
            .visibility
            .forward(&pose)
            .view([n, NUM_LANDMARKS as i64, 3]);

        let p_visible = visibility_logits
            .softmax(-1, Kind::Float)
            .select(2, 0)
            .to_kind(f4.kind());
        let (lm_pool, pv_pool) = if opt.detach_pool {
            (landmarks.detach(), p_visible.detach())
        } else {
            (landmarks.shallow_clone(), p_visible)
        };
        let local = landmark_pool(
            &f4,
            &lm_pool.to_kind(f4.kind()),
            &pv_pool,
            self.cfg.pool_grid,
        );
        let local = self.fc(&self.fc6_local, &local, train);

        let mut glob = p4;
        for b in &self.conv5_global {
            glob = b.forward(&glob, train);
        }
        let glob = self.head_pool(&glob);
        let glob = self.fc(&self.fc6_global, &glob, train);

        let fused = Tensor::cat(&[glob, local], 1);
        let fused = self.fc(&self.fc7_fusion, &fused, train);
        let category_logits = self.category.forward(&fused);
        let attribute_logits = self.attributes.forward(&fused);
        let embedding = l2_normalize(&self.embedding.forward(&fused));
        TrainOutputs {
            landmarks,
            visibility_logits,
            category_logits,
            attribute_logits,
            embedding,
        }
    }

    /// Evaluation-mode forward (no dropout, running BN statistics) returning
    /// exactly the exported ONNX outputs. Call inside `tch::no_grad` when no
    /// gradients are wanted.
    pub fn forward_outputs(&self, image: &Tensor) -> Outputs {
        let o = self.forward_train(
            image,
            ForwardOptions {
                train: false,
                detach_pool: true,
            },
        );
        Outputs {
            landmarks: o.landmarks,
            visibility: o.visibility_logits.softmax(-1, Kind::Float),
            category: o.category_logits.softmax(-1, Kind::Float),
            attributes: o.attribute_logits.sigmoid(),
            embedding: o.embedding,
        }
    }
}

/// `x / max(||x||_2, 1e-12)` along the last dimension (as
/// `torch.nn.functional.normalize`).
pub fn l2_normalize(x: &Tensor) -> Tensor {
    let norm = x
        .to_kind(Kind::Float)
        .norm_scalaropt_dim(2, &[-1i64][..], true)
        .clamp_min(1e-12);
    x.to_kind(Kind::Float) / norm
}

/// Landmark pooling in the contract's "tent"/matmul form.
///
/// `f4`: `[N,C,H,W]` features; `landmarks`: `[N,8,2]` in [0,1];
/// `p_visible`: `[N,8]`. Returns `[N, 8*C]` (landmark-major).
pub fn landmark_pool(f4: &Tensor, landmarks: &Tensor, p_visible: &Tensor, grid: usize) -> Tensor {
    let (n, c, h, w) = f4.size4().expect("f4 is [N,C,H,W]");
    let l = landmarks.size()[1];
    let g = grid as i64;
    let opts = (f4.kind(), f4.device());
    let half = (g - 1) as f64 / 2.0;
    // Offsets in feature cells: -(g-1)/2 .. (g-1)/2.
    let d = Tensor::arange(g, opts) - half;
    let u = landmarks.select(2, 0) * (w as f64) - 0.5; // [N,L]
    let v = landmarks.select(2, 1) * (h as f64) - 0.5;
    let cols = Tensor::arange(w, opts);
    let rows = Tensor::arange(h, opts);
    // wx[n,l,gx,w] = relu(1 - |u + dx - w|)
    let ax: Tensor = (u.view([n, l, 1, 1]) + d.view([1, 1, g, 1]) - cols.view([1, 1, 1, w])).abs();
    let ay: Tensor = (v.view([n, l, 1, 1]) + d.view([1, 1, g, 1]) - rows.view([1, 1, 1, h])).abs();
    let wx = (ax.neg() + 1.0).relu();
    let wy = (ay.neg() + 1.0).relu();
    // Wt[n, l, gy, gx, h, w] = wy[n,l,gy,h] * wx[n,l,gx,w]
    let wt = wy.view([n, l, g, 1, h, 1]) * wx.view([n, l, 1, g, 1, w]);
    let wt = wt.view([n, l * g * g, h * w]);
    let feats = f4.flatten(2, 3).transpose(1, 2); // [N, HW, C]
    let sampled = wt.matmul(&feats); // [N, L*g*g, C]
    let pooled = sampled.view([n, l, g * g, c]).amax(&[2i64][..], false); // [N,L,C]
    let pooled = pooled * p_visible.view([n, l, 1]);
    pooled.reshape([n, l * c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn small_cfg() -> ModelConfig {
        let mut c = ModelConfig::tiny();
        c.input_size = 64;
        c.num_categories = 5;
        c.num_attributes = 7;
        c
    }

    #[test]
    fn varstore_names_and_shapes_match_contract() {
        for mut cfg in [
            ModelConfig::tiny(),
            ModelConfig::edge(),
            ModelConfig::paper(),
        ] {
            // Keep paper's fc layers small enough to allocate quickly in a test:
            // shapes are still checked against the contract for this config.
            if cfg.name == "paper" {
                cfg.fc_size = 64;
            }
            let vs = nn::VarStore::new(Device::Cpu);
            let _m = FashionNet::new(&vs.root(), &cfg);
            let vars = vs.variables();
            let expected = cfg.parameters();
            assert_eq!(vars.len(), expected.len(), "{}", cfg.name);
            for (name, shape) in expected {
                let t = vars
                    .get(&name)
                    .unwrap_or_else(|| panic!("{}: missing {name}", cfg.name));
                let s: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
                assert_eq!(s, shape, "{}: {name}", cfg.name);
            }
        }
    }

    #[test]
    fn eval_outputs_have_contract_shapes_and_semantics() {
        let cfg = small_cfg();
        let vs = nn::VarStore::new(Device::Cpu);
        let m = FashionNet::new(&vs.root(), &cfg);
        let x = Tensor::randn([3, 3, 64, 64], (Kind::Float, Device::Cpu));
        let o = tch::no_grad(|| m.forward_outputs(&x));
        assert_eq!(o.landmarks.size(), [3, 8, 2]);
        assert_eq!(o.visibility.size(), [3, 8, 3]);
        assert_eq!(o.category.size(), [3, 5]);
        assert_eq!(o.attributes.size(), [3, 7]);
        assert_eq!(o.embedding.size(), [3, 64]);
        let vis_sum = o
            .visibility
            .sum_dim_intlist(&[-1i64][..], false, Kind::Float);
        assert!((vis_sum - 1.0).abs().max().double_value(&[]) < 1e-5);
        let cat_sum = o.category.sum_dim_intlist(&[-1i64][..], false, Kind::Float);
        assert!((cat_sum - 1.0).abs().max().double_value(&[]) < 1e-5);
        let norms = o.embedding.norm_scalaropt_dim(2, &[-1i64][..], false);
        assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5);
        let lm_min = o.landmarks.min().double_value(&[]);
        let lm_max = o.landmarks.max().double_value(&[]);
        assert!(lm_min >= 0.0 && lm_max <= 1.0);
        // Eval mode is deterministic (no dropout).
        let o2 = tch::no_grad(|| m.forward_outputs(&x));
        assert!(o.embedding.allclose(&o2.embedding, 0.0, 0.0, false));
    }

    /// Reference: bilinear sampling with zero padding, written point by point.
    fn pool_reference(
        f: &[f32],
        c: usize,
        h: usize,
        w: usize,
        lm: &[(f32, f32)],
        pv: &[f32],
    ) -> Vec<f32> {
        let mut out = vec![0.0; lm.len() * c];
        for (li, &(x, y)) in lm.iter().enumerate() {
            let u = x * w as f32 - 0.5;
            let v = y * h as f32 - 0.5;
            for ch in 0..c {
                let mut best = f32::NEG_INFINITY;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (su, sv) = (u + dx as f32, v + dy as f32);
                        let (x0, y0) = (su.floor(), sv.floor());
                        let mut acc = 0.0;
                        for (yy, wy) in [(y0, 1.0 - (sv - y0)), (y0 + 1.0, sv - y0)] {
                            for (xx, wx) in [(x0, 1.0 - (su - x0)), (x0 + 1.0, su - x0)] {
                                if yy >= 0.0 && xx >= 0.0 && (yy as usize) < h && (xx as usize) < w
                                {
                                    acc += wy * wx * f[ch * h * w + yy as usize * w + xx as usize];
                                }
                            }
                        }
                        best = best.max(acc);
                    }
                }
                out[li * c + ch] = best * pv[li];
            }
        }
        out
    }

    #[test]
    fn landmark_pool_matches_pointwise_bilinear() {
        let (c, h, w) = (3usize, 5usize, 6usize);
        let f: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 37 % 11) as f32) - 4.0)
            .collect();
        let lm = vec![
            (0.5, 0.5),
            (0.0, 0.0),
            (1.0, 1.0),
            (0.13, 0.77),
            (0.91, 0.2),
            (0.33, 0.31),
            (-0.1, 0.5),
            (0.7, 1.2),
        ];
        let pv: Vec<f32> = (0..8).map(|i| 0.1 + i as f32 * 0.1).collect();
        let ft = Tensor::from_slice(&f).view([1, c as i64, h as i64, w as i64]);
        let flat: Vec<f32> = lm.iter().flat_map(|&(x, y)| [x, y]).collect();
        let lt = Tensor::from_slice(&flat).view([1, 8, 2]);
        let pt = Tensor::from_slice(&pv).view([1, 8]);
        let got: Vec<f32> = Vec::try_from(landmark_pool(&ft, &lt, &pt, 3).view([-1])).unwrap();
        let want = pool_reference(&f, c, h, w, &lm, &pv);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn gradients_flow_to_all_trainable_variables() {
        let cfg = small_cfg();
        let vs = nn::VarStore::new(Device::Cpu);
        let m = FashionNet::new(&vs.root(), &cfg);
        let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let o = m.forward_train(
            &x,
            ForwardOptions {
                train: true,
                detach_pool: false,
            },
        );
        let loss = o.landmarks.sum(Kind::Float)
            + o.visibility_logits.sum(Kind::Float)
            + o.category_logits.sum(Kind::Float)
            + o.attribute_logits.sum(Kind::Float)
            + o.embedding.select(1, 0).sum(Kind::Float);
        loss.backward();
        for (name, v) in vs.variables() {
            if v.requires_grad() {
                assert!(v.grad().defined(), "no grad for {name}");
            }
        }
    }
}
