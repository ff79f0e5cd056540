//! The training loop: joint Category & Attribute and In-shop P x K batches,
//! the two stages, the cosine schedule, mixed precision on CUDA, metrics
//! rows, checkpoints, resume and a clean stop on SIGINT.

use anyhow::{bail, Context, Result};
use deepfashion::annotations::{self, Benchmark, Dataset, LoadOptions};
use deepfashion::contract::{Labels, ModelConfig};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::checkpoint::{self, TrainingState};
use crate::config::{OptimizerKind, TrainConfig};
use crate::data::{HostBatch, Sample};
use crate::loader::{BatchKind, Prefetcher, TrainData};
use crate::losses;
use crate::model::{FashionNet, ForwardOptions, BACKBONE_GROUP, HEAD_GROUP};

/// How long to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    /// The preset's default step count ([`default_steps`]).
    Default,
    /// A number of optimizer steps.
    Steps(u64),
    /// Passes over the Category & Attribute training split.
    Epochs(f64),
}

/// Everything `trainer train` needs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// DeepFashion (or synthetic) root.
    pub data: PathBuf,
    /// Model config (num_categories/num_attributes are overwritten from the data).
    pub model: ModelConfig,
    /// Training config.
    pub train: TrainConfig,
    /// Run folder (checkpoints, metrics.jsonl, curves.png).
    pub out: PathBuf,
    /// Device.
    pub device: Device,
    /// Length of the run.
    pub length: Length,
    /// Continue from the newest checkpoint in `out`.
    pub resume: bool,
    /// Seed (weights init, sampling, augmentation).
    pub seed: u64,
    /// libtorch intra-op threads and decoder threads.
    pub threads: usize,
    /// Optional torchvision VGG-16 safetensors for initialization.
    pub vgg16: Option<PathBuf>,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a run ended with.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Steps completed.
    pub step: u64,
    /// Steps planned.
    pub total_steps: u64,
    /// The last checkpoint written.
    pub checkpoint: PathBuf,
    /// Stopped by SIGINT before the end.
    pub interrupted: bool,
    /// Smoothed loss terms at the end.
    pub metrics: BTreeMap<String, f64>,
    /// Mean total loss over the first and the last 10% of this session's steps.
    pub loss_first_last: (f64, f64),
}

/// Default number of steps for a preset (tiny is sized to finish in well
/// under 15 minutes on two CPU cores on the 2,000-image synthetic set).
pub fn default_steps(name: &str) -> u64 {
    match name {
        "tiny" => 1200,
        "edge" => 20_000,
        _ => 60_000,
    }
}

/// The datasets a run reads: Category & Attribute (required) and In-shop
/// (optional).
pub struct TrainingSets {
    /// Category & Attribute (coarse).
    pub category: Dataset,
    /// In-shop, when present under the root.
    pub inshop: Option<Dataset>,
}

/// Load the benchmarks from `root`.
pub fn load_sets(root: &Path) -> Result<TrainingSets> {
    let category =
        annotations::load(root, Benchmark::CategoryAttribute, &LoadOptions::default())
            .with_context(|| format!("loading Category & Attribute from {}", root.display()))?;
    let inshop = match annotations::resolve_root(root, Benchmark::InShop) {
        Ok(_) => Some(
            annotations::load(root, Benchmark::InShop, &LoadOptions::default())
                .with_context(|| format!("loading In-shop from {}", root.display()))?,
        ),
        Err(e) => {
            tracing::warn!("no In-shop benchmark ({e}); training without the triplet loss");
            None
        }
    };
    Ok(TrainingSets { category, inshop })
}

/// Dense item index of every In-shop item id (sorted ids).
pub fn item_indices(ds: &Dataset) -> HashMap<String, i64> {
    let mut ids: Vec<&String> = ds
        .images
        .iter()
        .filter_map(|r| r.item_id.as_ref())
        .collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i as i64))
        .collect()
}

/// Training samples of both sets.
pub fn training_data(sets: &TrainingSets, num_attributes: usize, size: usize) -> TrainData {
    let cat: Vec<Sample> = sets
        .category
        .split("train")
        .map(|r| Sample::from_record(&sets.category, r, None))
        .collect();
    let shop: Vec<Sample> = match &sets.inshop {
        Some(ds) => {
            let idx = item_indices(ds);
            ds.split("train")
                .map(|r| {
                    let it = r.item_id.as_ref().and_then(|i| idx.get(i)).copied();
                    Sample::from_record(ds, r, it)
                })
                .collect()
        }
        None => Vec::new(),
    };
    TrainData::new(cat, shop, num_attributes, size)
}

fn attribute_positive_counts(data: &TrainData) -> (Vec<u64>, u64) {
    let mut pos = vec![0u64; data.num_attributes];
    let mut total = 0;
    for s in &data.category {
        if let Some(a) = &s.attributes {
            if a.len() == pos.len() {
                total += 1;
                for (p, &v) in pos.iter_mut().zip(a) {
                    *p += (v > 0.5) as u64;
                }
            }
        }
    }
    (pos, total)
}

/// Device tensors of a host batch.
pub struct DeviceBatch {
    /// `[n,3,S,S]`.
    pub images: Tensor,
    lm_target: Tensor,
    lm_mask: Tensor,
    vis_target: Tensor,
    present: Tensor,
    category: Tensor,
    has_category: Tensor,
    attributes: Tensor,
    has_attributes: Tensor,
    item: Tensor,
    has_item: Tensor,
}

impl DeviceBatch {
    /// Upload a host batch.
    pub fn new(b: &HostBatch, device: Device) -> Self {
        let n = b.n as i64;
        let s = b.size as i64;
        let a = (b.attributes.len() / b.n.max(1)) as i64;
        let up = |t: Tensor| t.to_device(device);
        Self {
            images: up(Tensor::from_slice(&b.images).view([n, 3, s, s])),
            lm_target: up(Tensor::from_slice(&b.lm_target).view([n, 8, 2])),
            lm_mask: up(Tensor::from_slice(&b.lm_mask).view([n, 8])),
            vis_target: up(Tensor::from_slice(&b.vis_target).view([n, 8])),
            present: up(Tensor::from_slice(&b.present).view([n, 8])),
            category: up(Tensor::from_slice(&b.category)),
            has_category: up(Tensor::from_slice(&b.has_category)),
            attributes: up(Tensor::from_slice(&b.attributes).view([n, a])),
            has_attributes: up(Tensor::from_slice(&b.has_attributes)),
            item: up(Tensor::from_slice(&b.item)),
            has_item: up(Tensor::from_slice(&b.has_item)),
        }
    }
}

/// Names of the loss terms, in the order [`step_losses`] returns them.
pub const LOSS_TERMS: [&str; 5] = [
    "landmarks",
    "visibility",
    "category",
    "attributes",
    "triplet",
];

/// The five loss terms of one batch (unweighted).
pub fn step_losses(
    model: &FashionNet,
    batch: &DeviceBatch,
    pos_weight: &Tensor,
    cfg: &TrainConfig,
    detach_pool: bool,
    amp: bool,
) -> [Tensor; 5] {
    let out = tch::autocast(amp, || {
        model.forward_train(
            &batch.images,
            ForwardOptions {
                train: true,
                detach_pool,
            },
        )
    });
    [
        losses::landmark_l2(&out.landmarks, &batch.lm_target, &batch.lm_mask),
        losses::visibility_ce(&out.visibility_logits, &batch.vis_target, &batch.present),
        losses::category_ce(
            &out.category_logits,
            &batch.category,
            &batch.has_category,
            cfg.label_smoothing,
        ),
        losses::attribute_bce(
            &out.attribute_logits,
            &batch.attributes,
            pos_weight,
            &batch.has_attributes,
        ),
        losses::triplet_batch_hard(
            &out.embedding,
            &batch.item,
            &batch.has_item,
            cfg.triplet_margin,
        ),
    ]
}

/// Dynamic loss scaling for fp16 autocast (as torch.cuda.amp.GradScaler).
struct LossScaler {
    scale: f64,
    good: u32,
}

impl LossScaler {
    /// Unscale gradients in place; false (and the scale halves) when any
    /// gradient is not finite.
    fn unscale(&mut self, vars: &[Tensor]) -> bool {
        let mut checks = Vec::new();
        for v in vars {
            let mut g = v.grad();
            if g.defined() {
                let _ = g.g_mul_scalar_(1.0 / self.scale);
                checks.push(g.isfinite().all());
            }
        }
        // One device sync for all gradients.
        let finite =
            checks.is_empty() || bool::try_from(Tensor::stack(&checks, 0).all()).unwrap_or(false);
        if finite {
            self.good += 1;
            if self.good >= 2000 {
                self.scale *= 2.0;
                self.good = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good = 0;
        }
        finite
    }
}

fn append_jsonl(path: &Path, row: &serde_json::Value) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{row}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn prune_checkpoints(run: &Path, keep: usize) {
    let dir = checkpoint::checkpoint_dir(run);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut names: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-") && n.ends_with(".safetensors"))
        })
        .collect();
    names.sort();
    if names.len() > keep {
        for p in &names[..names.len() - keep] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Run training. `stop` is polled after every step (SIGINT): the current
/// step finishes, a checkpoint is written and the function returns with
/// `interrupted = true`.
pub fn train(opts: &TrainOptions, stop: Arc<AtomicBool>) -> Result<TrainOutcome> {
    opts.train.validate()?;
    tch::set_num_threads(opts.threads.max(1) as i32);
    tch::manual_seed(opts.seed as i64);
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;

    let sets = load_sets(&opts.data)?;
    let labels: Labels = sets.category.labels();
    let resume_from = if opts.resume {
        checkpoint::newest(&opts.out)?
    } else {
        None
    };
    let ckpt = match &resume_from {
        Some(p) => Some(checkpoint::load(p)?),
        None => None,
    };
    let mut cfg = opts.model.clone();
    cfg.num_categories = labels.categories.len();
    cfg.num_attributes = labels.attributes.len();
    if let Some(c) = &ckpt {
        if c.config != cfg {
            bail!(
                "--resume: the checkpoint's config differs from the requested one:\n  checkpoint: {}\n  requested:  {}",
                c.config.to_json(),
                cfg.to_json()
            );
        }
        if c.labels != labels {
            bail!(
                "--resume: the checkpoint was trained on other label sets than {}",
                opts.data.display()
            );
        }
    }
    cfg.validate().context("model config")?;

    let data = Arc::new(training_data(&sets, cfg.num_attributes, cfg.input_size));
    tracing::info!(
        "data: {} Category & Attribute train images, {} In-shop train images in {} items",
        data.category.len(),
        data.inshop.len(),
        data.items.len()
    );
    let total_steps = match (opts.length, &ckpt) {
        (Length::Steps(n), _) => n,
        (Length::Epochs(e), _) => {
            let per_epoch = (data.category.len() as f64 / opts.train.batch_size as f64).ceil();
            let every = opts.train.inshop_every as f64;
            let factor = if every >= 2.0 {
                every / (every - 1.0)
            } else {
                1.0
            };
            (e * per_epoch * factor).ceil().max(1.0) as u64
        }
        (Length::Default, Some(c)) if c.state.total_steps > 0 => c.state.total_steps,
        (Length::Default, _) => default_steps(&cfg.name),
    };

    let vs = nn::VarStore::new(opts.device);
    let model = FashionNet::new(&vs.root(), &cfg);
    let mut start = 0;
    if let Some(c) = &ckpt {
        checkpoint::restore(&vs, c)?;
        start = c.state.step;
        tracing::info!(
            "resumed from {} at step {start}",
            resume_from.as_ref().expect("set").display()
        );
    } else if let Some(p) = &opts.vgg16 {
        let n = crate::vgg_init::load_vgg16(&vs, p)?;
        tracing::info!("initialized {n} tensors from {}", p.display());
    }

    let (pos, total) = attribute_positive_counts(&data);
    let pos_weight = Tensor::from_slice(&losses::attribute_pos_weight(
        &pos,
        total,
        opts.train.max_attribute_pos_weight,
    ))
    .to_device(opts.device);

    let t = &opts.train;
    let mut opt = match t.optimizer {
        OptimizerKind::Adam => nn::Adam {
            wd: t.weight_decay,
            ..Default::default()
        }
        .build(&vs, t.lr)?,
        OptimizerKind::Sgd => nn::Sgd {
            momentum: t.momentum,
            wd: t.weight_decay,
            ..Default::default()
        }
        .build(&vs, t.lr)?,
    };
    let amp = t.amp && opts.device.is_cuda();
    let mut scaler = LossScaler {
        scale: 65536.0,
        good: 0,
    };
    let trainable = vs.trainable_variables();

    let metrics_path = opts.out.join("metrics.jsonl");
    let ckpt_dir = checkpoint::checkpoint_dir(&opts.out);
    let mut prefetch = Prefetcher::start(
        data.clone(),
        t,
        opts.seed,
        start,
        total_steps,
        opts.threads,
        4,
    )?;
    let sampler = crate::loader::Sampler::new(t, &data, opts.seed);

    let pb = if opts.progress {
        indicatif::ProgressBar::new(total_steps)
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}] {per_sec}",
        )
        .expect("valid template"),
    );
    pb.set_position(start);

    let mut ema: BTreeMap<String, f64> = ckpt
        .as_ref()
        .map(|c| c.state.metrics.clone())
        .unwrap_or_default();
    let mut totals: Vec<f64> = Vec::new();
    let mut step = start;
    let mut stage = 0usize;
    let mut interrupted = false;
    let mut images_seen = 0usize;
    let t0 = Instant::now();
    let mut last_ckpt = resume_from.clone();
    let save = |step: u64, stage: usize, ema: &BTreeMap<String, f64>| -> Result<PathBuf> {
        let c = data.category.len().max(1) as f64;
        let state = TrainingState {
            step,
            total_steps,
            epoch: (sampler.category_batches_before(step) as f64 * t.batch_size as f64) / c,
            stage: stage as u8 + 1,
            seed: opts.seed,
            metrics: ema.clone(),
            optimizer_state_saved: false,
        };
        let path = ckpt_dir.join(checkpoint::checkpoint_name(step));
        checkpoint::save(&path, &vs, &cfg, &labels, &state)?;
        prune_checkpoints(&opts.out, 3);
        Ok(path)
    };

    while step < total_steps {
        let Some(next) = prefetch.next_batch() else {
            bail!("the data pipeline stopped before step {step}");
        };
        let tb = next?;
        debug_assert_eq!(tb.step, step);
        stage = t.stage_at(step, total_steps);
        let st = &t.stages[stage];
        let lr = t.lr_at(step, total_steps);
        opt.set_lr_group(BACKBONE_GROUP, lr * st.backbone_lr_scale);
        opt.set_lr_group(HEAD_GROUP, lr);
        let batch = DeviceBatch::new(&tb.batch, opts.device);
        let terms = step_losses(&model, &batch, &pos_weight, t, st.detach_pool, amp);
        let w = &st.weights;
        let weights = [
            w.landmarks,
            w.visibility,
            w.category,
            w.attributes,
            w.triplet,
        ];
        let mut loss = Tensor::zeros([], (Kind::Float, opts.device));
        for (l, &wt) in terms.iter().zip(&weights) {
            if wt != 0.0 {
                loss = loss.g_add(&(l * wt));
            }
        }
        opt.zero_grad();
        let ok = if amp {
            (&loss * scaler.scale).backward();
            scaler.unscale(&trainable)
        } else {
            loss.backward();
            true
        };
        if ok {
            if t.clip_grad_norm > 0.0 {
                opt.clip_grad_norm(t.clip_grad_norm);
            }
            opt.step();
        }
        let mut vals = terms.iter().map(|x| x.detach()).collect::<Vec<_>>();
        vals.push(loss.detach());
        let host: Vec<f64> = Vec::try_from(
            Tensor::stack(&vals, 0)
                .to_kind(Kind::Double)
                .to_device(Device::Cpu),
        )?;
        images_seen += tb.batch.n;
        step += 1;
        let mut upd = |k: &str, v: f64| {
            if v.is_finite() {
                let e = ema.entry(k.to_string()).or_insert(v);
                *e = 0.95 * *e + 0.05 * v;
            }
        };
        let kind = tb.kind;
        for (name, v) in LOSS_TERMS.iter().zip(&host) {
            let relevant = !matches!(
                (kind, *name),
                (BatchKind::Category, "triplet") | (BatchKind::InShop, "category" | "attributes")
            );
            if relevant {
                upd(name, *v);
            }
        }
        let total_v = host[5];
        if kind == BatchKind::Category || data.category.is_empty() {
            totals.push(total_v);
        }
        upd(
            &format!(
                "loss_{}",
                if kind == BatchKind::Category {
                    "category_batch"
                } else {
                    "inshop_batch"
                }
            ),
            total_v,
        );
        if !total_v.is_finite() {
            bail!("loss is not finite at step {step} ({total_v}); lower the learning rate");
        }
        let rate = images_seen as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        ema.insert("lr".into(), lr);
        ema.insert("images_per_s".into(), rate);
        pb.set_position(step);
        pb.set_message(format!(
            "stage {} loss {:.3} lm {:.4} cat {:.3} tri {:.3} {:.0} img/s",
            stage + 1,
            ema.get("loss_category_batch").copied().unwrap_or(f64::NAN),
            ema.get("landmarks").copied().unwrap_or(f64::NAN),
            ema.get("category").copied().unwrap_or(f64::NAN),
            ema.get("triplet").copied().unwrap_or(f64::NAN),
            rate
        ));
        // Two consecutive steps per interval, so both batch kinds get rows.
        if t.log_every > 0
            && (step % t.log_every == 0 || (step + 1) % t.log_every == 0 || step == total_steps)
        {
            let mut row = serde_json::json!({
                "step": step,
                "stage": stage + 1,
                "batch": if kind == BatchKind::Category { "category" } else { "inshop" },
                "lr": lr,
                "loss": total_v,
                "images_per_s": rate,
                "elapsed_s": t0.elapsed().as_secs_f64(),
            });
            for (name, v) in LOSS_TERMS.iter().zip(&host) {
                row[*name] = serde_json::json!(v);
            }
            append_jsonl(&metrics_path, &row)?;
        }
        let interrupt = stop.load(Ordering::SeqCst);
        if interrupt
            || (t.checkpoint_every > 0 && step % t.checkpoint_every == 0)
            || step == total_steps
        {
            last_ckpt = Some(save(step, stage, &ema)?);
        }
        if interrupt && step < total_steps {
            interrupted = true;
            tracing::info!("interrupted: checkpoint at step {step} written");
            break;
        }
    }
    drop(prefetch);
    pb.finish_and_clear();
    let checkpoint = match last_ckpt {
        Some(p) => p,
        None => save(step, stage, &ema)?,
    };
    let k = (totals.len() / 10).max(1).min(totals.len().max(1));
    let mean = |s: &[f64]| {
        if s.is_empty() {
            f64::NAN
        } else {
            s.iter().sum::<f64>() / s.len() as f64
        }
    };
    let first = mean(&totals[..k.min(totals.len())]);
    let last = mean(&totals[totals.len().saturating_sub(k)..]);
    if let Err(e) = crate::evaluate::plot_metrics(&metrics_path, &opts.out.join("curves.png")) {
        tracing::warn!("could not plot training curves: {e:#}");
    }
    Ok(TrainOutcome {
        step,
        total_steps,
        checkpoint,
        interrupted,
        metrics: ema,
        loss_first_last: (first, last),
    })
}
