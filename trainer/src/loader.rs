//! The training data stream: which samples make up step `s` (a pure
//! function of the seed and `s`, so a resumed run sees the same batches), and
//! a prefetch thread that decodes the next batches on a rayon pool while the
//! model trains on the current one (bounded channel).

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::TrainConfig;
use crate::data::{build_batch, HostBatch, Sample};

/// Which source a training batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Category & Attribute: category, attributes, landmarks.
    Category,
    /// In-shop P x K: triplet and landmarks.
    InShop,
}

/// The training samples of both benchmarks.
#[derive(Debug)]
pub struct TrainData {
    /// Category & Attribute training samples.
    pub category: Vec<Sample>,
    /// In-shop training samples.
    pub inshop: Vec<Sample>,
    /// In-shop items with at least two training images: sample indices.
    pub items: Vec<Vec<usize>>,
    /// Number of attributes (batch row width).
    pub num_attributes: usize,
    /// Input side.
    pub size: usize,
}

impl TrainData {
    /// Build the item table from the In-shop samples' item indices.
    pub fn new(
        category: Vec<Sample>,
        inshop: Vec<Sample>,
        num_attributes: usize,
        size: usize,
    ) -> Self {
        let mut by_item: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, s) in inshop.iter().enumerate() {
            if let Some(it) = s.item {
                by_item.entry(it).or_default().push(i);
            }
        }
        let items = by_item.into_values().filter(|v| v.len() >= 2).collect();
        Self {
            category,
            inshop,
            items,
            num_attributes,
            size,
        }
    }
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut x =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// Deterministic batch plan.
#[derive(Debug)]
pub struct Sampler {
    seed: u64,
    batch_size: usize,
    p: usize,
    k: usize,
    inshop_every: u64,
    perm_epoch: Option<(u64, Vec<usize>)>,
}

impl Sampler {
    /// A sampler for `data` with the batch settings of `cfg`.
    pub fn new(cfg: &TrainConfig, data: &TrainData, seed: u64) -> Self {
        let inshop_every = if data.items.len() >= 2 {
            cfg.inshop_every as u64
        } else {
            0
        };
        let inshop_every = if data.category.is_empty() && data.items.len() >= 2 {
            1
        } else {
            inshop_every
        };
        Self {
            seed,
            batch_size: cfg.batch_size,
            p: cfg.p_items,
            k: cfg.k_images,
            inshop_every,
            perm_epoch: None,
        }
    }

    /// Kind of step `s`.
    pub fn kind(&self, s: u64) -> BatchKind {
        if self.inshop_every > 0 && s % self.inshop_every == self.inshop_every - 1 {
            BatchKind::InShop
        } else {
            BatchKind::Category
        }
    }

    /// Category & Attribute batches before step `s` (epoch accounting).
    pub fn category_batches_before(&self, s: u64) -> u64 {
        s - s.checked_div(self.inshop_every).unwrap_or(0)
    }

    /// The sample indices of step `s`.
    pub fn plan(&mut self, data: &TrainData, s: u64) -> (BatchKind, Vec<usize>) {
        match self.kind(s) {
            BatchKind::Category => {
                let n = data.category.len();
                let j = self.category_batches_before(s);
                let mut out = Vec::with_capacity(self.batch_size);
                for k in 0..self.batch_size as u64 {
                    let g = j * self.batch_size as u64 + k;
                    let epoch = g / n as u64;
                    if self.perm_epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
                        let mut perm: Vec<usize> = (0..n).collect();
                        perm.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(self.seed, 1, epoch)));
                        self.perm_epoch = Some((epoch, perm));
                    }
                    let perm = &self.perm_epoch.as_ref().expect("set above").1;
                    out.push(perm[(g % n as u64) as usize]);
                }
                (BatchKind::Category, out)
            }
            BatchKind::InShop => {
                let j = s / self.inshop_every.max(1);
                let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, 2, j));
                let p = self.p.min(data.items.len());
                let items: Vec<&Vec<usize>> = data.items.choose_multiple(&mut rng, p).collect();
                let mut out = Vec::with_capacity(p * self.k);
                for imgs in items {
                    if imgs.len() >= self.k {
                        out.extend(imgs.choose_multiple(&mut rng, self.k).copied());
                    } else {
                        for _ in 0..self.k {
                            out.push(*imgs.choose(&mut rng).expect("items have >= 2 images"));
                        }
                    }
                }
                (BatchKind::InShop, out)
            }
        }
    }
}

/// A decoded training batch.
#[derive(Debug)]
pub struct TrainBatch {
    /// Step it belongs to.
    pub step: u64,
    /// Its source.
    pub kind: BatchKind,
    /// The data.
    pub batch: HostBatch,
}

/// The prefetch thread: decodes steps `start..end` in order into a bounded
/// channel. Dropping it stops the thread.
pub struct Prefetcher {
    rx: Option<Receiver<Result<TrainBatch>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Start decoding steps `start..end` with `threads` decoder threads,
    /// keeping up to `depth` batches ready.
    pub fn start(
        data: Arc<TrainData>,
        cfg: &TrainConfig,
        seed: u64,
        start: u64,
        end: u64,
        threads: usize,
        depth: usize,
    ) -> Result<Self> {
        if data.category.is_empty() && data.items.len() < 2 {
            bail!("no training data: the Category & Attribute train split is empty and In-shop has fewer than 2 items with 2+ images");
        }
        let (tx, rx) = sync_channel(depth.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let cfg = cfg.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("decode-{i}"))
            .build()?;
        let handle = std::thread::Builder::new()
            .name("prefetch".into())
            .spawn(move || {
                let mut sampler = Sampler::new(&cfg, &data, seed);
                for s in start..end {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let (kind, idx) = sampler.plan(&data, s);
                    let pool_src = match kind {
                        BatchKind::Category => &data.category,
                        BatchKind::InShop => &data.inshop,
                    };
                    let samples: Vec<&Sample> = idx.iter().map(|&i| &pool_src[i]).collect();
                    let res = pool.install(|| {
                        build_batch(
                            &samples,
                            data.size,
                            data.num_attributes,
                            Some((&cfg.augment, mix(seed, 3, s))),
                        )
                    });
                    let msg = res.map(|batch| TrainBatch {
                        step: s,
                        kind,
                        batch,
                    });
                    let failed = msg.is_err();
                    if tx.send(msg).is_err() || failed {
                        break;
                    }
                }
            })?;
        Ok(Self {
            rx: Some(rx),
            stop,
            handle: Some(handle),
        })
    }

    /// The next batch (blocks); `None` when the range is exhausted.
    pub fn next_batch(&mut self) -> Option<Result<TrainBatch>> {
        self.rx.as_ref().and_then(|rx| rx.recv().ok())
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(n_cat: usize, items: usize, per_item: usize) -> TrainData {
        let s = |item| Sample {
            path: "x".into(),
            bbox: None,
            category: None,
            attributes: None,
            landmarks: None,
            item,
        };
        let cat = (0..n_cat).map(|_| s(None)).collect();
        let shop = (0..items * per_item)
            .map(|i| s(Some((i / per_item) as i64)))
            .collect();
        TrainData::new(cat, shop, 1, 32)
    }

    #[test]
    fn plan_is_deterministic_and_pk_has_positives() {
        let data = fake(50, 10, 3);
        let cfg = TrainConfig {
            batch_size: 8,
            p_items: 4,
            k_images: 2,
            inshop_every: 2,
            ..Default::default()
        };
        let mut a = Sampler::new(&cfg, &data, 7);
        let mut b = Sampler::new(&cfg, &data, 7);
        // Plans do not depend on the order they are asked in (resume).
        let late = b.plan(&data, 41);
        for s in 0..41 {
            a.plan(&data, s);
        }
        assert_eq!(a.plan(&data, 41), late);
        let (kind, idx) = a.plan(&data, 1);
        assert_eq!(kind, BatchKind::InShop);
        assert_eq!(idx.len(), 8);
        for pair in idx.chunks(2) {
            assert_eq!(data.inshop[pair[0]].item, data.inshop[pair[1]].item);
            assert_ne!(pair[0], pair[1]);
        }
        // Category batches walk a permutation: the first epoch covers every sample once.
        let mut seen = [0; 50];
        let mut s = 0;
        let mut c = Sampler::new(&cfg, &data, 1);
        let mut count = 0;
        while count < 48 {
            if c.kind(s) == BatchKind::Category {
                for i in c.plan(&data, s).1 {
                    seen[i] += 1;
                }
                count += 8;
            }
            s += 1;
        }
        assert!(seen.iter().all(|&v| v <= 1));
    }
}
