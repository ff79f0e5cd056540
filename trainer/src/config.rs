//! The training configuration (serde, JSON): batch composition, optimizer,
//! learning-rate schedule, the two stages with their loss weights, and
//! augmentation. Every field has a sensible default, so a file only needs
//! the fields it changes.

use serde::{Deserialize, Serialize};

/// Which optimizer to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (with L2 weight decay).
    Adam,
    /// SGD with momentum (Nesterov off).
    Sgd,
}

/// Loss weights of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossWeights {
    /// Landmark L2.
    pub landmarks: f64,
    /// Visibility cross-entropy.
    pub visibility: f64,
    /// Category cross-entropy.
    pub category: f64,
    /// Attribute weighted BCE.
    pub attributes: f64,
    /// Triplet loss on the embedding.
    pub triplet: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            landmarks: 1.0,
            visibility: 1.0,
            category: 1.0,
            attributes: 1.0,
            triplet: 1.0,
        }
    }
}

/// One training stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageConfig {
    /// Fraction of the total steps spent in this stage (stages run in order;
    /// fractions are normalized to sum 1).
    pub fraction: f64,
    /// Loss weights.
    pub weights: LossWeights,
    /// Learning-rate multiplier of the backbone (conv1..conv4); 0 freezes it.
    pub backbone_lr_scale: f64,
    /// Detach the landmark coordinates/visibility used by landmark pooling.
    pub detach_pool: bool,
}

impl Default for StageConfig {
    fn default() -> Self {
        Self {
            fraction: 0.5,
            weights: LossWeights::default(),
            backbone_lr_scale: 1.0,
            detach_pool: true,
        }
    }
}

/// Augmentation of training crops (all landmark-consistent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random horizontal flip (slots swapped by the contract's flip permutation).
    pub flip: bool,
    /// Crop side jitter: side scaled by a factor in `[1-s, 1+s]`.
    pub scale: f32,
    /// Crop centre jitter as a fraction of the side.
    pub shift: f32,
    /// Brightness/contrast jitter amplitude.
    pub brightness: f32,
    /// Per-channel colour gain jitter amplitude.
    pub color: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            flip: true,
            scale: 0.1,
            shift: 0.05,
            brightness: 0.2,
            color: 0.1,
        }
    }
}

/// The training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Images per Category & Attribute batch.
    pub batch_size: usize,
    /// Items per In-shop batch (P).
    pub p_items: usize,
    /// Images per item in an In-shop batch (K).
    pub k_images: usize,
    /// Every `inshop_every`-th step is an In-shop P x K batch (0: never).
    pub inshop_every: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Linear warm-up steps (fraction of total steps).
    pub warmup_fraction: f64,
    /// Final learning rate of the cosine schedule, relative to `lr`.
    pub min_lr_ratio: f64,
    /// Category label smoothing.
    pub label_smoothing: f64,
    /// Triplet margin.
    pub triplet_margin: f64,
    /// Cap of the per-attribute positive weight.
    pub max_attribute_pos_weight: f64,
    /// Gradient-norm clip (0: off).
    pub clip_grad_norm: f64,
    /// Mixed precision (autocast + loss scaling) on CUDA; ignored on CPU.
    pub amp: bool,
    /// Checkpoint every N steps (0: only at the end and on SIGINT).
    pub checkpoint_every: u64,
    /// Write a metrics.jsonl row every N steps.
    pub log_every: u64,
    /// The stages, run in order.
    pub stages: Vec<StageConfig>,
    /// Augmentation.
    pub augment: AugmentConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            p_items: 8,
            k_images: 4,
            inshop_every: 2,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            weight_decay: 1e-5,
            momentum: 0.9,
            warmup_fraction: 0.05,
            min_lr_ratio: 0.02,
            label_smoothing: 0.05,
            triplet_margin: 0.3,
            max_attribute_pos_weight: 20.0,
            clip_grad_norm: 10.0,
            amp: true,
            checkpoint_every: 200,
            log_every: 10,
            stages: vec![
                StageConfig {
                    fraction: 0.3,
                    weights: LossWeights {
                        landmarks: 10.0,
                        visibility: 1.0,
                        category: 0.3,
                        attributes: 0.3,
                        triplet: 0.3,
                    },
                    backbone_lr_scale: 1.0,
                    detach_pool: false,
                },
                StageConfig {
                    fraction: 0.7,
                    weights: LossWeights {
                        landmarks: 3.0,
                        visibility: 0.5,
                        category: 1.0,
                        attributes: 1.0,
                        triplet: 1.0,
                    },
                    backbone_lr_scale: 0.3,
                    detach_pool: true,
                },
            ],
            augment: AugmentConfig::default(),
        }
    }
}

impl TrainConfig {
    /// The stage index (0-based) active at `step` of `total`.
    pub fn stage_at(&self, step: u64, total: u64) -> usize {
        if self.stages.is_empty() {
            return 0;
        }
        let sum: f64 = self.stages.iter().map(|s| s.fraction.max(0.0)).sum();
        let pos = step as f64 / total.max(1) as f64;
        let mut acc = 0.0;
        for (i, s) in self.stages.iter().enumerate() {
            acc += s.fraction.max(0.0) / sum.max(1e-12);
            if pos < acc {
                return i;
            }
        }
        self.stages.len() - 1
    }

    /// Learning rate at `step` of `total`: linear warm-up, then cosine decay
    /// to `lr * min_lr_ratio`.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        let warm = (self.warmup_fraction * total as f64).round().max(1.0);
        let s = step as f64;
        if s < warm {
            return self.lr * (s + 1.0) / warm;
        }
        let span = (total as f64 - warm).max(1.0);
        let p = ((s - warm) / span).clamp(0.0, 1.0);
        let min = self.lr * self.min_lr_ratio;
        min + (self.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }

    /// Check the values a run cannot work with.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.batch_size >= 2,
            "train config: batch_size must be >= 2"
        );
        anyhow::ensure!(
            self.inshop_every == 0 || (self.p_items >= 2 && self.k_images >= 2),
            "train config: p_items and k_images must be >= 2 for the triplet loss"
        );
        anyhow::ensure!(self.lr > 0.0, "train config: lr must be positive");
        anyhow::ensure!(
            !self.stages.is_empty(),
            "train config: stages must not be empty"
        );
        anyhow::ensure!(
            self.stages.iter().any(|s| s.fraction > 0.0),
            "train config: at least one stage needs a positive fraction"
        );
        Ok(())
    }

    /// Defaults tuned per model preset (batch size and learning rate).
    pub fn for_model(name: &str) -> Self {
        let mut c = Self::default();
        match name {
            "paper" => {
                c.optimizer = OptimizerKind::Sgd;
                c.lr = 0.01;
                c.weight_decay = 5e-4;
            }
            "tiny" => {
                c.lr = 2e-3;
                c.batch_size = 32;
            }
            _ => {}
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let c = TrainConfig::default();
        let total = 1000;
        assert!(c.lr_at(0, total) < c.lr * 0.1);
        let peak = c.lr_at(50, total);
        assert!((peak - c.lr).abs() < 1e-9);
        assert!(c.lr_at(500, total) < peak);
        assert!((c.lr_at(999, total) - c.lr * c.min_lr_ratio).abs() < c.lr * 0.01);
    }

    #[test]
    fn stages_follow_fractions_and_json_roundtrips() {
        let c = TrainConfig::default();
        assert_eq!(c.stage_at(0, 100), 0);
        assert_eq!(c.stage_at(29, 100), 0);
        assert_eq!(c.stage_at(30, 100), 1);
        assert_eq!(c.stage_at(99, 100), 1);
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&j).unwrap(), c);
        let partial: TrainConfig = serde_json::from_str(r#"{"lr":0.5}"#).unwrap();
        assert_eq!(partial.lr, 0.5);
        assert!(serde_json::from_str::<TrainConfig>(r#"{"lrr":0.5}"#).is_err());
    }
}
