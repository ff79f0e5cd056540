//! Training-step benchmark on random data: the same step as
//! `bench/fashionnet_reference.py` (forward, the five losses with weights
//! 10/1/1/1/1, backward, gradient clip 10, Adam lr 1e-3), timed after a
//! warm-up. `cargo xtask bench trainer` runs both and compares.

use anyhow::Result;
use deepfashion::contract::ModelConfig;
use serde::Serialize;
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::data::HostBatch;
use crate::model::FashionNet;
use crate::train::{step_losses, DeviceBatch};

/// Result of a benchmark run (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Always `tch`.
    pub r#impl: String,
    /// Config name.
    pub config: String,
    /// Batch size.
    pub batch: usize,
    /// Timed steps.
    pub steps: usize,
    /// libtorch threads.
    pub threads: i32,
    /// Device.
    pub device: String,
    /// Milliseconds per step.
    pub ms_per_step: f64,
    /// Training images per second.
    pub images_per_s: f64,
    /// Last loss.
    pub loss: f64,
}

fn random_host_batch(cfg: &ModelConfig, n: usize, k: usize) -> HostBatch {
    let s = cfg.input_size as i64;
    let opts = (Kind::Float, Device::Cpu);
    let v = |t: Tensor| -> Vec<f32> { Vec::try_from(t.view([-1])).expect("f32 tensor") };
    let a = cfg.num_attributes;
    HostBatch {
        n,
        size: cfg.input_size,
        images: v(Tensor::randn([n as i64, 3, s, s], opts)),
        lm_target: v(Tensor::rand([n as i64, 8, 2], opts)),
        lm_mask: v(Tensor::rand([n as i64, 8], opts)
            .gt(0.3)
            .to_kind(Kind::Float)),
        vis_target: Vec::try_from(Tensor::randint(
            3,
            [n as i64 * 8],
            (Kind::Int64, Device::Cpu),
        ))
        .expect("i64"),
        present: vec![1.0; n * 8],
        category: Vec::try_from(Tensor::randint(
            cfg.num_categories as i64,
            [n as i64],
            (Kind::Int64, Device::Cpu),
        ))
        .expect("i64"),
        has_category: vec![true; n],
        attributes: v(Tensor::rand([(n * a) as i64], opts)
            .gt(0.99)
            .to_kind(Kind::Float)),
        has_attributes: vec![true; n],
        item: (0..n).map(|i| (i / k) as i64).collect(),
        has_item: vec![true; n],
        crops: Vec::new(),
    }
}

/// Time `steps` training steps of `cfg` at batch `batch` on `device`.
pub fn bench_step(
    cfg: &ModelConfig,
    batch: usize,
    steps: usize,
    warmup: usize,
    device: Device,
    amp: bool,
) -> Result<BenchResult> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let model = FashionNet::new(&vs.root(), cfg);
    let mut opt = nn::Adam {
        wd: 1e-5,
        ..Default::default()
    }
    .build(&vs, 1e-3)?;
    let hb = random_host_batch(cfg, batch, 4);
    let db = DeviceBatch::new(&hb, device);
    let pos_weight = Tensor::full([cfg.num_attributes as i64], 20.0, (Kind::Float, device));
    let tcfg = TrainConfig::default();
    let amp = amp && device.is_cuda();
    let mut step = || -> Tensor {
        let t = step_losses(&model, &db, &pos_weight, &tcfg, false, amp);
        let loss = &t[0] * 10.0 + &t[1] + &t[2] + &t[3] + &t[4];
        opt.zero_grad();
        loss.backward();
        opt.clip_grad_norm(10.0);
        opt.step();
        loss
    };
    for _ in 0..warmup {
        let _ = step();
    }
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
    let t0 = Instant::now();
    let mut last = Tensor::zeros([], (Kind::Float, device));
    for _ in 0..steps {
        last = step();
    }
    let loss = last.double_value(&[]);
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
    let dt = t0.elapsed().as_secs_f64();
    Ok(BenchResult {
        r#impl: "tch".into(),
        config: cfg.name.clone(),
        batch,
        steps,
        threads: tch::get_num_threads(),
        device: format!("{device:?}"),
        ms_per_step: 1000.0 * dt / steps.max(1) as f64,
        images_per_s: (batch * steps) as f64 / dt,
        loss,
    })
}
