//! Evaluation: run a checkpoint over a benchmark split (eval mode, no
//! augmentation), turn the outputs into `deepfashion::metrics` predictions
//! (landmarks mapped back to original pixels), score them, and compare with
//! the trivial baselines (majority category, mean training landmark, random
//! embeddings).

use anyhow::{Context, Result};
use deepfashion::annotations::{self, Benchmark, Dataset, ImageRecord, LandmarkState, LoadOptions};
use deepfashion::contract::NUM_LANDMARKS;
use deepfashion::metrics::{self, Prediction, Scores};
use std::path::Path;
use tch::{nn, Device, Tensor};

use crate::checkpoint::{self, Checkpoint};
use crate::data::{build_batch, HostBatch, Sample};
use crate::model::FashionNet;
use crate::plot::{plot, Series};

/// Model outputs of one image, landmarks already in original pixels.
#[derive(Debug, Clone)]
pub struct ImageOutputs {
    /// Image name as in the annotation files.
    pub image: String,
    /// Landmarks `(x, y)` in original image pixels.
    pub landmarks: [[f32; 2]; NUM_LANDMARKS],
    /// Visibility probabilities per slot.
    pub visibility: [[f32; 3]; NUM_LANDMARKS],
    /// Category probabilities.
    pub category: Vec<f32>,
    /// Attribute probabilities.
    pub attributes: Vec<f32>,
    /// Embedding (L2-normalized).
    pub embedding: Vec<f32>,
}

/// A model loaded from a checkpoint.
pub struct LoadedModel {
    /// Keeps the variables alive.
    pub vs: nn::VarStore,
    /// The network.
    pub model: FashionNet,
    /// The checkpoint it came from.
    pub checkpoint: Checkpoint,
}

/// Load a checkpoint onto `device`.
pub fn load_model(path: &Path, device: Device) -> Result<LoadedModel> {
    let ckpt = checkpoint::load(path)?;
    let vs = nn::VarStore::new(device);
    let model = FashionNet::new(&vs.root(), &ckpt.config);
    checkpoint::restore(&vs, &ckpt)?;
    Ok(LoadedModel {
        vs,
        model,
        checkpoint: ckpt,
    })
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let t = t
        .to_device(Device::Cpu)
        .to_kind(tch::Kind::Float)
        .contiguous();
    let n = t.size()[0] as usize;
    let flat: Vec<f32> = Vec::try_from(t.view([-1]))?;
    let w = flat.len() / n.max(1);
    Ok(flat.chunks(w.max(1)).map(|c| c.to_vec()).collect())
}

/// Run the model over `records` of `ds` in batches of `batch`.
pub fn run_model(
    m: &FashionNet,
    ds: &Dataset,
    records: &[&ImageRecord],
    device: Device,
    batch: usize,
    threads: usize,
) -> Result<Vec<ImageOutputs>> {
    let size = m.config().input_size;
    let samples: Vec<Sample> = records
        .iter()
        .map(|r| Sample::from_record(ds, r, None))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    let mut out = Vec::with_capacity(records.len());
    for (chunk_i, chunk) in samples.chunks(batch.max(1)).enumerate() {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let hb: HostBatch = pool.install(|| build_batch(&refs, size, 0, None))?;
        let n = hb.n as i64;
        let x = Tensor::from_slice(&hb.images)
            .view([n, 3, size as i64, size as i64])
            .to_device(device);
        let o = tch::no_grad(|| m.forward_outputs(&x));
        let lm = rows(&o.landmarks)?;
        let vis = rows(&o.visibility)?;
        let cat = rows(&o.category)?;
        let att = rows(&o.attributes)?;
        let emb = rows(&o.embedding)?;
        for i in 0..hb.n {
            let rec = records[chunk_i * batch.max(1) + i];
            let crop = hb.crops[i];
            let landmarks = std::array::from_fn(|k| {
                let (x, y) = crop.to_pixels(lm[i][2 * k], lm[i][2 * k + 1]);
                [x, y]
            });
            let visibility =
                std::array::from_fn(|k| [vis[i][3 * k], vis[i][3 * k + 1], vis[i][3 * k + 2]]);
            out.push(ImageOutputs {
                image: rec.image.clone(),
                landmarks,
                visibility,
                category: cat[i].clone(),
                attributes: att[i].clone(),
                embedding: emb[i].clone(),
            });
        }
    }
    Ok(out)
}

/// Plot `metrics.jsonl` (loss terms, lr, throughput) into a PNG.
pub fn plot_metrics(jsonl: &Path, png: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(jsonl).with_context(|| format!("reading {}", jsonl.display()))?;
    let names = [
        "loss",
        "landmarks",
        "visibility",
        "category",
        "attributes",
        "triplet",
        "lr",
    ];
    let mut series: Vec<Series> = names
        .iter()
        .map(|n| Series {
            name: n.to_string(),
            points: Vec::new(),
        })
        .collect();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", jsonl.display(), i + 1))?;
        let Some(step) = v["step"].as_f64() else {
            continue;
        };
        let batch = v["batch"].as_str().unwrap_or("category");
        for s in series.iter_mut() {
            let relevant = match s.name.as_str() {
                "loss" | "category" | "attributes" => batch == "category",
                "triplet" => batch == "inshop",
                _ => true,
            };
            if let (true, Some(x)) = (relevant, v[s.name.as_str()].as_f64()) {
                s.points.push((step, x));
            }
        }
    }
    series.retain(|s| !s.points.is_empty());
    plot(png, &series)
}

/// Load a benchmark from `root`.
pub fn load_benchmark(root: &Path, b: Benchmark) -> Result<Dataset> {
    annotations::load(root, b, &LoadOptions::default())
        .with_context(|| format!("loading {b} from {}", root.display()))
}

/// Mean training landmark per slot in [0,1] of the eval crop (over present
/// slots); the "mean landmark" baseline predicts it for every image.
pub fn mean_unit_landmarks(ds: &Dataset) -> [[f32; 2]; NUM_LANDMARKS] {
    let mut sum = [[0f64; 2]; NUM_LANDMARKS];
    let mut cnt = [0f64; NUM_LANDMARKS];
    for r in ds.split("train") {
        let (Some(lms), Some(b)) = (&r.landmarks, r.bbox) else {
            continue;
        };
        let crop = deepfashion::preprocess::CropBox::around_bbox(
            b,
            deepfashion::contract::DEFAULT_CROP_MARGIN,
        );
        for (k, l) in lms.iter().enumerate() {
            if l.state != LandmarkState::Absent {
                let (u, v) = crop.to_unit(l.x, l.y);
                sum[k][0] += u as f64;
                sum[k][1] += v as f64;
                cnt[k] += 1.0;
            }
        }
    }
    std::array::from_fn(|k| {
        if cnt[k] > 0.0 {
            [(sum[k][0] / cnt[k]) as f32, (sum[k][1] / cnt[k]) as f32]
        } else {
            [0.5, 0.5]
        }
    })
}

/// The records a split's scoring needs ([`metrics::needed_records`]).
pub fn eval_records<'a>(ds: &'a Dataset, split: &str) -> Vec<&'a ImageRecord> {
    metrics::needed_records(ds, split)
        .into_iter()
        .map(|r| &ds.images[r])
        .collect()
}

/// Predictions (the `deepfashion::metrics` format) from model outputs;
/// category/attributes are left out where the dataset has no such labels.
pub fn to_predictions(ds: &Dataset, outs: Vec<ImageOutputs>) -> Vec<Prediction> {
    outs.into_iter()
        .map(|o| Prediction {
            image: o.image,
            category: (!ds.categories.is_empty() && o.category.len() == ds.categories.len())
                .then_some(o.category),
            attributes: (!ds.attributes.is_empty() && o.attributes.len() == ds.attributes.len())
                .then_some(o.attributes),
            landmarks: Some(o.landmarks.to_vec()),
            visibility: Some(o.visibility.to_vec()),
            embedding: Some(o.embedding),
        })
        .collect()
}

/// Run a loaded model over what `split` of `ds` needs.
pub fn predict(
    m: &LoadedModel,
    ds: &Dataset,
    split: &str,
    device: Device,
    threads: usize,
) -> Result<Vec<Prediction>> {
    let recs = eval_records(ds, split);
    anyhow::ensure!(
        !recs.is_empty(),
        "split `{split}` of {} has no images",
        ds.benchmark
    );
    let outs = run_model(&m.model, ds, &recs, device, 64, threads)?;
    Ok(to_predictions(ds, outs))
}

/// `trainer eval`: the section-7 metrics of a checkpoint on a split.
pub fn eval(
    ckpt: &Path,
    root: &Path,
    benchmark: Benchmark,
    split: &str,
    device: Device,
    threads: usize,
) -> Result<Scores> {
    let m = load_model(ckpt, device)?;
    let ds = load_benchmark(root, benchmark)?;
    let preds = predict(&m, &ds, split, device, threads)?;
    Ok(metrics::score(&ds, split, &preds)?)
}

/// `trainer predict`: write the predictions JSON lines; returns how many.
pub fn predict_to_file(
    ckpt: &Path,
    root: &Path,
    benchmark: Benchmark,
    split: &str,
    out: &Path,
    device: Device,
    threads: usize,
) -> Result<usize> {
    let m = load_model(ckpt, device)?;
    let ds = load_benchmark(root, benchmark)?;
    let preds = predict(&m, &ds, split, device, threads)?;
    metrics::write_predictions(out, &preds)?;
    Ok(preds.len())
}

/// A human table of scores.
pub fn render_scores(s: &Scores) -> String {
    let mut out = format!("{} / {}\n", s.benchmark, s.split);
    if let Some(c) = &s.category {
        out += &format!(
            "category      top-1 {:.4}  top-3 {:.4}  top-5 {:.4}  ({} images)\n",
            c.top1, c.top3, c.top5, c.images
        );
    }
    if let Some(a) = &s.attributes {
        out += &format!(
            "attributes    recall top-3 {:.4}  top-5 {:.4}  ({} positives)\n",
            a.top3, a.top5, a.positives
        );
        for (g, r) in &a.by_group {
            out += &format!("  {g:<12}  top-3 {:.4}  top-5 {:.4}\n", r.top3, r.top5);
        }
    }
    if let Some(r) = &s.retrieval {
        out += &format!(
            "retrieval     top-1 {:.4}  top-5 {:.4}  top-10 {:.4}  top-20 {:.4}  top-50 {:.4}  ({} queries, {} gallery)\n",
            r.top1, r.top5, r.top10, r.top20, r.top50, r.queries, r.gallery
        );
    }
    if let Some(l) = &s.landmarks {
        out += &format!(
            "landmarks     NE {:.4}  ({} visible landmarks)",
            l.ne, l.visible
        );
        for (t, v) in &l.detection_rate {
            out += &format!("  det@{t} {v:.3}");
        }
        if let Some(v) = l.visibility_accuracy {
            out += &format!("  visibility acc {v:.3}");
        }
        out.push('\n');
    }
    out
}

/// The three headline numbers the run summary compares with baselines,
/// all from `deepfashion::metrics::score`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Headline {
    /// Category top-1 accuracy on the C&A test split.
    pub category_top1: f64,
    /// Landmark normalized error on the C&A test split (visible landmarks).
    pub landmark_ne: f64,
    /// In-shop query -> gallery top-20 accuracy (NaN without In-shop).
    pub inshop_top20: f64,
}

/// Model and baseline numbers of a finished run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// The checkpoint evaluated.
    pub checkpoint: String,
    /// The model on the test splits.
    pub model: Headline,
    /// Trivial baselines: majority category, mean training landmark,
    /// random embeddings (mean over 5 draws).
    pub baseline: Headline,
    /// Full scores of the model on C&A test.
    pub category_attribute: Scores,
    /// Full scores of the model on In-shop query/gallery.
    pub inshop: Option<Scores>,
}

impl RunSummary {
    /// A side-by-side table.
    pub fn render(&self) -> String {
        let m = &self.model;
        let b = &self.baseline;
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "-".into()
            }
        };
        let row = |name: &str, a: f64, bb: f64, note: &str| {
            format!(
                "{name:<18} {a:>9.4} {bb:>9.4} {:>8}   {note}\n",
                ratio(a, bb)
            )
        };
        let mut s = format!(
            "{:<18} {:>9} {:>9} {:>8}\n",
            "test split", "model", "baseline", "ratio"
        );
        s += &row(
            "category top-1",
            m.category_top1,
            b.category_top1,
            "(majority training category)",
        );
        s += &row(
            "landmark NE",
            m.landmark_ne,
            b.landmark_ne,
            "(mean training landmark; lower is better)",
        );
        s += &row(
            "In-shop top-20",
            m.inshop_top20,
            b.inshop_top20,
            "(random embeddings)",
        );
        s
    }
}

/// Evaluate a checkpoint on the C&A test split and In-shop query/gallery
/// and score the trivial baselines on the same images with the same code.
pub fn summarize_run(
    ckpt: &Path,
    root: &Path,
    device: Device,
    threads: usize,
) -> Result<RunSummary> {
    use rand::{Rng, SeedableRng};
    let m = load_model(ckpt, device)?;
    let ca = load_benchmark(root, Benchmark::CategoryAttribute)?;
    let preds = predict(&m, &ca, "test", device, threads)?;
    let ca_scores = metrics::score(&ca, "test", &preds)?;
    let mut model = Headline {
        category_top1: ca_scores.category.as_ref().map_or(f64::NAN, |c| c.top1),
        landmark_ne: ca_scores.landmarks.as_ref().map_or(f64::NAN, |l| l.ne),
        inshop_top20: f64::NAN,
    };
    // Baselines on the same images.
    let mut counts = vec![0usize; ca.categories.len()];
    for r in ca.split("train") {
        if let Some(c) = r.category.filter(|&c| c < counts.len()) {
            counts[c] += 1;
        }
    }
    let majority = counts
        .iter()
        .enumerate()
        .max_by_key(|x| x.1)
        .map_or(0, |x| x.0);
    let mean = mean_unit_landmarks(&ca);
    let base_preds: Vec<Prediction> = eval_records(&ca, "test")
        .iter()
        .map(|r| {
            let crop = crate::data::eval_crop(r.bbox, 1, 1);
            let mut p = Prediction::new(r.image.clone());
            p.category = Some(
                (0..counts.len())
                    .map(|i| (i == majority) as u8 as f32)
                    .collect(),
            );
            p.landmarks = Some(
                mean.iter()
                    .map(|u| {
                        let (x, y) = crop.to_pixels(u[0], u[1]);
                        [x, y]
                    })
                    .collect(),
            );
            p
        })
        .collect();
    let base = metrics::score(&ca, "test", &base_preds)?;
    let mut baseline = Headline {
        category_top1: base.category.as_ref().map_or(f64::NAN, |c| c.top1),
        landmark_ne: base.landmarks.as_ref().map_or(f64::NAN, |l| l.ne),
        inshop_top20: f64::NAN,
    };
    let mut inshop = None;
    if annotations::resolve_root(root, Benchmark::InShop).is_ok() {
        let shop = load_benchmark(root, Benchmark::InShop)?;
        let preds = predict(&m, &shop, "query", device, threads)?;
        let s = metrics::score(&shop, "query", &preds)?;
        model.inshop_top20 = s.retrieval.as_ref().map_or(f64::NAN, |r| r.top20);
        inshop = Some(s);
        let d = m.checkpoint.config.embedding_dim;
        let mut acc = 0.0;
        let draws = 5;
        for seed in 0..draws {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let rp: Vec<Prediction> = eval_records(&shop, "query")
                .iter()
                .map(|r| {
                    let mut p = Prediction::new(r.image.clone());
                    p.embedding = Some((0..d).map(|_| rng.gen_range(-1.0f32..1.0)).collect());
                    p
                })
                .collect();
            let s = metrics::score(&shop, "query", &rp)?;
            acc += s.retrieval.as_ref().map_or(f64::NAN, |r| r.top20);
        }
        baseline.inshop_top20 = acc / draws as f64;
    }
    Ok(RunSummary {
        checkpoint: ckpt.display().to_string(),
        model,
        baseline,
        category_attribute: ca_scores,
        inshop,
    })
}
